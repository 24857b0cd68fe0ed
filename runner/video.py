"""Seeing the fly: MP4 videos of world 0 and MuJoCo's interactive viewer, as wrappers around a VecTask.

Task and physics code know nothing of this. The wrappers intercept `step`: after each step they copy
world 0's qpos (one host copy, from the engine's torch state: `physics.qpos[0]`) into one CPU
MjData, run mj_forward and render it offscreen with mujoco.Renderer (or hand it to the viewer).
Nothing is wrapped when nothing is asked for, and a recorder neither copies nor renders on steps it
does not record, so training without videos costs nothing.

Offscreen OpenGL: MuJoCo picks its backend from MUJOCO_GL when it is imported. If the user did not
set MUJOCO_GL, the first renderer chooses one (EGL, else OSMesa), sets MUJOCO_GL and has MuJoCo's
GL context module read it again (mujoco is already imported by then through the physics code).

train.py keys (Hydra; `+` adds a key that is not in cfg/config.yaml):
  capture_video=True      record `capture_video_len` frames every `capture_video_freq` steps into
                          runs/<experiment>/videos/ (training and play)
  +video_path=out.mp4     play mode: one video of `+video_len` (default capture_video_len) frames,
                          then stop
  +video_width=640 +video_height=480   frame size (even numbers; at most the model's offwidth/offheight)
  +video_fps=N            playback frames per second, one frame per control step: default 30, slow
                          motion (200 Hz control: 6.7x slower than real time, so the legs can be seen);
                          1 / control dt is real time
  headless=False          play mode: MuJoCo's viewer on world 0 when a display is there
"""
from __future__ import annotations

import atexit
import copy
import importlib
import os
import subprocess
import sys
import time

import numpy as np

from common.checks import ConfigError

DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30  # like IsaacGymEnvs' fixed video rate: a fly's 10-20 Hz stride is a blur in real time
CAMERA = "track"  # the asset's camera that follows the fly's centre of mass

# Renders one frame in a fresh interpreter: PyOpenGL binds to one platform per process, so a failed
# EGL attempt in this process would rule out OSMesa afterwards.
_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size="1"/></worldbody></mujoco>')
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
with mujoco.Renderer(m, 16, 16) as r:
    r.update_scene(d)
    r.render()
"""


def render_model(model):
    """A copy of `model` for drawing only. The asset's far clipping plane (zfar 3 x extent, ~15 mm)
    lies close behind the fly as the track camera (~10 mm away) sees it, and the skybox and its
    haze are drawn over the fly, washing it out; 10 x extent keeps them behind it."""
    model = copy.deepcopy(model)
    model.vis.map.zfar = max(model.vis.map.zfar, 10.0)
    return model


def _reason(text) -> str:
    """The last non-empty line: a traceback's exception, or a one-line message."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "unknown reason"


def offscreen_backend() -> str:
    """The MUJOCO_GL backend for offscreen rendering: the user's if set, else EGL if it renders, else
    OSMesa. Makes mujoco.Renderer use it, even though mujoco was imported before the choice."""
    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    if not backend:
        failures = []
        for candidate in ("egl", "osmesa"):
            probe = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, "MUJOCO_GL": candidate},
                                   capture_output=True, text=True, timeout=120)
            if probe.returncode == 0:
                backend = candidate
                break
            failures.append(f"{candidate}: {_reason(probe.stderr)}")
        else:
            raise RuntimeError("no offscreen OpenGL for MuJoCo (" + "; ".join(failures) + "); install EGL "
                               "(apt-get install libegl1 libegl-mesa0, or a GPU driver) or OSMesa "
                               "(apt-get install libosmesa6), or set MUJOCO_GL")
        os.environ["MUJOCO_GL"] = backend
    from mujoco.rendering.classic import gl_context

    if getattr(gl_context, "_MUJOCO_GL", backend) != backend:
        importlib.reload(gl_context)  # it chose its GLContext from MUJOCO_GL at import time
    return backend


class WorldRenderer:
    """Renders a world's state (its qpos) from the camera that follows the fly."""

    def __init__(self, model, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]):
        import mujoco

        offscreen_backend()
        self._mujoco = mujoco
        self.model = model = render_model(model)
        self.data = mujoco.MjData(model)
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:
            raise RuntimeError(f"offscreen rendering failed (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): "
                               f"{_reason(exc)}") from None
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA) >= 0:
            self.camera = CAMERA
        else:  # a model without the asset's camera (task.env.assetFile): track the fly's body
            self.camera = mujoco.MjvCamera()
            self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            self.camera.trackbodyid, self.camera.distance, self.camera.elevation = 1, 10.0, -20.0

    def render(self, qpos, fields: dict | None = None) -> np.ndarray:
        """(height, width, 3) uint8 image of the world in state `qpos` (positions are all rendering needs),
        with that world's own model `fields` where it has any (world_fields: e.g. its terrain)."""
        for name, values in (fields or {}).items():
            getattr(self.model, name)[:] = values
        self.data.qpos[:] = qpos
        self._mujoco.mj_forward(self.model, self.data)  # body poses and the tracked centre of mass
        self.renderer.update_scene(self.data, camera=self.camera)
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


def world_qpos(env, world: int = 0) -> np.ndarray:
    """World `world`'s qpos as a float64 host array: one device-to-host copy on a GPU engine."""
    return env.physics.qpos[world].detach().cpu().double().numpy()


def world_fields(env, world: int = 0) -> dict:
    """World `world`'s own geom placement (physics world_fields geom_*: its terrain), as host arrays."""
    fields = getattr(env, "physics", None)
    fields = getattr(fields, "world_fields", {}) or {}
    return {k: v[world].detach().cpu().double().numpy() for k, v in fields.items() if k.startswith("geom_")}


class Mp4Writer:
    """H.264 MP4 through imageio-ffmpeg (bundles ffmpeg) if installed, else OpenCV's 'mp4v' writer.
    Writes to a hidden partial file and renames it on close, so a killed run leaves no broken MP4."""

    def __init__(self, path: str, width: int, height: int, fps: float):
        self.path, self.size, self.frames = path, (width, height), 0
        folder, name = os.path.split(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._partial = os.path.join(folder, f".{name}.partial.mp4")  # .mp4: both writers pick the container by it
        try:
            import imageio_ffmpeg
        except ImportError:
            imageio_ffmpeg = None
        if imageio_ffmpeg is not None:
            self._gen = imageio_ffmpeg.write_frames(self._partial, (width, height), fps=fps, codec="libx264",
                                                    pix_fmt_out="yuv420p", macro_block_size=2, quality=7,
                                                    ffmpeg_log_level="error")
            self._gen.send(None)
            self._cv = None
        else:
            try:
                import cv2
            except ImportError:
                raise RuntimeError("writing MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg) or "
                                   "opencv-python") from None
            self._cv = cv2.VideoWriter(self._partial, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not self._cv.isOpened():
                raise RuntimeError(f"OpenCV cannot write {path}")
            self._gen = None

    def append(self, frame: np.ndarray) -> None:
        if self._gen is not None:
            self._gen.send(np.ascontiguousarray(frame))
        else:
            self._cv.write(np.ascontiguousarray(frame[:, :, ::-1]))  # OpenCV wants BGR
        self.frames += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        else:
            self._cv.release()
        os.replace(self._partial, self.path)


class StepWrapper:
    """A VecTask seen through `step`; every other attribute is the task's."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, actions):
        return self.env.step(actions)


class RecordVideo(StepWrapper):
    """Records world 0 for `length` frames starting at every step that is a multiple of `every`
    (gym's RecordVideo with a step trigger, as IsaacGymEnvs uses it). With `path`, one video there
    from the first step, then `on_done`."""

    def __init__(self, env, renderer: WorldRenderer, fps: float, length: int, folder: str | None = None,
                 every: int | None = None, prefix: str = "rl-video", path: str | None = None, on_done=None):
        super().__init__(env)
        self.renderer, self.fps, self.length = renderer, fps, length
        self.slowdown = 1.0 / (env.dt * fps)  # video seconds per simulated second
        self.folder, self.every, self.prefix, self.path, self.on_done = folder, every, prefix, path, on_done
        self.step_id = 0
        self.writer: Mp4Writer | None = None
        self.written: list[str] = []
        atexit.register(self.close)  # a run that stops mid-recording still leaves a playable video

    def _due(self) -> bool:
        if self.path is not None:
            return self.step_id == 0 and not self.written
        return self.step_id % self.every == 0

    def step(self, actions):
        out = self.env.step(actions)
        if self.writer is None and self._due():
            path = self.path or os.path.join(self.folder, f"{self.prefix}-step-{self.step_id}.mp4")
            self.writer = Mp4Writer(path, self.renderer.renderer.width, self.renderer.renderer.height, self.fps)
        self.step_id += 1
        if self.writer is not None:
            self.writer.append(self.renderer.render(world_qpos(self.env), world_fields(self.env)))
            if self.writer.frames >= self.length:
                self.close()
                if self.on_done is not None:
                    self.on_done(self.written[-1])
        return out

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None and writer.frames:
            writer.close()
            self.written.append(writer.path)
            w, h = writer.size
            print(f"video: wrote {writer.path} ({writer.frames} frames, {w}x{h}, {self.fps:g} fps: "
                  f"{self.slowdown:.3g}x slower than real time)", flush=True)


class PlayVideoDone(SystemExit):
    """Play mode wrote its +video_path video: the run is complete (exit status 0)."""

    def __init__(self):
        super().__init__(0)


def _stop_play(path: str) -> None:
    raise PlayVideoDone()


class ViewWorld(StepWrapper):
    """MuJoCo's passive viewer showing world 0, synced after every step and paced to real time."""

    def __init__(self, env, handle, model, data):
        super().__init__(env)
        self.handle, self.model, self.data = handle, model, data
        self._next = time.perf_counter()

    def step(self, actions):
        out = self.env.step(actions)
        if self.handle is not None:
            if not self.handle.is_running():
                print("note: viewer closed; running headless", flush=True)
                self.handle = None
                return out
            import mujoco

            with self.handle.lock():
                self.data.qpos[:] = world_qpos(self.env)
                mujoco.mj_forward(self.model, self.data)
            self.handle.sync()
            self._next = max(self._next + self.env.dt, time.perf_counter() - 0.1)
            time.sleep(max(0.0, self._next - time.perf_counter()))
        return out


def open_viewer(env):
    """A ViewWorld on `env`, or `env` itself (with one note line) when no viewer can be opened here."""
    display = [name for name in ("DISPLAY", "WAYLAND_DISPLAY") if os.environ.get(name)]
    if not display:
        print("note: no display found (DISPLAY unset); running headless", flush=True)
        return env
    import mujoco

    model = render_model(env.physics.model)  # a copy: the viewer's UI may edit its model, not the engine's
    data = mujoco.MjData(model)
    try:
        import mujoco.viewer

        handle = mujoco.viewer.launch_passive(model, data, show_left_ui=False, show_right_ui=False)
    except Exception as exc:
        print(f"note: cannot open the MuJoCo viewer on {display[0]}={os.environ[display[0]]} "
              f"({_reason(exc)}); running headless", flush=True)
        return env
    with handle.lock():  # the default free camera starts inside a leg (the model's extent is ~5 mm)
        handle.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        handle.cam.trackbodyid, handle.cam.distance, handle.cam.elevation, handle.cam.azimuth = 1, 12.0, -20.0, 90.0
    return ViewWorld(env, handle, model, data)


def _option(cfg, key: str, default, allowed: str, test):
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not test(value):
        raise ConfigError(f"{key}={value!r} is not allowed (allowed: {allowed})")
    return value


def attach_video_and_viewer(env, cfg, run_dir: str):
    """Wrap `env` for what train.py's config asks: capture_video, +video_path (play), and the viewer
    (play with headless=False). Returns `env` itself when nothing is asked."""
    positive = lambda v: isinstance(v, int) and v >= 1  # noqa: E731
    capture = cfg.get("capture_video", False)
    if not isinstance(capture, bool):
        raise ConfigError(f"capture_video={capture!r} is not allowed (allowed: True or False)")
    play_path = cfg.get("video_path") or None
    test = bool(cfg.get("test", False))
    if play_path is not None:
        if not isinstance(play_path, str) or not play_path.lower().endswith(".mp4"):
            raise ConfigError(f"video_path={play_path!r} is not allowed (allowed: a file name ending in .mp4)")
        if not test:
            raise ConfigError("video_path is for play mode (test=True); while training use capture_video=True")
    if capture or play_path:
        model = env.physics.model
        limit_w, limit_h = model.vis.global_.offwidth, model.vis.global_.offheight
        fits = lambda limit: lambda v: isinstance(v, int) and 16 <= v <= limit and v % 2 == 0  # noqa: E731
        width = _option(cfg, "video_width", DEFAULT_SIZE[0], f"an even integer in [16, {limit_w}]", fits(limit_w))
        height = _option(cfg, "video_height", DEFAULT_SIZE[1], f"an even integer in [16, {limit_h}]", fits(limit_h))
        fps = _option(cfg, "video_fps", DEFAULT_FPS, "a number > 0",
                      lambda v: isinstance(v, (int, float)) and 0 < v < float("inf"))
        clip_len = _option(cfg, "capture_video_len", 100, "an integer >= 1", positive)
        renderer = WorldRenderer(model, width, height)
        if capture:
            every = _option(cfg, "capture_video_freq", 1464, "an integer >= 1", positive)
            env = RecordVideo(env, renderer, fps, clip_len, folder=os.path.join(run_dir, "videos"), every=every,
                              prefix="play-video" if test else "rl-video")
        if play_path:
            length = _option(cfg, "video_len", clip_len, "an integer >= 1", positive)
            env = RecordVideo(env, renderer, fps, length, path=play_path, on_done=_stop_play)
    if test and not cfg.get("headless", False):
        env = open_viewer(env)
    return env

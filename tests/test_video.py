"""Videos, the viewer's no-display path and the filmstrip script, on the CPU (offscreen MuJoCo GL)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from runner.video import RecordVideo, WorldRenderer, attach_video_and_viewer, world_qpos

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "num_envs=4", "task.env.episodeLength_s=0.006",
         "task.env.controlFrequencyInv=5", "train.params.config.horizon_length=8",
         "train.params.config.minibatch_size=32", "+video_width=64", "+video_height=48"]


def read_mp4(path):
    """(frames (n, h, w, 3) uint8, (w, h)) decoded by ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    return np.stack(frames), (w, h)


def run(args, cwd, script="train.py", env=None):
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def assert_shows_the_fly(frame):
    # the fly is dark gray on a light floor and a white sky: an empty or white frame has no dark pixels
    assert (frame.mean(-1) < 100).mean() > 0.01, f"no fly in the frame (mean {frame.mean():.0f})"


@pytest.fixture(scope="module")
def trained_with_videos(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("video_run")
    result = run([*SMALL, "headless=True", "max_iterations=2", "capture_video=True", "capture_video_len=5",
                  "capture_video_freq=8"], cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return cwd, result


def test_training_records_videos_of_requested_length_and_size(trained_with_videos):
    cwd, result = trained_with_videos
    videos = cwd / "runs" / "NeuroMechFly" / "videos"
    # 2 epochs x 8 steps: recordings start at steps 0 and 8
    assert sorted(p.name for p in videos.iterdir()) == ["rl-video-step-0.mp4", "rl-video-step-8.mp4"]
    for path in videos.iterdir():
        frames, size = read_mp4(path)
        assert size == (64, 48) and len(frames) == 5
        assert_shows_the_fly(frames[0])
    assert result.stdout.count("video: wrote") == 2


def test_play_writes_one_video_and_goes_on_without_a_display(trained_with_videos, tmp_path):
    cwd, _ = trained_with_videos
    checkpoint = sorted((cwd / "runs" / "NeuroMechFly" / "nn").glob("last_*.pth"))[-1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "play.mp4"
    result = run([*SMALL, "test=True", f"checkpoint={checkpoint}", "headless=False", f"+video_path={out}",
                  "+video_len=7"], cwd, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "note: no display found (DISPLAY unset); running headless" in result.stdout.splitlines()
    frames, size = read_mp4(out)
    assert size == (64, 48) and len(frames) == 7
    assert_shows_the_fly(frames[-1])
    assert f"video: wrote {out} (7 frames" in result.stdout


@pytest.fixture
def keep_mujoco_gl():
    """offscreen_backend() sets MUJOCO_GL for this process: undo it for the tests that follow."""
    before = os.environ.get("MUJOCO_GL")
    yield
    if before is None:
        os.environ.pop("MUJOCO_GL", None)
    else:
        os.environ["MUJOCO_GL"] = before


@pytest.fixture(scope="module")
def task():
    from hydra import compose, initialize_config_dir

    from runner.config import register_resolvers, to_dict
    from tasks import isaacgym_task_map

    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu",
                                                       "num_envs=2", "task.env.controlFrequencyInv=5"])
    env = isaacgym_task_map["NeuroMechFly"](cfg=to_dict(cfg.task), rl_device="cpu", sim_device="cpu",
                                            graphics_device_id=0, headless=True)
    return env, cfg


class CountingRenderer(WorldRenderer):
    def __init__(self, *args):
        super().__init__(*args)
        self.calls = 0

    def render(self, qpos, fields=None):
        self.calls += 1
        return super().render(qpos, fields)


def test_recorder_renders_world_zero_and_only_the_frames_it_records(task, tmp_path, keep_mujoco_gl):
    env, _ = task
    # world 1 turned 90 degrees: a frame of the wrong world would look clearly different
    qpos = torch.as_tensor(env.physics.model.key_qpos[0]).repeat(2, 1)
    qpos[1, 3:7] = torch.tensor([0.7071068, 0.0, 0.0, 0.7071068])
    env.physics.reset_worlds(torch.arange(2), qpos, torch.zeros(2, env.physics.nv, dtype=torch.float64))
    renderer = CountingRenderer(env.physics.model, 160, 120)
    recorder = RecordVideo(env, renderer, 30, length=2, folder=str(tmp_path), every=5)
    zeros = torch.zeros(2, env.num_actions)
    for _ in range(11):
        recorder.step(zeros)
    assert renderer.calls == 5  # steps 0-1, 5-6 and 10 (still recording: written at exit or close)
    last = (renderer.render(world_qpos(env, 0)), renderer.render(world_qpos(env, 1)))
    recorder.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"rl-video-step-{s}.mp4" for s in (0, 10, 5)]
    frames, size = read_mp4(tmp_path / "rl-video-step-10.mp4")
    assert size == (160, 120) and len(frames) == 1
    error = [np.abs(frames[0].astype(float) - image).mean() for image in last]
    assert error[0] < 4 and error[1] > 2 * error[0], error


def test_nothing_asked_leaves_the_task_unwrapped(task):
    env, cfg = task
    assert attach_video_and_viewer(env, cfg, "runs/x") is env  # training with headless=False: no viewer


@pytest.mark.parametrize("overrides, message", [
    ({"video_path": "out.avi", "test": True},
     "video_path='out.avi' is not allowed (allowed: a file name ending in .mp4)"),
    ({"video_path": "out.mp4"}, "video_path is for play mode (test=True)"),
    ({"capture_video": True, "video_width": 63},
     "video_width=63 is not allowed (allowed: an even integer in [16, 1280])"),
    ({"capture_video": True, "capture_video_len": 0}, "capture_video_len=0 is not allowed"),
])
def test_bad_video_options_are_one_line_errors(task, overrides, message):
    from omegaconf import open_dict

    env, cfg = task
    cfg = cfg.copy()
    with open_dict(cfg):  # as Hydra's +key=value adds them
        cfg.merge_with(overrides)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        attach_video_and_viewer(env, cfg, "runs/x")


def test_filmstrip_script(trained_with_videos, tmp_path):
    cwd, _ = trained_with_videos
    checkpoint = sorted((cwd / "runs" / "NeuroMechFly" / "nn").glob("last_*.pth"))[-1]
    out = tmp_path / "strip.png"
    result = run(["--checkpoint", str(checkpoint), "--out", str(out), "--frames", "3", "--every", "2",
                  "--width", "96", "--height", "72", "seed=1"], tmp_path,
                 script="scripts/render_filmstrip.py")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    from PIL import Image

    strip = np.asarray(Image.open(out).convert("RGB"))
    assert strip.shape == (72, 3 * 96 + 2 * 4, 3)
    for i in range(3):
        assert_shows_the_fly(strip[:, i * 100:i * 100 + 96])
    assert f"wrote {out} (3 frames" in result.stdout and "policy" in result.stdout

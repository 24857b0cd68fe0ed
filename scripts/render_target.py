"""A top-down filmstrip of one fly walking to a target (evaluate.py +mode=target's heading controller):

    python scripts/render_target.py --checkpoint checkpoints/NeuroMechFly_walk.pth --out docs/target_filmstrip.png

The target (red) lies --distance mm away at --bearing degrees from the fly's heading (180: behind it);
the fly's path so far is drawn as a dotted trail. Frames are --every control steps apart, until the
fly reaches the target (within 1 mm) or its deadline passes. Further arguments are train.py's Hydra
overrides; the CPU engine and one world are the defaults.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from render_filmstrip import compose_config, filmstrip, make_policy  # noqa: E402


class TopDownRenderer:
    """The scene from straight above a fixed point, with the target and the trail as marker geoms."""

    def __init__(self, model, width: int, height: int, centre, span_mm: float):
        import mujoco

        from runner.video import offscreen_backend, render_model

        offscreen_backend()
        self.mujoco = mujoco
        self.model = render_model(model)
        self.model.vis.map.zfar = max(self.model.vis.map.zfar, 50.0)  # the camera is far above a ~3 mm fly
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, height, width)
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.lookat[:] = [centre[0], centre[1], 0.0]
        self.camera.distance = span_mm / (2 * math.tan(math.radians(self.model.vis.global_.fovy / 2)))
        self.camera.elevation, self.camera.azimuth = -90.0, 90.0

    def _marker(self, pos, radius: float, rgba) -> None:
        import numpy as np

        scene = self.renderer.scene
        if scene.ngeom >= scene.maxgeom:
            return
        self.mujoco.mjv_initGeom(scene.geoms[scene.ngeom], self.mujoco.mjtGeom.mjGEOM_SPHERE,
                                 np.array([radius, 0, 0]), np.asarray(pos, float), np.eye(3).flatten(),
                                 np.asarray(rgba, np.float32))
        scene.ngeom += 1

    def render(self, qpos, target, trail):
        self.data.qpos[:] = qpos
        self.mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera)
        self._marker((target[0], target[1], 0.05), 1.0, (0.9, 0.1, 0.1, 0.6))  # the 1 mm success radius
        for x, y in trail:
            self._marker((x, y, 0.05), 0.12, (0.1, 0.3, 0.9, 1.0))
        return self.renderer.render()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="rl_games checkpoint (.pth); default: zero actions (the gait reference)")
    parser.add_argument("--out", default="docs/target_filmstrip.png")
    parser.add_argument("--bearing", type=float, default=150.0, help="degrees from the fly's heading, left positive")
    parser.add_argument("--distance", type=float, default=15.0, help="mm")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("overrides", nargs="*", help="train.py Hydra overrides")
    args = parser.parse_args(argv)
    if args.frames < 2 or args.distance <= 0:
        parser.error("--frames must be >= 2 and --distance > 0")
    try:
        import torch

        from analysis.target import TargetCourse
        from runner.config import set_seed, to_dict
        from tasks import isaacgym_task_map

        cfg = compose_config([f"task.env.episodeLength_s={TargetCourse.episode_seconds()}",
                              "task.env.commands.standingShare=0.0", *args.overrides])
        set_seed(cfg.seed, cfg.torch_deterministic)
        env = isaacgym_task_map[cfg.task_name](cfg=to_dict(cfg.task), rl_device=cfg.rl_device,
                                              sim_device=cfg.sim_device, graphics_device_id=cfg.graphics_device_id,
                                              headless=True)
        env.hold_commands()
        policy = make_policy(cfg, env, args.checkpoint)
        course = TargetCourse(env)
        start = env.state.root_pos[0, :2].clone()
        angle = env.state.heading[0] + math.radians(args.bearing)
        course.target[0] = start + args.distance * torch.stack([torch.cos(angle), torch.sin(angle)])
        course.distance[0] = args.distance
        course.deadline[0] = args.distance / 10.0 + 3.0
        states, trail = [], []
        obs = env.reset()["obs"]
        steps = int(round(float(course.deadline[0]) / env.dt))
        for step in range(steps):
            course.command(env)
            states.append((env.physics.qpos[0].detach().cpu().double().numpy().copy(), list(trail), step * env.dt))
            if step % 10 == 0:
                trail.append(tuple(env.state.root_pos[0, :2].tolist()))
            if not math.isnan(float(course.reached_at[0])):
                break
            with torch.no_grad():
                obs, _, done, _ = env.step(policy(obs))
            obs = obs["obs"]
            if bool(done[0]):
                break
        centre = 0.5 * (start + course.target[0]).cpu()
        renderer = TopDownRenderer(env.physics.model, args.width, args.height, centre.tolist(), args.distance + 6.0)
        picks = [round(i * (len(states) - 1) / (args.frames - 1)) for i in range(args.frames)]
        target = course.target[0].tolist()
        frames = [renderer.render(states[i][0], target, states[i][1]) for i in picks]
        labels = [f"t = {states[i][2]:.2f} s" for i in picks]
    except (ValueError, ImportError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    reached = float(course.reached_at[0])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    filmstrip(frames, labels).save(out, optimize=True)
    outcome = f"reached at {reached:.2f} s" if not math.isnan(reached) else "not reached"
    print(f"wrote {out} ({len(frames)} frames; target {args.distance:g} mm at {args.bearing:g} deg: {outcome})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drive the fly from an exported ONNX policy in plain MuJoCo (no task, no rl_games, no torch model):
an MjModel, an MjData and an mj_step loop, the ONNX policy giving joint targets every control step.

    python scripts/export_onnx.py --checkpoint checkpoints/NeuroMechFly_walk.pth --out policy.onnx
    python scripts/drive_onnx.py --onnx policy.onnx --speed 20 --seconds 3
    python scripts/drive_onnx.py --onnx policy.onnx --speed 10 --yaw-rate 1.0

The observation is the task's own code (analysis/onnx_policy.py: OnnxFlyController), with the task
config the policy was trained with (carried in the ONNX file). Prints the distance walked (the
thorax's displacement from the start, and the length of its path over the ground) and the mean
forward speed (the task's measurement: along the fly's heading, per control step), and when the fly
fell. Bad input is one `error:` line.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, also when it is not pip-installed


def positive(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not allowed (allowed: a number > 0)")
    return value


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not allowed (allowed: a finite number)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", default="policy.onnx", help="policy written by scripts/export_onnx.py")
    parser.add_argument("--speed", type=finite, default=20.0, help="commanded forward speed, mm/s (default 20)")
    parser.add_argument("--yaw-rate", type=finite, default=0.0, help="commanded yaw rate, rad/s, + is left")
    parser.add_argument("--seconds", type=positive, default=3.0, help="simulated time (default 3 s)")
    parser.add_argument("--seed", type=int, default=0, help="the gait clock's starting phase is drawn from it")
    args = parser.parse_args(argv)

    import mujoco
    import numpy as np
    import torch

    from analysis.onnx_policy import OnnxFlyController
    from fly import load_fly
    from physics import AssetError

    torch.manual_seed(args.seed)
    try:
        model = load_fly()  # the fly asset has no floor of its own: composed on flat ground
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, model.key("stand").id)
        controller = OnnxFlyController(model, args.onnx, speed=args.speed, yaw_rate=args.yaw_rate)
    except (ValueError, AssetError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1

    start = data.qpos[:2].copy()
    path_mm, speeds, fell_at = 0.0, [], None
    while data.time < args.seconds - 0.5 * model.opt.timestep:
        before = data.qpos[:2].copy()
        data.ctrl[:] = controller(data)
        for _ in range(controller.substeps):
            mujoco.mj_step(model, data)
        path_mm += float(np.linalg.norm(data.qpos[:2] - before))
        if controller.progress_buf[0] > 0:
            speeds.append(float(controller.state.forward_speed[0]))  # the last step's, measured at this call
        if fell_at is None and controller.fallen():
            fell_at = data.time
    controller(data)  # measures the last control step
    speeds.append(float(controller.state.forward_speed[0]))
    net_mm = float(np.linalg.norm(data.qpos[:2] - start))
    print(f"distance walked: {net_mm:.1f} mm from the start (path {path_mm:.1f} mm) in {data.time:.2f} s; mean "
          f"forward speed {np.mean(speeds):.1f} mm/s (commanded {args.speed:g} mm/s, yaw rate {args.yaw_rate:g} rad/s)")
    if fell_at is not None:
        print(f"the fly fell (thorax below {controller.cfg_t.termination_height:g} mm or tipped over) "
              f"at {fell_at:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pick sim.dt and solver iterations by measurement (MuJoCo C engine, one world per setting).

For each (dt, iterations) the fly is simulated for 1 s standing in the default pose and 1 s
driven through a tripod stepping motion (12 Hz, coxa/femur/tibia swinging about the pose).
Stable means: no NaN, the thorax stays upright, and no tarsal segment sinks into the floor by
more than 10% of its capsule radius.

    python benchmarks/stability_sweep.py [--dts 1e-4 2e-4 ...] [--iterations 5 10 20]
"""
from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

from fly import LEGS, load_fly

STEP_HZ = 12.0
TRIPOD_PHASE = {"LF": 0.0, "RM": 0.0, "LH": 0.0, "RF": np.pi, "LM": np.pi, "RH": np.pi}
SWING_AMPLITUDE = {"Coxa": 0.35, "Femur": 0.35, "Tibia": 0.35}  # rad


def stepping_targets(model: mujoco.MjModel, stand_ctrl: np.ndarray, t: float) -> np.ndarray:
    ctrl = stand_ctrl.copy()
    for i in range(model.nu):
        name = model.actuator(i).name
        for leg in LEGS:
            for dof, amp in SWING_AMPLITUDE.items():
                if name == f"actuator_joint_{leg}{dof}":
                    ctrl[i] += amp * np.sin(2 * np.pi * STEP_HZ * t + TRIPOD_PHASE[leg])
    low, high = model.actuator_ctrlrange.T
    return np.clip(ctrl, low, high)


def run(model: mujoco.MjModel, dt: float, iterations: int, stepping: bool) -> dict:
    model.opt.timestep, model.opt.iterations = dt, iterations
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    stand_ctrl = model.key_ctrl[0].copy()
    tarsal = {model.geom(f"{leg}Tarsus{k}").id for leg in LEGS for k in range(2, 6)}
    radius = model.geom_size[sorted(tarsal), 0].min()
    worst_sink, min_up, heights = 0.0, 1.0, []
    start = time.perf_counter()
    for _ in range(int(round(1.0 / dt))):
        if stepping:
            data.ctrl[:] = stepping_targets(model, stand_ctrl, data.time)
        mujoco.mj_step(model, data)
        if not np.isfinite(data.qpos).all():
            return {"nan": True}
        for c in data.contact[: data.ncon]:
            if c.geom[0] in tarsal or c.geom[1] in tarsal:
                worst_sink = max(worst_sink, -c.dist)
        up = 1 - 2 * (data.qpos[4] ** 2 + data.qpos[5] ** 2)  # z of the body z axis
        min_up = min(min_up, up)
        heights.append(data.qpos[2])
    return {"nan": False, "sink_frac": worst_sink / radius, "min_up": min_up,
            "z_mean": float(np.mean(heights)), "z_std": float(np.std(heights[len(heights) // 2:])),
            "steps_per_s": len(heights) / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dts", type=float, nargs="+", default=[1e-4, 2e-4, 3e-4, 4e-4])
    parser.add_argument("--iterations", type=int, nargs="+", default=[5, 10, 20, 50])
    args = parser.parse_args()
    model = load_fly()
    print(f"mujoco {mujoco.__version__}; stable = no NaN, upright, tarsus sinks < 10% of its radius")
    print(f"{'dt':>8} {'iters':>5} {'motion':>8} {'stable':>6} {'sink/r':>7} {'min_up':>6} "
          f"{'z_mean':>7} {'z_std':>7} {'steps/s':>8}")
    for dt in args.dts:
        for iterations in args.iterations:
            for stepping in (False, True):
                r = run(model, dt, iterations, stepping)
                motion = "stepping" if stepping else "standing"
                if r["nan"]:
                    print(f"{dt:8.0e} {iterations:5d} {motion:>8} {'NaN':>6}")
                    continue
                stable = r["sink_frac"] < 0.1 and r["min_up"] > 0.5
                print(f"{dt:8.0e} {iterations:5d} {motion:>8} {str(stable):>6} {r['sink_frac']:7.3f} "
                      f"{r['min_up']:6.3f} {r['z_mean']:7.3f} {r['z_std']:7.4f} {r['steps_per_s']:8.0f}")


if __name__ == "__main__":
    main()

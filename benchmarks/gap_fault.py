"""Reproducer of MuJoCo Warp's NaN on gapped ground (docs/terrain.md, issues #14 and #16): one fly on
flygym's gapped terrain, its boxes fixed in the model, the legs driven by a 12 Hz tripod sinusoid
around the standing pose, stepped one physics step at a time on both engines from the same start.

    python benchmarks/gap_fault.py                      # MuJoCo Warp on its CPU device, then MuJoCo C
    python benchmarks/gap_fault.py --sim-device cuda:0 --solver cg
    python benchmarks/gap_fault.py --armature 1e-7      # every hinge as before the fix: NaN

Prints, per engine, the step of the first fault, its kind and the DoF where it started (the engine's
fault_dofs()), or that every step stayed finite.
Measured 2026-11-25 (warp-lang 1.19, MuJoCo Warp 4.0, Newton 20 iterations): with armature 1e-7 on every
hinge MuJoCo Warp faults (NaN) at step 419, started at joint_RHTibia (the right hind femur pressed
0.016 mm into a gap's wall), while MuJoCo C stays
finite for all 1500 steps; the asset's 1e-6 on the coxa and femur hinges keeps both finite
(tests/test_faults.py).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import mujoco
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fly import LEGS, FlyIO, load_fly  # noqa: E402
from physics import FAULT_KINDS, NO_DOF, SimParams, dof_names, make_engine  # noqa: E402
from physics.terrain import Terrain, TerrainParams  # noqa: E402

TRIPOD_B = {"RF", "LM", "RH"}


def gapped_model(x: float, armature: float | None = None):
    """The fly on gapped ground with the boxes around x laid out in the model itself (no per-world fields),
    every hinge's armature set to `armature` unless None (the asset's)."""
    terrain = Terrain(TerrainParams(), kinds=("gapped",))
    model = load_fly(adhesion=False, terrain=terrain)
    terrain.place_in_model(model, "gapped", 1.0, (x, 0.0))
    if armature is not None:
        hinges = model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE
        model.dof_armature[model.jnt_dofadr[hinges]] = armature
    return model


def first_fault(engine_name: str, device: str, x: float, steps: int, solver: str | None,
                armature: float | None = None) -> str:
    engine = make_engine(engine_name, gapped_model(x, armature), 1, device,
                         SimParams(dt=2e-4, substeps=1, solver=solver))
    fly = FlyIO(engine)
    qpos = engine.qpos.clone()
    qpos[:, 0] = x
    engine.reset_worlds(torch.arange(1, device=engine.device), qpos, engine.qvel.clone())
    base = fly.stand_targets()[0]
    phase = torch.tensor([math.pi if leg in TRIPOD_B else 0.0 for leg in LEGS for _ in range(7)],
                         dtype=base.dtype, device=base.device)
    for k in range(steps):
        t = (k // 25) * 0.005  # a new target every 25 steps, as the task's control step
        fly.set_joint_targets((base + 0.2 * torch.sin(2 * math.pi * 12.0 * t + phase)).expand(1, -1))
        engine.step()
        code = int(engine.faults()[0])
        if code:
            kinds = [name for name, bit in FAULT_KINDS.items() if code & bit]
            dof = int(engine.fault_dofs()[0])
            where = f", started at {dof_names(engine.model)[dof]}" if dof != NO_DOF else ""
            return f"fault at step {k} ({', '.join(kinds)}){where}"
    return f"finite for all {steps} steps"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--x", type=float, default=1.857, help="start along the walking direction, mm")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--sim-device", default="cpu", help="MuJoCo Warp's device (cpu: Warp's CPU device)")
    parser.add_argument("--solver", choices=["newton", "cg"], help="default: the model's (Newton)")
    parser.add_argument("--armature", type=float, help="every hinge's armature, g mm^2 (default: the asset's)")
    args = parser.parse_args()
    if args.armature is not None and not args.armature >= 0:
        parser.error(f"--armature={args.armature} is not allowed (allowed: a number >= 0)")
    for name, device in (("mjwarp", args.sim_device), ("mujoco", "cpu")):
        print(f"{name}: {first_fault(name, device, args.x, args.steps, args.solver, args.armature)}", flush=True)


if __name__ == "__main__":
    main()

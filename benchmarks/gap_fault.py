"""Reproducer of MuJoCo Warp's NaN on gapped ground (docs/terrain.md, issues #14 and #16): one fly on
flygym's gapped terrain, its boxes fixed in the model, the legs driven by a 12 Hz tripod sinusoid
around the standing pose, stepped one physics step at a time on both engines from the same start.

    python benchmarks/gap_fault.py                      # MuJoCo Warp on its CPU device, then MuJoCo C
    python benchmarks/gap_fault.py --sim-device cuda:0 --solver cg
    python benchmarks/gap_fault.py --armature 1e-7      # every hinge as before the fix: NaN
    python benchmarks/gap_fault.py --friction 0.6       # slippery ground, MuJoCo's pyramid: NaN (both engines)
    python benchmarks/gap_fault.py --friction 0.6 --keep-r   # the regulariser kept, as the task does: finite
    python benchmarks/gap_fault.py --armature 1e-7 --v2-impedance   # also v2's contact impedance (the faults above
                                                                    # need it since the asset's is 0.995)

Prints, per engine, the step of the first fault, its kind and the DoF where it started (the engine's
fault_dofs()), or that every step stayed finite.
Measured 2026-11-25 (warp-lang 1.19, MuJoCo Warp 4.0, Newton 20 iterations): with armature 1e-7 on every
hinge MuJoCo Warp faults (NaN) at step 419, started at joint_RHTibia (the right hind femur pressed
0.016 mm into a gap's wall), while MuJoCo C stays
finite for all 1500 steps; the asset's 1e-6 on the coxa and femur hinges keeps both finite
(tests/test_faults.py). Measured 2026-11-26: at friction 0.6 (the low end of the task's randomisation) MuJoCo
Warp faults (NaN) at step 129 and MuJoCo C at step 140 (its own reset for a huge acceleration), both finite
at 0.8 and 1.0; with --keep-r both stay finite for 1500 steps. Since Newton's tolerance is 1e-2 (2026-11-27) the
two MuJoCo Warp NaNs come at steps 435 (joint_RHTibia) and 136; MuJoCo C's reset stays at step 140.
Since the asset's contact impedance is 0.995 (2026-11-27) neither happens any more, even with armature 1e-7 or the
regulariser dropped (MuJoCo Warp finite for 1500 steps with armature 1e-7; both engines for 600 at friction 0.6
without --keep-r): those faults need v2's impedance
(--v2-impedance: that impedance and the standing pose the asset had with it), with which they come at the same steps
as before.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import mujoco
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fly import LEGS, FlyIO, load_fly  # noqa: E402
from fly.model import FORMER_CONTACT_DAMPING_RATIO, V2_CONTACT_SOLIMP  # noqa: E402
from physics import FAULT_KINDS, NO_DOF, SimParams, dof_names, make_engine  # noqa: E402
from physics.terrain import Terrain, TerrainParams  # noqa: E402
from tasks.neuromechfly.randomization import impratio_factor  # noqa: E402

TRIPOD_B = {"RF", "LM", "RH"}
# the standing keyframe the asset had then (it settles 26 um higher on harder contacts)
V2_STAND_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "stand_v2_impedance.json")


def gapped_model(x: float, armature: float | None = None, friction: float | None = None, keep_r: bool = False,
                 v2_impedance: bool = False):
    """The fly on gapped ground with the boxes around x laid out in the model itself (no per-world fields),
    every hinge's armature set to `armature` unless None (the asset's), the ground's sliding friction to
    `friction` unless None (v2's 1.0); `keep_r`: as the task's randomisation, an impratio that keeps the
    pyramidal cone's regulariser at the asset's friction when `friction` is below it; `v2_impedance`: the
    contacts the asset had when these faults were found, v2's solimp (V2_CONTACT_SOLIMP) with damping ratio 1.5,
    and the standing keyframe the asset had with them."""
    terrain = Terrain(TerrainParams(), kinds=("gapped",))
    model = load_fly(adhesion=False, terrain=terrain)
    terrain.place_in_model(model, "gapped", 1.0, (x, 0.0))
    if friction is not None:
        if keep_r:
            model_mu = torch.tensor(float(model.pair_friction[:, 0].min()))
            model.opt.impratio *= float(impratio_factor(torch.tensor(friction), model_mu))
        model.pair_friction[:, 0:2] = friction  # as the task's randomisation sets it
    if v2_impedance:
        model.pair_solimp[:] = V2_CONTACT_SOLIMP
        model.pair_solref[:, 1] = FORMER_CONTACT_DAMPING_RATIO
        stand = model.key("stand").id
        with open(V2_STAND_FILE) as f:
            model.key_qpos[stand] = json.load(f)["qpos"]
        quat = model.key_qpos[stand, 3:7]  # normalised, as compiling the keyframe did
        quat /= (quat * quat).sum() ** 0.5
    if armature is not None:
        hinges = model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE
        model.dof_armature[model.jnt_dofadr[hinges]] = armature
    return model


def first_fault(engine_name: str, device: str, x: float, steps: int, solver: str | None,
                armature: float | None = None, friction: float | None = None, keep_r: bool = False,
                v2_impedance: bool = False) -> str:
    engine = make_engine(engine_name, gapped_model(x, armature, friction, keep_r, v2_impedance), 1, device,
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
    parser.add_argument("--friction", type=float, help="the ground's sliding friction (default: v2's 1.0)")
    parser.add_argument("--keep-r", action="store_true",
                        help="below the asset's friction, keep the pyramidal cone's regulariser (as the task does)")
    parser.add_argument("--v2-impedance", action="store_true",
                        help="v2's contact impedance (0.999-0.9999) instead of the asset's 0.995")
    args = parser.parse_args()
    if args.friction is not None and not args.friction > 0:
        parser.error(f"--friction={args.friction} is not allowed (allowed: a number > 0)")
    if args.armature is not None and not args.armature >= 0:
        parser.error(f"--armature={args.armature} is not allowed (allowed: a number >= 0)")
    for name, device in (("mjwarp", args.sim_device), ("mujoco", "cpu")):
        result = first_fault(name, device, args.x, args.steps, args.solver, args.armature, args.friction, args.keep_r,
                             args.v2_impedance)
        print(f"{name}: {result}", flush=True)


if __name__ == "__main__":
    main()

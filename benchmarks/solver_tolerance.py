"""How close MuJoCo Warp's Newton solution (float32) comes to MuJoCo C's (float64) at each convergence tolerance,
and how many iterations it takes to get there: the solver's accuracy behind `tolerance` (the asset's option,
`task.sim.mujoco.tolerance`).

    python benchmarks/solver_tolerance.py                                  # Warp's CPU device, adhesion on
    python benchmarks/solver_tolerance.py --adhesion off --tolerances 1e-6 1e-3
    python benchmarks/solver_tolerance.py --sim-device cuda:0 --starts 64

The states: flygym's recorded walking (benchmarks/replay_flygym.py) replayed on MuJoCo C from --starts start
frames, with the tarsal adhesion always on (v2's gain) or off, sampled every --every physics steps. Each state is
solved once (one forward pass: collisions, constraints, Newton from the state's warm start, as inside a step) by
MuJoCo C with a tolerance of 1e-12 and 1000 iterations (the reference), and by MuJoCo Warp, all states as one
batch of worlds, at each tolerance with the asset's iteration cap. Per tolerance it prints Newton's iterations
(mean, largest, share of states at the cap: in a batch every world waits for the slowest, so the largest sets the
cost) and the error against the reference, relative to the reference's norm, per state: of the accelerations
(qacc), and of the constraint forces (qfrc_constraint) relative to all the forces on the fly (constraint,
gravity, actuators, passive), median and 99th percentile. The strictest tolerance MuJoCo
Warp accepts (it floors MuJoCo's 1e-8 at 1e-6) shows float32's own error; a looser one that stays there loses
nothing. A benchmark that prints numbers, not a test.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import mujoco
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_TOLERANCE, REFERENCE_ITERATIONS = 1e-12, 1000


def sample_states(seconds: float, starts: int, adhesion: bool, every: int):
    """(model, states): MuJoCo C replaying the recording in `starts` worlds; every `every` physics steps each
    world's qpos, qvel, ctrl and warm start."""
    from benchmarks import replay_flygym as rf

    engine, _, _, dt, play = rf.start_worlds("mujoco", rf.load_recording(), seconds, starts, adhesion=adhesion)
    states = []
    for k in range(max(1, int(round(seconds / dt)))):
        play(k)
        if (k + 1) % every == 0:
            for world in range(starts):
                d = engine.world_data(world)
                states.append((d.qpos.copy(), d.qvel.copy(), d.ctrl.copy(), d.qacc_warmstart.copy()))
    model = engine.model
    engine.close()
    return model, states


def reference(model: mujoco.MjModel, states: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """qacc, qfrc_constraint and qfrc_smooth (gravity, actuators, passive forces) of every state, solved by
    MuJoCo C to REFERENCE_TOLERANCE."""
    exact = copy.copy(model)
    exact.opt.tolerance, exact.opt.iterations = REFERENCE_TOLERANCE, REFERENCE_ITERATIONS
    data = mujoco.MjData(exact)
    out = []
    for qpos, qvel, ctrl, warm in states:
        data.qpos[:], data.qvel[:], data.ctrl[:], data.qacc_warmstart[:] = qpos, qvel, ctrl, warm
        mujoco.mj_forward(exact, data)
        out.append((data.qacc.copy(), data.qfrc_constraint.copy(), data.qfrc_smooth.copy()))
    return tuple(np.array(x) for x in zip(*out))


def warp_solve(model: mujoco.MjModel, states: list, tolerance: float, device: str, rows: int, iterations: int):
    """qacc, qfrc_constraint and Newton iterations of every state, one MuJoCo Warp forward pass over all of
    them as worlds of one batch, at `tolerance`."""
    import mujoco_warp as mjw
    import warp as wp

    from physics import SimParams
    from physics.engine import CONTACT_POOL_MIN

    m32 = copy.copy(model)
    m32.opt.tolerance, m32.opt.iterations = tolerance, iterations
    n = len(states)
    with wp.ScopedDevice(device):
        m = mjw.put_model(m32)
        m.opt.warn_overflow = 0  # states at the cap are counted below, not printed one by one
        # the engine's buffers (physics/mujoco_warp_gpu.py): its contact pool per world and floor, `rows` per world
        d = mjw.put_data(m32, mujoco.MjData(m32), nworld=n,
                         naconmax=max(SimParams.contacts_per_world * n, CONTACT_POOL_MIN), njmax=rows,
                         njmax_nnz=rows * m32.nv)
        for name, i in (("qpos", 0), ("qvel", 1), ("ctrl", 2), ("qacc_warmstart", 3)):
            getattr(d, name).assign(np.stack([s[i] for s in states]).astype(np.float32))
        mjw.forward(m, d)
        wp.synchronize()
        return d.qacc.numpy()[:, :model.nv], d.qfrc_constraint.numpy()[:, :model.nv], d.solver_niter.numpy()


def relative_error(value: np.ndarray, exact: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Per state: |value - exact| / |exact| (norms over the DoFs), or / |scale| where given."""
    norm = np.linalg.norm(exact if scale is None else scale, axis=1)
    return np.linalg.norm(value - exact, axis=1) / np.maximum(norm, 1e-30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    parser.add_argument("--adhesion", choices=["on", "off"], default="on")
    parser.add_argument("--seconds", type=float, default=0.5, help="replayed time per start, s")
    parser.add_argument("--starts", type=int, default=8, help="start frames (worlds on MuJoCo C)")
    parser.add_argument("--every", type=int, default=25, help="physics steps between sampled states")
    parser.add_argument("--sim-device", default="cpu", help="MuJoCo Warp's device: cpu (Warp's CPU device) or cuda:N")
    parser.add_argument("--iterations", type=int, help="MuJoCo Warp's Newton cap (default: the asset's, 20)")
    parser.add_argument("--constraint-rows", type=int,
                        help="MuJoCo Warp's rows per world (default: SimParams', the task's on flat ground)")
    args = parser.parse_args()
    for name in ("starts", "every", "constraint_rows", "iterations"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')}={getattr(args, name)} is not allowed "
                             "(allowed: an integer >= 1)")
    if not all(np.isfinite(t) and t > 0 for t in args.tolerances):
        raise SystemExit(f"error: --tolerances={args.tolerances} is not allowed (allowed: finite numbers > 0)")
    sys.path.insert(0, ROOT)
    from physics import SimParams

    rows = args.constraint_rows or SimParams.constraint_rows
    model, states = sample_states(args.seconds, args.starts, args.adhesion == "on", args.every)
    if not states:
        raise SystemExit(f"error: --every={args.every} samples no state in {args.seconds:g} s (allowed: fewer steps "
                         "than the replay has)")
    qacc64, qfrc64, smooth64 = reference(model, states)
    cap = args.iterations or model.opt.iterations
    print(f"{len(states)} states of the recorded walking, adhesion {args.adhesion}, dt {model.opt.timestep:g} s, "
          f"Newton cap {cap} iterations; MuJoCo Warp on {args.sim_device} against MuJoCo C at "
          f"tolerance {REFERENCE_TOLERANCE:g}")
    print("| tolerance | Newton iterations: mean / largest / at the cap | qacc error: median / 99th pct | "
          "constraint force error: median / 99th pct |")
    print("|---|---|---|---|", flush=True)
    for tol in args.tolerances:
        qacc, qfrc, niter = warp_solve(model, states, tol, args.sim_device, rows, cap)
        # a constraint force's error against all the forces on the fly (a state can have next to no contact force)
        ea, ef = relative_error(qacc, qacc64), relative_error(qfrc, qfrc64, np.abs(qfrc64) + np.abs(smooth64))
        print(f"| {tol:g} | {niter.mean():.2f} / {niter.max()} / {np.mean(niter >= cap):.1%} | "
              f"{np.median(ea):.2e} / {np.percentile(ea, 99):.2e} | "
              f"{np.median(ef):.2e} / {np.percentile(ef, 99):.2e} |", flush=True)


if __name__ == "__main__":
    main()

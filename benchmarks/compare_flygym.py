"""flygym 2.1.1's own MuJoCo Warp simulation and this project's MuJoCo Warp engine, side by side in one run
(issue #16): the same motion, the kinematic replay of flygym's recorded walking 210902_pr_fly1 (joint position
targets linearly interpolated at every physics step), tarsal adhesion on in both, at 1024, 4096 and 16384
worlds; prints world-steps/s, simulated seconds per wall second and the ratio ours / flygym's.

    PYTHONPATH=/tmp/site:. python3 benchmarks/compare_flygym.py                # the GPU machine: everything
    python benchmarks/compare_flygym.py --dt-mode equal --equal-dt 2e-4 --worlds 4096
    python benchmarks/compare_flygym.py --adhesion-gain 40      # both at v2's adhesion (flygym 2's default is 1)
    python benchmarks/compare_flygym.py --sim-device cpu --worlds 2 --steps 5 --warmup-steps 1 \\
        --flygym-warmup-s 0.002 --flygym-python /work/venv312/bin/python --flygym-pythonpath ""  # CPU smoke test
    python benchmarks/compare_flygym.py --side ours --dts default --worlds 2 --steps 5 --sim-device cpu   # one side

With --upright both sides also report how many worlds stayed upright (cosine between body and world z above
0.5 over the whole replay) and how many ended on their backs. One H200, 2026-11-27, --adhesion-gain 40 --dt-mode
equal --worlds 1024 --steps 9998 --warmup-steps 0 (1 s from the first frame at dt 1e-4): flygym 2.1.1 1024 upright
(1.85 mm forward); ours with v2's contact impedance 5 upright, 1019 on their backs, which led to the asset's 0.995.

On the GPU machine (Python 3.12, no network), `run` calls back to back (a machine stays warm ~30 s), each carry
with the tree under 64 MiB:
    1) carry [".flygymwheels-1"]  mkdir -p /tmp/fg && cp .flygymwheels-1/* /tmp/fg/
    2) carry [".flygymwheels-2"]  cp .flygymwheels-2/* /tmp/fg/
    3) this project's wheels into /tmp/site, as ../shared/device/README.md says (its last call installs them)
    4) bash /tmp/fg/install.sh && PYTHONPATH=/tmp/site:. python3 benchmarks/compare_flygym.py
.flygymwheels-1 and -2 (flygym 2.1.1, mujoco and mujoco-warp 3.16.0, IPython for mediapy, ...; into /tmp/site2)
come from `bash benchmarks/prepare_flygym_wheels.sh`.
Length of the last call: 163 s on an H100 with --dt-mode both (2026-11-25; flygym's 1024-world build, its first
kernel compilation, took 43 s); --dt-mode default or fewer --worlds shorten it.

How it runs: this driver launches one child process per simulator (`--side flygym`, `--side ours`, each
printing one JSON line), one after the other, so that each has the GPU to itself and flygym gets its own
MuJoCo: the flygym child runs with PYTHONPATH=--flygym-pythonpath (default /tmp/site2:/tmp/site: flygym 2.1.1
with mujoco and mujoco-warp 3.16.0 first, warp-lang 1.19.0 from /tmp/site) and --flygym-python, ours with
this interpreter and environment (mujoco and mujoco-warp 4.0.0). Each side builds its simulation once per
size and timestep, warms up (kernel compilation, CUDA graph capture, --warmup-steps replayed steps), then
times --steps physics steps between two device synchronisations, with no host copy in the timed loop.

flygym's side, as its GPU tutorial (tutorials/3_gpu_accelerated_simulation) and flygym_demo.benchmark build
and run it: NeuroMechFly() with Skeleton(AxisOrder.YAW_PITCH_ROLL, JointPreset.LEGS_ONLY) joints in the
KinematicPosePreset.NEUTRAL pose, position actuators (kp 50) on ActuatedDOFPreset.LEGS_ACTIVE_ONLY (42 DoFs),
add_leg_adhesion() (its default gain, 1 per leg; v2's and ours is 40), FlatGroundWorld with the fly spawned
0.8 mm up; GPUSimulation(world, n_worlds, timestep=dt) (its defaults: dt 1e-4 from mujoco_globals.yaml, Newton
up to 100 iterations, tolerance 1e-5,
500 contacts and constraints per world); reset(), set_leg_adhesion_states(ones), warmup() (0.05 s at the
neutral pose), then every step one CUDA graph of: a Warp kernel interpolating the recording for every world
from a step counter on the GPU, set_actuator_inputs(POSITION), step(), the counter's increment.
Ours, as benchmarks/replay_flygym.py runs it (its start_worlds): load_fly(adhesion=True) (dt 2e-4, Newton
up to 20 iterations, tolerance 1e-2; --tolerance changes ours alone), the mjwarp engine with one physics step
per engine.step() (its CUDA graph) and the task's contact pool (16 per world, where flygym's has 500: the
worlds start spread over the recording), set_adhesion (ones), each world starting at rest on the floor in the
recorded pose of its start frame, and every step the recording interpolated in torch (Recording.at) into
set_joint_targets.
Both replay the same 42 recorded angles: flygym 2's joint DoFs turn about the same axes as flygym 1's
(this model's) except that its right legs' yaw and roll axes are mirrored, so those angles change sign
(checked: leg segment positions agree to 1 um at 4 frames across the recording). World i starts at the same frame
on both sides (spread over the recording as replay_flygym.start_frames does).

--dt-mode default: each simulator at its own default timestep and solver; equal: both at --equal-dt (1e-4:
flygym's default, ours with its 20 iterations; or 2e-4: ours' default, flygym with its 100); both: the two
(flygym's run at 1e-4 serves both when --equal-dt is 1e-4). Target (issue #16): ours >= 3x flygym's simulated
seconds per second at every size, adhesion on in both. The issue's manual measurement of flygym 2.1.1 alone on an
H100 (dt 1e-4, adhesion on, replay in a CUDA graph): 29.5 / 42.3 / 46.0 simulated s per s at 1024 / 4096 /
16384 worlds. The last line of stdout is one JSON object with every number.
"""
import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDING_FILE = os.path.join(ROOT, "assets", "neuromechfly", "walking_210902_pr_fly1.json")
FLYGYM_VERSION = "2.1.1"
DEFAULT_FLYGYM_PYTHONPATH = "/tmp/site2:/tmp/site"
SIZES = (1024, 4096, 16384)
EQUAL_DTS = (1e-4, 2e-4)  # the equal-timestep mode runs both simulators at one of these
LONGEST_DT = max(EQUAL_DTS)  # no run uses a longer step (flygym's default 1e-4, ours 2e-4)
TARGET_RATIO = 3.0
# flygym 2 joint DoF (child link, axis) -> this project's (flygym 1's) joint suffix
V2_TO_V1_DOF = {("coxa", "pitch"): "Coxa", ("coxa", "roll"): "Coxa_roll", ("coxa", "yaw"): "Coxa_yaw",
                ("trochanterfemur", "pitch"): "Femur", ("trochanterfemur", "roll"): "Femur_roll",
                ("tibia", "pitch"): "Tibia", ("tarsus1", "pitch"): "Tarsus1"}


class BenchError(ValueError):
    """A bad argument or a missing install: reported as one `error:` line."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the recording, shared by both sides

def load_recording_json() -> dict:
    with open(RECORDING_FILE) as f:
        return json.load(f)


def last_start_frame(frames: int, frame_dt: float, window_s: float) -> int:
    """The last frame that leaves `window_s` of replay. The one rule for every replay: replay_flygym.py calls it, and
    so do flygym's own processes (this one's and flygym1_replay.py's), which is why it needs only the standard
    library."""
    return max(math.floor((frames * frame_dt - window_s) / frame_dt + 1e-6), 0)


def spread_start_frames(frames: int, frame_dt: float, window_s: float, n: int):
    """Start frame of each of n worlds, evenly spaced over the frames that leave `window_s` of replay (the first
    is 0)."""
    import numpy as np

    return np.rint(np.linspace(0, last_start_frame(frames, frame_dt, window_s), n)).astype(int)


def v1_joint(v2_dof_name: str) -> tuple:
    """flygym 2 DoF name ('c_thorax-rf_coxa-roll') -> (this project's joint, sign of the angle)."""
    _, child, axis = v2_dof_name.split("/")[-1].split("-")
    leg, link = child.split("_", 1)
    suffix = V2_TO_V1_DOF.get((link, axis))
    if suffix is None:
        raise BenchError(f"flygym DoF {v2_dof_name!r} has no counterpart in the recording (allowed: the 42 "
                         "leg DoFs of ActuatedDOFPreset.LEGS_ACTIVE_ONLY)")
    # flygym 2 mirrors the right legs' yaw and roll axes (BaseFly.add_joints); flygym 1 does not
    sign = -1.0 if leg.startswith("r") and axis != "pitch" else 1.0
    return f"joint_{leg.upper()}{suffix}", sign


def check_window(window_s: float, steps: int, warmup_steps: int, dt: float, frames: int, frame_dt: float) -> None:
    replay_s = (steps + warmup_steps + 2) * dt
    if replay_s > window_s + 1e-9:
        raise BenchError(f"--steps {steps} and --warmup-steps {warmup_steps} replay {replay_s:g} s at dt {dt:g}, "
                         f"more than --window-s {window_s:g} (allowed: window >= (steps + warmup + 2) x dt)")
    if window_s > frames * frame_dt + 1e-9:
        raise BenchError(f"the replay window {window_s:g} s is longer than the {frames * frame_dt:g} s recording "
                         f"(allowed: steps + warmup-steps <= {int(frames * frame_dt / dt + 1e-6) - 2} at dt {dt:g})")


def per_run_summary(side: str, worlds: int, dt: float, default_dt: bool, steps: int, elapsed: float, **extra) -> dict:
    rate = worlds * steps / elapsed
    return {"side": side, "worlds": worlds, "dt": dt, "default_dt": default_dt, "steps": steps,
            "wall_s": round(elapsed, 4), "world_steps_s": rate, "sim_s_per_s": rate * dt, **extra}


def upright_cosine(quat):
    """Cosine between the body's z axis and the world's, from free-joint quaternions (w, x, y, z) in rows
    (numpy or torch): the task's `flipped` measure and replay_flygym.py's."""
    w, x, y, z = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    return 1.0 - 2.0 * (x * x + y * y) / (w * w + x * x + y * y + z * z)


def upright_summary(lowest, end_quat, finite, start_frames=None) -> dict:
    """--upright: worlds whose upright cosine stayed above 0.5 over the whole replay (replay_flygym.py's
    upright), those on their backs at the end (cosine < 0), and the lowest cosine's quartiles, of the worlds
    still finite; with `start_frames` (each world's), also the start frames of the finite worlds that dipped
    to 0.5 or below, each with its lowest cosine, and of those that ended on their backs."""
    import numpy as np

    finite = np.asarray(finite, dtype=bool)
    lowest, end = np.asarray(lowest, dtype=np.float64)[finite], upright_cosine(np.asarray(end_quat, np.float64))[finite]
    quartiles = np.quantile(lowest, [0.25, 0.5, 0.75]).round(3).tolist() if len(lowest) else None
    out = {"upright_worlds": int((lowest > 0.5).sum()), "on_back_worlds": int((end < 0).sum()),
           "lowest_upright_quartiles": quartiles}
    if start_frames is not None:
        frames = np.asarray(start_frames)[finite]
        out["starts_not_upright"] = {int(f): round(float(c), 3) for f, c in zip(frames, lowest) if not c > 0.5}
        out["starts_on_back"] = [int(f) for f in frames[end < 0]]
    return out


def adhesion_gains(model) -> str:
    """The legs' adhesion gains of a compiled model (its body-transmission actuators), e.g. "40"."""
    import mujoco

    body = model.actuator_trntype == mujoco.mjtTrn.mjTRN_BODY
    return "/".join(f"{g:g}" for g in dict.fromkeys(model.actuator_gainprm[body, 0].tolist())) or "none"


def run_sizes(label: str, args, measure) -> list:
    """measure(worlds, dt or None for the simulator's default) for every timestep and size; an explicit dt
    that a default run already used is not run again (that run serves both)."""
    results, done = [], set()
    for dt_spec in args.dts:
        for n in args.worlds:
            if dt_spec is not None and any(abs(dt_spec - d) < 1e-12 and n == m for d, m in done):
                continue
            log(f"[{label}] {n} worlds, dt {'default' if dt_spec is None else dt_spec} ...")
            try:
                r = measure(n, dt_spec)
                done.add((r["dt"], n))
                gc.collect()  # the last size's simulation, before the next one allocates
            except BenchError:
                raise
            except Exception as exc:  # noqa: BLE001 (one size may run out of memory; the others still count)
                r = {"side": label.split()[0], "worlds": n, "dt": dt_spec, "default_dt": dt_spec is None,
                     "error": f"{type(exc).__name__}: {exc}"}
            log(f"[{label}] {json.dumps(r)}")
            results.append(r)
    return results


# ---------------------------------------------------------------- flygym 2.1.1's side (its own process)

def import_flygym():
    if sys.version_info < (3, 12):
        raise BenchError(f"--flygym-python={sys.executable} is Python {sys.version.split()[0]}; flygym "
                         f"{FLYGYM_VERSION} needs Python >= 3.12 (allowed: a 3.12+ interpreter that imports it)")
    try:
        from importlib.metadata import version

        import flygym  # noqa: F401  (mediapy, which it imports, needs IPython)
    except ImportError as exc:
        where = os.environ.get("PYTHONPATH", "")
        raise BenchError(f"flygym {FLYGYM_VERSION} is not importable ({exc.name or exc} missing) with "
                         f"PYTHONPATH={where!r} and {sys.executable} (allowed: an install of flygym[warp]=="
                         f"{FLYGYM_VERSION}; on the GPU machine run the install.sh of "
                         "benchmarks/prepare_flygym_wheels.sh's .flygymwheels-1 and -2, and pass "
                         "--flygym-pythonpath /tmp/site2:/tmp/site)") from None
    found = version("flygym")
    if found != FLYGYM_VERSION:
        log(f"note: flygym {found} found; this comparison is written for {FLYGYM_VERSION}")
    return found


def flygym_kernels(wp):
    """The replay's Warp kernels (this file's own): interpolated targets from a step counter on the device,
    the counter's increment (both captured in the CUDA graph with flygym's step), and with --upright each
    world's lowest upright cosine so far."""

    @wp.kernel
    def replay_targets(table: wp.array2d(dtype=wp.float32), frame_dt: float, dt: float,
                       start_s: wp.array(dtype=wp.float32), step: wp.array(dtype=wp.int32),
                       out: wp.array2d(dtype=wp.float32)):
        world, dof = wp.tid()
        frames = table.shape[0]
        u = (start_s[world] + float(step[0]) * dt) / frame_dt
        u = wp.clamp(u, 0.0, float(frames - 1))
        i0 = wp.min(int(wp.floor(u)), frames - 2)
        w = u - float(i0)
        out[world, dof] = table[i0, dof] * (1.0 - w) + table[i0 + 1, dof] * w

    @wp.kernel
    def advance_counter(step: wp.array(dtype=wp.int32)):
        step[0] = step[0] + 1

    @wp.kernel
    def track_upright(qpos: wp.array2d(dtype=wp.float32), quat_adr: int, lowest: wp.array(dtype=wp.float32)):
        world = wp.tid()
        w, x = qpos[world, quat_adr], qpos[world, quat_adr + 1]
        y, z = qpos[world, quat_adr + 2], qpos[world, quat_adr + 3]
        cosine = 1.0 - 2.0 * (x * x + y * y) / (w * w + x * x + y * y + z * z)
        lowest[world] = wp.min(lowest[world], cosine)

    return replay_targets, advance_counter, track_upright


def build_flygym_world(adhesion_gain: float | None = None):
    """flygym 2.1.1's default walking fly with adhesion, as its GPU tutorial composes it (`adhesion_gain`: None
    keeps add_leg_adhesion's default, 1)."""
    from flygym.anatomy import ActuatedDOFPreset, AxisOrder, JointPreset, Skeleton
    from flygym.compose import (
        ActuatorType,
        FlatGroundWorld,
        KinematicPosePreset,
        NeuroMechFly,
    )
    from flygym.utils.math import Rotation3D

    fly = NeuroMechFly()
    fly.add_joints(Skeleton(axis_order=AxisOrder.YAW_PITCH_ROLL, joint_preset=JointPreset.LEGS_ONLY),
                   neutral_pose=KinematicPosePreset.NEUTRAL)
    dofs = fly.skeleton.get_actuated_dofs_from_preset(ActuatedDOFPreset.LEGS_ACTIVE_ONLY)
    fly.add_actuators(dofs, actuator_type=ActuatorType.POSITION, kp=50.0, neutral_input=KinematicPosePreset.NEUTRAL)
    fly.add_leg_adhesion(**({} if adhesion_gain is None else {"gain": adhesion_gain}))
    world = FlatGroundWorld()
    world.add_fly(fly, (0.0, 0.0, 0.8), Rotation3D("quat", (1.0, 0.0, 0.0, 0.0)))
    return fly, world


def measure_flygym(args, rec: dict, kernels, worlds: int, dt_spec) -> dict:
    import mujoco
    import numpy as np
    import warp as wp
    from flygym.compose import ActuatorType
    from flygym.warp import GPUSimulation

    replay_targets, advance_counter, track_upright = kernels
    t_build = time.perf_counter()
    fly, world = build_flygym_world(args.adhesion_gain)
    sim = GPUSimulation(world, worlds, timestep=None if dt_spec is None else dt_spec)
    dt = float(sim.timestep)
    frame_dt = float(rec["timestep_s"])
    order = [d.name for d in fly.get_actuated_jointdofs_order(ActuatorType.POSITION)]
    mapping = [v1_joint(name) for name in order]
    table = np.stack([sign * np.asarray(rec["joints"][joint], dtype=np.float64) for joint, sign in mapping], axis=1)
    check_window(args.window_s, args.steps, args.warmup_steps, dt, len(table), frame_dt)
    starts_frames = spread_start_frames(len(table), frame_dt, args.window_s, worlds)
    starts = starts_frames * frame_dt
    table_wp = wp.array(table.astype(np.float32), dtype=wp.float32)
    start_wp = wp.array(starts.astype(np.float32), dtype=wp.float32)
    counter = wp.zeros(1, dtype=wp.int32)
    targets = wp.zeros((worlds, len(order)), dtype=wp.float32)
    free = mujoco.mj_name2id(sim.mj_model, mujoco.mjtObj.mjOBJ_JOINT, fly.name)
    xadr = int(sim.mj_model.jnt_qposadr[free])
    lowest = wp.full(worlds, 1.0, dtype=wp.float32)
    sim.reset()
    sim.set_leg_adhesion_states(fly.name, np.ones((worlds, 6), dtype=np.float32))
    t_settle = time.perf_counter()
    if args.flygym_warmup_s > 0:
        sim.warmup(args.flygym_warmup_s)  # flygym's settling at the neutral pose (0.05 s by default)
    wp.synchronize_device()
    settle_s = time.perf_counter() - t_settle

    def advance():
        wp.launch(replay_targets, dim=(worlds, len(order)),
                  inputs=[table_wp, frame_dt, dt, start_wp, counter], outputs=[targets])
        sim.set_actuator_inputs(fly.name, ActuatorType.POSITION, targets)
        sim.step()
        wp.launch(advance_counter, dim=1, inputs=[counter])
        if args.upright:
            wp.launch(track_upright, dim=worlds, inputs=[sim.mjw_data.qpos, xadr + 3, lowest])

    advance()  # loads the replay kernels; flygym's step kernels were compiled by warmup()
    graph = None
    if wp.get_device().is_cuda:
        with wp.ScopedCapture() as capture:
            advance()
        graph = capture.graph
    run = (lambda: wp.capture_launch(graph)) if graph is not None else advance
    for _ in range(args.warmup_steps):
        run()
    wp.synchronize_device()
    build_s = time.perf_counter() - t_build
    x0 = sim.mjw_data.qpos.numpy()[:, xadr].copy()

    start = time.perf_counter()
    for _ in range(args.steps):
        run()
    wp.synchronize_device()
    elapsed = time.perf_counter() - start

    qpos = sim.mjw_data.qpos.numpy()
    finite = np.isfinite(qpos).all(axis=1)
    niter = sim.mjw_data.solver_niter.numpy()
    opt = sim.mj_model.opt
    out = per_run_summary(
        "flygym", worlds, dt, dt_spec is None, args.steps, elapsed, device=wp.get_device().name,
        solver=f"Newton {opt.iterations}/{opt.ls_iterations} it, tolerance {opt.tolerance:g}, "
               f"adhesion gain {adhesion_gains(sim.mj_model)}",
        build_s=round(build_s, 2), settle_s=round(settle_s, 2), nonfinite_worlds=int((~finite).sum()),
        mean_dx_mm=float(np.mean(qpos[finite, xadr] - x0[finite])) if finite.any() else None,
        mean_newton_iterations_last_step=float(niter.mean()), max_newton_iterations_last_step=int(niter.max()),
        **(upright_summary(lowest.numpy(), qpos[:, xadr + 3:xadr + 7], finite, starts_frames)
           if args.upright else {}))
    return out


def run_flygym_side(args) -> dict:
    version = import_flygym()
    from importlib.metadata import version as dist_version

    import mujoco
    import mujoco_warp  # noqa: F401
    import warp as wp

    wp.init()
    device = "cpu" if args.sim_device == "cpu" else args.sim_device
    try:
        wp.set_device(device)
    except Exception as exc:  # noqa: BLE001 (warp raises several kinds)
        raise BenchError(f"--sim-device={args.sim_device} is not available to Warp ({exc}); allowed: cpu or "
                         "cuda:<index> of this machine") from None
    kernels = flygym_kernels(wp)
    rec = load_recording_json()
    results = run_sizes(f"flygym {version}", args, lambda n, dt: measure_flygym(args, rec, kernels, n, dt))
    return {"side": "flygym", "flygym": version, "mujoco": mujoco.__version__,
            "mujoco_warp": dist_version("mujoco-warp"), "warp": wp.__version__, "python": sys.version.split()[0],
            "results": results}


# ---------------------------------------------------------------- this project's side

def measure_ours(args, rf, worlds: int, dt_spec) -> dict:
    import torch

    from physics import SimParams

    t_build = time.perf_counter()
    recording = rf.load_recording()
    # the task's pool (SimParams' default): these worlds start spread over the recording, so their candidate
    # pairs average out (5.8 per world along it), as a training run's do
    engine, _, frames, dt, play = rf.start_worlds("mjwarp", recording, args.window_s, worlds, adhesion=True,
                                                  dt=dt_spec, sim_device=args.sim_device,
                                                  contacts_per_world=SimParams.contacts_per_world,
                                                  adhesion_gain=args.adhesion_gain, tolerance=args.tolerance)
    check_window(args.window_s, args.steps, args.warmup_steps, dt, recording.frames, recording.timestep)
    dev = engine.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    step = [0]
    lowest = torch.ones(worlds, device=dev)

    def advance():
        play(step[0])
        step[0] += 1
        if args.upright:
            torch.minimum(lowest, upright_cosine(engine.qpos[:, 3:7]), out=lowest)

    advance()  # compiles the kernels and captures the CUDA graph of one physics step
    for _ in range(args.warmup_steps):
        advance()
    sync()
    build_s = time.perf_counter() - t_build
    x0 = engine.qpos[:, 0].double().cpu()

    start = time.perf_counter()
    for _ in range(args.steps):
        advance()
    sync()
    elapsed = time.perf_counter() - start

    qpos = engine.qpos.double().cpu()
    finite = torch.isfinite(qpos).all(dim=1)
    niter = most = None
    data = getattr(engine, "warp_data", None)  # MuJoCo Warp's data: read once, after the timing
    if data is not None and hasattr(data, "solver_niter"):
        counts = data.solver_niter.numpy()
        niter, most = float(counts.mean()), int(counts.max())
    opt = engine.model.opt
    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({os.cpu_count()} cores, Warp)"
    out = per_run_summary(
        "ours", worlds, dt, dt_spec is None, args.steps, elapsed, device=device,
        solver=f"Newton {opt.iterations}/{opt.ls_iterations} it, tolerance {opt.tolerance:g}, "
               f"adhesion gain {adhesion_gains(engine.model)}",
        build_s=round(build_s, 2), nonfinite_worlds=int((~finite).sum()),
        mean_dx_mm=float((qpos[finite, 0] - x0[finite]).mean()) if bool(finite.any()) else None,
        mean_newton_iterations_last_step=niter, max_newton_iterations_last_step=most,
        **(upright_summary(lowest.cpu().numpy(), qpos[:, 3:7].numpy(), finite.numpy(), frames) if args.upright else {}))
    engine.close()
    return out


def run_ours_side(args) -> dict:
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from importlib.metadata import version as dist_version

    import mujoco
    import replay_flygym as rf
    import torch

    from physics import resolve_device

    try:
        resolve_device(args.sim_device, "--sim-device")
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    try:
        import mujoco_warp  # noqa: F401
        import warp
    except ImportError as exc:
        raise BenchError(f"this project's side needs MuJoCo Warp ({exc.name} is not importable); install it "
                         "with pip install -e .[gpu], or on the GPU machine bash .devwheels-4/install.sh") from None
    results = run_sizes("ours", args, lambda n, dt: measure_ours(args, rf, n, dt))
    return {"side": "ours", "mujoco": mujoco.__version__, "mujoco_warp": dist_version("mujoco-warp"),
            "warp": warp.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "results": results}


# ---------------------------------------------------------------- the driver

def run_child(side: str, args, dts: list) -> dict:
    cmd = [args.flygym_python if side == "flygym" else args.ours_python, os.path.abspath(__file__),
           "--side", side, "--worlds", *map(str, args.worlds), "--steps", str(args.steps),
           "--warmup-steps", str(args.warmup_steps), "--window-s", repr(args.window_s),
           "--sim-device", args.sim_device, "--flygym-warmup-s", repr(args.flygym_warmup_s),
           "--dts", *["default" if d is None else repr(d) for d in dts],
           *(["--adhesion-gain", repr(args.adhesion_gain)] if args.adhesion_gain is not None else []),
           *(["--tolerance", repr(args.tolerance)] if args.tolerance is not None and side == "ours" else []),
           *(["--upright"] if args.upright else [])]
    env = dict(os.environ)
    if side == "flygym":
        if args.flygym_pythonpath:
            env["PYTHONPATH"] = args.flygym_pythonpath
        else:
            env.pop("PYTHONPATH", None)
    log(f"$ {'PYTHONPATH=' + env.get('PYTHONPATH', '') + ' ' if side == 'flygym' else ''}{' '.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last_error = None
    for line in proc.stderr:  # echo the child's progress as it comes; its error line is the driver's
        if line.startswith("error:"):
            last_error = line.strip()
            continue
        sys.stderr.write(line)
        sys.stderr.flush()
    out = proc.stdout.read()
    code = proc.wait()
    if code != 0:
        raise BenchError((last_error or f"error: the {side} side exited with status {code} (its output is above)")
                         .removeprefix("error: "))
    for line in reversed(out.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    raise BenchError(f"the {side} side printed no JSON line")


def pick(side_out: dict, dt: float | None):
    """A side's runs at its default timestep (dt None) or at dt (a default run at that dt included)."""
    for r in side_out["results"]:
        if (dt is None and r.get("default_dt")) or (dt is not None and r.get("dt") is not None
                                                    and abs(r["dt"] - dt) < 1e-12):
            yield r


def by_size(runs) -> dict:
    return {r["worlds"]: r for r in runs}


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def compare(args, flygym_out: dict, ours_out: dict) -> dict:
    modes = ["default", "equal"] if args.dt_mode == "both" else [args.dt_mode]
    rows = []
    for mode in modes:
        dt = None if mode == "default" else args.equal_dt
        fly_runs, our_runs = by_size(pick(flygym_out, dt)), by_size(pick(ours_out, dt))
        for n in args.worlds:
            f, o = fly_runs.get(n, {}), our_runs.get(n, {})
            fs, os_ = f.get("sim_s_per_s"), o.get("sim_s_per_s")
            ratio = os_ / fs if fs and os_ else None
            rows.append({"mode": mode, "worlds": n, "flygym_dt": f.get("dt"), "ours_dt": o.get("dt"),
                         "flygym_solver": f.get("solver"), "ours_solver": o.get("solver"),
                         "flygym_world_steps_s": f.get("world_steps_s"), "ours_world_steps_s": o.get("world_steps_s"),
                         "flygym_sim_s_per_s": fs, "ours_sim_s_per_s": os_, "ratio_sim_s_per_s": ratio,
                         "ratio_world_steps_s": (o["world_steps_s"] / f["world_steps_s"]
                                                 if f.get("world_steps_s") and o.get("world_steps_s") else None),
                         "meets_target": None if ratio is None else ratio >= TARGET_RATIO,
                         **({f"{side}_{key}": r.get(key) for side, r in (("flygym", f), ("ours", o))
                             for key in ("upright_worlds", "on_back_worlds", "mean_dx_mm")} if args.upright else {}),
                         "errors": [e for e in (f.get("error"), o.get("error")) if e] or None})
    return {"rows": rows, "target_met": {m: all(r["meets_target"] for r in rows if r["mode"] == m)
                                         for m in modes}}


def print_table(summary: dict, flygym_out: dict, ours_out: dict) -> None:
    device = next((r.get("device") for r in flygym_out["results"] + ours_out["results"] if r.get("device")), "?")
    print(f"flygym {flygym_out['flygym']} (mujoco {flygym_out['mujoco']}, mujoco-warp {flygym_out['mujoco_warp']}) "
          f"warp {flygym_out['warp']} vs this project (mujoco {ours_out['mujoco']}, "
          f"mujoco-warp {ours_out['mujoco_warp']}, "
          f"warp {ours_out['warp']}), {device}; replay of 210902_pr_fly1, adhesion on in both")
    print("| timesteps | worlds | flygym dt, solver | flygym world-steps/s | flygym sim s/s | ours dt, solver | "
          "ours world-steps/s | ours sim s/s | ours / flygym (sim s/s) | >= 3x |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in summary["rows"]:
        mark = "-" if r["meets_target"] is None else ("yes" if r["meets_target"] else "**no**")
        print(f"| {r['mode']} | {r['worlds']} | {fmt(r['flygym_dt'], 'g')}, {r['flygym_solver'] or '-'} | "
              f"{fmt(r['flygym_world_steps_s'], ',.0f')} | {fmt(r['flygym_sim_s_per_s'], '.3g')} | "
              f"{fmt(r['ours_dt'], 'g')}, {r['ours_solver'] or '-'} | {fmt(r['ours_world_steps_s'], ',.0f')} | "
              f"{fmt(r['ours_sim_s_per_s'], '.3g')} | {fmt(r['ratio_sim_s_per_s'], '.2f')} | {mark} |")
        for e in r["errors"] or []:
            print(f"|   | {r['worlds']} | failed: {e} | | | | | | | |")
    for r in summary["rows"]:
        if "flygym_upright_worlds" in r:
            print(f"upright ({r['mode']} timesteps, {r['worlds']} worlds; cosine above 0.5 over the whole replay), "
                  f"on their backs at the end, forward mm: flygym {r['flygym_upright_worlds']}, "
                  f"{r['flygym_on_back_worlds']}, {fmt(r['flygym_mean_dx_mm'], '.2f')}; "
                  f"ours {r['ours_upright_worlds']}, {r['ours_on_back_worlds']}, {fmt(r['ours_mean_dx_mm'], '.2f')}")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise SystemExit(f"error: {message} (see --help)")


def check_driver_args(args) -> None:
    if any(n < 1 for n in args.worlds):
        raise BenchError(f"--worlds={' '.join(map(str, args.worlds))} is not allowed (allowed: integers >= 1)")
    if args.steps < 1:
        raise BenchError(f"--steps={args.steps} is not allowed (allowed: an integer >= 1)")
    if args.warmup_steps < 0:
        raise BenchError(f"--warmup-steps={args.warmup_steps} is not allowed (allowed: an integer >= 0)")
    if not any(abs(args.equal_dt - d) < 1e-12 for d in EQUAL_DTS):
        raise BenchError(f"--equal-dt={args.equal_dt:g} is not allowed (allowed: {' or '.join(map(str, EQUAL_DTS))}: "
                         "flygym's default timestep or ours)")
    if not (0 <= args.flygym_warmup_s <= 1.0):
        raise BenchError(f"--flygym-warmup-s={args.flygym_warmup_s:g} is not allowed (allowed: 0 to 1 s; flygym's "
                         "default 0.05)")
    if args.adhesion_gain is not None and not (math.isfinite(args.adhesion_gain) and args.adhesion_gain >= 0):
        raise BenchError(f"--adhesion-gain={args.adhesion_gain:g} is not allowed (allowed: a finite number >= 0)")
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise BenchError(f"--tolerance={args.tolerance:g} is not allowed (allowed: a finite number > 0)")
    if args.sim_device != "cpu" and not (args.sim_device.startswith("cuda") and
                                         (args.sim_device == "cuda" or args.sim_device[5:].isdigit())):
        raise BenchError(f"--sim-device={args.sim_device!r} is not allowed (allowed: cpu, or cuda:<index>)")


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int, nargs="+", default=list(SIZES), help="sizes (default 1024 4096 16384)")
    parser.add_argument("--steps", type=int, default=500, help="physics steps timed per size (default 500)")
    parser.add_argument("--warmup-steps", type=int, default=20,
                        help="replayed steps after compilation and graph capture, before the timing")
    parser.add_argument("--dt-mode", choices=["default", "equal", "both"], default="both")
    parser.add_argument("--equal-dt", type=float, default=1e-4,
                        help="the timestep of both in the equal mode: 1e-4 (default) or 2e-4")
    parser.add_argument("--sim-device", default="cuda:0", help="cuda:<index>, or cpu (Warp's CPU device: smoke tests)")
    parser.add_argument("--flygym-python", default=sys.executable,
                        help="interpreter for flygym's side (Python >= 3.12; default: this one)")
    parser.add_argument("--flygym-pythonpath", default=DEFAULT_FLYGYM_PYTHONPATH,
                        help="PYTHONPATH of flygym's side (default /tmp/site2:/tmp/site; empty: the interpreter's own)")
    parser.add_argument("--ours-python", default=sys.executable, help="interpreter for this project's side")
    parser.add_argument("--flygym-warmup-s", type=float, default=0.05,
                        help="flygym's Simulation.warmup() before the replay, s (its default 0.05)")
    parser.add_argument("--adhesion-gain", type=float,
                        help="both sides' adhesion gain per leg (default: each its own, flygym 2's 1, v2's and "
                             "ours 40)")
    parser.add_argument("--tolerance", type=float,
                        help="this project's side: the solver's convergence tolerance (default: the model's)")
    parser.add_argument("--upright", action="store_true",
                        help="also track every world's upright cosine over the replay (warm-up included) and "
                             "print how many stayed upright; for e.g. --dt-mode equal --steps 9998 --warmup-steps 0: "
                             "1 s of the recording from its first frame at dt 1e-4")
    parser.add_argument("--side", choices=["flygym", "ours"],
                        help="run one side only, in this process, and print its JSON line")
    parser.add_argument("--dts", nargs="+", help="(with --side) timesteps: 'default' or seconds")
    parser.add_argument("--window-s", type=float,
                        help="(with --side) replay window that sets the start frames (default: from --steps)")
    args = parser.parse_args()
    try:
        check_driver_args(args)
        longest_dt = args.equal_dt if args.dt_mode == "equal" else LONGEST_DT  # of the timesteps this run uses
        if args.window_s is None:
            args.window_s = (args.steps + args.warmup_steps + 2) * longest_dt
        if args.side:
            specs = args.dts or ["default"]
            try:
                args.dts = list(dict.fromkeys(None if s == "default" else float(s) for s in specs))
            except ValueError:
                raise BenchError(f"--dts={' '.join(specs)} is not allowed (allowed: 'default' or timesteps in s)") \
                    from None
            if any(d is not None and not 0 < d <= LONGEST_DT for d in args.dts):
                raise BenchError(f"--dts={' '.join(specs)} is not allowed (allowed: 'default' or 0 < dt <= "
                                 f"{LONGEST_DT:g})")
            out = run_flygym_side(args) if args.side == "flygym" else run_ours_side(args)
            print(json.dumps(out), flush=True)
            return
        rec = load_recording_json()
        check_window(args.window_s, args.steps, args.warmup_steps, longest_dt, len(rec["joints"]["joint_LFCoxa"]),
                     float(rec["timestep_s"]))
        for entry in filter(None, args.flygym_pythonpath.split(os.pathsep)):
            if not os.path.isdir(entry):
                raise BenchError(f"--flygym-pythonpath entry {entry!r} is not a directory (allowed: site "
                                 "directories; on the GPU machine /tmp/site2 comes from the install.sh of "
                                 ".flygymwheels-1 and -2 and /tmp/site from ../shared/device/README.md's install)")
        for name in ("flygym_python", "ours_python"):
            exe = getattr(args, name)
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                raise BenchError(f"--{name.replace('_', '-')}={exe!r} is not an executable file")
        want = {"default": [None], "equal": [args.equal_dt], "both": [None, args.equal_dt]}[args.dt_mode]
        started = time.perf_counter()
        flygym_out = run_child("flygym", args, want)
        ours_out = run_child("ours", args, want)
        summary = compare(args, flygym_out, ours_out)
    except BenchError as exc:
        raise SystemExit(f"error: {exc}") from None
    print_table(summary, flygym_out, ours_out)
    print(json.dumps({"benchmark": "compare_flygym", "motion": "kinematic replay of 210902_pr_fly1, adhesion on",
                      "settings": {"worlds": args.worlds, "steps": args.steps, "warmup_steps": args.warmup_steps,
                                   "dt_mode": args.dt_mode, "equal_dt": args.equal_dt, "sim_device": args.sim_device,
                                   "flygym_warmup_s": args.flygym_warmup_s, "window_s": args.window_s,
                                   "upright": args.upright},
                      "target_ratio": TARGET_RATIO, **summary, "wall_s": round(time.perf_counter() - started, 1),
                      "flygym": flygym_out, "ours": ours_out}))


if __name__ == "__main__":
    main()

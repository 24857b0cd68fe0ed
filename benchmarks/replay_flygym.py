"""Kinematic replay of flygym 1.2.1's recorded walking (210902_pr_fly1) on this project's fly, on either
engine: the 42 leg joints' position targets follow the recording, linearly interpolated at every physics
step, and the script prints how far the fly moved. It compares this project's contact model with
flygym's own simulator (the issue reports flygym's tutorial replay of this recording moving its fly
8.51 mm forward in 1 s without adhesion, 2.45 mm upright with adhesion always on, MuJoCo C;
benchmarks/flygym1_replay.py runs flygym 1.2.1 itself: its tutorial gives 8.509 and 2.447 mm, and over
every start frame its own fly keeps 980 of 1001 upright, 3 ending on their backs).

    python benchmarks/replay_flygym.py                                   # MuJoCo C, 10 starts, 1 s
    python benchmarks/replay_flygym.py --adhesion on --seconds 0.5
    python benchmarks/replay_flygym.py --engine mjwarp --sim-device cuda:0 --starts 64 --seconds 0.5
    python benchmarks/replay_flygym.py --engine mjwarp --starts 2 --seconds 0.3   # Warp's CPU device (slow)
    python benchmarks/replay_flygym.py --starts 64 --adhesion on --start-noise 1e-4   # 64 tries of one start
    python benchmarks/replay_flygym.py --adhesion on --starts 1001 --seconds 0.5   # every start frame (6.5 min)
    python benchmarks/replay_flygym.py --adhesion on --seconds 0.5 --start-frames 153 531 --damping-ratio 1000
    python benchmarks/replay_flygym.py --adhesion on --seconds 0.5 --start-frames 153 531 --settle 0.05

The recording (extracted from the flygym wheel by the asset builder) holds 2000 frames at 0.5 ms: 1 s of
walking, the last frame held to the end as flygym's np.interp does. World i starts at a frame evenly
spaced over the part of the recording that leaves --seconds to play (world 0 at the first frame), so
with --seconds 1 every world starts at frame 0 and, on MuJoCo C (deterministic), they all give the same
result; shorter replays spread the starts. Start pose: the recorded joint angles at the start frame,
the passive tarsi and the body's orientation of the "stand" keyframe, the fly lowered until its lowest
leg point is 5 um above the floor (as the keyframe was built), at rest (--start-velocity recorded: the leg
joints already moving as the recording does there); the replay begins at once (--settle S: after S s held in
that pose, displacements counted from there). --stretch starts as flygym's tutorial does instead: legs in
flygym's "stretch" pose, passive joints at 0, body level, its root 0.5 mm above the floor, the targets jumping
to the recording at once.

Per world: forward (world +x, the fly's heading in the keyframe) and lateral (+y, to its left)
displacement of the thorax's centre of mass, its mean height, the minimum cosine between the body's z
axis and the world's (the task's `flipped` measure), upright = that cosine stayed above 0.5, and the
first physics fault; a faulted world is measured up to its fault and left out of the means. The last
line of stdout is one JSON object with the settings and every world's numbers.

The asset's contacts (since 2026-11-27): impedance 0.995 (v2's: 0.999-0.9999), damping ratio 3 (1.5 before, v2's
1000; docs/physics.md, "Contact impedance" and "Contact damping"). MuJoCo C: 9.20 mm without adhesion, 2.76 upright
with it, 20/20 upright over 20 starts x 0.5 s (cosine >= 0.82), --stretch 1.93 upright. Every start frame
(--starts 1001 --seconds 0.5): 1001 upright on MuJoCo C and on MuJoCo Warp (H100, H200) alike, none on its back,
also at --dt 1e-4 and with --start-velocity recorded (both engines) and with --start-noise 1e-4 / 3e-4 (H200).
At the former ratio 1.5 (the asset built with it) 994: frames 151-155 dipped to 0.38 and recovered, 524 and 531
ended on their backs; how the replay started moved those frames, on both engines the same (docs/physics.md, "Every
start frame"). v2's ratio (--damping-ratio 1000) keeps all 1001 up but walks the adhering fly 0.66 mm in 1 s.
Measured before that, with v2's impedance:
Measured 2026-11-25 (mujoco 4.0.0, warp-lang 1.19, 2-core CPU; dt 2e-4, Newton 20 iterations; forward mm,
upright = the cosine stayed above 0.5; flygym 1.2.1's own replay: 8.51 mm without adhesion, 2.45 mm upright
with it). MuJoCo C:
                                  no adhesion 1 s   adhesion 1 s        adhesion, 20 starts x 0.5 s  --stretch, adhesion
  the asset (tarsal armature 1e-7)   9.53 upright    3.02, tips to 0.40  5/20 upright, 6 on their backs  on its back
  --tarsal-armature 3e-9             8.71 upright    0.57 upright        20/20 upright (cosine >= 0.79)  0.36 upright
  --tarsal-armature 0                6.89 upright    3.00 upright        20/20 upright (cosine >= 0.70)  2.30 upright
  armature 0, contact damping ratio 1000, dt 1e-4, 100 iterations (v2's settings, without its leg-leg collisions): 8.91
  upright without adhesion, 2.91 upright with it, 10/10 upright over 10 starts x 0.5 s.
  --leg-leg-contacts (v2's pairs between leg segments; 2026-11-27): 10.07 upright without adhesion, 6.75 upright with
  it, 15/20 upright over 20 starts x 0.5 s (the hind coxae press on each other at most steps).
MuJoCo Warp on Warp's CPU device (2 starts x 0.3 s): the asset as MuJoCo C (2.35 and 3.18 mm; with adhesion
0.55 upright and -2.50 on its back); tarsal armature 3e-9 finite and upright (adhesion 0.45, 0.24 mm), 1e-9
NaN after 357-463 steps, 0 after 6-48: float32 needs the armature that destabilises adhesion on MuJoCo C.
MuJoCo C, 10 starts x 1 s: 5.0 s wall; Warp's CPU device: about 100 world-steps/s once compiled.
The recorded targets leave the actuators' ctrlrange for 4 joints (LMFemur in 9% of frames by up to
0.25 rad); the engine clips them (a note on stderr says so). Widening the ctrlrange changed the 1 s
walk without adhesion by 0.05 mm.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.compare_flygym import last_start_frame as _last_start_frame  # noqa: E402
from benchmarks.compare_flygym import spread_start_frames  # noqa: E402
from common.maths import quat_rotate  # noqa: E402
from fly import ACTUATED_JOINTS, DEFAULT_MODEL_PATH, FlyIO, FlyModelInfo, load_fly  # noqa: E402
from physics import FAULT_KINDS, SimParams, make_engine  # noqa: E402
from physics.scene import lowest_contact_point  # noqa: E402

# flygym 1.2.1's data/behavior/210902_pr_fly1.pkl and pose_stretch.yaml (assets/build_neuromechfly.py)
RECORDING_FILE = DEFAULT_MODEL_PATH.parent / "walking_210902_pr_fly1.json"
CLEARANCE_MM = 0.005  # lowest leg point above the floor at the start (as the "stand" keyframe was built)
FLYGYM_SPAWN_Z = 0.5  # flygym.Fly's default spawn_pos z: where its root body starts (--stretch)
UPRIGHT_COSINE = 0.5
START_VELOCITIES = ("rest", "recorded")
MAX_SETTLE_S = 1.0


@dataclass(frozen=True)
class Recording:
    """Joint angles (frames, 42) in ACTUATED_JOINTS order, one frame every `timestep` s."""

    angles: np.ndarray
    timestep: float
    meta: dict

    @property
    def frames(self) -> int:
        return len(self.angles)

    @property
    def duration(self) -> float:
        """Seconds the recording covers, its last frame held for one timestep (flygym's replay clamps there)."""
        return self.frames * self.timestep

    def at(self, t: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Angles (K, 42) at times t (K,) s, linearly interpolated, clamped to the first and last frame;
        `table`: the angles already as a float64 tensor on t's device."""
        angles = torch.as_tensor(self.angles, dtype=torch.float64, device=t.device) if table is None else table
        u = (t.to(torch.float64) / self.timestep).clamp(0.0, self.frames - 1)
        i0 = u.floor().long().clamp(max=self.frames - 2)
        w = (u - i0)[:, None]
        return angles[i0] * (1.0 - w) + angles[i0 + 1] * w

    def velocities(self, frames: np.ndarray) -> np.ndarray:
        """Joint velocities (len(frames), 42) in rad/s at those frames: central differences, one-sided at the ends."""
        return np.gradient(self.angles, self.timestep, axis=0)[frames]


def load_recording(path: Path = RECORDING_FILE) -> Recording:
    """The recording as the asset builder extracted it from the flygym 1.2.1 wheel."""
    data = json.loads(Path(path).read_text())
    angles = np.stack([np.asarray(data["joints"][j], dtype=np.float64) for j in ACTUATED_JOINTS], axis=1)
    return Recording(angles, float(data["timestep_s"]), {"source": data["source"]})


def load_stretch_pose(path: Path = RECORDING_FILE) -> np.ndarray:
    """flygym's "stretch" pose (42,) in radians, ACTUATED_JOINTS order."""
    pose = json.loads(Path(path).read_text())["stretch_pose"]
    return np.array([pose[j] for j in ACTUATED_JOINTS])


def last_start_frame(recording: Recording, seconds: float) -> int:
    """The last frame that leaves `seconds` of the recording to play (the rule lives in compare_flygym.py, which
    flygym's own processes import too)."""
    return _last_start_frame(recording.frames, recording.timestep, seconds)


def start_frames(recording: Recording, seconds: float, starts: int) -> np.ndarray:
    """`starts` start frames evenly spaced over the frames that leave `seconds` to play (the first is 0)."""
    return spread_start_frames(recording.frames, recording.timestep, seconds, starts)


def clipped_targets(recording: Recording, info: FlyModelInfo) -> list[str]:
    """Joints whose recorded angles leave the actuators' ctrlrange (the engine clips those targets)."""
    out = []
    for i, joint in enumerate(ACTUATED_JOINTS):
        a = recording.angles[:, i]
        below, above = a < info.target_low[i], a > info.target_high[i]
        if below.any() or above.any():
            excess = max(info.target_low[i] - a.min(), a.max() - info.target_high[i])
            out.append(f"{joint} in {(below | above).mean():.1%} of frames by up to {excess:.2f} rad")
    return out


def check_args(recording: Recording, seconds: float, starts: int, dt: float | None,
               frames: list[int] | None = None) -> None:
    """One-line errors for values the replay cannot run with."""
    if not seconds > 0 or seconds > recording.duration + 1e-9:
        raise ValueError(f"--seconds={seconds} is outside the recording (allowed: 0 < seconds <= "
                         f"{recording.duration:g}, the length of {RECORDING_FILE.name})")
    if starts < 1:
        raise ValueError(f"--starts={starts} is not allowed (allowed: an integer >= 1)")
    if frames is not None:
        last = last_start_frame(recording, seconds)
        for f in frames:
            if not 0 <= f <= last:
                raise ValueError(f"--start-frames {f} is not allowed (allowed: frames 0-{last}, those that leave "
                                 f"--seconds {seconds:g} of the recording to play)")
    if dt is not None and not (0 < dt <= recording.timestep):
        raise ValueError(f"--dt={dt} is not allowed (allowed: 0 < dt <= {recording.timestep:g}, the recording's "
                         "frame interval)")


def start_qpos(model: mujoco.MjModel, info: FlyModelInfo, joints: np.ndarray, stretch: bool = False) -> np.ndarray:
    """The fly's start position (nq,) with its 42 leg joints at `joints`: on the floor from the "stand"
    keyframe, or (stretch) as flygym spawns it."""
    qpos = model.qpos0.copy() if stretch else info.stand_qpos.copy()
    qpos[info.qpos_adr] = joints
    if stretch:
        qpos[0:7] = [0.0, 0.0, FLYGYM_SPAWN_Z, 1.0, 0.0, 0.0, 0.0]
        return qpos
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    data.qpos[2] = 0.0
    mujoco.mj_kinematics(model, data)
    qpos[2] = -lowest_contact_point(model, data) + CLEARANCE_MM
    return qpos


def start_worlds(engine_name: str, recording: Recording, seconds: float, starts: int, adhesion: bool = False,
                 dt: float | None = None, sim_device: str = "cpu", stretch_pose: np.ndarray | None = None,
                 tarsal_armature: float | None = None, tarsal_damping: float | None = None,
                 contacts_per_world: int | None = None, start_noise: float = 0.0, iterations: int | None = None,
                 adhesion_gain: float | None = None, tolerance: float | None = None, leg_leg_contacts: bool = False,
                 solimp: tuple | None = None, damping_ratio: float | None = None, frames: list[int] | None = None,
                 start_velocity: str = "rest", settle: float = 0.0):
    """The fly in `starts` worlds, each in the pose of its start frame (or `stretch_pose`), adhesion
    always on if asked, one physics step per engine step. Returns the engine, the model's tables, the start
    frames, dt and play(k): set every world's targets to the recording at its start + k dt, then step.
    `contacts_per_world` sizes MuJoCo Warp's shared contact pool; None: room for every world's every
    ground pair (see below). `start_noise` (rad): the standard deviation of a seeded perturbation of each
    world's 42 start angles, so that worlds sharing a start frame are distinct tries of it (on the GPU,
    float32 rounding makes them so anyway; MuJoCo C would repeat one result). `iterations`: the solver's
    iteration cap (None: the model's, 20); `tolerance`: its convergence tolerance (None: the model's, 1e-2).
    `adhesion_gain`: each leg's adhesion gain (None: the asset's, v2's 40; flygym 2's default is 1).
    `leg_leg_contacts`: add v2's contacts between leg segments (fly.model.add_leg_leg_pairs). `solimp`: every
    contact's impedance (MuJoCo's 5 solimp numbers; None: the asset's, fly.model.V2_CONTACT_SOLIMP for v2's).
    `damping_ratio`: every contact's damping ratio, solref's second number (None: the asset's 3,
    fly.model.V2_CONTACT_DAMPING_RATIO for v2's). `frames`: these start frames, one world each, instead of `starts`
    evenly spaced ones. `start_velocity`: "rest" (every joint and the body still), or "recorded" (the 42 leg joints
    moving as the recording does at the start frame, so that their targets and states agree from the first step).
    `settle` (s): first hold each world's start pose this long (targets fixed, adhesion as asked), so that the body
    comes to rest on its legs; the replay then starts from the settled state."""
    if frames is not None:
        starts = len(frames)
    check_args(recording, seconds, starts, dt, frames)
    if start_velocity not in START_VELOCITIES:
        raise ValueError(f"--start-velocity={start_velocity} is not allowed (allowed: {', '.join(START_VELOCITIES)})")
    if start_velocity == "recorded" and stretch_pose is not None:
        raise ValueError("--start-velocity=recorded is not allowed with --stretch (allowed: rest, flygym's stretch "
                         "start is still)")
    if not (math.isfinite(settle) and 0.0 <= settle <= MAX_SETTLE_S):
        raise ValueError(f"--settle={settle} is not allowed (allowed: 0 <= seconds <= {MAX_SETTLE_S:g})")
    if settle > 0 and start_velocity == "recorded":
        raise ValueError(f"--settle={settle:g} is not allowed with --start-velocity=recorded (allowed: one or the "
                         "other: a settled fly ends at rest)")
    model = load_fly(adhesion=adhesion, tarsal_armature=tarsal_armature, tarsal_damping=tarsal_damping,
                     leg_leg_contacts=leg_leg_contacts)
    if solimp is not None:
        model.pair_solimp[:] = solimp
    if damping_ratio is not None:
        model.pair_solref[:, 1] = damping_ratio
    # The pool also holds the broadphase's candidate pairs, and overflowing it faults every world. Worlds
    # replaying one start move in step, so their peaks add up (up to 21 candidates per world along the
    # recording against 5.8 on average, Warp CPU; 64 worlds from one start overflowed 16 per world on an H200).
    # On flat ground a world can list no more candidates than its contact pairs (model.npair).
    contacts_per_world = contacts_per_world or model.npair
    dt = dt or float(model.opt.timestep)
    info = FlyModelInfo.from_model(model)
    if adhesion_gain is not None:
        model.actuator_gainprm[info.adhesion_actuator_ids, 0] = adhesion_gain
    frames = np.asarray(frames, dtype=int) if frames is not None else start_frames(recording, seconds, starts)
    stretch = stretch_pose is not None
    poses = {f: start_qpos(model, info, stretch_pose if stretch else recording.angles[f], stretch)
             for f in np.unique(frames)}  # thousands of worlds share a few start frames
    qpos0 = np.stack([poses[f] for f in frames])
    if start_noise > 0:
        qpos0[:, info.qpos_adr] += np.random.default_rng(0).normal(0.0, start_noise, (starts, len(info.qpos_adr)))
    engine = make_engine(engine_name, model, starts, sim_device,
                         SimParams(dt=dt, substeps=1, contacts_per_world=contacts_per_world, iterations=iterations,
                                   tolerance=tolerance))
    fly = FlyIO(engine, info)
    dev = engine.device
    qvel0 = np.zeros((starts, model.nv))
    if start_velocity == "recorded":
        qvel0[:, info.qvel_adr] = recording.velocities(frames)
    engine.reset_worlds(torch.arange(starts, device=dev), torch.as_tensor(qpos0, device=dev),
                        torch.as_tensor(qvel0, device=dev))
    if adhesion:
        fly.set_adhesion(torch.ones((starts, len(info.adhesion_actuator_ids)), device=dev))
    table = torch.as_tensor(recording.angles, dtype=torch.float64, device=dev)
    t0 = torch.as_tensor(frames * recording.timestep, dtype=torch.float64, device=dev)

    if settle > 0:
        fly.set_joint_targets(torch.as_tensor(qpos0[:, info.qpos_adr], device=dev))
        for _ in range(int(round(settle / dt))):
            engine.step()

    def play(k: int) -> None:
        fly.set_joint_targets(recording.at(t0 + k * dt, table))
        engine.step()

    return engine, info, frames, dt, play


def replay(engine_name: str, recording: Recording, seconds: float = 1.0, starts: int = 10, adhesion: bool = False,
           dt: float | None = None, sim_device: str = "cpu", stretch_pose: np.ndarray | None = None,
           tarsal_armature: float | None = None, tarsal_damping: float | None = None,
           start_noise: float = 0.0, iterations: int | None = None, adhesion_gain: float | None = None,
           tolerance: float | None = None, leg_leg_contacts: bool = False, solimp: tuple | None = None,
           damping_ratio: float | None = None, frames: list[int] | None = None, start_velocity: str = "rest",
           settle: float = 0.0) -> dict:
    """Replay `seconds` of the recording in `starts` worlds at once; returns the settings and each world's
    numbers (see the module docstring). `stretch_pose` (42,): start from it as flygym does; `start_noise`,
    `iterations`, `adhesion_gain`, `tolerance`, `leg_leg_contacts`, `solimp`, `damping_ratio`, `frames`,
    `start_velocity` and `settle`: see start_worlds. Displacements count from the end of the settling."""
    t_start = time.perf_counter()
    engine, info, frames, dt, play = start_worlds(engine_name, recording, seconds, starts, adhesion, dt, sim_device,
                                                  stretch_pose, tarsal_armature, tarsal_damping,
                                                  start_noise=start_noise, iterations=iterations,
                                                  adhesion_gain=adhesion_gain, tolerance=tolerance,
                                                  leg_leg_contacts=leg_leg_contacts, solimp=solimp,
                                                  damping_ratio=damping_ratio, frames=frames,
                                                  start_velocity=start_velocity, settle=settle)
    dev, n = engine.device, len(frames)
    offset = torch.as_tensor(info.root_com_offset, dtype=torch.float64, device=dev).expand(n, 3)

    def thorax():  # thorax centre of mass (N, 3) and upright cosine (N,)
        root = engine.root_state().to(torch.float64)
        q = root[:, 3:7]
        com = root[:, 0:3] + quat_rotate(q, offset)
        return com, 1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2) / (q * q).sum(-1)

    start_com, min_upright = thorax()
    last_com = start_com.clone()
    height_sum = torch.zeros(n, dtype=torch.float64, device=dev)
    fault = torch.zeros(n, dtype=torch.int32, device=dev)
    fault_step = torch.full((n,), -1, dtype=torch.long, device=dev)
    steps = max(1, int(round(seconds / dt)))
    for k in range(steps):
        play(k)
        code = engine.faults()
        new = (code != 0) & (fault == 0)
        fault_step = torch.where(new, k, fault_step)
        fault = torch.where(fault == 0, code, fault)
        alive = (fault == 0)[:, None]
        com, up = thorax()
        last_com = torch.where(alive, com, last_com)
        height_sum += torch.where(alive[:, 0], com[:, 2], 0.0)
        min_upright = torch.where(alive[:, 0], torch.minimum(min_upright, up), min_upright)
    wall = time.perf_counter() - t_start
    _, end_upright = thorax()
    engine.close()
    done = torch.where(fault_step >= 0, fault_step + 1, steps).clamp_min(1)
    move = (last_com - start_com).cpu()
    worlds = []
    for i in range(n):
        kinds = [name for name, bit in FAULT_KINDS.items() if int(fault[i]) & bit]
        worlds.append({
            "start_frame": int(frames[i]), "start_s": round(float(frames[i] * recording.timestep), 6),
            "forward_mm": float(move[i, 0]), "lateral_mm": float(move[i, 1]),
            "mean_height_mm": float(height_sum[i] / done[i]), "min_upright": float(min_upright[i]),
            "end_upright": None if kinds else float(end_upright[i]),
            "upright": bool(min_upright[i] > UPRIGHT_COSINE),
            "fault": f"{'+'.join(kinds)} at step {int(fault_step[i])}" if kinds else None})
    ok = [w for w in worlds if w["fault"] is None]
    mean = (lambda key: sum(w[key] for w in ok) / len(ok) if ok else None)  # noqa: E731
    return {"engine": engine_name, "device": str(dev), "adhesion": adhesion, "stretch": stretch_pose is not None,
            "dt": dt,
            "tarsal_armature": tarsal_armature, "tarsal_damping": tarsal_damping,  # None: the asset's
            "leg_leg_contacts": leg_leg_contacts,
            "solimp": [round(float(v), 6) for v in engine.model.pair_solimp[0]],
            "damping_ratio": float(engine.model.pair_solref[0, 1]),
            "start_noise": start_noise, "start_velocity": start_velocity, "settle_s": settle,
            "iterations": int(engine.model.opt.iterations),
            "tolerance": float(engine.model.opt.tolerance),
            "adhesion_gain": float(engine.model.actuator_gainprm[info.adhesion_actuator_ids[0], 0])
            if adhesion else None,
            "seconds": seconds, "steps": steps, "starts": n, "wall_s": round(wall, 2),
            "mean_forward_mm": mean("forward_mm"), "mean_lateral_mm": mean("lateral_mm"),
            "mean_height_mm": mean("mean_height_mm"), "upright_worlds": sum(w["upright"] for w in ok),
            "flipped_worlds": sum(w["min_upright"] < 0.0 for w in ok),
            "faulted_worlds": n - len(ok), "worlds": worlds}


def num(value: float | None, width: int = 0) -> str:
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"


def report(result: dict) -> None:
    tarsi = "".join(f", tarsal {name} {result['tarsal_' + name]:g}" for name in ("armature", "damping")
                    if result["tarsal_" + name] is not None)
    gain = f" (gain {result['adhesion_gain']:g})" if result["adhesion"] else ""
    print(f"{result['engine']} on {result['device']}, adhesion {'on' if result['adhesion'] else 'off'}{gain}"
          f"{', flygym stretch start' if result['stretch'] else ''}{tarsi}"
          f"{', leg-leg contacts' if result['leg_leg_contacts'] else ''}"
          f", contact solimp {' '.join(f'{v:g}' for v in result['solimp'])}, damping ratio {result['damping_ratio']:g}"
          f"{', start noise %g rad' % result['start_noise'] if result['start_noise'] else ''}"
          f"{', joints start at the recorded velocities' if result['start_velocity'] == 'recorded' else ''}"
          f"{', settled %g s in the start pose' % result['settle_s'] if result['settle_s'] else ''}"
          f", dt {result['dt']:g} s, "
          f"solver cap {result['iterations']} iterations, tolerance {result['tolerance']:g}, "
          f"{result['seconds']:g} s ({result['steps']} steps), {result['starts']} starts")
    print(f"{'world':>5} {'start_s':>8} {'fwd_mm':>8} {'lat_mm':>8} {'height':>7} {'min_up':>7} {'end_up':>7} "
          f"{'upright':>7}  fault")
    for i, w in enumerate(result["worlds"]):
        print(f"{i:5d} {w['start_s']:8.4f} {w['forward_mm']:8.3f} {w['lateral_mm']:8.3f} {w['mean_height_mm']:7.3f} "
              f"{w['min_upright']:7.3f} {num(w['end_upright'], 7)} {'yes' if w['upright'] else 'no':>7}  "
              f"{w['fault'] or '-'}")
    print(f"mean forward {num(result['mean_forward_mm'])} mm, lateral {num(result['mean_lateral_mm'])} mm, "
          f"height {num(result['mean_height_mm'])} mm; upright {result['upright_worlds']}/{result['starts']}, "
          f"flipped (cosine < 0) {result['flipped_worlds']}, faulted {result['faulted_worlds']}; "
          f"{result['wall_s']:.1f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["mujoco", "mjwarp"], default="mujoco")
    parser.add_argument("--sim-device", default="cpu", help="mjwarp's device (cpu: Warp's CPU device, or cuda:N)")
    parser.add_argument("--dt", type=float, help="physics step, s (default: the model's, 2e-4)")
    parser.add_argument("--seconds", type=float, default=1.0, help="replayed time per world, s")
    parser.add_argument("--adhesion", choices=["off", "on"], default="off",
                        help="on: the tarsal adhesion actuators at full control throughout")
    parser.add_argument("--starts", type=int, default=10, help="worlds, each from its own start frame")
    parser.add_argument("--start-frames", type=int, nargs="+", metavar="F",
                        help="replay from these frames (0.5 ms apart), one world each, instead of --starts evenly "
                             "spaced ones")
    parser.add_argument("--tarsal-armature", type=float,
                        help="armature of the passive tarsal hinges, g mm^2 (default: the asset's 1e-7)")
    parser.add_argument("--tarsal-damping", type=float,
                        help="damping of the passive tarsal hinges, g mm^2/s (default: the asset's, flygym's 0.01)")
    parser.add_argument("--adhesion-gain", type=float,
                        help="with --adhesion on: each leg's adhesion gain (default: the asset's, v2's 40; flygym 2's "
                             "default is 1)")
    parser.add_argument("--iterations", type=int, help="the solver's iteration cap (default: the model's, 20)")
    parser.add_argument("--tolerance", type=float, help="the solver's convergence tolerance (default: the model's)")
    parser.add_argument("--start-noise", type=float, default=0.0,
                        help="rad: perturb each world's start angles by this much (std, seeded), so that worlds "
                             "sharing a start are distinct tries of it (default 0)")
    parser.add_argument("--leg-leg-contacts", action="store_true",
                        help="add v2's contacts between leg segments (flygym's self_collisions='legs'; "
                             "the asset has none)")
    parser.add_argument("--solimp", type=float, nargs=5, metavar="S",
                        help="every contact's impedance, MuJoCo's 5 solimp numbers (default: the asset's, 0.995 0.995 "
                             "0.001 0.5 2; v2's: 0.999 0.9999 0.001 0.5 2)")
    parser.add_argument("--damping-ratio", type=float,
                        help="every contact's damping ratio (solref's second number; default: the asset's 3, "
                             "v2's 1000)")
    parser.add_argument("--start-velocity", default="rest",
                        help="rest: every world starts still (default); recorded: the leg joints start moving as the "
                             "recording does at the start frame")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="s: hold each world's start pose this long before the replay begins (default 0, as "
                             "flygym's tutorial)")
    parser.add_argument("--stretch", action="store_true",
                        help="start as flygym's tutorial: stretch pose, level body 0.5 mm up")
    args = parser.parse_args()
    try:
        recording = load_recording()
        check_args(recording, args.seconds, args.starts, args.dt, args.start_frames)
        for key in ("tarsal_armature", "tarsal_damping", "start_noise", "adhesion_gain"):
            value = getattr(args, key)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"--{key.replace('_', '-')}={value} is not allowed (allowed: a finite number >= 0)")
        if args.adhesion_gain is not None and args.adhesion != "on":
            raise ValueError(f"--adhesion-gain={args.adhesion_gain:g} needs --adhesion on (allowed: both, or neither)")
        if args.iterations is not None and args.iterations < 1:
            raise ValueError(f"--iterations={args.iterations} is not allowed (allowed: an integer >= 1)")
        if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance > 0):
            raise ValueError(f"--tolerance={args.tolerance} is not allowed (allowed: a finite number > 0)")
        if args.solimp is not None and not (0 < args.solimp[0] <= args.solimp[1] < 1 and args.solimp[2] > 0
                                            and 0 < args.solimp[3] < 1 and args.solimp[4] >= 1):
            raise ValueError(f"--solimp={' '.join(f'{v:g}' for v in args.solimp)} is not allowed (allowed: "
                             "0 < dmin <= dmax < 1, width > 0, 0 < midpoint < 1, power >= 1)")
        if args.damping_ratio is not None and not (math.isfinite(args.damping_ratio) and args.damping_ratio > 0):
            raise ValueError(f"--damping-ratio={args.damping_ratio:g} is not allowed (allowed: a finite number > 0)")
        result = replay(args.engine, recording, args.seconds, args.starts, args.adhesion == "on", args.dt,
                        args.sim_device, load_stretch_pose() if args.stretch else None, args.tarsal_armature,
                        args.tarsal_damping, args.start_noise, args.iterations, args.adhesion_gain, args.tolerance,
                        args.leg_leg_contacts, args.solimp, args.damping_ratio, args.start_frames,
                        args.start_velocity, args.settle)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    distinct = len({w["start_frame"] for w in result["worlds"]})
    if args.start_frames is None and distinct < result["starts"]:  # frames given by hand repeat only if asked to
        print(f"note: --seconds {args.seconds:g} leaves room for {distinct} distinct start frame(s) in the "
              f"{recording.duration:g} s recording; worlds with the same start replay the same thing", file=sys.stderr)
    clipped = clipped_targets(recording, FlyModelInfo.from_model(load_fly(adhesion=False)))
    if clipped:
        print(f"note: the actuators' ctrlrange clips the recorded targets of {'; '.join(clipped)}", file=sys.stderr)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""flygym 1.2.1's own simulator on the recorded walking that `replay_flygym.py` replays on this project's fly, so
both sides of that comparison can be measured rather than quoted. It runs in flygym 1.2.1's environment, not this
project's (flygym 1.2.1 pins MuJoCo 3.2.7 and dm_control):

    python3 -m venv ~/flygym1 && ~/flygym1/bin/pip install flygym==1.2.1
    ~/flygym1/bin/python benchmarks/flygym1_replay.py --start stretch                 # flygym's tutorial
    ~/flygym1/bin/python benchmarks/flygym1_replay.py --start stretch --adhesion on
    ~/flygym1/bin/python benchmarks/flygym1_replay.py --adhesion on --starts 1001 --seconds 0.5 --workers 2

The fly is flygym's as its tutorial builds it (`Fly(actuated_joints=all_leg_dofs, control="position")`, adhesion
always on with --adhesion on, `SingleFlySimulation` on flat ground at dt 1e-4) and stepped as flygym steps it: the
42 position targets set every physics step to the recording linearly interpolated at that time (flygym's
np.interp, the last frame held), then `physics.step()` and the `physics.forward()` that flygym's observations
trigger after every step (dm_control recomputes a physics whose controls were written through its bindings; the
forward refreshes Newton's warm start, so the replay depends on it). The observations themselves are skipped:
`--check-steps N` replays the first N steps both ways and fails unless they agree to the bit.

Starts: `--start stretch` begins as the tutorial does, in flygym's "stretch" pose; `--start recorded` (the default)
begins in the start frame's recorded pose, as `flygym.Fly(init_pose=KinematicPose(...))` would. Either way the fly
is spawned as flygym spawns it, still, level, its root 0.5 mm over the floor. Start frames as `replay_flygym.py`
spreads them (`--starts N` evenly over the frames that leave --seconds to play, or `--start-frames F ...`), so
that start i here is start i there.

Per start: forward (+x) and lateral (+y) displacement of the thorax's centre of mass from the fly's spawn (the point
flygym observes as the fly's position: the issue's 8.51 and 2.45 mm are its displacement), its mean height, the
lowest cosine between the thorax's z axis and the world's and its last, upright = it stayed above 0.5 (the measure
`replay_flygym.py` uses), and a physics error if dm_control raised one. The last line of stdout is one JSON object.

Measured 2026-11-27 (docs/results/every_start_references_h200.json): the tutorial, 1 s from the stretch pose, 8.509 mm
without adhesion and 2.447 with it, upright (the issue's 8.51 and 2.45); from the recording's first frame 8.500 and
3.035. Every start frame (--adhesion on --starts 1001 --seconds 0.5): 980 upright, 21 dipping under cosine 0.5, 3 of
them ending on their backs (frames 258, 366, 441), mean forward 1.31 mm. A 0.5 s start with adhesion takes about 19 s
on one core of the 2-core CPU; --workers runs starts in parallel.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# stdlib and numpy only at import, so flygym's own environment can load them
from benchmarks.compare_flygym import OneLineParser, last_start_frame, spread_start_frames  # noqa: E402
from common.checks import VALUE_KINDS  # noqa: E402

UPRIGHT_COSINE = 0.5
START_POSES = ("recorded", "stretch")
RECORDING = "210902_pr_fly1.pkl"


def value_of(kind: str):
    """An argparse type for VALUE_KINDS[kind], the project's rule for that kind of value: the text read as an int
    for the integer kinds and as a float otherwise, then held to the rule's test."""
    test, allowed = VALUE_KINDS[kind]
    convert = int if kind.startswith("int") else float

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed (allowed: {allowed})")
        return value

    return parse


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--adhesion", choices=("off", "on"), default="off", help="adhesion always on in all six legs")
    p.add_argument("--start", choices=START_POSES, default="recorded", help="the pose the fly is spawned in")
    p.add_argument("--seconds", type=value_of("number>0"), default=1.0,
                   help="replay length (s, at most the recording's)")
    p.add_argument("--starts", type=value_of("int>=1"), default=1,
                   help="start frames spread over the recording")
    p.add_argument("--start-frames", type=value_of("int>=0"), nargs="+", default=None,
                   help="these start frames instead")
    p.add_argument("--timestep", type=value_of("number>0"), default=1e-4,
                   help="physics step (s); flygym's default")
    p.add_argument("--workers", type=value_of("int>=1"), default=1,
                   help="processes, each with its own simulation")
    p.add_argument("--check-steps", type=value_of("int>=0"), default=0,
                   help="first replay the first N steps of the first start through flygym's Simulation.step too")
    return p.parse_args(argv)


def load_recording() -> tuple[np.ndarray, float]:
    """The recording's 42 leg-joint angles (frames, 42), in flygym's all_leg_dofs order, and its frame time."""
    from flygym import get_data_path
    from flygym.preprogrammed import all_leg_dofs

    with open(get_data_path("flygym", "data") / "behavior" / RECORDING, "rb") as f:
        data = pickle.load(f)
    return np.stack([np.asarray(data[dof], dtype=np.float64) for dof in all_leg_dofs], axis=1), data["meta"]["timestep"]


def start_frames(frames: int, frame_dt: float, seconds: float, starts: int, chosen: list[int] | None = None,
                 timestep: float = 1e-4) -> list[int]:
    """Start frames by replay_flygym.py's rule: `chosen`, or `starts` evenly spaced over the frames that leave
    `seconds` to play (the first is 0); one-line errors for values the replay cannot run with."""
    duration = frames * frame_dt
    if not timestep <= seconds <= duration + 1e-9:
        raise ValueError(f"--seconds={seconds:g} is not allowed (allowed: {timestep:g} <= seconds <= {duration:g}, "
                         "the recording's length)")
    if not 0 < timestep <= frame_dt:
        raise ValueError(f"--timestep={timestep:g} is not allowed (allowed: 0 < timestep <= {frame_dt:g}, the "
                         "recording's frame interval)")
    last = last_start_frame(frames, frame_dt, seconds)
    if chosen is not None:
        for f in chosen:
            if not 0 <= f <= last:
                raise ValueError(f"--start-frames {f} is not allowed (allowed: frames 0-{last}, those that leave "
                                 f"--seconds {seconds:g} of the recording to play)")
        return list(chosen)
    return spread_start_frames(frames, frame_dt, seconds, starts).tolist()


class FlygymReplay:
    """One flygym simulation, reset for each start."""

    def __init__(self, adhesion: bool, timestep: float, start: str):
        warnings.filterwarnings("ignore", module="glfw")
        from flygym import Fly, SingleFlySimulation
        from flygym.preprogrammed import all_leg_dofs, get_preprogrammed_pose

        self.angles, self.frame_dt = load_recording()
        self.dofs = list(all_leg_dofs)
        self.adhesion = adhesion
        self.start = start
        self.stretch = get_preprogrammed_pose("stretch")
        self.fly = Fly(init_pose="stretch", actuated_joints=all_leg_dofs, control="position", enable_adhesion=adhesion)
        self.sim = SingleFlySimulation(fly=self.fly, cameras=[], timestep=timestep)
        self.physics = self.sim.physics
        self.timestep = timestep
        self.ctrl_ids = np.asarray(self.physics.bind(self.fly.actuators).element_id)
        self.adhesion_ids = np.asarray(self.physics.bind(self.fly.adhesion_actuators).element_id) if adhesion else None
        self.thorax = self.physics.bind(self.fly.thorax)

    def targets(self, frame: int, steps: int) -> np.ndarray:
        """(steps, 42) targets: the recording at frame's time + k * timestep, as flygym's np.interp gives it."""
        t_in = np.arange(len(self.angles)) * self.frame_dt
        t_out = frame * self.frame_dt + np.arange(steps) * self.timestep
        return np.stack([np.interp(t_out, t_in, self.angles[:, j]) for j in range(self.angles.shape[1])], axis=1)

    def reset(self, frame: int):
        from flygym.state import KinematicPose

        if self.start == "stretch":
            self.fly.init_pose = self.stretch
        else:
            self.fly.init_pose = KinematicPose(dict(zip(self.dofs, self.angles[frame])))
        self.sim.reset()

    def run(self, frame: int, seconds: float) -> dict:
        from dm_control.rl.control import PhysicsError

        steps = int(round(seconds / self.timestep))
        targets = self.targets(frame, steps)
        self.reset(frame)
        data = self.physics.data
        start = np.array(self.thorax.xipos)
        min_cos, height_sum, error = 1.0, 0.0, None
        ctrl = data.ctrl
        for k in range(steps):
            ctrl[self.ctrl_ids] = targets[k]
            if self.adhesion_ids is not None:
                ctrl[self.adhesion_ids] = 1.0
            try:
                self.physics.step()
                # flygym writes ctrl through dm_control's bindings, which marks the physics dirty, so its
                # observations' first read runs mj_forward after every step; that refreshes Newton's warm start
                self.physics.forward()
            except PhysicsError as exc:
                error = f"step {k}: {exc}"
                break
            min_cos = min(min_cos, float(self.thorax.xmat[8]))
            height_sum += float(self.thorax.xipos[2])
        end = np.array(self.thorax.xipos)
        return {"frame": frame, "forward_mm": float(end[0] - start[0]), "lateral_mm": float(end[1] - start[1]),
                "mean_height_mm": height_sum / max(k + 1, 1), "min_upright_cos": min_cos,
                "end_upright_cos": float(self.thorax.xmat[8]),
                "upright": error is None and min_cos > UPRIGHT_COSINE, "error": error}

    def check(self, frame: int, steps: int):
        """The first `steps` steps through flygym's Simulation.step and through run()'s loop give the same qpos."""
        targets = self.targets(frame, steps)
        self.reset(frame)
        for k in range(steps):
            action = {"joints": targets[k]}
            if self.adhesion:
                action["adhesion"] = np.ones(6)
            self.sim.step(action)
        via_flygym = np.array(self.physics.data.qpos)
        self.run(frame, steps * self.timestep)
        direct = np.array(self.physics.data.qpos)
        if not np.array_equal(via_flygym, direct):
            raise SystemExit(f"error: after {steps} steps flygym's Simulation.step and the direct loop differ by "
                             f"{np.abs(via_flygym - direct).max():.3g} in qpos")
        print(f"check: {steps} steps from frame {frame} agree to the bit with flygym's Simulation.step",
              file=sys.stderr)


_worker: FlygymReplay | None = None


def _init_worker(adhesion: bool, timestep: float, start: str):
    global _worker
    _worker = FlygymReplay(adhesion, timestep, start)


def _run_start(job: tuple[int, float]) -> dict:
    return _worker.run(*job)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("flygym")
    except PackageNotFoundError:
        found = None
    if found is None or not found.startswith("1."):
        has = "no flygym" if found is None else f"flygym {found}"
        raise SystemExit(f"error: this interpreter has {has} (allowed: flygym 1.x, e.g. a venv made by "
                         "`pip install flygym==1.2.1`)")
    angles, frame_dt = load_recording()
    try:
        frames = start_frames(len(angles), frame_dt, args.seconds, args.starts, args.start_frames, args.timestep)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    adhesion = args.adhesion == "on"
    if args.check_steps > 0:
        FlygymReplay(adhesion, args.timestep, args.start).check(frames[0], args.check_steps)
    t0 = time.perf_counter()
    jobs = [(f, args.seconds) for f in frames]
    if args.workers == 1:
        _init_worker(adhesion, args.timestep, args.start)
        results = [_run_start(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(
                args.workers, initializer=_init_worker, initargs=(adhesion, args.timestep, args.start)) as pool:
            results = pool.map(_run_start, jobs, chunksize=max(1, len(jobs) // (8 * args.workers)))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["error"] is None]
    upright = sum(r["upright"] for r in results)
    flipped = sum(r["min_upright_cos"] < 0.0 for r in results)  # replay_flygym.py's "flipped (cosine < 0)"
    backs = sum(r["end_upright_cos"] < 0.0 for r in results)
    import mujoco

    summary = {
        "simulator": f"flygym {found} (MuJoCo {mujoco.__version__})",
        "adhesion": args.adhesion, "start": args.start, "seconds": args.seconds, "timestep": args.timestep,
        "starts": len(results), "upright": upright, "flipped": flipped, "ended_on_their_backs": backs,
        "errors": len(results) - len(ok),
        "forward_mm_mean": float(np.mean([r["forward_mm"] for r in ok])) if ok else None,
        "lowest_cos": min(r["min_upright_cos"] for r in results),
        "wall_s": wall, "results": results,
    }
    for r in results:
        if not r["upright"] or r["error"]:
            print(f"frame {r['frame']}: lowest cosine {r['min_upright_cos']:.3f}, forward {r['forward_mm']:.3f} mm"
                  + (f", {r['error']}" if r["error"] else ""), file=sys.stderr)
    print(f"flygym {found}, adhesion {args.adhesion}, {args.start} start, {len(results)} start(s) x {args.seconds} s "
          f"at dt {args.timestep:g}: {upright} upright, {flipped} flipped (cosine < 0), {backs} ending on their "
          f"backs, forward {summary['forward_mm_mean']} mm, lowest cosine {summary['lowest_cos']:.3f} ({wall:.0f} s)")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()

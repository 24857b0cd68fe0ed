"""The whole training loop against the physics alone, one after the other in one call on one device
(issue #16: rl_games' `fps total` x substeps >= 85 % of `physics_throughput.py`'s world-steps/s).

    python benchmarks/loop_efficiency.py                                      # GPU, 4096 worlds, flat ground
    python benchmarks/loop_efficiency.py --terrain curriculum --epochs 80
    python benchmarks/loop_efficiency.py --checkpoint checkpoints/NeuroMechFly_walk.pth   # a trained fly's loop
    python benchmarks/loop_efficiency.py --engine mujoco --worlds 16 --epochs 4 --steps 5 --skip 1   # CPU

First `physics_throughput.measure` (tripod sinusoid, the task's `sim` settings, no policy), then
`train.py` in a subprocess on the same device for --epochs epochs (shipped configs, from scratch, the
terrain's training setup: curriculum levels and domain randomisation as in training), whose `fps total`
lines give env-steps/s: the median over the epochs after the first --skip (kernel compilation and CUDA
graph capture land there). --checkpoint trains on from a policy instead (its weights, normalisers and epoch
count; --epochs more): the loop of a run past its first epochs, whose flies walk where a fresh run's stumble.
Prints one JSON line, every epoch's `fps total` among it. A benchmark that prints numbers, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# rl_games' per-epoch rates (env-steps/s): env.step alone, with the policy's inference, and the whole epoch
# with the PPO update; the first two tell where a loss against the physics lies
RATES = {"env_step": "fps step", "env_step_and_inference": "fps step and policy inference", "total": "fps total"}
TARGET = 0.85
EXPERIMENT = "loop_efficiency"  # train.py's run folder, runs/loop_efficiency, removed afterwards


def epoch_rates(log: str, label: str = "fps total") -> list[float]:
    """rl_games' per-epoch rate `label`, every epoch in order."""
    return [float(v) for v in re.findall(rf"{label}:\s*([0-9.]+)", log)]


def median_fps(log: str, skip: int, label: str = "fps total") -> tuple[float, int]:
    """Median of rl_games' per-epoch rate `label` after the first `skip` epochs, and how many it took."""
    values = epoch_rates(log, label)
    kept = values[skip:]
    if not kept:
        raise ValueError(f"train.py printed {len(values)} '{label}' lines, none after the first {skip} "
                         "(allowed: --epochs larger than --skip)")
    return statistics.median(kept), len(kept)


def train_command(engine: str, worlds: int, terrain: str, epochs: int, sim_device: str,
                  checkpoint: str | None = None, start_epoch: int = 0) -> list[str]:
    """train.py for `epochs` epochs, from scratch or on from `checkpoint`, whose epoch count (`start_epoch`) rl_games
    restores: its max_epochs counts from 0."""
    device = sim_device if engine == "mjwarp" else "cpu"  # the policy where the physics is
    command = [sys.executable, "train.py", "task=NeuroMechFly", "headless=True", f"num_envs={worlds}",
               f"max_iterations={start_epoch + epochs}", f"task.env.terrain.type={terrain}",
               f"physics_engine={engine}", f"sim_device={device}", f"rl_device={device}", f"experiment={EXPERIMENT}"]
    return command + ([f"checkpoint={checkpoint}"] if checkpoint else [])


def train_rate(engine: str, worlds: int, terrain: str, epochs: int, skip: int, sim_device: str,
               checkpoint: str | None = None, start_epoch: int = 0) -> dict:
    """train.py's rates (see train_command)."""
    command = train_command(engine, worlds, terrain, epochs, sim_device, checkpoint, start_epoch)
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    shutil.rmtree(os.path.join(ROOT, "runs", EXPERIMENT), ignore_errors=True)
    if run.returncode != 0:
        tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
        raise RuntimeError(f"train.py exited {run.returncode}: {' | '.join(tail)}")
    medians = {name: median_fps(run.stdout, skip, label) for name, label in RATES.items()}
    return {"env_steps_s": medians["total"][0], "rates": {name: m[0] for name, m in medians.items()},
            "epochs_measured": medians["total"][1], "fps_total_per_epoch": epoch_rates(run.stdout)}


def main() -> None:
    sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]
    from physics_throughput import LOAD_KEYS, measure, task_config

    from physics.terrain import KINDS
    from tasks.base.sim_config import parse_sim

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["mjwarp", "mujoco"], default="mjwarp")
    parser.add_argument("--worlds", type=int, default=4096)
    parser.add_argument("--terrain", default="flat", choices=[*KINDS, "curriculum"])
    parser.add_argument("--steps", type=int, default=50, help="control steps the physics benchmark times")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs")
    parser.add_argument("--skip", type=int, default=10, help="first epochs left out of the median")
    parser.add_argument("--sim-device", default="cuda:0")
    parser.add_argument("--checkpoint", help="train on from this policy (a task=NeuroMechFly checkpoint) instead "
                        "of from scratch")
    args = parser.parse_args()
    for name in ("worlds", "steps", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not allowed (allowed: an integer >= 1)")
    if not 0 <= args.skip < args.epochs:
        parser.error(f"--skip {args.skip} is not allowed (allowed: 0 <= skip < --epochs {args.epochs})")

    start_epoch = 0
    if args.checkpoint:
        from runner.checkpoints import CheckpointError, read_checkpoint
        try:
            start_epoch = int(read_checkpoint(args.checkpoint).get("epoch") or 0)
        except CheckpointError as err:
            parser.error(str(err).replace("checkpoint=", "--checkpoint ", 1))
    task = task_config(args.terrain)  # what train.py will run: its timestep, substeps, solver caps and buffers
    substeps = int(task["env"]["controlFrequencyInv"])
    params = parse_sim(task["sim"], substeps)
    physics = measure(args.engine, args.worlds, args.steps, args.sim_device, params, False, args.terrain)
    try:
        loop = train_rate(args.engine, args.worlds, args.terrain, args.epochs, args.skip, args.sim_device,
                          args.checkpoint, start_epoch)
    except (RuntimeError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    loop_world_steps = loop["env_steps_s"] * substeps
    efficiency = loop_world_steps / physics["world_steps_s"]
    print(json.dumps({"device": physics["device"], "engine": args.engine, "worlds": args.worlds,
                      "terrain": args.terrain, "physics_world_steps_s": round(physics["world_steps_s"]),
                      **{f"physics_{k}": round(physics[k], 1) for k in LOAD_KEYS},
                      "train_env_steps_s": round(loop["env_steps_s"]), "train_world_steps_s": round(loop_world_steps),
                      "checkpoint": args.checkpoint, "start_epoch": start_epoch,
                      "epochs_measured": loop["epochs_measured"], "efficiency": round(efficiency, 3),
                      **{f"efficiency_{name}": round(rate * substeps / physics["world_steps_s"], 3)
                         for name, rate in loop["rates"].items() if name != "total"},
                      "target": TARGET, "met": efficiency >= TARGET,
                      "fps_total_per_epoch": loop["fps_total_per_epoch"]}))


if __name__ == "__main__":
    main()

"""Where one control step of the task goes: physics against the task's own work, on the GPU's clock and the host's.

    python benchmarks/step_profile.py                          # GPU, 4096 worlds, flat ground
    python benchmarks/step_profile.py --terrain curriculum
    python benchmarks/step_profile.py --terrain curriculum --eager-task    # the task's CUDA graphs off
    python benchmarks/step_profile.py --checkpoint checkpoints/NeuroMechFly_walk.pth   # a trained fly, not a fresh one
    python benchmarks/step_profile.py --engine mujoco --worlds 16 --steps 5   # CPU (host times only)

Builds the task as train.py does (its config, domain randomisation on, the curriculum's levels) and steps it
with actions from a policy-sized MLP (the train config's units, random weights, the training noise), then:
per phase (policy inference, pre_physics_step, physics, post_physics_step) the host's time to issue it and
the GPU's time from its start to its end (CUDA events on torch's stream, so a phase whose kernels wait for
the host counts that wait), the whole step's wall time, the physics alone (the same engine stepped in a
loop with nothing between), the solver's load (mean contacts, rows, iterations per world), and per step the
CUDA kernels that ran (the physics graph's among them) and the kernel launches the host issued (the task's and
the policy's torch ops; the graph is one launch), from torch's profiler. On MuJoCo Warp also the slowest world's
Newton iterations per physics step: in the CUDA graph's conditional loop every world waits for it (those steps run
eagerly, one host read each). --checkpoint acts with a trained policy's mean plus its own exploration noise instead
of the random MLP (a run past its first epochs). Prints one JSON line. A benchmark that prints numbers, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ("inference", "pre_physics", "physics", "post_physics")


def build_task(cfg: dict, engine: str, worlds: int, sim_device: str, randomize: bool):
    from tasks import isaacgym_task_map

    cfg["env"]["numEnvs"] = worlds
    cfg["env"]["randomization"]["enabled"] = randomize
    cfg["physics_engine"] = engine
    device = sim_device if engine == "mjwarp" else "cpu"
    return isaacgym_task_map["NeuroMechFly"](cfg=cfg, rl_device=device, sim_device=device, graphics_device_id=0,
                                             headless=True)


def policy(num_obs: int, num_actions: int, mlp_units: list[int], device) -> torch.nn.Module:
    layers, width = [], num_obs
    for units in mlp_units:
        layers += [torch.nn.Linear(width, units), torch.nn.ELU()]
        width = units
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, num_actions)).to(device)


def slowest_world(task, act, obs: torch.Tensor, steps: int) -> tuple[dict, torch.Tensor]:
    """MuJoCo Warp: per physics step the Newton iterations of the slowest world, over `steps` control steps taken
    eagerly (the engine's step_eagerly: the graph's steps launched one by one, each followed by a host read)."""
    import warp as wp

    engine = task.physics
    cap = int(engine.warp_model.opt.iterations)
    niter = wp.to_torch(engine.warp_data.solver_niter)
    slowest, at_cap = [], 0

    def record() -> None:
        nonlocal at_cap
        wp.synchronize()
        n = niter.cpu()
        slowest.append(int(n.max()))
        at_cap += int((n >= cap).sum())

    for _ in range(steps):
        task.pre_physics_step(torch.clamp(act(obs), -task.clip_actions, task.clip_actions))
        engine.step_eagerly(record)
        task.post_physics_step()
        obs = torch.clamp(task.obs_buf, -task.clip_obs, task.clip_obs)
    worst = torch.tensor(slowest, dtype=torch.float32)
    return {"newton_cap": cap, "newton_slowest_world": round(float(worst.mean()), 2),
            "physics_steps_slowest_at_cap": round(float((worst >= cap).float().mean()), 4),
            "world_steps_at_cap": round(at_cap / (len(slowest) * task.num_envs), 5)}, obs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["mjwarp", "mujoco"], default="mjwarp")
    parser.add_argument("--worlds", type=int, default=4096)
    parser.add_argument("--terrain", default="flat")
    parser.add_argument("--steps", type=int, default=40, help="control steps timed")
    parser.add_argument("--warmup", type=int, default=20, help="control steps before timing")
    parser.add_argument("--sim-device", default="cuda:0")
    parser.add_argument("--actions", choices=["policy", "zero"], default="policy",
                        help="policy: the MLP plus training noise; zero: the gait reference alone")
    parser.add_argument("--no-randomization", action="store_true", help="domain randomisation off")
    parser.add_argument("--checkpoint", help="act with this policy (task=NeuroMechFly) and its exploration noise")
    parser.add_argument("--eager-task", action="store_true",
                        help="the task's CUDA graphs off (common/cuda_graph.py): its torch work issued op by op")
    args = parser.parse_args()
    sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]
    from physics_throughput import LOAD_KEYS, run_config, solver_load

    for name in ("worlds", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not allowed (allowed: an integer >= 1)")

    if args.checkpoint:  # the file before the task is built; whether it fits the task after
        from runner.checkpoints import CheckpointError, read_checkpoint
        try:
            state = read_checkpoint(args.checkpoint)
        except CheckpointError as err:
            parser.error(str(err).replace("checkpoint=", "--checkpoint ", 1))
    if args.eager_task:
        from common.cuda_graph import GraphedCall
        GraphedCall.enabled = False
    cfg = run_config(args.terrain)
    task = build_task(cfg["task"], args.engine, args.worlds, args.sim_device, not args.no_randomization)
    dev = task.device
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    net = policy(task.num_obs, task.num_actions, cfg["train"]["params"]["network"]["mlp"]["units"], dev)
    if args.checkpoint:
        from analysis.evaluation import PolicyActor
        from runner.checkpoints import action_meaning, check_checkpoint_fits

        try:
            check_checkpoint_fits(state, args.checkpoint, task.num_obs, task.num_actions, action_meaning(task))
        except CheckpointError as err:
            parser.error(str(err).replace("checkpoint=", "--checkpoint ", 1))
        trained = PolicyActor(cfg["train"]["params"], state, task.num_obs, task.num_actions, dev)
        sigma = state["model"]["a2c_network.sigma"].exp().to(dev)  # rl_games' fixed_sigma: log std per action
    obs = task.reset()["obs"]
    resets = 0

    def act(o: torch.Tensor) -> torch.Tensor:
        if args.actions == "zero":
            return torch.zeros((o.shape[0], task.num_actions), device=dev)
        noise = torch.randn((o.shape[0], task.num_actions), device=dev)
        if args.checkpoint:
            return (trained(o) + sigma * noise).clamp(-1, 1)
        with torch.no_grad():
            return (net(o) * 0.01 + 0.135 * noise).clamp(-1, 1)

    def step(o: torch.Tensor, marks: list | None, host: dict | None) -> torch.Tensor:
        nonlocal resets
        clock = [time.perf_counter()]

        def mark() -> None:
            if marks is not None:
                marks.append(torch.cuda.Event(enable_timing=True))
                marks[-1].record()
            clock.append(time.perf_counter())

        mark()
        actions = act(o)
        mark()
        task.pre_physics_step(torch.clamp(actions, -task.clip_actions, task.clip_actions))
        mark()
        task.physics_step()
        mark()
        task.post_physics_step()
        mark()
        if host is not None:
            resets += int(task.reset_buf.sum())
            for i, name in enumerate(PHASES):
                host[name] += clock[i + 2] - clock[i + 1]
        return torch.clamp(task.obs_buf, -task.clip_obs, task.clip_obs)

    for _ in range(args.warmup):
        obs = step(obs, None, None)
    sync()

    # the whole step, timed on the host over all steps (no extra syncs but the task's own)
    start = time.perf_counter()
    for _ in range(args.steps):
        obs = step(obs, None, None)
    sync()
    wall = (time.perf_counter() - start) / args.steps

    # per phase: GPU spans from events, host issue times (this pass adds one host read per step for resets)
    host = dict.fromkeys(PHASES, 0.0)
    gpu = dict.fromkeys(PHASES, 0.0)
    for _ in range(args.steps):
        marks = [] if cuda else None
        obs = step(obs, marks, host)
        if cuda:
            sync()
            for i, name in enumerate(PHASES):
                gpu[name] += marks[i].elapsed_time(marks[i + 1]) / 1e3

    # the physics alone, as physics_throughput steps it
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        task.physics_step()
    sync()
    physics_alone = (time.perf_counter() - start) / args.steps

    # what the solver worked on: mean contacts, rows and iterations per world, after each control step
    load = torch.zeros(3)
    for _ in range(args.steps):
        obs = step(obs, None, None)
        load += solver_load(task.physics, *task.physics.buffer_usage()) / args.steps

    batch = {}
    if args.engine == "mjwarp":
        batch, obs = slowest_world(task, act, obs, args.steps)

    # kernels that ran per step, and launches the host issued (the physics graph is one cudaGraphLaunch)
    if cuda:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                obs = step(obs, None, None)
            sync()
        events = prof.key_averages()
        kernels = sum(e.count for e in events if e.device_type == torch.autograd.DeviceType.CUDA) / 5
        launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel")) / 5
        graphs = sum(e.count for e in events if e.key == "cudaGraphLaunch") / 5

    ms = lambda s: round(1e3 * s, 2)  # noqa: E731
    out = {"engine": args.engine, "worlds": args.worlds, "terrain": args.terrain, "steps": args.steps,
           "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
           "step_ms": ms(wall), "physics_alone_ms": ms(physics_alone),
           "physics_share_of_step": round(physics_alone / wall, 3),
           "host_ms": {k: ms(v / args.steps) for k, v in host.items()},
           "resets_per_step": round(resets / args.steps, 1), "actions": args.actions, "checkpoint": args.checkpoint,
           "eager_task": args.eager_task,
           "randomization": not args.no_randomization, **dict(zip(LOAD_KEYS, [round(v, 1) for v in load.tolist()])),
           **batch}
    if cuda:
        out["gpu_ms"] = {k: ms(v / args.steps) for k, v in gpu.items()}
        out["cuda_kernels_per_step"] = kernels
        out["kernel_launches_per_step"] = launches
        out["graph_launches_per_step"] = graphs
    print(json.dumps(out))
    task.close()


if __name__ == "__main__":
    main()

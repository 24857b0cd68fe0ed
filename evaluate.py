"""Measure a walking controller on NeuroMechFly and print one JSON object of tracking and gait metrics.

    python evaluate.py task=NeuroMechFly checkpoint=checkpoints/NeuroMechFly_walk.pth num_envs=8 \
        sim_device=cpu rl_device=cpu task.env.commands.forwardSpeed=[10.0,10.0] task.env.commands.yawRate=[1.0,1.0]
    python evaluate.py task=NeuroMechFly checkpoint=PATH +mode=grid num_envs=1024      # the command grid
    python evaluate.py task=NeuroMechFly checkpoint=PATH +mode=target num_envs=64      # walking to targets
    python evaluate.py task=NeuroMechFly +controller=zero                              # the gait reference alone
    python evaluate.py task=NeuroMechFly +controller=cpg num_envs=64                   # the CPG baseline
    python evaluate.py task=NeuroMechFly checkpoint=PATH task.env.terrain.type=gapped  # rough ground

    python evaluate.py task=Ant checkpoint=runs/Ant/nn/Ant.pth num_envs=64                 # other tasks: returns

Same Hydra config and overrides as train.py. The policy acts deterministically (its mean action).
Commands are fixed for each episode: drawn from task.env.commands' ranges (standing/turning/straight
shares off), or the grid's cells (+mode=grid: forward {0,5,...,30} mm/s x yaw {-2,...,2} rad/s,
worlds spread evenly over the cells), or set every step by a heading controller (+mode=target).
Terrain: task.env.terrain.type (flat, gapped, blocks, mixed, or curriculum: worlds spread evenly over every kind
and level, frozen, with one summary per kind under "terrains"; task.env.terrain.levels=1 puts every kind at full
difficulty, so one run measures every arena). Domain randomisation is off unless +randomize=True.
Extra keys: +controller=policy|zero|cpg, +mode=commands|grid|target, +episodes=N (per world, default 1),
+action_noise=STD (Gaussian noise on every action, as while training), +randomize=True|False,
+gait_plot=PATH (stance/swing diagram of world 0), +cpg_frequency=HZ (default 12),
+phase_bins=N (adds "phase_profile": load contact, foot down and load per bin of the gait reference's cycle,
pooled over legs and worlds; use one command for all worlds, e.g. forwardSpeed=[5.0,5.0]).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import hydra
import numpy as np
from omegaconf import DictConfig

from runner.config import check_task_argument, register_resolvers, set_seed, to_dict, validate_config

CONTROLLERS = ("policy", "zero", "cpg")
MODES = ("commands", "grid", "target")
GRID_SPEEDS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
GRID_YAW_RATES = (-2.0, -1.0, 0.0, 1.0, 2.0)
USER_ERRORS = (ValueError, ImportError, RuntimeError)


def grid_cells() -> list[tuple[float, float]]:
    return [(v, w) for v in GRID_SPEEDS for w in GRID_YAW_RATES]


def _checked_options(cfg: DictConfig, controllers: tuple[str, ...], modes: tuple[str, ...]) -> tuple[str, str, int]:
    """controller, mode and episodes of `cfg` (one-line errors), after every config value is checked."""
    controller = str(cfg.get("controller", "policy"))
    if controller not in controllers:
        raise ValueError(f"controller={controller} is not allowed for task={cfg.task_name} "
                         f"(allowed: {', '.join(controllers)})")
    mode = str(cfg.get("mode", "commands"))
    if mode not in modes:
        raise ValueError(f"mode={mode} is not allowed for task={cfg.task_name} (allowed: {', '.join(modes)})")
    if controller == "policy" and not cfg.checkpoint:
        others = ", ".join(f"+controller={c}" for c in controllers if c != "policy")
        raise ValueError(f"checkpoint= is empty (allowed: a policy checkpoint, or {others})")
    episodes = cfg.get("episodes", 1)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is not allowed (allowed: an integer >= 1)")
    phase_bins = cfg.get("phase_bins", 0)
    if isinstance(phase_bins, bool) or not isinstance(phase_bins, int) or phase_bins == 1 or phase_bins < 0:
        raise ValueError(f"phase_bins={phase_bins!r} is not allowed (allowed: an integer >= 2, or 0 for none)")
    if phase_bins and controller == "cpg":
        raise ValueError("phase_bins with controller=cpg is not allowed: the CPG keeps its own clock, not the gait "
                         "reference's (allowed: +controller=policy or zero)")
    validate_config(cfg)
    set_seed(cfg.seed, cfg.torch_deterministic)
    return controller, mode, episodes


def _make_task(cfg: DictConfig, task_cfg: dict):
    from tasks import isaacgym_task_map

    return isaacgym_task_map[cfg.task_name](
        cfg=task_cfg, rl_device=cfg.rl_device, sim_device=cfg.sim_device,
        graphics_device_id=cfg.graphics_device_id, headless=True)


def _make_actor(cfg: DictConfig, env, controller: str):
    from analysis.evaluation import CPGActor, PolicyActor, ZeroActor
    from runner.checkpoints import action_meaning, check_checkpoint

    if controller == "cpg":
        return CPGActor(env, frequency_hz=float(cfg.get("cpg_frequency", 12.0)))
    if controller == "zero":
        return ZeroActor(env)
    state = check_checkpoint(cfg.checkpoint, env.num_obs, env.num_actions, action_meaning(env))
    return PolicyActor(to_dict(cfg.train)["params"], state, env.num_obs, env.num_actions, env.device)


def _describe(cfg: DictConfig, env, controller: str, start: float) -> dict:
    from physics import default_engine

    return {"controller": controller, "checkpoint": cfg.checkpoint if controller == "policy" else None,
            "physics_engine": cfg.physics_engine or default_engine(env.sim_device), "num_envs": env.num_envs,
            "sim_device": str(env.sim_device), "wall_seconds": time.perf_counter() - start}


def build(cfg: DictConfig):
    """The fly task (fixed commands) and the actor that `cfg` asks for."""
    import torch

    from analysis.evaluation import NoisyActor
    from analysis.target import TargetCourse

    controller, mode, episodes = _checked_options(cfg, CONTROLLERS, MODES)
    task_cfg = to_dict(cfg.task)
    commands = task_cfg["env"]["commands"]
    for share in ("standingShare", "turnInPlaceShare", "straightShare"):
        commands[share] = 0.0  # each episode exactly the commanded ranges
    if mode == "target":
        task_cfg["env"]["episodeLength_s"] = TargetCourse.episode_seconds()
    if controller == "cpg":  # the CPG commands joint targets itself, not residuals on the gait reference
        task_cfg["env"]["gait"]["reference"] = False
    randomize = cfg.get("randomize", False)
    if not isinstance(randomize, bool):
        raise ValueError(f"randomize={randomize!r} is not allowed (allowed: True or False)")
    task_cfg["env"]["randomization"]["enabled"] = randomize
    env = _make_task(cfg, task_cfg)
    env.spread_over_terrain()
    if mode == "grid":
        cells = torch.tensor(grid_cells(), device=env.device)
        cell = torch.arange(env.num_envs, device=env.device) % len(cells)
        env.hold_commands(cells[cell, 0], cells[cell, 1])
    else:
        env.hold_commands()
    actor = _make_actor(cfg, env, controller)
    noise = cfg.get("action_noise", 0.0)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"action_noise={noise!r} is not allowed (allowed: a number >= 0, the std of Gaussian "
                         "noise added to every action, as PPO explores)")
    if noise > 0:
        actor = NoisyActor(actor, float(noise))
    return env, actor, controller, mode, episodes


def run_other_task(cfg: DictConfig) -> dict:
    """A task other than the fly's (e.g. Ant): returns and lengths of whole episodes, the task's
    episode terms, physics faults."""
    from analysis.evaluation import rounded, run_returns

    controller, _, episodes = _checked_options(cfg, ("policy", "zero"), ("commands",))
    env = _make_task(cfg, to_dict(cfg.task))
    actor = _make_actor(cfg, env, controller)
    start = time.perf_counter()
    summary = run_returns(env, actor, episodes)
    summary.update({"task": cfg.task_name, **_describe(cfg, env, controller, start)})
    return rounded(summary)


def run(cfg: DictConfig) -> tuple[dict, dict, object]:
    """Evaluate; returns the JSON summary, the raw result (per-episode records, stance) and the task."""
    from analysis.evaluation import gait_summary, rounded, run_episodes, summarize
    from analysis.target import TargetCourse
    from physics.terrain import KIND_INDEX

    env, actor, controller, mode, episodes = build(cfg)
    course = TargetCourse(env) if mode == "target" else None
    start = time.perf_counter()
    phase_bins = int(cfg.get("phase_bins", 0))
    result = run_episodes(env, actor, 1 if course else episodes, course=course, record_phase=phase_bins > 0)
    metrics = lambda worlds=None: {**summarize(result, worlds), **gait_summary(result, worlds)}  # noqa: E731
    summary = metrics()
    if course is not None:  # commands change every step: tracking errors against them mean nothing
        for key in ("speed_tracking_error_mm_s", "yaw_tracking_error_rad_s", "standing_drift_mm_s"):
            summary.pop(key, None)
        summary.update(course.summary())
    if phase_bins:
        from analysis.gait import phase_profile

        summary["phase_profile"] = {
            "reference_swing_fraction": round(float(env.gait.swing_fraction().mean()), 4),
            **phase_profile(result["phase"], result["stance"], result["grounded"], result["load"], result["valid"],
                            phase_bins)}
    if mode == "grid":
        cells = []
        for i, (v, w) in enumerate(grid_cells()):
            worlds = np.arange(i, env.num_envs, len(grid_cells()))
            if len(worlds) == 0:
                continue
            cells.append(rounded({"cmd_speed_mm_s": v, "cmd_yaw_rate_rad_s": w, **metrics(worlds)}))
        summary["cells"] = cells
    if env.cfg_t.terrain.curriculum:  # one summary per kind, over its worlds (all its levels)
        kinds = env.terrain.kind.cpu().numpy()
        summary["terrains"] = {}
        for name in env.cfg_t.terrain.kinds:
            worlds = np.flatnonzero(kinds == KIND_INDEX[name])
            if len(worlds):
                summary["terrains"][name] = rounded(metrics(worlds))
    summary.update({"mode": mode, "terrain": env.cfg_t.terrain.type, "leg_collision": env.cfg_t.leg_collision,
                    **_describe(cfg, env, controller, start)})
    if mode == "commands":
        speed, yaw = env.cfg_t.commands.forward_speed, env.cfg_t.commands.yaw_rate
        summary["commanded_forward_speed_mm_s"], summary["commanded_yaw_rate_rad_s"] = list(speed), list(yaw)
    if cfg.get("gait_plot"):
        from analysis.evaluation import plot_gait

        plot_gait(result["stance"], result["dt"], str(cfg.gait_plot),
                  title=f"{controller}: {summary['forward_speed_mm_s']:.1f} mm/s, "
                        f"{summary['step_frequency_hz']:.1f} Hz, duty {summary['duty_factor']:.2f}")
    return rounded(summary), result, env


@contextlib.contextmanager
def stdout_to_stderr():
    """Send whatever is written to stdout inside to stderr, from Python (Warp's start-up and module-load lines,
    rl_games' model printout) and from C or CUDA (MuJoCo Warp's kernel printf), so that stdout carries the JSON
    alone and `evaluate.py ... > result.json` or a pipe into a JSON reader works on every engine."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@hydra.main(version_base="1.3", config_path="cfg", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        with stdout_to_stderr():
            summary = run(cfg)[0] if cfg.task_name == "NeuroMechFly" else run_other_task(cfg)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"error: {message}") from None
    print(json.dumps(summary))


if __name__ == "__main__":
    check_task_argument(sys.argv[1:])
    register_resolvers()
    main()

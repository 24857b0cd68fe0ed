"""Measure a walking controller on NeuroMechFly and print one JSON object of gait metrics.

    python evaluate.py task=NeuroMechFly checkpoint=checkpoints/NeuroMechFly_walk.pth num_envs=4 sim_device=cpu rl_device=cpu
    python evaluate.py task=NeuroMechFly +controller=cpg num_envs=64            # the CPG baseline
    python evaluate.py task=NeuroMechFly checkpoint=PATH +gait_plot=gait.png +episodes=2

Same Hydra config and overrides as train.py. The policy acts deterministically (its mean action).
Extra keys: +controller=policy|cpg, +episodes=N (full-length episodes per world, default 1),
+gait_plot=PATH (stance/swing diagram of world 0), +cpg_frequency=HZ (default 12).
"""
from __future__ import annotations

import json
import sys
import time

import hydra
from omegaconf import DictConfig

from runner.config import check_task_argument, register_resolvers, set_seed, to_dict

CONTROLLERS = ("policy", "cpg")
USER_ERRORS = (ValueError, ImportError, RuntimeError)


def run(cfg: DictConfig) -> dict:
    from physics import default_engine
    from runner.evaluation import CPGActor, PolicyActor, plot_gait, run_episodes, summarize
    from runner.rl_games_glue import check_checkpoint
    from tasks import isaacgym_task_map

    controller = str(cfg.get("controller", "policy"))
    if controller not in CONTROLLERS:
        raise ValueError(f"controller={controller} is unknown; allowed: {', '.join(CONTROLLERS)}")
    if controller == "policy" and not cfg.checkpoint:
        raise ValueError("checkpoint= is empty; give a policy checkpoint, or +controller=cpg for the CPG baseline")
    episodes = cfg.get("episodes", 1)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} must be a positive integer")

    set_seed(cfg.seed, cfg.torch_deterministic)
    task_cfg = to_dict(cfg.task)
    if controller == "cpg":  # the CPG commands joint targets itself, not residuals on the task's gait clock
        task_cfg["env"]["gait"]["reference"] = False
    env = isaacgym_task_map[cfg.task_name](
        cfg=task_cfg, rl_device=cfg.rl_device, sim_device=cfg.sim_device,
        graphics_device_id=cfg.graphics_device_id, headless=True)
    if controller == "cpg":
        actor = CPGActor(env, frequency_hz=float(cfg.get("cpg_frequency", 12.0)))
    else:
        state = check_checkpoint(cfg.checkpoint, env.num_obs, env.num_actions)
        actor = PolicyActor(to_dict(cfg.train)["params"], state, env.num_obs, env.num_actions, env.device)

    start = time.perf_counter()
    result = run_episodes(env, actor, episodes)
    summary = summarize(result)
    summary.update({
        "controller": controller, "checkpoint": cfg.checkpoint if controller == "policy" else None,
        "physics_engine": cfg.physics_engine or default_engine(env.sim_device),
        "num_envs": env.num_envs, "sim_device": str(env.sim_device),
        "wall_seconds": round(time.perf_counter() - start, 2)})
    if cfg.get("gait_plot"):
        plot_gait(result["stance"], result["dt"], str(cfg.gait_plot),
                  title=f"{controller}: {summary['forward_speed_mm_s']:.1f} mm/s, "
                        f"{summary['step_frequency_hz']:.1f} Hz, duty {summary['duty_factor']:.2f}")
    return summary


@hydra.main(version_base="1.3", config_path="cfg", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        summary = run(cfg)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"error: {message}") from None
    print(json.dumps(summary))


if __name__ == "__main__":
    check_task_argument(sys.argv[1:])
    register_resolvers()
    main()

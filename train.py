"""Train or play NeuroMechFly with rl_games PPO, the IsaacGymEnvs way.

    python train.py task=NeuroMechFly                      # train (GPU: MuJoCo Warp)
    python train.py task=NeuroMechFly sim_device=cpu rl_device=cpu num_envs=16
    python train.py task=NeuroMechFly test=True checkpoint=runs/NeuroMechFly/nn/NeuroMechFly.pth
    torchrun --standalone --nnodes=1 --nproc_per_node=2 train.py task=NeuroMechFly multi_gpu=True
"""
from __future__ import annotations

import os
import signal
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from runner import wandb_logging
from runner.config import (central_value_config, check_task_argument, divisor_at_most, register_resolvers,
                           set_determinism, set_seed, to_dict, validate_config)

USER_ERRORS = (ValueError, ImportError, RuntimeError)


def run(cfg: DictConfig) -> None:
    from physics import resolve_device
    from runner import distributed
    from runner.checkpoints import action_meaning, check_checkpoint_fits, read_checkpoint

    # Fail fast, before importing rl_games or building physics: value types and ranges, torchrun's
    # ranks, devices, the checkpoint file.
    validate_config(cfg)
    use_wandb = wandb_logging.check(cfg)  # wandb_activate=True (training): wandb must import
    ranks = distributed.torchrun_ranks(cfg.multi_gpu, cfg.test)
    for key in ("sim_device", "rl_device"):  # multi_gpu: each rank its own GPU, cuda:<LOCAL_RANK>
        cfg[key] = distributed.rank_device(cfg[key], ranks)
        distributed.check_rank_device(cfg[key], key, ranks)
        resolve_device(cfg[key], key)
    if ranks.multi_gpu:
        cfg.graphics_device_id = ranks.local_rank
    checkpoint = read_checkpoint(cfg.checkpoint) if cfg.checkpoint else None

    from rl_games.torch_runner import Runner

    from runner.rl_games_glue import (EpisodeLogger, StopRequest, patch_rl_games_checkpoint_io, register_agents,
                                      register_env)
    from tasks import isaacgym_task_map

    cfg.seed = set_seed(cfg.seed, cfg.torch_deterministic, ranks.rank)  # each rank its own seed: seed + rank
    task_cfg = to_dict(cfg.task)
    env = None

    def create_env():
        nonlocal env
        if env is None:
            env = isaacgym_task_map[cfg.task_name](
                cfg=task_cfg, rl_device=cfg.rl_device, sim_device=cfg.sim_device,
                graphics_device_id=cfg.graphics_device_id, headless=cfg.headless,
                virtual_screen_capture=False, force_render=False)
        return env

    create_env()  # build (and validate) the task before rl_games creates run folders
    if checkpoint is not None:
        check_checkpoint_fits(checkpoint, cfg.checkpoint, env.num_obs, env.num_actions, action_meaning(env))
    patch_rl_games_checkpoint_io()
    register_env(create_env)

    rlg = to_dict(cfg.train)
    rlg["params"]["seed"] = cfg.seed - ranks.rank  # rl_games' Runner adds the rank itself
    config = rlg["params"]["config"]
    batch = config["horizon_length"] * env.num_envs
    config["minibatch_size"] = divisor_at_most(batch, config["minibatch_size"])
    central = central_value_config(config, env.num_states)
    if central is not None:
        central["minibatch_size"] = divisor_at_most(batch, central["minibatch_size"])
    run_dir = os.path.join("runs", config["full_experiment_name"])
    from runner.video import attach_video_and_viewer

    # capture_video, +video_path and the viewer (play, headless=False); env stays unwrapped otherwise.
    # Rank 0 writes every file of the run (rl_games: checkpoints and summaries; here: videos, config).
    if ranks.is_writer:
        env = attach_video_and_viewer(env, cfg, run_dir)
    if not cfg.test and ranks.is_writer:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))
        print(f"run folder: {run_dir} (checkpoints in {run_dir}/nn, TensorBoard in {run_dir}/summaries)")

    distributed.init_process_group(ranks, cfg.rl_device)  # multi_gpu: gloo on the CPU, NCCL on CUDA
    observer = EpisodeLogger()
    if use_wandb and ranks.is_writer:  # one W&B run, rank 0's: it writes the summaries that wandb syncs
        observer = wandb_logging.MultiObserver([observer, wandb_logging.WandbObserver(cfg, run_dir)])
    runner = Runner(observer)
    set_determinism(cfg.torch_deterministic)  # Runner() has just turned TF32 and cudnn.benchmark on
    stop_request = None
    if not cfg.test:  # training: a signal saves a checkpoint at the end of the epoch
        stop_request = StopRequest()
        stop_request.install()
    register_agents(runner, stop_request)
    runner.load(rlg)
    runner.reset()
    runner.run({"train": not cfg.test, "play": cfg.test, "checkpoint": cfg.checkpoint or None,
                "sigma": float(cfg.sigma) if cfg.sigma != "" else None})


@hydra.main(version_base="1.3", config_path="cfg", config_name="config")
def main(cfg: DictConfig) -> None:
    from runner.checkpoints import TrainingInterrupted
    from runner.distributed import shutdown

    try:
        run(cfg)
    except TrainingInterrupted as stop:
        name = signal.Signals(stop.signum).name
        rank = int(os.environ.get("RANK", "0")) if cfg.multi_gpu else 0
        if rank != 0:
            print(f"interrupted by {name}: rank {rank} stopped after epoch {stop.epoch} (rank 0 saves)",
                  file=sys.stderr)
        elif stop.checkpoint:
            print(f"interrupted by {name} after epoch {stop.epoch}: saved {stop.checkpoint} "
                  f"(resume with checkpoint={stop.checkpoint})", file=sys.stderr)
        else:
            print(f"interrupted by {name}: no epoch finished since the start, nothing new saved", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except KeyboardInterrupt:  # before training started, or in play mode: nothing to save
        print("interrupted by SIGINT", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"error: {message}") from None
    finally:
        shutdown()  # multi_gpu: leave the process group


if __name__ == "__main__":
    check_task_argument(sys.argv[1:])
    register_resolvers()
    main()

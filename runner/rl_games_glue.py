"""Glue between a VecTask and rl_games 1.6.5: env registration, TensorBoard logging of the
task's episode terms, checkpoint I/O that is atomic and never runs pickled code, and a PPO agent
that stops cleanly on SIGINT/SIGTERM and resumes with its learning rate and best reward."""
from __future__ import annotations

import os
import re
from collections import defaultdict

import numpy as np
import torch
from rl_games.algos_torch import torch_ext
from rl_games.algos_torch.a2c_continuous import A2CAgent
from rl_games.algos_torch.players import PpoPlayerContinuous
from rl_games.common import env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver

from .checkpoints import CheckpointError, StopRequest, TrainingInterrupted, atomic_save, check_checkpoint, safe_load

__all__ = ["CheckpointError", "EpisodeLogger", "check_checkpoint", "ResumableA2CAgent", "StopRequest", "TrainingInterrupted",
           "patch_rl_games_checkpoint_io", "register_agents", "register_env"]

def _load_into_model(load, path: str) -> None:
    """Run rl_games' restore; a network that does not fit (other layer sizes) is one CheckpointError line."""
    try:
        load()
    except RuntimeError as exc:
        detail = re.search(r"size mismatch for [^\n]*|Missing key\(s\)[^\n]*|Unexpected key\(s\)[^\n]*", str(exc))
        if detail is None:
            raise
        raise CheckpointError(f"checkpoint={path} does not fit this network ({detail.group(0)[:200]}) "
                              "(allowed: a checkpoint trained with the same train.params.network)") from None


def patch_rl_games_checkpoint_io() -> None:
    """rl_games calls torch_ext.safe_save / safe_load for every checkpoint; route them through ours."""
    torch_ext.safe_save = atomic_save
    torch_ext.safe_load = safe_load


class ResumableA2CAgent(A2CAgent):
    """rl_games' continuous PPO agent, plus:
    - on a stop request, a checkpoint `nn/last_<name>_ep_<E>_interrupted.pth` at the epoch boundary;
    - checkpoints that also hold the learning rate and entropy coefficient the schedule reached
      (rl_games restarts both from the config), restored on resume;
    - the restored best reward kept (rl_games' train() resets it, so a resumed run would overwrite
      the best checkpoint with its first, possibly worse, one)."""

    stop_request: StopRequest | None = None

    def __init__(self, base_name, params):
        super().__init__(base_name, params)
        self._start_epoch = self.epoch_num
        self._restored_best = None

    def get_full_state_weights(self):
        state = super().get_full_state_weights()
        state["last_lr"] = float(self.last_lr)
        state["entropy_coef"] = float(self.entropy_coef)
        return state

    def set_full_state_weights(self, weights, set_epoch=True):
        super().set_full_state_weights(weights, set_epoch)
        # checkpoints from plain rl_games lack last_lr: the optimiser's saved lr is the same number
        self.last_lr = float(weights.get("last_lr", self.optimizer.param_groups[0]["lr"]))
        self.entropy_coef = float(weights.get("entropy_coef", self.entropy_coef))
        self.update_lr(self.last_lr)
        self._start_epoch = self.epoch_num
        self._restored_best = self.last_mean_rewards

    def restore(self, fn, set_epoch=True):
        _load_into_model(lambda: super(ResumableA2CAgent, self).restore(fn, set_epoch), fn)

    def update_epoch(self):
        # Called at the top of rl_games' training loop, i.e. after the previous epoch and its saves.
        if self.epoch_num == self._start_epoch and self._restored_best is not None:
            self.last_mean_rewards = self._restored_best
        stop = self.stop_request
        if stop is not None and stop.signum is not None:
            path = None
            if self.epoch_num > self._start_epoch:  # else nothing new to save
                path = os.path.join(self.nn_dir, f"last_{self.config['name']}_ep_{self.epoch_num}_interrupted")
                self.save(path)
                path += ".pth"
            raise TrainingInterrupted(stop.signum, path, self.epoch_num)
        return super().update_epoch()


class CheckedPlayer(PpoPlayerContinuous):
    """rl_games' player, with a one-line error for a checkpoint of another network."""

    def restore(self, fn):
        _load_into_model(lambda: super(CheckedPlayer, self).restore(fn), fn)


def register_agents(runner, stop_request: StopRequest | None) -> None:
    ResumableA2CAgent.stop_request = stop_request
    runner.algo_factory.register_builder("a2c_continuous", lambda **kwargs: ResumableA2CAgent(**kwargs))
    runner.player_factory.register_builder("a2c_continuous", lambda **kwargs: CheckedPlayer(**kwargs))


class RLGPUEnv(vecenv.IVecEnv):
    """rl_games' view of a VecTask (the role IsaacGymEnvs' RLGPUEnv plays)."""

    def __init__(self, config_name: str, num_actors: int, **kwargs):
        self.env = env_configurations.configurations[config_name]["env_creator"](**kwargs)

    def step(self, actions):
        return self.env.step(actions)

    def reset(self):
        return self.env.reset()

    def reset_done(self):
        return self.env.reset(), {}

    def get_number_of_agents(self):
        return 1

    def get_env_info(self):
        return {"action_space": self.env.action_space, "observation_space": self.env.observation_space,
                "agents": 1, "value_size": 1}

    def set_train_info(self, env_frames, *args, **kwargs):
        pass

    def get_env_state(self):
        return None

    def set_env_state(self, env_state):
        pass


def register_env(create_env) -> None:
    env_configurations.register("rlgpu", {"vecenv_type": "RLGPU", "env_creator": lambda **kwargs: create_env()})
    vecenv.register("RLGPU", lambda config_name, num_actors, **kwargs: RLGPUEnv(config_name, num_actors, **kwargs))


class EpisodeLogger(AlgoObserver):
    """Writes the task's `extras` (episode reward terms, forward speed, faults) to TensorBoard."""

    def __init__(self):
        super().__init__()
        self.sums: dict[str, torch.Tensor | float] = defaultdict(float)  # device tensors: no sync per step
        self.counts: dict[str, int] = defaultdict(int)
        self.latest: dict[str, torch.Tensor] = {}

    def after_init(self, algo):
        self.writer = algo.writer

    def process_infos(self, infos, done_indices):
        if not isinstance(infos, dict):
            return
        for key, value in infos.get("episode", {}).items():
            self.sums[key] = self.sums[key] + (value.detach() if torch.is_tensor(value) else float(value))
            self.counts[key] += 1
        infos.pop("episode", None)  # each episode summary is counted once
        for key in ("physics_faults", "falls"):
            if key in infos:
                self.latest[key] = infos[key]

    def after_print_stats(self, frame, epoch_num, total_time):
        for key, total in self.sums.items():
            self.writer.add_scalar(f"Episode/{key}", float(total) / self.counts[key], frame)
        if "forward_speed_mm_s" in self.sums:
            speed = float(self.sums["forward_speed_mm_s"]) / self.counts["forward_speed_mm_s"]
            print(f"  episode forward speed {speed:.2f} mm/s")
        for key, value in self.latest.items():
            self.writer.add_scalar(f"Task/{key}", float(value), frame)
        self.sums.clear()
        self.counts.clear()

"""Glue between a VecTask and rl_games 1.6.5: env registration, TensorBoard logging of the
task's episode terms, checkpoint I/O that is atomic and never runs pickled code, and a PPO agent
that stops cleanly on SIGINT/SIGTERM, resumes with its learning rate and best reward, and trains
with several processes (multi_gpu=True) on the process group and devices train.py chose."""
from __future__ import annotations

import contextlib
import os
import re
import sys
from collections import defaultdict

import torch
import torch.distributed as dist
from rl_games.algos_torch import torch_ext
from rl_games.algos_torch.a2c_continuous import A2CAgent
from rl_games.algos_torch.players import PpoPlayerContinuous
from rl_games.common import a2c_common, env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver

from .checkpoints import CheckpointError, StopRequest, TrainingInterrupted, atomic_save, check_checkpoint, safe_load
from .distributed import tensors_digest

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


# ------------------------------------------------------------------ several processes (multi_gpu=True)
# With config['multi_gpu'], rl_games 1.6.5's A2CBase.__init__ reads torchrun's LOCAL_RANK, RANK and
# WORLD_SIZE, then
#   1. calls dist.init_process_group("nccl", ...): NCCL only, and an error if a group exists already;
#   2. sets config['device'] = 'cuda:<LOCAL_RANK>', whatever device the config names;
#   3. on ranks other than 0 turns off print_stats and the lr schedule (update_lr broadcasts rank 0's
#      learning rate) and creates no SummaryWriter.
# Its train() calls torch.cuda.set_device(local_rank) and broadcasts rank 0's weights; each update
# all-reduces and averages the gradients, the KL and the exit flag; only rank 0 prints, writes
# summaries and saves checkpoints. The observation and value normalisers are not averaged: each rank
# updates its own from its rollouts, and rank 0's are saved.
# train.py has already started the process group with the backend that fits rl_device (gloo on the
# CPU, NCCL on CUDA) and put rl_device on cuda:<LOCAL_RANK> or cpu (runner/distributed.py).
# ResumableA2CAgent.__init__ adapts 1, 2 and, on CPU ranks, the set_device; the rest is rl_games' own.


class _ExistingProcessGroup:
    """torch.distributed as rl_games' A2CBase constructor sees it: its init_process_group("nccl", ...)
    checks that it would join the group train.py started, instead of starting a second one."""

    def __getattr__(self, name):
        return getattr(dist, name)

    @staticmethod
    def init_process_group(backend, rank, world_size, **kwargs):
        if not dist.is_initialized():
            raise RuntimeError("multi_gpu=True: no process group (train.py starts it with "
                               "runner.distributed.init_process_group before building the agent)")
        if (dist.get_rank(), dist.get_world_size()) != (rank, world_size):
            raise RuntimeError(f"multi_gpu=True: rl_games reads rank {rank} of {world_size} from the environment, "
                               f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}")


@contextlib.contextmanager
def _join_existing_process_group():
    a2c_common.dist = _ExistingProcessGroup()
    try:
        yield
    finally:
        a2c_common.dist = dist


class _KeepDevice(dict):
    """The agent's config, except that rl_games' own `config['device'] = 'cuda:<LOCAL_RANK>'` is
    ignored: the device stays train.py's rl_device, which is cuda:<LOCAL_RANK> already on CUDA and
    cpu on CPU ranks."""

    def __setitem__(self, key, value):
        if key != "device":
            super().__setitem__(key, value)


def critic_from_policy(policy: dict, critic: dict) -> dict | None:
    """An asymmetric critic (rl_games' central value, state dict `critic`) that values states as the shared
    actor-critic network `policy` valued their observation part, or None where the networks differ in shape.

    The states begin with the observation: the first layer's columns for the rest start at zero. The input
    normaliser keeps the policy's statistics for the observation (0 and 1 for the rest) with a count of 1,
    so the first rollout sets the statistics of the inputs the policy never saw."""
    out = {}
    for key, value in critic.items():
        src = policy.get(key)
        if src is None or src.ndim != value.ndim:
            return None
        if src.shape == value.shape:
            out[key] = src.clone().to(value)
        elif key.startswith("running_mean_std.running_") and src.ndim == 1 and src.shape[0] < value.shape[0]:
            rest = value.new_zeros if key.endswith("mean") else value.new_ones
            out[key] = torch.cat([src.to(value), rest(value.shape[0] - src.shape[0])])
        elif key.endswith(".weight") and src.ndim == 2 and src.shape[0] == value.shape[0] \
                and src.shape[1] < value.shape[1]:
            out[key] = torch.cat([src.to(value), value.new_zeros(value.shape[0], value.shape[1] - src.shape[1])], 1)
        else:
            return None
    if "running_mean_std.count" in out:
        out["running_mean_std.count"] = torch.ones_like(out["running_mean_std.count"])
    return out


class ResumableA2CAgent(A2CAgent):
    """rl_games' continuous PPO agent, plus:
    - on a stop request, a checkpoint `nn/last_<name>_ep_<E>_interrupted.pth` at the epoch boundary;
    - checkpoints that also hold the learning rate and entropy coefficient the schedule reached
      (rl_games restarts both from the config), restored on resume;
    - the restored best reward kept (rl_games' train() resets it, so a resumed run would overwrite
      the best checkpoint with its first, possibly worse, one)."""

    stop_request: StopRequest | None = None

    def __init__(self, base_name, params):
        if params["config"].get("multi_gpu", False):
            params = {**params, "config": _KeepDevice(params["config"])}
            with _join_existing_process_group():
                super().__init__(base_name, params)
            self.device_name = self.ppo_device  # rl_games set it to cuda:<LOCAL_RANK>; unused after __init__
            if torch.device(self.ppo_device).type != "cuda":
                # rl_games' train() starts with torch.cuda.set_device(self.local_rank), its only use of
                # local_rank after __init__; a CPU rank has no GPU, and torch.cuda.set_device(-1) does
                # nothing (documented), where (0) raises on a machine or torch build without CUDA.
                self.local_rank = -1
        else:
            super().__init__(base_name, params)
        self._start_epoch = self.epoch_num
        self._restored_best = None

    def get_full_state_weights(self):
        state = super().get_full_state_weights()
        state["last_lr"] = float(self.last_lr)
        state["entropy_coef"] = float(self.entropy_coef)
        return state

    def set_full_state_weights(self, weights, set_epoch=True):
        fresh_critic = self.has_central_value and "assymetric_vf_nets" not in weights
        if fresh_critic:  # e.g. a shipped policy warm-starting an asymmetric-critic run: rl_games would KeyError
            self.has_central_value = False
        try:
            super().set_full_state_weights(weights, set_epoch)
        finally:
            self.has_central_value = self.has_central_value or fresh_critic
        if fresh_critic:
            # A cold critic's first advantages are noise that a warm policy would follow for epochs
            warm = critic_from_policy(weights["model"], self.central_value_net.model.state_dict())
            if warm is not None:
                self.central_value_net.model.load_state_dict(warm)
            print("checkpoint has no central value (asymmetric critic): the critic starts "
                  + ("from the policy's value head, not yet reading what only it sees" if warm is not None
                     else "fresh"), flush=True)
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
        signum = stop.signum if stop is not None else None
        if self.multi_gpu and stop is not None:
            # All ranks stop after the same epoch, whichever of them got the signal: a rank that left
            # early would leave the others waiting in the next all-reduce.
            flag = torch.tensor([signum or 0], device=self.ppo_device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item()) or None
        if signum is not None:
            path = None
            if self.epoch_num > self._start_epoch and self.global_rank == 0:  # else nothing new, or not ours, to save
                path = os.path.join(self.nn_dir, f"last_{self.config['name']}_ep_{self.epoch_num}_interrupted")
                self.save(path)
                path += ".pth"
            raise TrainingInterrupted(signum, path, self.epoch_num)
        return super().update_epoch()

    def train(self):
        result = super().train()
        if self.multi_gpu:
            # One line per rank: equal network digests show the gradient averaging kept the copies equal.
            # The input and value normalisers are updated from each rank's own rollouts (rl_games does
            # not average them) and differ; rank 0's are the ones saved.
            running = [(n, t) for n, t in self.model.state_dict().items() if n.startswith("running_mean_std.")]
            line = (f"rank {self.global_rank} of {self.world_size}: network parameters sha256 "
                    f"{tensors_digest(self.model.named_parameters())}, observation normaliser sha256 "
                    f"{tensors_digest(running)}\n")
            sys.stdout.write(line)  # one write: the ranks share a stdout, and print's two writes interleave
            sys.stdout.flush()
        return result


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
        info = {"action_space": self.env.action_space, "observation_space": self.env.observation_space,
                "agents": 1, "value_size": 1}
        if getattr(self.env, "num_states", 0) > 0:  # the central value (asymmetric critic) sees these
            info["state_space"] = self.env.state_space
        return info

    def set_train_info(self, env_frames, *args, **kwargs):
        pass

    def get_env_state(self):
        """The task's own state for checkpoints (e.g. its terrain curriculum), if it keeps any."""
        return self.env.get_env_state() if hasattr(self.env, "get_env_state") else None

    def set_env_state(self, env_state):
        if env_state is not None and hasattr(self.env, "set_env_state"):
            self.env.set_env_state(env_state)


def register_env(create_env) -> None:
    env_configurations.register("rlgpu", {"vecenv_type": "RLGPU", "env_creator": lambda **kwargs: create_env()})
    vecenv.register("RLGPU", lambda config_name, num_actors, **kwargs: RLGPUEnv(config_name, num_actors, **kwargs))


class EpisodeLogger(AlgoObserver):
    """Writes the task's `extras` to TensorBoard (`Episode/<term>`: means over the episodes that ended
    since the last epoch; `Task/<counter>`: running totals such as physics faults and falls;
    `Faults/<dof>`: running totals of faults by the DoF where they started) and a console line per
    epoch with the episode speed and the fault counts."""

    COUNTERS = ("physics_faults", "falls")

    def __init__(self):
        super().__init__()
        self.sums: dict[str, torch.Tensor | float] = defaultdict(float)  # device tensors: no sync per step
        self.counts: dict[str, int] = defaultdict(int)
        self.latest: dict[str, torch.Tensor] = {}
        self.fault_dofs: tuple[torch.Tensor, tuple[str, ...]] | None = None  # running counts, names

    def after_init(self, algo):
        self.writer = algo.writer

    def process_infos(self, infos, done_indices):
        if not isinstance(infos, dict):
            return
        for key, value in infos.get("episode", {}).items():
            self.sums[key] = self.sums[key] + (value.detach() if torch.is_tensor(value) else float(value))
            self.counts[key] += 1
        infos.pop("episode", None)  # each episode summary is counted once
        for key in self.COUNTERS:
            if key in infos:
                self.latest[key] = infos[key]
        for kind, value in infos.get("physics_fault_kinds", {}).items():
            self.latest[f"physics_faults_{kind}"] = value
        if "physics_fault_dofs" in infos:
            self.fault_dofs = (infos["physics_fault_dofs"], infos["physics_fault_dof_names"])

    def _fault_origins(self, frame) -> list[tuple[str, int]]:
        """Running fault counts by the DoF where they started (Faults/<dof> in TensorBoard), most first."""
        if self.fault_dofs is None:
            return []
        counts, names = self.fault_dofs
        started = sorted(((name, n) for name, n in zip(names, counts.tolist()) if n), key=lambda x: -x[1])
        for name, n in started:
            self.writer.add_scalar(f"Faults/{name}", n, frame)
        return started

    def after_print_stats(self, frame, epoch_num, total_time):
        means = {key: float(total) / self.counts[key] for key, total in self.sums.items()}
        for key, value in means.items():
            self.writer.add_scalar(f"Episode/{key}", value, frame)
        counters = {key: int(value) for key, value in self.latest.items()}
        for key, value in counters.items():
            self.writer.add_scalar(f"Task/{key}", value, frame)
        parts = []
        if "forward_speed_mm_s" in means:
            parts.append(f"forward speed {means['forward_speed_mm_s']:.2f} mm/s")
        if "speed_error_mm_s" in means:
            parts.append(f"speed error {means['speed_error_mm_s']:.2f} mm/s")
        if "yaw_rate_error_rad_s" in means:
            parts.append(f"yaw-rate error {means['yaw_rate_error_rad_s']:.2f} rad/s")
        started = self._fault_origins(frame)
        if "physics_faults" in counters:
            kinds = ", ".join(f"{k[len('physics_faults_'):]} {v}" for k, v in counters.items()
                              if k.startswith("physics_faults_") and v)
            origins = ("started at " + ", ".join(f"{name} {n}" for name, n in started[:3])) if started else ""
            kinds = "; ".join(p for p in (kinds, origins) if p)
            parts.append(f"physics faults {counters['physics_faults']}" + (f" ({kinds})" if kinds else ""))
        if parts:
            print("  episodes: " + ", ".join(parts))
        self.sums.clear()
        self.counts.clear()

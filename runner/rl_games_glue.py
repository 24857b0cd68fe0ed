"""Glue between a VecTask and rl_games 1.6.5: env registration, TensorBoard logging of the
task's episode terms, and checkpoint I/O that is atomic and never runs pickled code."""
from __future__ import annotations

import os
import tempfile
from collections import defaultdict

import numpy as np
import torch
from rl_games.algos_torch import torch_ext
from rl_games.common import env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver

# Types rl_games puts in a checkpoint besides tensors (`last_mean_rewards` is a numpy scalar).
CHECKPOINT_SAFE_GLOBALS = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float32DType, np.dtypes.Float64DType]


class CheckpointError(ValueError):
    """A checkpoint path that cannot be used."""


def atomic_save(state: dict, filename: str) -> None:
    """torch.save to a temporary file beside `filename`, then rename: a crash never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_load(filename: str) -> dict:
    """Load a checkpoint with weights_only=True, allowing only the numpy types rl_games stores."""
    with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
        return torch.load(filename, map_location="cpu", weights_only=True)


def check_checkpoint(path: str, num_obs: int, num_actions: int) -> dict:
    """Load and validate a checkpoint for this task; a one-line CheckpointError otherwise."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint={path} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint={path} is not a file")
    try:
        state = safe_load(path)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint={path} is not a readable rl_games checkpoint ({reason})") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"checkpoint={path} is not an rl_games checkpoint (no 'model' weights)")
    mean = model.get("running_mean_std.running_mean")
    mu = model.get("a2c_network.mu.weight")
    if mean is not None and mean.shape[-1] != num_obs or mu is not None and mu.shape[0] != num_actions:
        got_obs = mean.shape[-1] if mean is not None else "?"
        got_act = mu.shape[0] if mu is not None else "?"
        raise CheckpointError(f"checkpoint={path} was trained for {got_obs} observations and {got_act} actions; "
                              f"this task has {num_obs} and {num_actions}")
    return state


def patch_rl_games_checkpoint_io() -> None:
    """rl_games calls torch_ext.safe_save / safe_load for every checkpoint; route them through ours."""
    torch_ext.safe_save = atomic_save
    torch_ext.safe_load = safe_load


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
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.latest: dict[str, torch.Tensor] = {}

    def after_init(self, algo):
        self.writer = algo.writer

    def process_infos(self, infos, done_indices):
        if not isinstance(infos, dict):
            return
        for key, value in infos.get("episode", {}).items():
            self.sums[key] += float(value)
            self.counts[key] += 1
        infos.pop("episode", None)  # each episode summary is counted once
        for key in ("physics_faults", "falls"):
            if key in infos:
                self.latest[key] = infos[key]

    def after_print_stats(self, frame, epoch_num, total_time):
        for key, total in self.sums.items():
            self.writer.add_scalar(f"Episode/{key}", total / self.counts[key], frame)
        if "forward_speed_mm_s" in self.sums:
            print(f"  episode forward speed {self.sums['forward_speed_mm_s'] / self.counts['forward_speed_mm_s']:.2f} mm/s")
        for key, value in self.latest.items():
            self.writer.add_scalar(f"Task/{key}", float(value), frame)
        self.sums.clear()
        self.counts.clear()

"""IsaacGymEnvs' VecTask contract, without Isaac Gym: buffers, step/reset protocol and spaces.

Subclasses build their physics in `create_sim`, then implement `pre_physics_step` (actions ->
engine inputs), `physics_step`, `post_physics_step` (fill obs_buf, rew_buf, reset_buf) and
`reset_idx`. Everything the policy sees lives on `rl_device`. Nothing here knows which robot or task
it is; a subclass checks its own config keys in `check_config` (called by train.py before anything
is built, and by the constructor).
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from common.checks import check_value, positive_float, positive_int
from physics import resolve_device


@dataclass(frozen=True)
class BaseEnvConfig:
    """The `env` keys every VecTask reads (IsaacGymEnvs' names)."""

    num_envs: int
    num_states: int
    control_freq_inv: int
    clip_obs: float
    clip_actions: float

    @staticmethod
    def parse(env: dict) -> "BaseEnvConfig":
        clip_obs = env.get("clipObservations")
        return BaseEnvConfig(
            num_envs=positive_int(env.get("numEnvs"), "task.env.numEnvs"),
            num_states=int(check_value(env.get("numStates", 0), "task.env.numStates", "int>=0")),
            control_freq_inv=positive_int(env.get("controlFrequencyInv", 1), "task.env.controlFrequencyInv"),
            clip_obs=math.inf if clip_obs is None else positive_float(clip_obs, "task.env.clipObservations"),
            clip_actions=positive_float(env.get("clipActions", 1.0), "task.env.clipActions"))


class VecTask(abc.ABC):
    @staticmethod
    def parse_config(cfg: dict):
        """The task config `cfg` (its `env` and `sim`) checked and typed; a task replaces this with its
        own parser. Raises a one-line ConfigError for a bad value."""
        return BaseEnvConfig.parse(cfg["env"])

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        """Called by train.py and evaluate.py before anything is built."""
        cls.parse_config(cfg)

    def __init__(self, config: dict, rl_device: str, sim_device: str, graphics_device_id: int, headless: bool,
                 virtual_screen_capture: bool = False, force_render: bool = False):
        self.cfg = config
        env = config["env"]
        base = BaseEnvConfig.parse(env)
        self.num_envs = base.num_envs
        self.num_observations = positive_int(env["numObservations"], "task.env.numObservations")
        self.num_obs = self.num_observations
        self.num_actions = positive_int(env["numActions"], "task.env.numActions")
        self.num_states = base.num_states
        self.control_freq_inv = base.control_freq_inv
        self.clip_obs = base.clip_obs
        self.clip_actions = base.clip_actions
        self.rl_device = resolve_device(rl_device, "rl_device")
        self.sim_device = resolve_device(sim_device, "sim_device")
        self.device = self.rl_device
        self.graphics_device_id = graphics_device_id
        self.headless = headless
        self.force_render = force_render

        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.num_obs,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.num_actions,), dtype=np.float32)
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (self.num_states,), dtype=np.float32)

        n, dev = self.num_envs, self.device
        self.obs_buf = torch.zeros((n, self.num_obs), device=dev)
        self.states_buf = torch.zeros((n, self.num_states), device=dev)
        self.rew_buf = torch.zeros(n, device=dev)
        self.reset_buf = torch.ones(n, device=dev, dtype=torch.long)
        self.timeout_buf = torch.zeros(n, device=dev, dtype=torch.long)
        self.progress_buf = torch.zeros(n, device=dev, dtype=torch.long)
        self.randomize_buf = torch.zeros(n, device=dev, dtype=torch.long)
        self.extras: dict = {}
        self.create_sim()

    @abc.abstractmethod
    def create_sim(self) -> None:
        """Build the physics engine."""

    @abc.abstractmethod
    def pre_physics_step(self, actions: torch.Tensor) -> None:
        """Turn actions into engine inputs."""

    @abc.abstractmethod
    def post_physics_step(self) -> None:
        """Advance progress, compute observations, rewards and resets."""

    @abc.abstractmethod
    def reset_idx(self, env_ids: torch.Tensor) -> None:
        """Reset the given environments."""

    @abc.abstractmethod
    def physics_step(self) -> None:
        """Advance the physics by one control step (controlFrequencyInv substeps)."""

    def step(self, actions: torch.Tensor):
        actions = torch.clamp(actions.to(self.device), -self.clip_actions, self.clip_actions)
        self.pre_physics_step(actions)
        self.physics_step()
        self.post_physics_step()
        self.extras["time_outs"] = self.timeout_buf.to(self.rl_device)
        return self.obs_dict(), self.rew_buf.to(self.rl_device), self.reset_buf.to(self.rl_device), self.extras

    def reset(self):
        """Observations of the current state; environments are reset lazily inside `step`."""
        return self.obs_dict()

    def obs_dict(self) -> dict:
        """{"obs": the clipped observation} and, with numStates > 0, {"states": the clipped states} for an
        asymmetric critic (rl_games' central value), as IsaacGymEnvs hands them over."""
        out = {"obs": torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)}
        if self.num_states > 0:
            out["states"] = torch.clamp(self.states_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        return out

    def render(self, mode: str = "rgb_array"):
        return None

    def close(self) -> None:
        physics = getattr(self, "physics", None)
        if physics is not None:
            physics.close()

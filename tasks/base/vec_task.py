"""IsaacGymEnvs' VecTask contract, without Isaac Gym: buffers, step/reset protocol and spaces.

Subclasses build their physics in `create_sim`, then implement `pre_physics_step` (actions ->
engine inputs), `post_physics_step` (fill obs_buf, rew_buf, reset_buf) and `reset_idx`.
Everything the policy sees lives on `rl_device`.
"""
from __future__ import annotations

import abc
import math

import gymnasium as gym
import numpy as np
import torch

from physics import resolve_device


class ConfigError(ValueError):
    """A configuration value of the wrong type or out of range."""


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(value)


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


# kind -> (test, what is allowed); one table so every message says the same thing for the same rule
VALUE_KINDS = {
    "int>=1": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "int>=0": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: _is_int(v) and v >= -1, "an integer >= 0, or -1 for a random seed"),
    "number>0": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "number>=0": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "number": (_is_number, "a finite number"),
    "(0,1]": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "[0,1]": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "[-1,1]": (lambda v: _is_number(v) and -1 <= v <= 1, "a number in [-1, 1]"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
}


def check_value(value, key: str, kind: str):
    """`value` if it is of `kind` (a VALUE_KINDS key); a one-line ConfigError naming key, value and
    what is allowed otherwise."""
    test, allowed = VALUE_KINDS[kind]
    if not test(value):
        raise ConfigError(f"{key}={value!r} is not allowed (allowed: {allowed})")
    return value


def positive_int(value, key: str) -> int:
    return int(check_value(value, key, "int>=1"))


def positive_float(value, key: str) -> float:
    return float(check_value(value, key, "number>0"))


class VecTask(abc.ABC):
    def __init__(self, config: dict, rl_device: str, sim_device: str, graphics_device_id: int, headless: bool,
                 virtual_screen_capture: bool = False, force_render: bool = False):
        self.cfg = config
        env = config["env"]
        self.num_envs = positive_int(env.get("numEnvs"), "task.env.numEnvs")
        self.num_observations = positive_int(env["numObservations"], "task.env.numObservations")
        self.num_obs = self.num_observations
        self.num_actions = positive_int(env["numActions"], "task.env.numActions")
        self.num_states = int(check_value(env.get("numStates", 0), "task.env.numStates", "int>=0"))
        self.control_freq_inv = positive_int(env.get("controlFrequencyInv", 1), "task.env.controlFrequencyInv")
        clip_obs = env.get("clipObservations")
        self.clip_obs = math.inf if clip_obs is None else positive_float(clip_obs, "task.env.clipObservations")
        self.clip_actions = positive_float(env.get("clipActions", 1.0), "task.env.clipActions")
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
        obs = torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        return {"obs": obs}, self.rew_buf.to(self.rl_device), self.reset_buf.to(self.rl_device), self.extras

    def reset(self):
        """Observations of the current state; environments are reset lazily inside `step`."""
        return {"obs": torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)}

    def render(self, mode: str = "rgb_array"):
        return None

    def close(self) -> None:
        pass

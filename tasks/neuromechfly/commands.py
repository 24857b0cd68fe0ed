"""What each fly is asked to do: a forward speed (mm/s) and a yaw rate (rad/s, positive to the left),
drawn when an episode starts and again at random times inside it.

A draw is one of: standing still (both 0), turning in place (speed 0), walking straight (yaw rate 0),
or walking and turning, with the shares of the YAML (`task.env.commands`). Evaluation fixes the
commands (`hold`) or sets them itself every step (`set`, e.g. walking to a target).
"""
from __future__ import annotations

import torch

from .config import CommandConfig


class VelocityCommand:
    def __init__(self, num_envs: int, device: torch.device, cfg: CommandConfig):
        self.cfg = cfg
        self.device = device
        self.speed = torch.zeros(num_envs, device=device)
        self.yaw_rate = torch.zeros(num_envs, device=device)
        self.time_left = torch.zeros(num_envs, device=device)  # s until the next draw
        self.resample = True  # redraw inside episodes
        self.fixed = False  # hold(): commands stay as they are, through resets too

    @property
    def standing(self) -> torch.Tensor:
        """(N,) True where the fly is asked to stand still."""
        return (self.speed == 0) & (self.yaw_rate == 0)

    def _uniform(self, k: int, bounds: tuple[float, float]) -> torch.Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(k, device=self.device)

    def _sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k new (speed, yaw rate, time to the next draw)."""
        c = self.cfg
        speed = self._uniform(k, c.forward_speed)
        yaw = self._uniform(k, c.yaw_rate)
        kind = torch.rand(k, device=self.device)
        standing = kind < c.standing_share
        in_place = (kind >= c.standing_share) & (kind < c.standing_share + c.turn_in_place_share)
        straight = (kind >= c.standing_share + c.turn_in_place_share) & (
            kind < c.standing_share + c.turn_in_place_share + c.straight_share)
        speed = torch.where(standing | in_place, torch.zeros_like(speed), speed)
        yaw = torch.where(standing | straight, torch.zeros_like(yaw), yaw)
        return speed, yaw, self._uniform(k, c.resample_time)

    def draw(self, env_ids: torch.Tensor) -> None:
        """New commands and redraw times for worlds `env_ids` (at reset)."""
        k = len(env_ids)
        if k == 0 or self.fixed:
            return
        self.speed[env_ids], self.yaw_rate[env_ids], self.time_left[env_ids] = self._sample(k)

    def update(self, dt: float) -> torch.Tensor:
        """Count down; redraw where the time is up (masked, no host synchronisation). Returns the (N,)
        mask of redrawn worlds."""
        self.time_left -= dt
        due = (self.time_left <= 0) & self.resample
        if not self.resample:
            return due
        speed, yaw, time_left = self._sample(len(due))
        self.speed = torch.where(due, speed, self.speed)
        self.yaw_rate = torch.where(due, yaw, self.yaw_rate)
        self.time_left = torch.where(due, time_left, self.time_left)
        return due

    def set(self, env_ids: torch.Tensor | None, speed: torch.Tensor, yaw_rate: torch.Tensor) -> None:
        """Commands chosen from outside (evaluation, a target controller); they hold until set again."""
        ids = slice(None) if env_ids is None else env_ids
        self.speed[ids] = speed
        self.yaw_rate[ids] = yaw_rate

    def hold(self) -> None:
        """Keep every command as it is now, or as `set` sets it: no redraws, in episodes or at resets."""
        self.resample = False
        self.fixed = True

    def observation(self) -> torch.Tensor:
        return torch.stack([self.speed, self.yaw_rate], dim=-1)

"""Walking to a target: one target per world at a random bearing (behind the fly too) and distance,
and a small heading controller that turns the target's bearing into the task's speed and yaw-rate
commands. A world succeeds when its thorax comes within `radius` of its target before its deadline,
distance / `reference_speed` + `slack_s`; after that it is told to stand still. Only each world's
first episode counts (a fall fails it)."""
from __future__ import annotations

import math

import torch

from common.maths import wrap_angle


class TargetCourse:
    def __init__(self, env, distance=(10.0, 30.0), radius: float = 1.0, reference_speed: float = 10.0,
                 slack_s: float = 3.0, max_speed: float = 20.0, max_yaw_rate: float = 2.0, yaw_gain: float = 3.0,
                 approach_gain: float = 4.0, course_speed: float = 2.0):
        n, dev = env.num_envs, env.device
        self.radius, self.max_speed, self.max_yaw_rate = radius, max_speed, max_yaw_rate
        self.yaw_gain, self.approach_gain = yaw_gain, approach_gain
        self.course_speed = course_speed  # mm/s forward from which the course is steered, not the heading
        start = env.state.root_pos[:, :2].clone()
        bearing = (torch.rand(n, device=dev) * 2 - 1) * math.pi  # relative to the fly's heading
        self.distance = distance[0] + (distance[1] - distance[0]) * torch.rand(n, device=dev)
        angle = env.state.heading + bearing
        self.target = start + self.distance[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
        self.deadline = self.distance / reference_speed + slack_s
        self.time = torch.zeros(n, device=dev)
        self.reached_at = torch.full((n,), math.nan, device=dev)
        self.active = torch.ones(n, dtype=torch.bool, device=dev)  # still in its first episode

    @staticmethod
    def episode_seconds(distance=(10.0, 30.0), reference_speed: float = 10.0, slack_s: float = 3.0) -> float:
        return distance[1] / reference_speed + slack_s

    def command(self, env) -> None:
        """Set every world's command from its target's bearing and distance (before each step)."""
        s = env.state
        delta = self.target - s.root_pos[:, :2]
        dist = delta.norm(dim=-1)
        # steer the direction of travel, not the body axis: a fly that walks at an angle to its heading (the
        # rough-ground policy, about 24 degrees at 20 mm/s) would pass its target aside. The course is the
        # windowed velocity's once the fly walks forward, the heading while it stands or turns in place.
        walking = s.forward_speed_avg > self.course_speed
        crab = torch.where(walking, torch.atan2(s.lateral_speed_avg, s.forward_speed_avg.clamp_min(1e-6)),
                           torch.zeros_like(dist))
        bearing = wrap_angle(torch.atan2(delta[:, 1], delta[:, 0]) - s.heading - crab)
        yaw = (self.yaw_gain * bearing).clamp(-self.max_yaw_rate, self.max_yaw_rate)
        # walk when facing the target (turn in place when it is to the side or behind), slow down near it
        speed = torch.minimum(torch.full_like(dist, self.max_speed), self.approach_gain * dist) \
            * torch.cos(bearing).clamp_min(0.0) ** 2
        reached = ~torch.isnan(self.reached_at)
        in_reach = dist <= self.radius
        newly = in_reach & ~reached & self.active & (self.time <= self.deadline)
        self.reached_at = torch.where(newly, self.time, self.reached_at)
        done = ~torch.isnan(self.reached_at)
        env.command.set(None, torch.where(done, torch.zeros_like(speed), speed),
                        torch.where(done, torch.zeros_like(yaw), yaw))
        self.time += env.dt

    def on_reset(self, env, env_ids: torch.Tensor) -> None:
        self.active[env_ids] = False

    def summary(self) -> dict:
        success = ~torch.isnan(self.reached_at)
        times = self.reached_at[success]
        return {"target_success_rate": float(success.float().mean()),
                "mean_time_to_target_s": float(times.mean()) if len(times) else float("nan"),
                "targets": int(len(success))}

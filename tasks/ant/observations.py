"""What the policy sees, declared once: (name, size, function), in IsaacGymEnvs' Ant order (60 values).
Functions take the task and return (N, size); the task's `AntState` is `env.state`.

IsaacGymEnvs' quirks are kept, since a policy trained on one should read the other the same way:
yaw and roll are in [0, 2 pi), and the angle to the target takes the target's bearing from
atan2(dz, dx) (the torso's z, not y), so with the target 1000 m ahead on the floor it is -yaw to
within 5e-4 rad.
"""
from __future__ import annotations

import math
import torch

from common.maths import quat_rotate, quat_rotate_inverse
from tasks.base.observations import Observation, ObservationSet


def roll_yaw(quat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll and yaw of (w, x, y, z) quaternions in IsaacGymEnvs' x-y-z Euler convention, each in [0, 2 pi)."""
    w, x, y, z = quat.unbind(-1)
    roll = torch.atan2(2.0 * (w * x + y * z), w * w - x * x - y * y + z * z)
    yaw = torch.atan2(2.0 * (w * z + x * y), w * w + x * x - y * y - z * z)
    return torch.remainder(roll, 2 * math.pi), torch.remainder(yaw, 2 * math.pi)


def to_target(root_pos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, 3) from the torso to the target, on the floor (z = 0)."""
    d = target - root_pos
    return torch.cat([d[:, :2], torch.zeros_like(d[:, 2:])], dim=-1)


def potential(root_pos: torch.Tensor, target: torch.Tensor, dt: float) -> torch.Tensor:
    """Minus the distance to the target over a control step: its increase is the speed toward the target."""
    return -to_target(root_pos, target).norm(dim=-1) / dt


def fill_derived(s, target: torch.Tensor) -> None:
    """The projections and angles the observations and rewards share."""
    n = len(s.root_quat)
    axes = torch.eye(3, device=s.root_quat.device)
    up = quat_rotate(s.root_quat, axes[2].expand(n, 3))
    heading = quat_rotate(s.root_quat, axes[0].expand(n, 3))
    direction = torch.nn.functional.normalize(to_target(s.root_pos, target), dim=-1)
    s.up_proj = up[:, 2]  # cosine between the torso's z axis and the world's
    s.heading_proj = (heading * direction).sum(-1)  # cosine between the torso's x axis and the way to the target
    s.roll, s.yaw = roll_yaw(s.root_quat)
    bearing = torch.atan2(target[:, 2] - s.root_pos[:, 2], target[:, 0] - s.root_pos[:, 0])  # IsaacGymEnvs' (z, x)
    s.angle_to_target = bearing - s.yaw


def dof_pos_scaled(env) -> torch.Tensor:
    """Joint positions mapped to [-1, 1] over their ranges."""
    return (2.0 * env.state.dof_pos - env.dof_upper - env.dof_lower) / (env.dof_upper - env.dof_lower)


def dof_vel_scaled(env) -> torch.Tensor:
    return env.state.dof_vel * env.cfg_t.dof_vel_scale


OBSERVATIONS = ObservationSet(
    Observation("torso_height", 1, lambda env: env.state.root_pos[:, 2:3]),
    Observation("lin_vel", 3, lambda env: quat_rotate_inverse(env.state.root_quat, env.state.lin_vel)),
    Observation("ang_vel", 3, lambda env: quat_rotate_inverse(env.state.root_quat, env.state.ang_vel)),
    Observation("yaw", 1, lambda env: env.state.yaw[:, None]),
    Observation("roll", 1, lambda env: env.state.roll[:, None]),
    Observation("angle_to_target", 1, lambda env: env.state.angle_to_target[:, None]),
    Observation("up_proj", 1, lambda env: env.state.up_proj[:, None]),
    Observation("heading_proj", 1, lambda env: env.state.heading_proj[:, None]),
    Observation("dof_pos", 8, dof_pos_scaled),
    Observation("dof_vel", 8, dof_vel_scaled),
    Observation("foot_forces", 24, lambda env: env.state.foot_wrench.flatten(1) * env.cfg_t.contact_force_scale),
    Observation("actions", 8, lambda env: env.actions),
)
NUM_OBS = OBSERVATIONS.size

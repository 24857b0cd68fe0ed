"""Reward terms of the NeuroMechFly task, each a small function of the step's state.

A term is declared once: its function here, under its name in REWARDS, and its weight in the task
YAML (`task.env.rewards.scales.<name>`, per second of episode: the step's reward is weight x term x
control dt, so returns do not depend on the control rate). Terms with weight 0 are neither computed nor
logged; the others are logged as `Episode/rew_<name>` (their mean weighted value per second).

`s` is the task's FlyState (tasks/neuromechfly/state.py) or anything with the attributes a term
reads; `p` is the RewardConfig (the YAML's sigmas and heights). Speeds are mm/s over the velocity
window, in the frame of the fly's current heading.
"""
from __future__ import annotations

import torch


def track_speed(s, p) -> torch.Tensor:
    """1 at the commanded forward speed, falling off over speedSigma."""
    return torch.exp(-((s.forward_speed_avg - s.cmd_speed) / p.speed_sigma) ** 2)


def track_yaw_rate(s, p) -> torch.Tensor:
    """1 at the commanded yaw rate, falling off over yawRateSigma."""
    return torch.exp(-((s.yaw_rate_avg - s.cmd_yaw_rate) / p.yaw_rate_sigma) ** 2)


def lateral_speed(s, p) -> torch.Tensor:
    """(mm/s)^2 sideways: crabbing."""
    return s.lateral_speed_avg ** 2


def stand_still(s, p) -> torch.Tensor:
    """mm/s of drift while the command is to stand still (0 otherwise)."""
    return s.cmd_standing.float() * (s.forward_speed_avg.abs() + s.lateral_speed_avg.abs())


def upright(s, p) -> torch.Tensor:
    """Cosine between the body's and the world's z axes."""
    return -s.projected_gravity[:, 2]


def tilt(s, p) -> torch.Tensor:
    """Squared sine of the body's tilt from upright (legged_gym's orientation term). A flip over a gap is
    the tail of a lean: tilted past 25 degrees, a fly flips within 100 ms 3x as often as past 5 (docs/terrain.md)."""
    return (s.projected_gravity[:, :2] ** 2).sum(-1)


def roll_pitch_rate(s, p) -> torch.Tensor:
    """(rad/s)^2 of the body's roll and pitch rates (legged_gym's ang_vel_xy)."""
    return (s.base_ang_vel[:, :2] ** 2).sum(-1)


def height(s, p) -> torch.Tensor:
    """mm of thorax below minWalkHeight above the ground."""
    return (p.min_walk_height - s.height).clamp_min(0.0)


def alive(s, p) -> torch.Tensor:
    return torch.ones_like(s.height)


def gait_contact(s, p) -> torch.Tensor:
    """Fraction of legs whose tarsal contact agrees with the gait reference's stance/swing schedule."""
    return (s.contacts == s.expected_stance).float().mean(-1)


def swing_overrun(s, p) -> torch.Tensor:
    """Legs whose swing (tarsal load off) has lasted longer than maxSwingTime: a weight of w costs w per second
    each leg swings past it. Real flies swing 30-50 ms at every speed; `gait_contact` alone lets a policy unload
    a leg early and land on time (docs/terrain.md)."""
    return (s.swing_time > p.max_swing_time).float().sum(-1)


def energy(s, p) -> torch.Tensor:
    """Mechanical power of the actuators, g mm^2 / s^3."""
    return (s.torque * s.dof_vel).abs().sum(-1)


def action_rate(s, p) -> torch.Tensor:
    return ((s.actions - s.prev_actions) ** 2).sum(-1)


def joint_limit(s, p) -> torch.Tensor:
    """rad beyond the joints' target ranges."""
    return ((s.dof_pos - s.target_high).clamp_min(0) + (s.target_low - s.dof_pos).clamp_min(0)).sum(-1)


REWARDS = {fn.__name__: fn for fn in (track_speed, track_yaw_rate, lateral_speed, stand_still, upright, tilt,
                                      roll_pitch_rate, height, alive, gait_contact, swing_overrun, energy,
                                      action_rate, joint_limit)}

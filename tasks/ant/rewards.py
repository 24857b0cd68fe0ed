"""IsaacGymEnvs' Ant reward, one small function per term, each returning its weighted value per step.

Weights are IsaacGymEnvs' keys (headingWeight, upWeight, actionsCost, energyCost, jointsAtLimitCost,
deathCost; the alive bonus is IsaacGymEnvs' constant 0.5). The step's reward is the sum of the terms,
or deathCost alone for a torso below terminationHeight (`total`). Each term is logged as
`Episode/rew_<name>`: its mean sum over the episodes that ended.

`s` is the task's AntState (or anything with the attributes a term reads): potentials, prev_potentials,
heading_proj, up_proj, actions, dof_pos_scaled ([-1, 1] over the joint ranges), dof_vel (rad/s).
`p` is the RewardConfig.
"""
from __future__ import annotations

import torch

ALIVE_REWARD = 0.5  # IsaacGymEnvs' compute_ant_reward hard-codes it
HEADING_FULL = 0.8  # heading_proj above which the heading reward is paid in full
UPRIGHT = 0.93  # up_proj above which the up reward is paid
AT_LIMIT = 0.99  # dof_pos_scaled above which a joint counts as at its limit (the upper one only, as IsaacGymEnvs)


def progress(s, p) -> torch.Tensor:
    """Decrease of the distance to the target over the step, per control dt: speed toward the target, m/s."""
    return s.potentials - s.prev_potentials


def alive(s, p) -> torch.Tensor:
    return torch.full_like(s.potentials, ALIVE_REWARD)


def heading(s, p) -> torch.Tensor:
    partial = p.heading_weight * s.heading_proj / HEADING_FULL
    return torch.where(s.heading_proj > HEADING_FULL, p.heading_weight, partial)


def up(s, p) -> torch.Tensor:
    return torch.where(s.up_proj > UPRIGHT, p.up_weight, 0.0)


def actions(s, p) -> torch.Tensor:
    return -p.actions_cost * (s.actions ** 2).sum(-1)


def energy(s, p) -> torch.Tensor:
    """|action x joint speed|, with the speed as observed (x dofVelocityScale)."""
    return -p.energy_cost * (s.actions * s.dof_vel * p.dof_vel_scale).abs().sum(-1)


def joints_at_limit(s, p) -> torch.Tensor:
    return -p.joints_at_limit_cost * (s.dof_pos_scaled > AT_LIMIT).sum(-1).float()


REWARDS = {fn.__name__: fn for fn in (progress, alive, heading, up, actions, energy, joints_at_limit)}


def total(terms: dict[str, torch.Tensor], fallen: torch.Tensor, death_cost: float) -> torch.Tensor:
    """The step's reward: the terms' sum, replaced by death_cost where the ant fell."""
    return torch.where(fallen, death_cost, torch.stack(list(terms.values())).sum(0))

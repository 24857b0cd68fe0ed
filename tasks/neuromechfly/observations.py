"""What the policy sees, declared once: (name, size, function) terms (tasks/base/observations.py).
The observation vector is these in order; its size is the sum of the sizes. Functions take the task
and return (N, size).

The policy is blind, as a fly's walking controller is: its own body (orientation, velocities as its
halteres and optic flow would sense them, joint angles and speeds, tarsal contacts), what it did last,
what it is asked to do, and the gait reference's clock. No height above the ground: on rough terrain
that would be a sample of the height map.

`task.env.observationHistory` appends past samples of chosen terms after these (tasks/base/observations.py:
ObservationHistory), e.g. the contacts over the last stride. With `task.env.asymmetricCritic` the critic
alone also sees PRIVILEGED: the ground under the fly.
"""
from __future__ import annotations

import torch

from fly import NUM_DOF
from physics.terrain import KINDS
from tasks.base.observations import HistorySpec, Observation, ObservationSet


def _sc(env, key: str) -> float:
    return env.cfg_t.obs_scales[key]


OBSERVATIONS = ObservationSet(
    Observation("projected_gravity", 3, lambda env: env.state.projected_gravity),
    Observation("base_lin_vel", 3, lambda env: env.state.base_lin_vel * _sc(env, "linVel")),
    Observation("base_ang_vel", 3, lambda env: env.state.base_ang_vel * _sc(env, "angVel")),
    # forward and lateral speed and yaw rate over the velocity window: the fly's sense of self-motion
    Observation("body_motion", 3, lambda env: torch.stack([
        env.state.forward_speed_avg * _sc(env, "linVel"), env.state.lateral_speed_avg * _sc(env, "linVel"),
        env.state.yaw_rate_avg * _sc(env, "yawRate")], dim=-1)),
    Observation("dof_pos", NUM_DOF, lambda env: (env.state.dof_pos - env.stand_dof_pos) * _sc(env, "dofPos")),
    Observation("dof_vel", NUM_DOF, lambda env: env.state.dof_vel * _sc(env, "dofVel")),
    Observation("actions", NUM_DOF, lambda env: env.actions[:, :NUM_DOF]),
    Observation("contacts", 6, lambda env: env.state.contacts.float()),
    Observation("command", 2, lambda env: torch.stack([env.command.speed * _sc(env, "linVel"),
                                                       env.command.yaw_rate * _sc(env, "yawRate")], dim=-1)),
    Observation("gait", 8, lambda env: env.gait.observation()),
)
NUM_OBS = OBSERVATIONS.size  # without history

# What only the critic sees (task.env.asymmetricCritic: rl_games' central value on the states, the policy's
# observation followed by these): the ground and the body's place on it, which a blind policy must infer.
PRIVILEGED = ObservationSet(
    Observation("height", 1, lambda env: env.state.height[:, None]),  # thorax above the ground under it, mm
    Observation("foot_clearance", 6, lambda env: env.foot_clearance().clamp(-1.0, 1.0)),  # mm, each leg
    Observation("tarsal_load", 6, lambda env: env.state.contact_forces / env.info.weight),  # of body weight
    Observation("terrain", len(KINDS) + 1, lambda env: env.terrain.features()),  # kind one-hot, level 0..1
    Observation("randomization", 3, lambda env: env.world_factors()),  # friction, mass and gain scale
)


def num_observations(history: HistorySpec) -> int:
    """The observation's size with `history` (task.env.observationHistory) appended."""
    return NUM_OBS + OBSERVATIONS.history_size(history)


def num_states(history: HistorySpec, asymmetric: bool) -> int:
    """The critic's states (IsaacGymEnvs' numStates): the observation and PRIVILEGED, or none."""
    return num_observations(history) + PRIVILEGED.size if asymmetric else 0

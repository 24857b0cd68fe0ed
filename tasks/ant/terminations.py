"""Why an Ant episode ends, each a function of the step's state, (N,) bool."""
from __future__ import annotations

import torch


def fell(s, termination_height: float) -> torch.Tensor:
    """The torso's origin (its centre of mass) came below `termination_height` m above the floor."""
    return s.root_pos[:, 2] < termination_height


def faulted(s) -> torch.Tensor:
    """The physics of the world failed (NaN, explosion, MuJoCo's own reset, overflow): physics/engine.py."""
    return s.faults != 0


def timed_out(progress: torch.Tensor, episode_length: int) -> torch.Tensor:
    """IsaacGymEnvs ends Ant episodes at progress >= episodeLength - 1 (999 steps for 1000)."""
    return progress >= episode_length - 1

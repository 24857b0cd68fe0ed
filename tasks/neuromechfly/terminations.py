"""Why an episode ends: each a function of the step's state, (N,) bool. Heights are the thorax's
above the ground under the fly."""
from __future__ import annotations

import torch


def fell(s, height: float) -> torch.Tensor:
    """The thorax's centre of mass came below `height` mm."""
    return s.height < height


def flipped(s, upright: float) -> torch.Tensor:
    """The body tilted until the cosine between its z axis and the world's fell below `upright`."""
    return -s.projected_gravity[:, 2] < upright


def faulted(s) -> torch.Tensor:
    """The physics of the world failed (NaN, explosion, MuJoCo's own reset, overflow): physics/engine.py."""
    return s.faults != 0


def timed_out(progress: torch.Tensor, max_length: int) -> torch.Tensor:
    return progress >= max_length

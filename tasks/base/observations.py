"""An observation vector declared once: an ordered set of (name, size, function) terms. Its size is
the sum of the sizes; `compute` fills a buffer term by term; `layout` says where each term sits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Observation:
    name: str
    size: int
    fn: Callable[[object], torch.Tensor]  # task -> (N, size)


class ObservationSet:
    def __init__(self, *terms: Observation):
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"observation names repeat: {names}")
        self.terms = terms
        self.size = sum(t.size for t in terms)

    def __iter__(self):
        return iter(self.terms)

    def layout(self) -> dict[str, slice]:
        """Where each term sits in the vector."""
        out, start = {}, 0
        for t in self.terms:
            out[t.name] = slice(start, start + t.size)
            start += t.size
        return out

    def compute(self, env, out: torch.Tensor) -> None:
        """Fill `out` (N, size) in place."""
        start = 0
        for t in self.terms:
            out[:, start:start + t.size] = t.fn(env)
            start += t.size

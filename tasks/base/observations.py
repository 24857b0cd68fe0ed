"""An observation vector declared once: an ordered set of (name, size, function) terms. Its size is
the sum of the sizes; `compute` fills a buffer term by term; `layout` says where each term sits.
`ObservationHistory` appends past samples of chosen terms after them."""
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

    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    def history_size(self, spec: "HistorySpec") -> int:
        """How many values `spec`'s history adds after this set's own."""
        sizes = {t.name: t.size for t in self.terms}
        return sum(sizes[t] for t in spec.terms) * spec.length if spec.on else 0

    def compute(self, env, out: torch.Tensor) -> None:
        """Fill `out` (N, size) in place."""
        start = 0
        for t in self.terms:
            out[:, start:start + t.size] = t.fn(env)
            start += t.size


@dataclass(frozen=True)
class HistorySpec:
    """Past samples of `terms`: `length` of them, `every` control steps apart (length 0: none)."""
    terms: tuple[str, ...] = ()
    length: int = 0
    every: int = 1

    @property
    def on(self) -> bool:
        return self.length > 0 and len(self.terms) > 0


class ObservationHistory:
    """For each term of `spec.terms`, its values `every`, 2 x `every`, ..., `length` x `every` control steps
    ago, newest first, as one extra term `<name>_history` after the observation's own (mjlab's history_length,
    with a stride: a few samples can span a whole stride). A world that starts an episode has no past: all its
    slots hold its first sample, as a fresh mjlab history does.

    The task calls `advance()` once per control step, `restart(env_ids)` when episodes start, and `compute`
    whenever it observes; observing twice without a step in between gives the same history. Batched over the
    worlds, no host sync: one ring of every control step's samples, (N, length x every + 1, width)."""

    def __init__(self, obs: ObservationSet, spec: HistorySpec, num_envs: int, device):
        layout = obs.layout()
        self.spec = spec
        self.sources = [layout[t] for t in spec.terms] if spec.on else []
        self.widths = [sl.stop - sl.start for sl in self.sources]
        width = sum(self.widths)
        self.size = obs.history_size(spec)
        self.slots = spec.length * spec.every + 1
        self.buf = torch.zeros((num_envs, self.slots, width), device=device)
        self.fresh = torch.ones(num_envs, dtype=torch.bool, device=device)
        self.lags = spec.every * torch.arange(1, spec.length + 1, device=device)
        self.head = 0

    def layout(self, start: int) -> dict[str, slice]:
        """Where each history term sits when the history starts at `start`."""
        out = {}
        for name, w in zip(self.spec.terms if self.spec.on else (), self.widths):
            out[f"{name}_history"] = slice(start, start + w * self.spec.length)
            start += w * self.spec.length
        return out

    def advance(self) -> None:
        self.head = (self.head + 1) % self.slots

    def restart(self, env_ids: torch.Tensor) -> None:
        self.fresh[env_ids] = True

    def compute(self, now: torch.Tensor, out: torch.Tensor) -> None:
        """Record the observation `now` (N, obs size) as this control step's sample and fill `out` (N, size)."""
        if not self.size:
            return
        sample = torch.cat([now[:, sl] for sl in self.sources], dim=-1)
        self.buf[:, self.head] = sample
        self.buf.copy_(torch.where(self.fresh[:, None, None], sample[:, None, :], self.buf))
        self.fresh.zero_()
        past = self.buf[:, torch.remainder(self.head - self.lags, self.slots)]  # (N, length, width), newest first
        n, col, start = now.shape[0], 0, 0
        for w in self.widths:
            out[:, col:col + w * self.spec.length] = past[:, :, start:start + w].reshape(n, -1)
            col += w * self.spec.length
            start += w

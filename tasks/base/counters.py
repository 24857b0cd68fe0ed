"""How episodes end, the same for every task: a world stops when its physics failed, when it fell
(the task's own test) or when its time is up; timeouts alone count as time_outs (value bootstrap).
Running totals of physics faults (by kind) and falls go to `extras`: `physics_faults` and `falls`
(0-dim tensors, logged as Task/<name>) and `physics_fault_kinds`."""
from __future__ import annotations

import torch

from physics import FAULT_KINDS


class EndCounters:
    def __init__(self, device: torch.device):
        zero = lambda: torch.zeros((), device=device, dtype=torch.long)  # noqa: E731
        self.faults = {kind: zero() for kind in ("all", *FAULT_KINDS)}
        self.falls = zero()

    def end_episodes(self, task, fault_codes: torch.Tensor, fell: torch.Tensor, timeout: torch.Tensor
                     ) -> torch.Tensor:
        """Set `task.timeout_buf` and `task.reset_buf`, count, report; returns the falls that were not
        physics faults."""
        faulted = fault_codes != 0
        fell = fell & ~faulted
        task.timeout_buf[:] = (timeout & ~fell & ~faulted).long()
        task.reset_buf[:] = (fell | faulted | timeout).long()
        self.add(fault_codes, faulted, fell)
        self.report(task.extras)
        return fell

    def add(self, fault_codes: torch.Tensor, faulted: torch.Tensor, fell: torch.Tensor) -> None:
        """One control step: (N,) fault bits (physics.FAULT_KINDS), worlds that faulted, worlds that fell."""
        self.faults["all"] += faulted.sum()
        for kind, bit in FAULT_KINDS.items():
            self.faults[kind] += ((fault_codes & bit) != 0).sum()
        self.falls += fell.sum()

    def report(self, extras: dict) -> None:
        extras["physics_faults"] = self.faults["all"].clone()
        extras["physics_fault_kinds"] = {k: v.clone() for k, v in self.faults.items() if k != "all"}
        extras["falls"] = self.falls.clone()

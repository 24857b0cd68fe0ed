"""How episodes end, the same for every task: a world stops when its physics failed, when it fell
(the task's own test) or when its time is up; timeouts alone count as time_outs (value bootstrap).
Running totals of physics faults (by kind) and falls go to `extras`: `physics_faults` and `falls`
(0-dim tensors, logged as Task/<name>), `physics_fault_kinds`, and where the faults started:
`physics_fault_dofs` ((nv + 1,) counts, the first for faults without a DoF) named by `physics_fault_dof_names`."""
from __future__ import annotations

import torch

from physics import FAULT_KINDS, NO_DOF

# kinds a DoF can start; an overflow of MuJoCo Warp's buffers has no DoF to blame
DOF_FAULTS = sum(bit for kind, bit in FAULT_KINDS.items() if kind != "overflow")
UNKNOWN = "no_dof"  # faults no DoF is blamed for: overflows, or an engine that cannot tell


class EndCounters:
    def __init__(self, device: torch.device, dof_names: list[str] | None = None):
        zero = lambda: torch.zeros((), device=device, dtype=torch.long)  # noqa: E731
        self.faults = {kind: zero() for kind in ("all", *FAULT_KINDS)}
        self.falls = zero()
        self.dof_names = (UNKNOWN, *(dof_names or ()))
        self.fault_dofs = torch.zeros(len(self.dof_names), device=device, dtype=torch.long)

    def end_episodes(self, task, fault_codes: torch.Tensor, fell: torch.Tensor, timeout: torch.Tensor,
                     fault_dofs: torch.Tensor | None = None) -> torch.Tensor:
        """Set `task.timeout_buf` and `task.reset_buf`, count, report; returns the falls that were not
        physics faults."""
        faulted = fault_codes != 0
        fell = fell & ~faulted
        task.timeout_buf[:] = (timeout & ~fell & ~faulted).long()
        task.reset_buf[:] = (fell | faulted | timeout).long()
        self.add(fault_codes, faulted, fell, fault_dofs)
        self.report(task.extras)
        return fell

    def origins(self, fault_codes: torch.Tensor, fault_dofs: torch.Tensor | None) -> torch.Tensor:
        """(N,) index into `dof_names` of where each world's fault started (0: UNKNOWN)."""
        if fault_dofs is None:
            return torch.zeros_like(fault_codes, dtype=torch.long)
        known = ((fault_codes & DOF_FAULTS) != 0) & (fault_dofs != NO_DOF)
        return torch.where(known, fault_dofs.to(fault_codes.device) + 1, 0).clamp(0, len(self.dof_names) - 1)

    def add(self, fault_codes: torch.Tensor, faulted: torch.Tensor, fell: torch.Tensor,
            fault_dofs: torch.Tensor | None = None) -> None:
        """One control step: (N,) fault bits (physics.FAULT_KINDS), worlds that faulted, worlds that fell,
        and the DoF where each fault started (engine.fault_dofs())."""
        self.faults["all"] += faulted.sum()
        for kind, bit in FAULT_KINDS.items():
            self.faults[kind] += ((fault_codes & bit) != 0).sum()
        self.falls += fell.sum()
        self.fault_dofs.index_add_(0, self.origins(fault_codes, fault_dofs), faulted.long())

    def report(self, extras: dict) -> None:
        extras["physics_faults"] = self.faults["all"].clone()
        extras["physics_fault_kinds"] = {k: v.clone() for k, v in self.faults.items() if k != "all"}
        extras["falls"] = self.falls.clone()
        extras["physics_fault_dofs"] = self.fault_dofs.clone()
        extras["physics_fault_dof_names"] = self.dof_names

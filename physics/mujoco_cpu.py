"""`mujoco` engine: the MuJoCo C engine on the CPU, worlds stepped in parallel by a thread pool.

mj_step releases the GIL, so threads scale across cores. Each world keeps its own MjData (and
so its own solver warm start), like a world of the GPU engine.
"""
from __future__ import annotations

import copy
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from .engine import FAULT_KINDS, NO_DOF, OPTION_FIELDS, PhysicsEngine, SimParams, option_value, set_option_value

# MuJoCo C resets a world whose position, velocity or acceleration turned NaN or huge, and prints
# "WARNING: Nan, Inf or huge value in QACC at DOF ..." the first time per world. The engine reports
# each such reset as a fault of its kind (faults()), so the printed warning only alarms: it is dropped.
DIVERGENCE = {mujoco.mjtWarning.mjWARN_BADQPOS: FAULT_KINDS["bad_qpos"],
              mujoco.mjtWarning.mjWARN_BADQVEL: FAULT_KINDS["bad_qvel"],
              mujoco.mjtWarning.mjWARN_BADQACC: FAULT_KINDS["bad_qacc"]}
COUNTED_WARNINGS = ("Nan, Inf or huge value in QPOS", "Nan, Inf or huge value in QVEL",
                    "Nan, Inf or huge value in QACC")


def _print_other_warnings(message: str) -> None:
    if not message.startswith(COUNTED_WARNINGS):
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def divergence_counts(data: mujoco.MjData) -> tuple[int, ...]:
    return tuple(int(data.warning[w].number) for w in DIVERGENCE)


class MujocoCpuEngine(PhysicsEngine):
    name = "mujoco"
    mujoco_c = True

    def __init__(self, model: mujoco.MjModel, num_worlds: int, device: torch.device, params: SimParams):
        if torch.device(device).type != "cpu":
            raise ValueError(f"physics_engine=mujoco runs on the CPU, not sim_device={device}; "
                             "use sim_device=cpu or physics_engine=mjwarp")
        super().__init__(model, num_worlds, device, params)
        mujoco.set_mju_user_warning(_print_other_warnings)
        self._datas = []
        for _ in range(num_worlds):
            data = mujoco.MjData(model)
            if model.nkey:
                mujoco.mj_resetDataKeyframe(model, data, 0)
            mujoco.mj_forward(model, data)
            self._datas.append(data)
        self._qpos = np.stack([d.qpos for d in self._datas])
        self._qvel = np.stack([d.qvel for d in self._datas])
        self._ctrl = np.stack([d.ctrl for d in self._datas])
        self._sensordata = np.stack([d.sensordata for d in self._datas])
        self._faults = np.zeros(num_worlds, dtype=np.int32)
        # torch views share memory with the numpy batch arrays: no copies between them
        self.qpos, self.qvel = torch.from_numpy(self._qpos), torch.from_numpy(self._qvel)
        self.ctrl, self.sensordata = torch.from_numpy(self._ctrl), torch.from_numpy(self._sensordata)
        self._fault_view = torch.from_numpy(self._faults)
        self._fault_dofs = np.full(num_worlds, NO_DOF, dtype=np.int64)
        threads = max(1, min(params.num_threads or os.cpu_count() or 1, num_worlds))
        self._chunks = [c for c in np.array_split(np.arange(num_worlds), threads) if len(c)]
        # per-world model values: each thread steps its worlds on its own copy of the model, writing
        # the world's values into it first
        self._fields = {name: np.repeat(np.asarray(option_value(model, name) if name in OPTION_FIELDS
                                                   else getattr(model, name))[None], num_worlds, axis=0)
                        for name in params.world_fields}
        self.world_fields = {name: torch.from_numpy(a) for name, a in self._fields.items()}
        self._models = [copy.copy(model) if self._fields else model for _ in self._chunks]
        self._qvel_written = False
        self._pool = ThreadPoolExecutor(max_workers=len(self._chunks), thread_name_prefix="mujoco")

    @property
    def num_threads(self) -> int:
        return len(self._chunks)

    def _step_worlds(self, worlds: np.ndarray, model: mujoco.MjModel) -> None:
        substeps, dt = self.params.substeps, model.opt.timestep
        for i in worlds:
            data = self._datas[i]
            for name, values in self._fields.items():
                if name in OPTION_FIELDS:
                    set_option_value(model, name, values[i])
                else:
                    getattr(model, name)[:] = values[i]
            if self._qvel_written:
                data.qvel[:] = self._qvel[i]
            data.ctrl[:] = self._ctrl[i]
            before = divergence_counts(data)
            code, dof = 0, NO_DOF
            for _ in range(substeps):
                t = data.time
                mujoco.mj_step(model, data)
                # MuJoCo resets a diverging world (time back to one step) and goes on from its qpos0, where
                # the next steps diverge again for other reasons: the first divergence is the fault. Reading
                # the time costs 0.3 % of a step, the warnings 4 %: read them only when time says to.
                if data.time < t + 0.5 * dt or t == 0.0:
                    code, dof = self._divergence(data, before)
                    if code:
                        break
            self._faults[i] = code
            self._fault_dofs[i] = dof
            self._qpos[i] = data.qpos
            self._qvel[i] = data.qvel
            self._sensordata[i] = data.sensordata

    def step(self) -> None:
        for future in [self._pool.submit(self._step_worlds, chunk, model)
                       for chunk, model in zip(self._chunks, self._models)]:
            future.result()
        self._qvel_written = False

    def set_qvel(self, qvel: torch.Tensor) -> None:
        super().set_qvel(qvel)
        self._qvel_written = True  # each world takes it over at its next step

    def geom_poses(self, geom_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = np.asarray(geom_ids.cpu(), dtype=np.int64)
        pos = np.stack([d.geom_xpos[ids] for d in self._datas])
        mat = np.stack([d.geom_xmat[ids] for d in self._datas]).reshape(self.num_worlds, len(ids), 3, 3)
        return torch.from_numpy(pos), torch.from_numpy(mat)

    def buffer_usage(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor([d.ncon for d in self._datas]), torch.tensor([d.nefc for d in self._datas]))

    def world_data(self, world: int) -> mujoco.MjData:
        """World `world`'s own MjData, for tools that read MuJoCo's full state (warm start, contacts); it is the
        engine's, so writing to it changes the world."""
        return self._datas[world]

    def solver_iterations(self) -> torch.Tensor:
        return torch.tensor([int(d.solver_niter[0]) for d in self._datas])

    def _engine_faults(self) -> torch.Tensor:
        return self._fault_view.clone()

    def _divergence(self, data: mujoco.MjData, before: tuple[int, ...]) -> tuple[int, int]:
        """FAULT_KINDS bits of the divergence warnings raised since `before` (their counts), and the DoF
        the first of them names (MuJoCo checks positions, then velocities, then accelerations)."""
        code, dof = 0, NO_DOF
        for (warning, bit), was, now in zip(DIVERGENCE.items(), before, divergence_counts(data)):
            if now != was and now > 0:
                code |= bit
                if dof == NO_DOF:
                    dof = self._warning_dof(warning, int(data.warning[warning].lastinfo))
        return code, dof

    def _warning_dof(self, warning, info: int) -> int:
        """MuJoCo C's divergence warnings carry the index of the bad value: a qpos index for BADQPOS
        (mapped to its joint's first DoF), a DoF for BADQVEL and BADQACC."""
        if warning != mujoco.mjtWarning.mjWARN_BADQPOS:
            return info if 0 <= info < self.nv else NO_DOF
        joints = np.flatnonzero(self.model.jnt_qposadr <= info)
        return int(self.model.jnt_dofadr[joints[-1]]) if len(joints) else NO_DOF

    def fault_dofs(self) -> torch.Tensor:
        """MuJoCo C: the DoF that its divergence warning (bad position, velocity or acceleration)
        named; its own NaN check resets a world before our NaN check could see one."""
        return torch.from_numpy(self._fault_dofs.copy())

    def _after_reset(self, env_ids: torch.Tensor) -> None:
        for i in env_ids.tolist():
            data = self._datas[i]
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = self._qpos[i]
            data.qvel[:] = self._qvel[i]
            data.ctrl[:] = self._ctrl[i]
            self._faults[i] = 0
            self._fault_dofs[i] = NO_DOF

    def close(self) -> None:
        self._pool.shutdown(wait=False)

"""`mujoco` engine: the MuJoCo C engine on the CPU, worlds stepped in parallel by a thread pool.

mj_step releases the GIL, so threads scale across cores. Each world keeps its own MjData (and
so its own solver warm start), like a world of the GPU engine.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from .engine import PhysicsEngine, SimParams


DIVERGENCE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                       mujoco.mjtWarning.mjWARN_BADQACC)


def diverged_count(data: mujoco.MjData) -> int:
    return sum(data.warning[w].number for w in DIVERGENCE_WARNINGS)


class MujocoCpuEngine(PhysicsEngine):
    name = "mujoco"

    def __init__(self, model: mujoco.MjModel, num_worlds: int, device: torch.device, params: SimParams,
                 num_threads: int | None = None):
        if torch.device(device).type != "cpu":
            raise ValueError(f"physics_engine=mujoco runs on the CPU, not sim_device={device}; "
                             "use sim_device=cpu or physics_engine=mjwarp")
        super().__init__(model, num_worlds, device, params)
        key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand")
        self._datas = []
        for _ in range(num_worlds):
            data = mujoco.MjData(model)
            mujoco.mj_resetDataKeyframe(model, data, key)
            mujoco.mj_forward(model, data)
            self._datas.append(data)
        self._qpos = np.stack([d.qpos for d in self._datas])
        self._qvel = np.stack([d.qvel for d in self._datas])
        self._ctrl = np.stack([d.ctrl for d in self._datas])
        self._sensordata = np.stack([d.sensordata for d in self._datas])
        # torch views share memory with the numpy batch arrays: no copies between them
        self.qpos, self.qvel = torch.from_numpy(self._qpos), torch.from_numpy(self._qvel)
        self.ctrl, self.sensordata = torch.from_numpy(self._ctrl), torch.from_numpy(self._sensordata)
        threads = max(1, min(num_threads or os.cpu_count() or 1, num_worlds))
        self._chunks = [c for c in np.array_split(np.arange(num_worlds), threads) if len(c)]
        self._pool = ThreadPoolExecutor(max_workers=len(self._chunks), thread_name_prefix="mujoco")

    def _step_worlds(self, worlds: np.ndarray) -> None:
        model, substeps = self.model, self.params.substeps
        for i in worlds:
            data = self._datas[i]
            data.ctrl[:] = self._ctrl[i]
            unstable_before = diverged_count(data)
            for _ in range(substeps):
                mujoco.mj_step(model, data)
            if diverged_count(data) != unstable_before:
                # MuJoCo C silently resets a diverged world (NaN or huge position, velocity or
                # acceleration) to the model's default pose; report it as the GPU engine would: NaN.
                self._qpos[i] = np.nan
                self._qvel[i] = np.nan
                continue
            self._qpos[i] = data.qpos
            self._qvel[i] = data.qvel
            self._sensordata[i] = data.sensordata

    def step(self) -> None:
        for future in [self._pool.submit(self._step_worlds, chunk) for chunk in self._chunks]:
            future.result()

    def _after_reset(self, env_ids: torch.Tensor) -> None:
        for i in env_ids.tolist():
            data = self._datas[i]
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = self._qpos[i]
            data.qvel[:] = self._qvel[i]
            data.ctrl[:] = self._ctrl[i]

    def close(self) -> None:
        self._pool.shutdown(wait=False)

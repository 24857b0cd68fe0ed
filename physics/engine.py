"""The batched physics interface the task talks to: N worlds of one fly, torch tensors in and out.

Engines hold the whole MuJoCo state of every world as torch tensors on their device (`qpos`
(N, nq), `qvel` (N, nv), `ctrl` (N, nu), `sensordata` (N, nsensordata)); this base class turns
them into what the task reads, so both engines return exactly the same quantities.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import mujoco
import torch

from .fly_model import FlyModelInfo


JACOBIANS = {"dense": mujoco.mjtJacobian.mjJAC_DENSE, "sparse": mujoco.mjtJacobian.mjJAC_SPARSE,
             "auto": mujoco.mjtJacobian.mjJAC_AUTO}


@dataclass(frozen=True)
class SimParams:
    """Simulation settings from the task YAML's `sim` section."""

    dt: float  # seconds per physics substep
    substeps: int  # physics substeps per control step (env.controlFrequencyInv)
    iterations: int | None = None  # solver iterations; None keeps the model's
    ls_iterations: int | None = None
    jacobian: str | None = None  # "dense", "sparse" or "auto" (MuJoCo's; auto is sparse above 32 DoF in MuJoCo Warp)
    # MuJoCo Warp only: False lets Newton start from the warm start and skip the unconstrained
    # acceleration (M factorisation and solve, 10% of a step); the same optimum when it converges.
    warp_qacc_smooth: bool = False

    def apply(self, model: mujoco.MjModel) -> None:
        model.opt.timestep = self.dt
        if self.jacobian is not None:
            if self.jacobian not in JACOBIANS:
                raise ValueError(f"task.sim.mujoco.jacobian={self.jacobian!r} is unknown; allowed: {', '.join(JACOBIANS)}")
            model.opt.jacobian = JACOBIANS[self.jacobian]
        if self.iterations is not None:
            model.opt.iterations = self.iterations
        if self.ls_iterations is not None:
            model.opt.ls_iterations = self.ls_iterations


class PhysicsEngine(ABC):
    """N independent worlds, each one NeuroMechFly on a floor."""

    name: str

    def __init__(self, model: mujoco.MjModel, num_worlds: int, device: torch.device, params: SimParams):
        params.apply(model)
        self.model = model
        self.info = FlyModelInfo.from_model(model)
        self.num_worlds = num_worlds
        self.device = torch.device(device)
        self.params = params
        as_long = lambda a: torch.as_tensor(a, dtype=torch.long, device=self.device)  # noqa: E731
        self._dof_qpos = as_long(self.info.qpos_adr)
        self._dof_qvel = as_long(self.info.qvel_adr)
        self._joint_act = as_long(self.info.joint_actuator_ids)
        self._adhesion_act = as_long(self.info.adhesion_actuator_ids)
        self._contact_z = as_long(self.info.contact_sensor_adr + 2)  # z of each leg's net force
        # set by subclasses: torch views of the batched state
        self.qpos: torch.Tensor
        self.qvel: torch.Tensor
        self.ctrl: torch.Tensor
        self.sensordata: torch.Tensor

    @property
    def control_dt(self) -> float:
        return self.params.dt * self.params.substeps

    # ------------------------------------------------------------ writing

    def set_joint_targets(self, targets: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        """Position targets (N, 42), or (len(env_ids), 42) for some worlds, in radians; the engine
        clips them to the actuators' ctrlrange."""
        if env_ids is None:
            self.ctrl[:, self._joint_act] = targets.to(self.ctrl.dtype)
        else:
            self.ctrl[env_ids[:, None], self._joint_act] = targets.to(self.ctrl.dtype)

    def joint_targets(self) -> torch.Tensor:
        return self.ctrl[:, self._joint_act]

    def set_adhesion(self, adhesion: torch.Tensor) -> None:
        """Tarsal adhesion (N, 6) in [0, 1] per leg."""
        if len(self._adhesion_act) == 0:
            raise RuntimeError("this engine's fly has no adhesion actuators; build it with "
                               "make_engine(..., adhesion=True) (task.env.enableAdhesion=True)")
        self.ctrl[:, self._adhesion_act] = adhesion.to(self.ctrl.dtype)

    def reset_worlds(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Put worlds `env_ids` into the given state at rest; the other worlds are untouched."""
        self.qpos[env_ids] = qpos.to(self.qpos.dtype)
        self.qvel[env_ids] = qvel.to(self.qvel.dtype)
        self.sensordata[env_ids] = 0.0
        self._after_reset(env_ids)

    @abstractmethod
    def step(self) -> None:
        """Advance every world by one control step (`substeps` physics steps of `dt`)."""

    def overflowed(self) -> torch.Tensor:
        """(N,) bool: worlds whose contacts or constraint rows did not all fit the engine's buffers
        during the last control step, so some were dropped and their physics is wrong. MuJoCo C
        grows its buffers as needed: never."""
        return torch.zeros(self.num_worlds, dtype=torch.bool, device=self.device)

    @abstractmethod
    def _after_reset(self, env_ids: torch.Tensor) -> None:
        """Engine-specific state to clear for reset worlds (solver warm start, time)."""

    # ------------------------------------------------------------ reading

    def root_state(self) -> torch.Tensor:
        """(N, 13): position (mm), quaternion (w, x, y, z), linear and angular velocity in the world frame."""
        quat = self.qpos[:, 3:7]
        ang_local = self.qvel[:, 3:6]  # MuJoCo's free joint angular velocity is in the body frame
        return torch.cat([self.qpos[:, 0:3], quat, self.qvel[:, 0:3], quat_rotate(quat, ang_local)], dim=-1)

    def dof_pos(self) -> torch.Tensor:
        return self.qpos[:, self._dof_qpos]

    def dof_vel(self) -> torch.Tensor:
        return self.qvel[:, self._dof_qvel]

    def tarsal_contact_forces(self) -> torch.Tensor:
        """(N, 6) floor normal force on each leg's tarsus (g mm / s^2), in leg order LF LM LH RF RM RH."""
        return (-self.sensordata[:, self._contact_z]).clamp_min(0.0)


def quat_rotate(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate vectors by unit quaternions (w, x, y, z), batched over the leading dimension."""
    w, xyz = quat[:, :1], quat[:, 1:]
    t = 2.0 * torch.cross(xyz, vec, dim=-1)
    return vec + w * t + torch.cross(xyz, t, dim=-1)


def quat_rotate_inverse(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    conj = torch.cat([quat[:, :1], -quat[:, 1:]], dim=-1)
    return quat_rotate(conj, vec)

"""The batched physics interface tasks talk to: N worlds of one MuJoCo model, torch tensors in and out.

Engines hold the whole MuJoCo state of every world as torch tensors on their device (`qpos`
(N, nq), `qvel` (N, nv), `ctrl` (N, nu), `sensordata` (N, nsensordata)). They know nothing of
the model beyond what MuJoCo compiles: which joints, actuators and sensors mean what is the task's
business (it indexes these tensors with its own tables).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from common.maths import quat_rotate

SOLVERS = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
JACOBIANS = {"dense": mujoco.mjtJacobian.mjJAC_DENSE, "sparse": mujoco.mjtJacobian.mjJAC_SPARSE,
             "auto": mujoco.mjtJacobian.mjJAC_AUTO}

# Physics faults, as bits of the (N,) code faults() returns: what went wrong in a world during the last
# control step. A faulted world's state is meaningless; the task resets it.
FAULT_KINDS = {
    "nan": 1,  # a non-finite position or velocity
    "exploded": 2,  # a position or velocity beyond EXPLODED (mm, rad, mm/s, rad/s)
    "bad_qpos": 4,  # MuJoCo C reset the world itself for a bad position ...
    "bad_qvel": 8,  # ... velocity ...
    "bad_qacc": 16,  # ... or acceleration ("Nan, Inf or huge value in QACC")
    "overflow": 32,  # MuJoCo Warp: contacts or constraint rows that did not fit the world's buffers
}
EXPLODED = 1e6
NO_DOF = -1  # fault_dofs() where a world did not fault or its engine cannot tell where it did
# Model fields an engine can give every world its own values of (domain randomisation); MuJoCo Warp
# batches exactly these per world (its "(*, ...)" fields). OPTION_FIELDS are MuJoCo Warp's per-world
# options: impratio_invsqrt is 1 / sqrt(opt.impratio), shape (N,); MuJoCo C sets opt.impratio from it.
OPTION_FIELDS = ("impratio_invsqrt",)
WORLD_FIELDS = ("body_mass", "body_inertia", "geom_friction", "pair_friction", "actuator_gainprm",
                "actuator_biasprm", "geom_pos", "geom_size", "geom_rbound", "geom_aabb") + OPTION_FIELDS


def option_value(model: mujoco.MjModel, name: str) -> np.ndarray:
    """An OPTION_FIELDS value of the model, as MuJoCo Warp stores it."""
    if name == "impratio_invsqrt":
        return np.asarray(1.0 / np.sqrt(model.opt.impratio))
    raise ValueError(f"option field {name!r} is not allowed (allowed: {', '.join(OPTION_FIELDS)})")


def set_option_value(model: mujoco.MjModel, name: str, value: float) -> None:
    """Set the model's option from an OPTION_FIELDS value (MuJoCo C steps each world on its model)."""
    if name == "impratio_invsqrt":
        model.opt.impratio = 1.0 / float(value) ** 2
    else:
        raise ValueError(f"option field {name!r} is not allowed (allowed: {', '.join(OPTION_FIELDS)})")


# The smallest shared contact pool (MuJoCo Warp): a few worlds with many contacts each (up to 43 measured on
# rough ground, docs/terrain.md) must not exhaust the pool of a small run sized by contacts_per_world.
CONTACT_POOL_MIN = 1024


@dataclass(frozen=True)
class SimParams:
    """Simulation settings from a task YAML's `sim` section."""

    dt: float  # seconds per physics substep
    substeps: int  # physics substeps per control step (env.controlFrequencyInv)
    iterations: int | None = None  # solver iterations; None keeps the model's
    ls_iterations: int | None = None
    # Newton's convergence tolerance (MuJoCo's opt.tolerance); None keeps the model's
    tolerance: float | None = None
    solver: str | None = None  # "newton" or "cg"; None keeps the model's
    jacobian: str | None = None  # "dense", "sparse" or "auto" (MuJoCo's; auto is sparse above 32 DoF in MuJoCo Warp)
    # MuJoCo Warp only: False lets Newton start from the warm start and skip the unconstrained
    # acceleration (M factorisation and solve, 10% of a step); the same optimum when it converges.
    warp_qacc_smooth: bool = False
    # MuJoCo Warp only: buffers per world. Contacts, and the broadphase's candidate pairs before them, live in
    # one pool shared by all worlds (at least CONTACT_POOL_MIN): it must hold the sum over worlds, so worlds
    # that move in step need room for their peak, not their mean. A world over its constraint rows, or every
    # world when the pool overflows, is reported by faults() as "overflow". MuJoCo C grows its buffers as needed.
    contacts_per_world: int = 16
    constraint_rows: int = 128
    # MuJoCo C only: threads stepping the worlds (mj_step releases the GIL); None: one per core
    num_threads: int | None = None
    # MuJoCo C only: its solver's iteration cap, in place of `iterations` (None: the same). Where float32
    # MuJoCo Warp copes at its cap, float64 MuJoCo C can stop short of a solution (docs/physics.md)
    c_iterations: int | None = None
    # model fields (WORLD_FIELDS) that get one value per world, writable through `world_fields`
    world_fields: tuple[str, ...] = ()

    def apply(self, model: mujoco.MjModel, mujoco_c: bool = False) -> None:
        """Set the model's timestep and solver; `mujoco_c`: for MuJoCo C (its own iteration cap)."""
        model.opt.timestep = self.dt
        if self.jacobian is not None:
            if self.jacobian not in JACOBIANS:
                raise ValueError(f"task.sim.mujoco.jacobian={self.jacobian!r} is unknown "
                                 f"(allowed: {', '.join(JACOBIANS)})")
            model.opt.jacobian = JACOBIANS[self.jacobian]
        if self.solver is not None:
            if self.solver not in SOLVERS:
                raise ValueError(f"task.sim.mujoco.solver={self.solver!r} is unknown (allowed: {', '.join(SOLVERS)})")
            model.opt.solver = SOLVERS[self.solver]
        iterations = self.c_iterations if mujoco_c and self.c_iterations is not None else self.iterations
        if iterations is not None:
            model.opt.iterations = iterations
        if self.ls_iterations is not None:
            model.opt.ls_iterations = self.ls_iterations
        if self.tolerance is not None:
            model.opt.tolerance = self.tolerance


class PhysicsEngine(ABC):
    """N independent worlds of one model. A model whose first joint is a free joint (a floating base)
    also gets `root_state()`."""

    name: str
    mujoco_c = False  # steps with MuJoCo C (float64), which has its own solver iteration cap

    def __init__(self, model: mujoco.MjModel, num_worlds: int, device: torch.device, params: SimParams):
        params.apply(model, self.mujoco_c)
        self.model = model
        self.num_worlds = num_worlds
        self.device = torch.device(device)
        self.params = params
        self.nq, self.nv, self.nu = model.nq, model.nv, model.nu
        # set by subclasses: torch views of the batched state
        self.qpos: torch.Tensor
        self.qvel: torch.Tensor
        self.ctrl: torch.Tensor
        self.sensordata: torch.Tensor
        for name in params.world_fields:
            if name not in WORLD_FIELDS:
                raise ValueError(f"world field {name!r} is not allowed (allowed: {', '.join(WORLD_FIELDS)})")
        # name -> (N, *shape of the model field): each world's own values, written in place; a world
        # runs with them from its next step
        self.world_fields: dict[str, torch.Tensor] = {}

    @property
    def control_dt(self) -> float:
        return self.params.dt * self.params.substeps

    # ------------------------------------------------------------ writing

    def set_ctrl(self, values: torch.Tensor, actuator_ids: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        """Controls (N, k) of the actuators `actuator_ids` (k,), or (len(env_ids), k) for some worlds; the
        engine clips them to the actuators' ctrlrange."""
        if env_ids is None:
            self.ctrl[:, actuator_ids] = values.to(self.ctrl.dtype)
        else:
            self.ctrl[env_ids[:, None], actuator_ids] = values.to(self.ctrl.dtype)

    def reset_worlds(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Put worlds `env_ids` into the given state; the other worlds are untouched."""
        self.qpos[env_ids] = qpos.to(self.qpos.dtype)
        self.qvel[env_ids] = qvel.to(self.qvel.dtype)
        self.sensordata[env_ids] = 0.0
        self._after_reset(env_ids)

    def set_qvel(self, qvel: torch.Tensor) -> None:
        """Change the velocities (N, nv) of every world without resetting any (e.g. pushes)."""
        self.qvel.copy_(qvel)

    @abstractmethod
    def step(self) -> None:
        """Advance every world by one control step (`substeps` physics steps of `dt`)."""

    @abstractmethod
    def _after_reset(self, env_ids: torch.Tensor) -> None:
        """Engine-specific state to clear for reset worlds (solver warm start, time, fault flags)."""

    # ------------------------------------------------------------ reading

    def faults(self) -> torch.Tensor:
        """(N,) int32: FAULT_KINDS bits of what went wrong in each world during the last control step
        (0: nothing)."""
        state = torch.cat([self.qpos, self.qvel], dim=-1)
        code = torch.where(torch.isfinite(state).all(dim=-1), 0, FAULT_KINDS["nan"])
        code = code | torch.where((state.abs() > EXPLODED).any(dim=-1), FAULT_KINDS["exploded"], 0)
        return code.to(torch.int32) | self._engine_faults()

    def _engine_faults(self) -> torch.Tensor:
        return torch.zeros(self.num_worlds, dtype=torch.int32, device=self.device)

    def fault_dofs(self) -> torch.Tensor:
        """(N,) int64: for each world that faulted in the last control step, the DoF where its failure
        started (an index into qvel; NO_DOF where unknown); other worlds' entries mean nothing."""
        return torch.full((self.num_worlds,), NO_DOF, dtype=torch.long, device=self.device)

    def buffer_usage(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) contacts and (N,) constraint rows of each world after the last step: what sizes
        `contacts_per_world` and `constraint_rows` (measured, e.g. by benchmarks/physics_throughput.py)."""
        raise NotImplementedError(f"{type(self).__name__} does not report its buffer usage")

    def pool_usage(self) -> tuple[int, int, int] | None:
        """MuJoCo Warp's shared contact pool after the last physics step, summed over all worlds: broadphase
        candidate pairs, contacts, and the pool's size (each must fit it; a host read, for benchmarks). None
        for an engine without a shared pool."""
        return None

    def solver_iterations(self) -> torch.Tensor:
        """(N,) constraint-solver iterations each world took at its last physics step (a host read on MuJoCo C;
        for benchmarks: the solver's work grows with them)."""
        raise NotImplementedError(f"{type(self).__name__} does not report its solver iterations")

    def geom_poses(self, geom_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World positions (N, k, 3) and rotation matrices (N, k, 3, 3) of the geoms `geom_ids` (k,) at the
        last step: for measurements (e.g. how high a foot is), not read in the step path."""
        raise NotImplementedError(f"{type(self).__name__} does not report geom poses")

    def root_state(self) -> torch.Tensor:
        """(N, 13) of the free joint: position, quaternion (w, x, y, z), linear and angular velocity in
        the world frame."""
        quat = self.qpos[:, 3:7]
        ang_local = self.qvel[:, 3:6]  # MuJoCo's free joint angular velocity is in the body frame
        return torch.cat([self.qpos[:, 0:3], quat, self.qvel[:, 0:3], quat_rotate(quat, ang_local)], dim=-1)

    def close(self) -> None:
        pass


def dof_names(model: mujoco.MjModel) -> list[str]:
    """A name per DoF: its joint's, with the DoF's index inside the joint for joints of several
    (a free joint's 6, a ball's 3)."""
    names = []
    for dof in range(model.nv):
        joint = int(model.dof_jntid[dof])
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, joint) or f"joint{joint}"
        width = 6 if model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_FREE else \
            3 if model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_BALL else 1
        names.append(name if width == 1 else f"{name}[{dof - int(model.jnt_dofadr[joint])}]")
    return names

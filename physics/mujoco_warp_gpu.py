"""`mjwarp` engine: MuJoCo Warp, thousands of worlds on one CUDA GPU.

The MuJoCo Warp state arrays are exposed to torch without copies (`wp.to_torch`), and the
`substeps` physics steps of one control step are captured once in a CUDA graph and replayed.
Warp runs on its own stream; each step orders it after torch's stream and torch after it with
stream waits, so nothing in the step path waits on the host. On Warp's CPU device (used by the
parity test) the steps run eagerly.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import mujoco
import numpy as np
import torch

from .engine import CONTACT_POOL_MIN, FAULT_KINDS, NO_DOF, OPTION_FIELDS, PhysicsEngine, SimParams, option_value

_KERNELS = {}


def _import_warp():
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError as exc:
        raise ImportError(f"physics_engine=mjwarp needs MuJoCo Warp ({exc.name} is not installed); "
                          "install it with: pip install -e .[gpu], or use physics_engine=mujoco") from exc
    wp.config.quiet = True
    wp.init()
    return wp, mjw


def _fastest_dof_kernel(wp):
    """A kernel over worlds, launched after every physics step: while a world's velocities are all
    finite, remember its DoF (of those `tracked`) that moves fastest. Once they are not, the last
    finite step's answer stays: where the failure started (benchmarks/gap_fault.py: the joint next to
    the body pressed into a wall). Its cost is one pass over qvel per step."""
    if "fastest" not in _KERNELS:
        @wp.kernel
        def fastest_dof(qvel: wp.array2d(dtype=float), tracked: wp.array(dtype=float),
                        fastest: wp.array(dtype=int)):
            world = wp.tid()
            finite = int(1)
            best = float(0.0)
            arg = int(-1)  # NO_DOF while no tracked DoF moves
            for i in range(qvel.shape[1]):
                v = qvel[world, i]
                if not wp.isfinite(v):
                    finite = 0
                speed = wp.abs(v) * tracked[i]
                if speed > best:
                    best = speed
                    arg = i
            if finite == 1:
                fastest[world] = arg
        _KERNELS["fastest"] = fastest_dof
    return _KERNELS["fastest"]


class MujocoWarpEngine(PhysicsEngine):
    name = "mjwarp"

    def __init__(self, model: mujoco.MjModel, num_worlds: int, device: torch.device, params: SimParams):
        super().__init__(model, num_worlds, device, params)
        wp, mjw = _import_warp()
        self._wp, self._mjw = wp, mjw
        self._wp_device = wp.get_device(str(self.device) if self.device.type == "cuda" else "cpu")
        data = mujoco.MjData(model)
        if model.nkey:
            mujoco.mj_resetDataKeyframe(model, data, 0)
        mujoco.mj_forward(model, data)
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(model)
            # The Newton solver hits its iteration cap in some world at most steps (float32, stiff
            # contacts), and each hit is a printf from the kernel: 17 GB of log in a 15 min training run.
            # A world's constraint rows overflowing is handled (faults(), then a reset by the task);
            # keep the warnings for the shared contact pool, which mean a sizing bug.
            overflow = mjw.OverflowType
            self._m.opt.warn_overflow = int(overflow.ALL & ~overflow.ITERATIONS & ~overflow.LS_ITERATIONS
                                            & ~overflow.NEFC)
            self._lost_physics = int(overflow.ALL & ~overflow.ITERATIONS & ~overflow.LS_ITERATIONS)
            self._m.opt.run_qacc_smooth = bool(params.warp_qacc_smooth)
            # njmax_nnz: the sparse constraint Jacobian's non-zeros per world, at most every row over every
            # DoF (MuJoCo Warp's default, sized for few contacts per body, overflows on rough ground)
            self._d = mjw.put_data(model, data, nworld=num_worlds,
                                   naconmax=max(params.contacts_per_world * num_worlds, CONTACT_POOL_MIN),
                                   njmax=params.constraint_rows,
                                   njmax_nnz=params.constraint_rows * model.nv)
            # per-world model values: MuJoCo Warp reads field[world % len(field)], so a field with a
            # row per world is that world's; set before the step is captured in a CUDA graph
            for name in params.world_fields:
                owner = self._m.opt if name in OPTION_FIELDS else self._m
                field = getattr(owner, name)
                host = option_value(model, name) if name in OPTION_FIELDS else np.asarray(getattr(model, name))
                vector = field.dtype._length_ if wp.types.type_is_vector(field.dtype) else None
                shape = (num_worlds, *field.shape[1:], *((vector,) if vector else ()))
                tiled = np.repeat(host[None], num_worlds, axis=0).reshape(shape)
                setattr(owner, name, wp.array(tiled.astype(np.float32), dtype=field.dtype))
                # the same (N, *MuJoCo's shape) view on both engines (geom_aabb: (ngeom, 6), not (ngeom, 2, 3))
                self.world_fields[name] = wp.to_torch(getattr(owner, name)).view(num_worlds, *host.shape)
        d = self._d
        self.qpos, self.qvel = wp.to_torch(d.qpos), wp.to_torch(d.qvel)
        self.ctrl, self.sensordata = wp.to_torch(d.ctrl), wp.to_torch(d.sensordata)
        self._warmstart, self._time = wp.to_torch(d.qacc_warmstart), wp.to_torch(d.time)
        self._overflow = wp.to_torch(d.overflow)  # per world, OR of MuJoCo Warp's OverflowType bits
        self._geom_xpos, self._geom_xmat = wp.to_torch(d.geom_xpos), wp.to_torch(d.geom_xmat)
        # free joints' DoFs are left out of fault_dofs(): a body's mm/s would outrun every joint's rad/s
        tracked = np.ones(model.nv, np.float32)
        for joint in np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE):
            tracked[model.jnt_dofadr[joint]:model.jnt_dofadr[joint] + 6] = 0.0
        self._tracked = wp.array(tracked, dtype=float, device=self._wp_device)
        self._fastest = wp.full(num_worlds, NO_DOF, dtype=int, device=self._wp_device)
        self._fastest_torch = wp.to_torch(self._fastest)
        self._fastest_kernel = _fastest_dof_kernel(wp)
        self._graph = None

    def _substeps(self, after_each: Callable[[], None] | None = None) -> None:
        # Tasks read sensors only after the last substep: evaluate them there alone. MuJoCo Warp
        # checks the flag when it launches (or captures) a step.
        self._d.overflow.zero_()  # faults() speaks of this control step alone
        opt = self._m.opt
        flags = opt.disableflags
        opt.disableflags = flags | int(self._mjw.DisableBit.SENSOR)
        for k in range(self.params.substeps):
            if k == self.params.substeps - 1:
                opt.disableflags = flags
            self._physics_step()
            if after_each is not None:
                after_each()

    def _physics_step(self) -> None:
        self._mjw.step(self._m, self._d)
        self._wp.launch(self._fastest_kernel, dim=self.num_worlds, inputs=[self._d.qvel, self._tracked],
                        outputs=[self._fastest], device=self._wp_device)

    @contextlib.contextmanager
    def _after_torch(self):
        """Warp's stream waits for torch's work so far, and torch's for Warp's work inside (CUDA)."""
        wp = self._wp
        if self._wp_device.is_cpu:
            yield None
            return
        torch_stream = wp.stream_from_torch(torch.cuda.current_stream(self.device))
        warp_stream = wp.get_stream(self._wp_device)
        warp_stream.wait_stream(torch_stream)
        yield warp_stream
        torch_stream.wait_stream(warp_stream)

    def step(self) -> None:
        wp = self._wp
        if self._wp_device.is_cpu:
            self._substeps()
            return
        with self._after_torch() as warp_stream:
            if self._graph is None:
                with wp.ScopedDevice(self._wp_device):
                    self._substeps()  # first run compiles the kernels; a capture cannot
                    with wp.ScopedCapture(device=self._wp_device) as capture:
                        self._substeps()
                self._graph = capture.graph
            else:
                wp.capture_launch(self._graph, stream=warp_stream)

    def step_eagerly(self, after_each: Callable[[], None]) -> None:
        """One control step as step() takes it, its physics steps launched one by one instead of from the CUDA
        graph, calling `after_each()` after each: for tools that read every physics step (benchmarks/
        step_profile.py); the task never needs it."""
        with self._after_torch(), self._wp.ScopedDevice(self._wp_device):
            self._substeps(after_each)

    @property
    def warp_model(self):
        """MuJoCo Warp's Model, for its own tools (benchmarks/physics_trace.py); the task never needs it."""
        return self._m

    @property
    def warp_data(self):
        """MuJoCo Warp's Data (see warp_model)."""
        return self._d

    def geom_poses(self, geom_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = geom_ids.to(self._geom_xpos.device)
        return self._geom_xpos[:, ids], self._geom_xmat[:, ids].reshape(self.num_worlds, len(ids), 3, 3)

    def buffer_usage(self) -> tuple[torch.Tensor, torch.Tensor]:
        wp = self._wp
        nacon = int(wp.to_torch(self._d.nacon)[0])  # a host read: for benchmarks, not the step path
        world = wp.to_torch(self._d.contact.worldid)[:nacon].long()
        contacts = torch.bincount(world, minlength=self.num_worlds)
        return contacts, wp.to_torch(self._d.nefc).clone()

    def pool_usage(self) -> tuple[int, int, int]:
        d = self._d
        return int(d.ncollision.numpy()[0]), int(d.nacon.numpy()[0]), int(d.naconmax)

    def solver_iterations(self) -> torch.Tensor:
        return self._wp.to_torch(self._d.solver_niter).clone()

    def _engine_faults(self) -> torch.Tensor:
        lost = (self._overflow & self._lost_physics) != 0
        return torch.where(lost, FAULT_KINDS["overflow"], 0).to(torch.int32)

    def fault_dofs(self) -> torch.Tensor:
        """MuJoCo Warp: the DoF (free joints aside) that moved fastest at the last physics step whose
        velocities were all finite (NO_DOF for a world reset since)."""
        return self._fastest_torch.long()

    def _after_reset(self, env_ids: torch.Tensor) -> None:
        self._fastest_torch[env_ids] = NO_DOF
        self._warmstart[env_ids] = 0.0
        self._time[env_ids] = 0.0
        self._overflow[env_ids] = 0

"""The ant's model tables and its state as the task's terms read it, measured after each control step.

Foot sensors. IsaacGymEnvs attaches an Isaac Gym force sensor at the origin of each foot body and
observes its 6 numbers (force, torque; in the foot's frame), "to indicate contacts with the ground
plane on the ant's legs" (IsaacGymEnvs' docs). Isaac Gym documents the reading as the net force on
the body, zero for a body at rest, and PhysX computes it from the solver's velocity change of the
link times the link's own inertia plus its applied forces: a quantity with no MuJoCo counterpart.
What it carries, the ground pushing on the foot, MuJoCo measures exactly: each foot's `contact`
sensor (reduce="netforce") gives the net contact force and torque of all the foot's contacts at
their force-weighted centroid in the world frame; here that wrench is moved to the foot body's origin
and expressed in the foot's frame (its `framepos` and `framequat` sensors), as Isaac Gym's sensor
pose and frame. It is the ground's reaction on the foot: about a quarter of the ant's weight per
foot when it stands, zero in the air.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from common.maths import quat_rotate_inverse
from physics import AssetError, PhysicsEngine

FOOT_SENSOR_SUFFIXES = ("_contact", "_pos", "_quat")  # contact: force torque pos (9); framepos (3); framequat (4)
FOOT_SENSOR_DIMS = (9, 3, 4)


@dataclass(frozen=True)
class AntModelInfo:
    """Index tables of a compiled ant model, found by names and types, not positions."""

    dof_names: tuple[str, ...]  # hinge joints in DOF order: action i drives DOF i, as in Isaac Gym
    qpos_adr: np.ndarray  # (8,) into qpos
    dof_adr: np.ndarray  # (8,) into qvel
    actuator_ids: np.ndarray  # (8,) the motor that drives each DOF
    dof_lower: np.ndarray  # (8,) rad
    dof_upper: np.ndarray
    feet: tuple[str, ...]  # bodies whose name contains "foot", in model order (IsaacGymEnvs' extremities)
    foot_sensor_adr: np.ndarray  # (4, 16) sensordata columns of each foot's contact, framepos, framequat
    start_qpos: np.ndarray  # (nq,) the keyframe
    total_mass: float

    @staticmethod
    def from_model(model: mujoco.MjModel) -> "AntModelInfo":
        if model.njnt == 0 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
            raise AssetError("the ant model's first joint must be the torso's free joint")
        hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
        hinges.sort(key=lambda j: model.jnt_dofadr[j])
        act_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)
                        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT}
        missing = [model.joint(j).name for j in hinges if j not in act_of_joint]
        if missing:
            raise AssetError(f"the ant model has no motor for joint(s) {', '.join(missing)}")
        feet = tuple(model.body(b).name for b in range(model.nbody) if "foot" in model.body(b).name)
        adr = []
        for foot in feet:
            cols = []
            for suffix, dim in zip(FOOT_SENSOR_SUFFIXES, FOOT_SENSOR_DIMS):
                sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, foot + suffix)
                if sid < 0 or model.sensor_dim[sid] != dim:
                    raise AssetError(f"the ant model lacks the {dim}-value sensor {foot + suffix}")
                cols.extend(range(model.sensor_adr[sid], model.sensor_adr[sid] + dim))
            adr.append(cols)
        if model.nkey == 0:
            raise AssetError("the ant model has no keyframe for its start pose")
        return AntModelInfo(
            dof_names=tuple(model.joint(j).name for j in hinges),
            qpos_adr=np.array([model.jnt_qposadr[j] for j in hinges]),
            dof_adr=np.array([model.jnt_dofadr[j] for j in hinges]),
            actuator_ids=np.array([act_of_joint[j] for j in hinges]),
            dof_lower=np.array([model.jnt_range[j, 0] for j in hinges]),
            dof_upper=np.array([model.jnt_range[j, 1] for j in hinges]),
            feet=feet,
            foot_sensor_adr=np.array(adr, dtype=np.int64).reshape(len(feet), sum(FOOT_SENSOR_DIMS)),
            start_qpos=model.key_qpos[0].copy(),
            total_mass=float(model.body_mass.sum()))


def foot_wrenches(sensors: torch.Tensor) -> torch.Tensor:
    """(N, F, 6) ground reaction force and torque on each foot, about the foot's origin and in its frame,
    from its sensor values (N, F, 16): contact force, torque, centroid (world), foot position, foot
    orientation (w, x, y, z). All zeros (no contact, or sensors cleared by a reset) give zeros."""
    n, f, _ = sensors.shape
    s = sensors.reshape(n * f, -1)
    # MuJoCo reports the force body1 (the foot) exerts on the floor: the reaction is its opposite.
    force, torque = -s[:, 0:3], -s[:, 3:6]
    centroid, origin, quat = s[:, 6:9], s[:, 9:12], s[:, 12:16]
    torque = torque + torch.cross(centroid - origin, force, dim=-1)
    return torch.cat([quat_rotate_inverse(quat, force), quat_rotate_inverse(quat, torque)], dim=-1).reshape(n, f, 6)


class AntState:
    """Per-world tensors (N, ...) on the task's device; see `AntStateReader.read`."""


class AntStateReader:
    def __init__(self, engine: PhysicsEngine, info: AntModelInfo, device: torch.device):
        self.engine, self.info, self.device = engine, info, device
        sim = engine.device
        self.qpos_adr = torch.as_tensor(info.qpos_adr, device=sim)
        self.dof_adr = torch.as_tensor(info.dof_adr, device=sim)
        self.foot_adr = torch.as_tensor(info.foot_sensor_adr.reshape(-1), device=sim)
        self.num_feet = len(info.feet)
        self.s = AntState()

    def read(self) -> AntState:
        """Torso position, orientation (w, x, y, z), world-frame linear and angular velocity; joint
        positions and speeds (DOF order); the feet's ground reaction wrenches; physics faults. A world
        whose physics failed reads as zeros (identity orientation), so no NaN reaches the policy."""
        s, e, dev = self.s, self.engine, self.device
        s.faults = e.faults().to(dev)
        s.fault_dofs = e.fault_dofs().to(dev)
        bad = (s.faults != 0)[:, None]
        root = torch.where(bad, 0.0, e.root_state().to(dev, torch.float32))
        root[:, 3] = torch.where(bad[:, 0], 1.0, root[:, 3])
        s.root_pos, s.root_quat, s.lin_vel, s.ang_vel = root[:, 0:3], root[:, 3:7], root[:, 7:10], root[:, 10:13]
        s.dof_pos = torch.where(bad, 0.0, e.qpos[:, self.qpos_adr].to(dev, torch.float32))
        s.dof_vel = torch.where(bad, 0.0, e.qvel[:, self.dof_adr].to(dev, torch.float32))
        sensors = e.sensordata[:, self.foot_adr].to(dev, torch.float32).reshape(len(root), self.num_feet, -1)
        s.foot_wrench = torch.where(bad[:, :, None], 0.0, foot_wrenches(sensors))
        return s

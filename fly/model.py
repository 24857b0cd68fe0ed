"""The NeuroMechFly v2 model file and the names and index tables that the task, the CPG baseline,
the benchmarks and the tests share."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from physics.model import AssetError
from physics.scene import compose
from physics.terrain import Terrain

LEGS = ("LF", "LM", "LH", "RF", "RM", "RH")
LEG_DOFS = ("Coxa", "Coxa_roll", "Coxa_yaw", "Femur", "Femur_roll", "Tibia", "Tarsus1")
ACTUATED_JOINTS = tuple(f"joint_{leg}{dof}" for leg in LEGS for dof in LEG_DOFS)
NUM_DOF = len(ACTUATED_JOINTS)  # 42
ADHESION_PREFIX = "adhesion_"  # + leg name: the tarsal adhesion actuators
# flygym's floor_collisions="legs": every leg segment touches the ground, with the contact parameters
# of the asset's default class GROUND_CONTACT_CLASS.
GROUND_CONTACT_SEGMENTS = ("Coxa", "Femur", "Tibia", "Tarsus1", "Tarsus2", "Tarsus3", "Tarsus4", "Tarsus5")
GROUND_CONTACT_GEOMS = tuple(f"{leg}{segment}" for leg in LEGS for segment in GROUND_CONTACT_SEGMENTS)
GROUND_CONTACT_CLASS = "ground_contact"
MESH_CONTACT_GEOMS = tuple(f"{leg}{segment}" for leg in LEGS for segment in ("Coxa", "Femur", "Tibia", "Tarsus1"))

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "neuromechfly" / "neuromechfly.xml"
RESTORE = "expected the committed assets/neuromechfly/neuromechfly.xml (regenerate it with: " \
          "python assets/build_neuromechfly.py, or restore it with git checkout)"


# How the leg segments touch the ground: "mesh" is v2's (Coxa to Tarsus1 as meshes, Tarsus2-5 as capsules);
# "capsule" pairs the ground with capsules that MuJoCo fits to those meshes instead (flygym 2's
# GeomFittingOption.ALL_TO_CAPSULES, for the legs): no GJK on rough ground, 2.5-4 % more physics throughput there
# (docs/terrain.md). The meshes stay as the visible geoms.
LEG_COLLISIONS = ("mesh", "capsule")
CAPSULE_SUFFIX = "_capsule"
# The passive tarsal hinges, which carry the adhesion's pull (v2: damping 0.01 g mm^2/s; this asset: armature
# 1e-7 g mm^2).
PASSIVE_TARSAL_SEGMENTS = ("Tarsus2", "Tarsus3", "Tarsus4", "Tarsus5")
# NeuroMechFly v2's contact impedance (flygym 1.2.1's solimp), the asset's until 2026-11-27; the asset's is a
# constant 0.995 (assets/build_neuromechfly.py, CONTACT_SOLIMP). For comparisons and the reproducers of faults
# found with it.
V2_CONTACT_SOLIMP = (0.999, 0.9999, 1e-3, 0.5, 2.0)
# v2's contact damping ratio (flygym 1.2.1's solref (2e-4, 1000)); the asset's is 3 (docs/physics.md, "Contact
# damping"). For comparisons.
V2_CONTACT_DAMPING_RATIO = 1000.0
# The asset's contact damping ratio from 2026-11-25 until 2026-11-27, with which the faults and leads measured then
# were found: their reproducers and tests set it back.
FORMER_CONTACT_DAMPING_RATIO = 1.5


def load_fly(path: str | Path | None = None, adhesion: bool = True, terrain: Terrain | None = None,
             leg_collision: str = "mesh", tarsal_armature: float | None = None,
             tarsal_damping: float | None = None, leg_leg_contacts: bool = False) -> mujoco.MjModel:
    """Compile the fly on `terrain` (flat ground alone when None). `adhesion=False` leaves out the 6 tarsal
    adhesion actuators: a body transmission is evaluated every substep even at zero control (15% of a
    MuJoCo Warp step). `leg_collision` is one of LEG_COLLISIONS. `tarsal_armature` / `tarsal_damping`: see
    set_tarsal_joints (None keeps the asset's). `leg_leg_contacts`: v2's contacts between leg segments (see
    add_leg_leg_pairs; for comparisons with flygym, not the task's fly)."""
    if leg_collision not in LEG_COLLISIONS:
        raise ValueError(f"leg_collision={leg_collision!r} is unknown (allowed: {', '.join(LEG_COLLISIONS)})")
    capsules = leg_collision == "capsule"
    geoms = tuple(name + CAPSULE_SUFFIX if capsules and name in MESH_CONTACT_GEOMS else name
                  for name in GROUND_CONTACT_GEOMS)

    def edit(spec: mujoco.MjSpec) -> None:
        if not adhesion:
            without_adhesion(spec)
        if capsules:
            add_fitted_capsules(spec, MESH_CONTACT_GEOMS)
        if leg_leg_contacts:
            add_leg_leg_pairs(spec, geoms)

    model = compose(path or DEFAULT_MODEL_PATH, terrain, GROUND_CONTACT_CLASS, geoms, edit=edit, restore_hint=RESTORE)
    set_tarsal_joints(model, tarsal_armature, tarsal_damping)
    return model


def set_tarsal_joints(model: mujoco.MjModel, armature: float | None = None, damping: float | None = None) -> None:
    """Armature (g mm^2) and damping (g mm^2 / s) of every passive tarsal hinge (PASSIVE_TARSAL_SEGMENTS);
    None keeps the model's."""
    for value, name in ((armature, "armature"), (damping, "damping")):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"tarsal {name}={value!r} is not allowed (allowed: a finite number >= 0)")
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or ""
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and any(s in name for s in PASSIVE_TARSAL_SEGMENTS):
            if armature is not None:
                model.dof_armature[model.jnt_dofadr[j]] = armature
            if damping is not None:
                model.dof_damping[model.jnt_dofadr[j]] = damping


def add_fitted_capsules(spec: mujoco.MjSpec, names: tuple[str, ...]) -> None:
    """Beside each mesh geom in `names`, a capsule named name + CAPSULE_SUFFIX that the compiler fits to the
    mesh (in the mesh geom's frame): massless, in geom group 3 (hidden by default), colliding only through
    the pairs made for it."""
    for name in names:
        mesh = spec.geom(name)
        if mesh is None or mesh.type != mujoco.mjtGeom.mjGEOM_MESH:
            raise ValueError(f"leg_collision='capsule' fits capsules to the leg meshes, but {name!r} is not a mesh "
                             f"geom in this model ({RESTORE})")
        capsule = mesh.parent.add_geom(name=name + CAPSULE_SUFFIX, type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                                       meshname=mesh.meshname, pos=mesh.pos, quat=mesh.quat, group=3)
        capsule.contype, capsule.conaffinity, capsule.mass = 0, 0, 0.0


def add_leg_leg_pairs(spec: mujoco.MjSpec, geoms: tuple[str, ...]) -> None:
    """v2's leg-leg contacts (flygym 1.2.1's self_collisions="legs"): a contact pair for every two leg segments
    but a segment and its parent or child, with the ground's contact parameters (class GROUND_CONTACT_CLASS:
    flygym gives both its contact solref and solimp, margin 0). `geoms`: the legs' contact geoms in
    GROUND_CONTACT_GEOMS order. flygym lists each pair twice (both orders); here each is listed once."""
    default = spec.find_default(GROUND_CONTACT_CLASS)
    per_leg = len(GROUND_CONTACT_SEGMENTS)
    for a in range(len(geoms)):
        for b in range(a + 1, len(geoms)):
            if a // per_leg == b // per_leg and b - a == 1:  # one leg, parent and child
                continue
            pair = spec.add_pair(default)
            pair.name, pair.geomname1, pair.geomname2 = f"{geoms[a]}_{geoms[b]}", geoms[a], geoms[b]


def without_adhesion(spec: mujoco.MjSpec) -> None:
    """Delete the adhesion actuators and their entries in the keyframes' controls."""
    keep = [i for i, a in enumerate(spec.actuators) if not a.name.startswith(ADHESION_PREFIX)]
    for actuator in [a for a in spec.actuators if a.name.startswith(ADHESION_PREFIX)]:
        spec.delete(actuator)
    for key in spec.keys:
        ctrl = list(key.ctrl)
        if ctrl:
            key.ctrl = [ctrl[i] for i in keep]


@dataclass(frozen=True)
class FlyModelInfo:
    """Facts about a compiled fly that the task needs (all numpy, host side)."""

    dof_names: tuple[str, ...]
    qpos_adr: np.ndarray  # (42,) qpos index of each actuated joint
    qvel_adr: np.ndarray  # (42,) qvel index of each actuated joint
    target_low: np.ndarray  # (42,) commandable target range (actuator ctrlrange)
    target_high: np.ndarray
    kp: np.ndarray  # (42,) position gains
    force_limit: np.ndarray  # (42,) actuator force limits
    stand_qpos: np.ndarray  # (nq,) keyframe "stand"
    stand_ctrl: np.ndarray  # (nu,)
    joint_actuator_ids: np.ndarray  # (42,)
    adhesion_actuator_ids: np.ndarray  # (6,), or (0,) when the model was loaded without adhesion
    contact_sensor_adr: np.ndarray  # (6,) sensordata address of each leg's net tarsal force (3 values)
    total_mass: float
    # The free joint's frame sits ~1.3 mm below the thorax: the body's centre of mass in that frame
    # gives the thorax height, which is what "standing" and "fallen" are about.
    root_com_offset: np.ndarray  # (3,)
    stand_feet: np.ndarray  # (6, 2) x, y of each leg's last tarsal segment from the root, standing, heading +x
    foot_geoms: np.ndarray  # (6,) geom id of each leg's last tarsal segment (a capsule)
    foot_size: np.ndarray  # (6, 2) its radius and half-length (mm)
    # (6, 42) mm/rad: how the lowest point of each foot rises with each actuated joint's angle, standing (a reset
    # that moves the joints lifts the fly by the deepest foot it would push into the ground)
    stand_feet_dz: np.ndarray
    nq: int
    nv: int
    nu: int

    @property
    def weight(self) -> float:
        """The fly's weight, g mm / s^2 (its mass under the model's 9810 mm/s^2 of gravity)."""
        return self.total_mass * 9810.0

    @property
    def stand_targets(self) -> np.ndarray:
        """(42,) joint targets of the standing pose."""
        return self.stand_ctrl[self.joint_actuator_ids]

    @staticmethod
    def from_model(model: mujoco.MjModel) -> "FlyModelInfo":
        def ids(kind, names):
            out = np.array([mujoco.mj_name2id(model, kind, n) for n in names])
            if (out < 0).any():
                missing = [n for n, i in zip(names, out) if i < 0]
                raise AssetError(f"fly model lacks {missing[:3]}...; it is not a NeuroMechFly build of this project")
            return out

        joints = ids(mujoco.mjtObj.mjOBJ_JOINT, ACTUATED_JOINTS)
        actuators = ids(mujoco.mjtObj.mjOBJ_ACTUATOR, [f"actuator_{j}" for j in ACTUATED_JOINTS])
        has_adhesion = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{ADHESION_PREFIX}{LEGS[0]}") >= 0
        adhesion = (ids(mujoco.mjtObj.mjOBJ_ACTUATOR, [f"{ADHESION_PREFIX}{leg}" for leg in LEGS]) if has_adhesion
                    else np.zeros(0, dtype=int))
        sensors = ids(mujoco.mjtObj.mjOBJ_SENSOR, [f"tarsal_contact_{leg}" for leg in LEGS])
        key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand")
        if key < 0:
            raise AssetError("fly model has no keyframe 'stand'")
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, key)
        mujoco.mj_kinematics(model, data)
        feet = ids(mujoco.mjtObj.mjOBJ_GEOM, [f"{leg}Tarsus5" for leg in LEGS])
        root_body = model.jnt_bodyid[ids(mujoco.mjtObj.mjOBJ_JOINT, ["root"])[0]]
        qpos_adr = model.jnt_qposadr[joints]
        stand_feet_dz = _feet_height_jacobian(model, data, feet, qpos_adr)
        return FlyModelInfo(
            dof_names=ACTUATED_JOINTS,
            qpos_adr=qpos_adr.copy(),
            qvel_adr=model.jnt_dofadr[joints].copy(),
            target_low=model.actuator_ctrlrange[actuators, 0].copy(),
            target_high=model.actuator_ctrlrange[actuators, 1].copy(),
            kp=model.actuator_gainprm[actuators, 0].copy(),
            force_limit=model.actuator_forcerange[actuators, 1].copy(),
            stand_qpos=model.key_qpos[key].copy(),
            stand_ctrl=model.key_ctrl[key].copy(),
            joint_actuator_ids=actuators,
            adhesion_actuator_ids=adhesion,
            contact_sensor_adr=model.sensor_adr[sensors].copy(),
            total_mass=float(model.body_subtreemass[root_body]),
            stand_feet=(data.geom_xpos[feet, :2] - data.qpos[:2]).copy(),
            foot_geoms=np.asarray(feet).copy(),
            foot_size=model.geom_size[feet, :2].copy(),
            stand_feet_dz=stand_feet_dz,
            root_com_offset=model.body_ipos[root_body].copy(),
            nq=model.nq, nv=model.nv, nu=model.nu,
        )


def _feet_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, feet: np.ndarray) -> np.ndarray:
    """(6,) z of the lowest point of each foot capsule (as FlyIO.foot_lowest_points), after mj_kinematics."""
    axis_z = data.geom_xmat[feet].reshape(-1, 3, 3)[:, 2, 2]  # the capsule axis' world z component
    return data.geom_xpos[feet, 2] - np.abs(axis_z) * model.geom_size[feet, 1] - model.geom_size[feet, 0]


def _feet_height_jacobian(model: mujoco.MjModel, data: mujoco.MjData, feet: np.ndarray, qpos_adr: np.ndarray,
                          h: float = 1e-4) -> np.ndarray:
    """(6, len(qpos_adr)) d(lowest foot point z)/d(joint angle) at data's pose, by central differences."""
    q0, out = data.qpos.copy(), np.zeros((len(feet), len(qpos_adr)))
    for j, adr in enumerate(qpos_adr):
        z = []
        for step in (h, -h):
            data.qpos[:] = q0
            data.qpos[adr] += step
            mujoco.mj_kinematics(model, data)
            z.append(_feet_lowest_z(model, data, feet))
        out[:, j] = (z[0] - z[1]) / (2 * h)
    data.qpos[:] = q0
    mujoco.mj_kinematics(model, data)
    return out


class FlyIO:
    """The fly's quantities in an engine's batched state (physics.PhysicsEngine): index tables on the
    engine's device, so the engine itself needs no fly names."""

    def __init__(self, engine, info: FlyModelInfo | None = None):
        import torch

        self.engine = engine
        self.info = info or FlyModelInfo.from_model(engine.model)
        as_long = lambda a: torch.as_tensor(a, dtype=torch.long, device=engine.device)  # noqa: E731
        self.qpos_adr, self.qvel_adr = as_long(self.info.qpos_adr), as_long(self.info.qvel_adr)
        self.joint_act = as_long(self.info.joint_actuator_ids)
        self.adhesion_act = as_long(self.info.adhesion_actuator_ids)
        self.contact_z = as_long(self.info.contact_sensor_adr + 2)  # z of each leg's net force
        self.foot_geoms = as_long(self.info.foot_geoms)

    def set_joint_targets(self, targets, env_ids=None) -> None:
        """Position targets (N, 42), or (len(env_ids), 42), in radians (clipped to the ctrlrange)."""
        self.engine.set_ctrl(targets, self.joint_act, env_ids)

    def set_adhesion(self, adhesion) -> None:
        """Tarsal adhesion (N, 6) in [0, 1] per leg."""
        if len(self.adhesion_act) == 0:
            raise RuntimeError("this fly has no adhesion actuators; load it with load_fly(adhesion=True) "
                               "(task.env.enableAdhesion=True)")
        self.engine.set_ctrl(adhesion, self.adhesion_act)

    def joint_targets(self):
        return self.engine.ctrl[:, self.joint_act]

    def dof_pos(self):
        return self.engine.qpos[:, self.qpos_adr]

    def dof_vel(self):
        return self.engine.qvel[:, self.qvel_adr]

    def foot_lowest_points(self):
        """(N, 6, 3) world position of the lowest point of each leg's last tarsal segment (a capsule along its
        local z), legs in LEGS order: what a foot lifts off the ground."""
        import torch

        pos, mat = self.engine.geom_poses(self.foot_geoms)
        radius, half = (torch.as_tensor(self.info.foot_size[:, i], dtype=pos.dtype, device=pos.device) for i in (0, 1))
        axis = mat[..., 2]  # the capsule's axis in the world frame
        low = pos - (torch.sign(axis[..., 2]) * half)[..., None] * axis  # the end that points down
        low[..., 2] -= radius  # and one radius below it
        return low

    def tarsal_contact_forces(self):
        """(N, 6) floor normal force on each leg's tarsus (g mm / s^2), legs in LEGS order."""
        return (-self.engine.sensordata[:, self.contact_z]).clamp_min(0.0)

    def stand_targets(self):
        import torch

        targets = torch.as_tensor(self.info.stand_targets, dtype=self.engine.ctrl.dtype, device=self.engine.device)
        return targets.expand(self.engine.num_worlds, -1).clone()

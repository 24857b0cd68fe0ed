"""The NeuroMechFly v2 model file and the names and index tables every engine shares."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

LEGS = ("LF", "LM", "LH", "RF", "RM", "RH")
LEG_DOFS = ("Coxa", "Coxa_roll", "Coxa_yaw", "Femur", "Femur_roll", "Tibia", "Tarsus1")
ACTUATED_JOINTS = tuple(f"joint_{leg}{dof}" for leg in LEGS for dof in LEG_DOFS)
NUM_DOF = len(ACTUATED_JOINTS)  # 42
ADHESION_PREFIX = "adhesion_"  # + leg name: the tarsal adhesion actuators

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "neuromechfly" / "neuromechfly.xml"


class AssetError(RuntimeError):
    """The model file is missing or cannot be compiled."""


def load_model(path: str | Path | None = None, adhesion: bool = True) -> mujoco.MjModel:
    """Compile the fly. `adhesion=False` leaves out the 6 tarsal adhesion actuators: a body
    transmission is evaluated every substep even at zero control (15% of a MuJoCo Warp step)."""
    path = Path(path) if path else DEFAULT_MODEL_PATH
    if not path.is_file():
        raise AssetError(f"fly model {path} not found; expected the committed assets/neuromechfly/neuromechfly.xml "
                         "(regenerate it with: python assets/build_neuromechfly.py)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # upstream MJCF carries a deprecated <statistic> attribute
            spec = mujoco.MjSpec.from_file(str(path))
            if not adhesion:
                without_adhesion(spec)
            return spec.compile()
    except Exception as exc:  # mujoco raises ValueError with a multi-line message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssetError(f"fly model {path} is corrupt ({reason}); restore it with git checkout or "
                         "python assets/build_neuromechfly.py") from exc


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
    """Engine-independent facts about the model that the task needs (all numpy, host side)."""

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
    nq: int
    nv: int
    nu: int

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
        return FlyModelInfo(
            dof_names=ACTUATED_JOINTS,
            qpos_adr=model.jnt_qposadr[joints].copy(),
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
            total_mass=float(model.body_subtreemass[0]),
            root_com_offset=model.body_ipos[model.jnt_bodyid[ids(mujoco.mjtObj.mjOBJ_JOINT, ["root"])[0]]].copy(),
            nq=model.nq, nv=model.nv, nu=model.nu,
        )

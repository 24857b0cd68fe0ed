"""Build the RL-ready NeuroMechFly v2 model in assets/neuromechfly/ from the flygym 1.2.1 wheel.

    python assets/build_neuromechfly.py            # (re)write assets/neuromechfly/
    python assets/build_neuromechfly.py --check    # rebuild in a temp dir, compare byte for byte

What it does to the upstream MJCF (neuromechfly_seqik_kinorder_ypr_capsuletarsus.xml), keeping
its geometry, masses, inertias, joint axes and units (mm, g, s):
- meshes decimated so the folder stays small; every body gets the explicit inertial of the
  upstream (undecimated) model, so decimation changes no mass or inertia;
- a free joint on the fly's root body, joint stiffness/damping, friction and contact parameters as
  flygym's `Fly` defaults, a small armature on the hinges for float32 (more on the coxae and
  femora); no floor: the ground is composed at load time (physics/scene.py), and the
  default class "ground_contact" holds the leg-ground contact parameters for it;
- 42 position actuators (kp 45, force range 65) on the leg DoFs, whose ctrlrange is the
  range of target angles the RL task may command (recorded walking kinematics plus a margin);
- 6 tarsal adhesion actuators (off unless their control is raised);
- one contact sensor per leg (net force on the leg's tarsus: legs touch nothing but the ground);
- a keyframe "stand": flygym's tripod pose with the fly resting on flat ground at z = 0;
- single_step.json, the recorded walking step, and gait_table.json, that step redrawn on this model
  for flat ground at several stride amplitudes (assets/gait_table.py);
- walking_210902_pr_fly1.json: flygym's recorded walking and stretch pose (benchmarks/replay_flygym.py).

Needs the build extra (`pip install -e .[build]`): fast-simplification.
"""
from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import mujoco
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gait_table import build_gait_table  # noqa: E402

from fly.model import ACTUATED_JOINTS, GROUND_CONTACT_CLASS, GROUND_CONTACT_GEOMS, LEG_DOFS, LEGS  # noqa: E402
from physics.scene import add_ground, lowest_contact_point  # noqa: E402
from physics.terrain import Terrain, TerrainParams  # noqa: E402

FLYGYM_VERSION = "1.2.1"
FLYGYM_WHEEL = f"flygym-{FLYGYM_VERSION}-py3-none-any.whl"
FLYGYM_SHA256 = "5db9bb89b7f57e2fda8d716fd8205b0ba7ac9a46e7c194ea6e752e38964f390d"
DATA = "flygym/data"
UPSTREAM_MJCF = f"{DATA}/mjcf/neuromechfly_seqik_kinorder_ypr_capsuletarsus.xml"

OUT_DIR = Path(__file__).resolve().parent / "neuromechfly"
MODEL_FILE = "neuromechfly.xml"
STEP_FILE = "single_step.json"
GAIT_TABLE_FILE = "gait_table.json"
RECORDING_FILE = "walking_210902_pr_fly1.json"
RECORDING = f"{DATA}/behavior/210902_pr_fly1.pkl"

# flygym.Fly defaults (v2).
ACTUATOR_KP = 45.0
ACTUATOR_FORCE_RANGE = 65.0
JOINT_STIFFNESS, JOINT_DAMPING = 0.05, 0.06
PASSIVE_STIFFNESS, PASSIVE_DAMPING = 1.0, 1.0
TARSUS_STIFFNESS, TARSUS_DAMPING = 7.5, 1e-2
FRICTION = (1.0, 0.005, 0.0001)
# v2's contact time constant (2e-4 s), overdamped (ratio 3). v2's damping ratio of 1e3 lets a standing
# fly creep into the floor (0.06 mm in 0.5 s, 3x a tarsal radius, still sinking). Critically damped
# (1.0), a contact whose time constant is one step rings: a standing fly's tarsal loads swing by 60 %
# from one control step to the next and the vibration walks it forward at 1.2 mm/s (1.5: 20 %, 0.24
# mm/s). At 3 (since 2026-11-27, 1.5 before) every one of flygym's recorded walking's 1001 start frames
# keeps an adhering fly upright on both engines, at dt 1e-4 too (1.5: 994; 2-2.5 and 3.25-4 tip
# some), and the replay stays within the distance margins (docs/physics.md, "Contact damping").
# At TIMESTEP this time constant is one step, below the 2 steps MuJoCo's "refsafe" would clamp it
# to (4e-4): with that clamp the tarsi sank twice as deep and Newton needed 7.8 iterations instead
# of 5.8 (stability_sweep.py, docs/physics.md).
CONTACT_SOLREF = (2e-4, 3.0)
# A constant impedance of 0.995 instead of v2's 0.999-0.9999 (flygym 2 uses 0.98-0.99). With v2's, flies with
# adhesion always on tip over in flygym's recorded walking (5 of 20 starts upright on MuJoCo C, 2 of 1,024 worlds
# on MuJoCo Warp); at 0.995 they stay upright, the replay moves the fly within 10 % (no adhesion) and 25 %
# (adhesion) of flygym's own, and the batch's slowest Newton needs half the iterations. 0.993 and 0.997 tip some
# starts. Tarsi rest 0.2 um in the floor instead of 0.06 (docs/physics.md, "Contact impedance").
CONTACT_SOLIMP = (0.995, 0.995, 1.0e-03, 5.0e-01, 2.0)
ADHESION_GAIN = 40.0
# Rotor-like inertia on every hinge. The tarsal segments' own inertia (~1e-12 g mm^2) makes the
# mass matrix too ill-conditioned for float32: MuJoCo Warp's Newton solver returns NaN within a
# few steps. The joints are damping-dominated (inertia/damping = 1.7 us with this armature,
# against the 1.3 ms of kp and damping), so it changes no motion on the timescale of a step.
ARMATURE = 1e-7
# The coxa and femur hinges need 10x more: with 1e-7 there, legs pressed against a gap's wall
# still turn Newton NaN in float32 (benchmarks/gap_fault.py: step 419); 1e-6 on these joints
# alone keeps it finite, 1e-6 on the tibia and tarsi alone does not (NaN at step 368). Still 17 us
# of inertia over damping: the shipped policy's flat walk tracks as before (docs/physics.md).
PROXIMAL_ARMATURE = 1e-6
PROXIMAL_JOINTS = ("Coxa", "Femur")
GRAVITY = (0.0, 0.0, -9810.0)  # mm/s^2

# Simulation defaults, chosen by benchmarks/stability_sweep.py (README: "Timestep and solver").
TIMESTEP = 2e-4
SOLVER_ITERATIONS = 20
LS_ITERATIONS = 10
# Newton stops once a step improves the cost by less than this (scaled). In float32 (MuJoCo Warp) this model's
# solutions stop getting closer to float64's after ~5 iterations: at MuJoCo Warp's floor of 1e-6, 12 % of adhering
# states ran to the cap (20, or 100) without gaining accuracy, and the whole batch waits for them. At 1e-2 none of
# those 800 states does, the error stays at float32's (benchmarks/solver_tolerance.py), and MuJoCo C (float64)
# converges exactly either way (docs/physics.md, "Newton's tolerance").
SOLVER_TOLERANCE = 1e-2

# Commandable target range: recorded walking kinematics widened by this margin on each side.
TARGET_MARGIN_RAD = np.deg2rad(30.0)
# Decimated meshes keep this fraction of their triangles (the folder must stay under 5 MB).
MESH_KEEP_FRACTION = 0.15
STAND_CLEARANCE_MM = 0.005  # gap between the lowest leg point and the floor before settling
SETTLE_SECONDS = 0.3


def fetch_wheel(cache: Path) -> Path:
    """Return the flygym wheel, downloading it with pip once; refuse a wheel with another hash."""
    wheel = cache / FLYGYM_WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        f"flygym=={FLYGYM_VERSION}", "-d", str(cache)], check=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != FLYGYM_SHA256:
        raise SystemExit(f"error: {wheel} has sha256 {digest}, expected {FLYGYM_SHA256}")
    return wheel


# ---------------------------------------------------------------- meshes (binary STL)

def read_stl(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Binary STL -> (unique vertices, triangle indices)."""
    (count,) = struct.unpack_from("<I", data, 80)
    rec = np.frombuffer(data, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                        count=count, offset=84)
    verts, faces = np.unique(rec["v"].reshape(-1, 3), axis=0, return_inverse=True)
    return verts.astype(np.float64), faces.reshape(-1, 3).astype(np.int64)


def write_stl(verts: np.ndarray, faces: np.ndarray) -> bytes:
    tri = verts[faces].astype(np.float32)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = (normals / np.where(norm > 0, norm, 1)).astype(np.float32)
    rec = np.zeros(len(faces), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    rec["n"], rec["v"] = normals, tri
    header = b"NeuroMechFly v2 mesh, decimated by build_neuromechfly.py".ljust(80, b" ")
    return header + struct.pack("<I", len(faces)) + rec.tobytes()


def decimate(data: bytes) -> bytes:
    import fast_simplification

    verts, faces = read_stl(data)
    if len(faces) > 200:
        verts, faces = fast_simplification.simplify(verts, faces, target_reduction=1 - MESH_KEEP_FRACTION)
    return write_stl(verts, faces)


# ---------------------------------------------------------------- model

def upstream_spec(files: dict[str, bytes]) -> mujoco.MjSpec:
    xml = files[UPSTREAM_MJCF].decode()
    assets = {name.split("/")[-1]: data for name, data in files.items() if name.endswith(".stl")}
    spec = mujoco.MjSpec.from_string(xml.replace("../mesh/", ""), assets=assets)
    return spec


def body_inertials(spec: mujoco.MjSpec) -> dict[str, tuple]:
    """Compile without fusing static bodies so every body's own inertial can be read."""
    spec = spec.copy()
    spec.compiler.fusestatic = False
    model = spec.compile()
    return {model.body(i).name: (model.body_mass[i], model.body_ipos[i].copy(), model.body_iquat[i].copy(),
                                 model.body_inertia[i].copy()) for i in range(1, model.nbody)}


def load_pose(files: dict[str, bytes], name: str) -> dict[str, float]:
    raw = yaml.safe_load(files[f"{DATA}/pose/pose_{name}.yaml"])["joints"]
    return {k: float(np.deg2rad(v)) for k, v in raw.items()}


def target_ranges(files: dict[str, bytes], stand: dict[str, float]) -> dict[str, tuple[float, float]]:
    steps = pickle.loads(files[f"{DATA}/behavior/single_steps_untethered.pkl"])
    ranges = {}
    for joint in ACTUATED_JOINTS:
        values = np.append(np.asarray(steps[joint], dtype=np.float64), stand[joint])
        ranges[joint] = (float(values.min() - TARGET_MARGIN_RAD), float(values.max() + TARGET_MARGIN_RAD))
    return ranges


def step_kinematics(files: dict[str, bytes]) -> str:
    """The recorded single step (one walking cycle per leg) that the CPG baseline replays, as JSON."""
    steps = pickle.loads(files[f"{DATA}/behavior/single_steps_untethered.pkl"])
    return json.dumps({
        "source": "flygym 1.2.1 data/behavior/single_steps_untethered.pkl",
        "timestep_s": float(steps["meta"]["timestep"]),
        # The swing (foot lifted) spans the start of the cycle until stance begins.
        "stance_start_s": {leg: float(steps["swing_stance_time"]["stance"][leg]) for leg in LEGS},
        "joints": {joint: [round(float(v), 6) for v in steps[joint]] for joint in ACTUATED_JOINTS},
    }, indent=1) + "\n"


def recorded_walking(files: dict[str, bytes]) -> str:
    """flygym's recorded walking (1 s of all leg joints, 2 kHz) that benchmarks/replay_flygym.py replays, and
    flygym's "stretch" pose its tutorial starts that replay from, as JSON (radians)."""
    data = pickle.loads(files[RECORDING])
    stretch = yaml.safe_load(files[f"{DATA}/pose/pose_stretch.yaml"])["joints"]
    joints = ",\n".join(f' "{j}": {json.dumps([round(float(v), 5) for v in data[j]])}' for j in ACTUATED_JOINTS)
    head = {"source": f"flygym 1.2.1 {RECORDING.removeprefix(DATA + '/')}",
            "timestep_s": float(data["meta"]["timestep"]),
            "stretch_pose": {j: round(float(np.deg2rad(stretch[j])), 6) for j in ACTUATED_JOINTS}}
    return json.dumps(head)[:-1] + ',\n"joints": {\n' + joints + "\n}}\n"


def build_spec(files: dict[str, bytes]) -> mujoco.MjSpec:
    spec = upstream_spec(files)
    inertials = body_inertials(spec)
    stand = load_pose(files, "tripod")

    spec.modelname = "neuromechfly"
    spec.stat.meaninertia = float("nan")  # deprecated in MuJoCo 4 (it warns on every load); unused
    spec.meshdir = "meshes"
    for mesh in spec.meshes:
        mesh.file = Path(mesh.file).name
    for body in spec.bodies:
        if body.name in inertials:
            mass, ipos, iquat, inertia = inertials[body.name]
            body.explicitinertial = True
            body.mass, body.ipos, body.iquat, body.inertia = mass, ipos, iquat, inertia

    opt = spec.option
    opt.timestep = TIMESTEP
    opt.gravity = GRAVITY
    opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    opt.iterations = SOLVER_ITERATIONS
    opt.ls_iterations = LS_ITERATIONS
    opt.tolerance = SOLVER_TOLERANCE
    opt.noslip_iterations = 0  # not available in MuJoCo Warp; both engines must run the same model
    opt.enableflags = 0  # drop energy computation: nothing reads it
    opt.disableflags = mujoco.mjtDisableBit.mjDSBL_REFSAFE  # keep CONTACT_SOLREF's time constant at TIMESTEP
    spec.nconmax = -1
    spec.njmax = -1

    root = spec.body("FlyBody")
    root.add_freejoint(name="root")

    for geom in spec.geoms:
        geom.friction = FRICTION
    for joint in spec.joints:
        if joint.type != mujoco.mjtJoint.mjJNT_HINGE:
            continue
        proximal = joint.name in ACTUATED_JOINTS and any(part in joint.name for part in PROXIMAL_JOINTS)
        joint.armature = PROXIMAL_ARMATURE if proximal else ARMATURE
        if joint.name in ACTUATED_JOINTS:
            set_spring(joint, JOINT_STIFFNESS, JOINT_DAMPING)
        elif "Tarsus" in joint.name:
            set_spring(joint, TARSUS_STIFFNESS, TARSUS_DAMPING)
        else:
            set_spring(joint, PASSIVE_STIFFNESS, PASSIVE_DAMPING)

    add_camera(spec)
    add_ground_contact_class(spec)

    for joint, (low, high) in target_ranges(files, stand).items():
        spec.add_actuator(name=f"actuator_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
                          ctrllimited=True, ctrlrange=[low, high],
                          forcelimited=True, forcerange=[-ACTUATOR_FORCE_RANGE, ACTUATOR_FORCE_RANGE],
                          ).set_to_position(kp=ACTUATOR_KP)
    for leg in LEGS:
        spec.add_actuator(name=f"adhesion_{leg}", target=f"{leg}Tarsus5", trntype=mujoco.mjtTrn.mjTRN_BODY,
                          ctrllimited=True, ctrlrange=[0.0, 1.0]).set_to_adhesion(gain=ADHESION_GAIN)
    for leg in LEGS:
        sensor = spec.add_sensor(name=f"tarsal_contact_{leg}", type=mujoco.mjtSensor.mjSENS_CONTACT)
        sensor.objtype, sensor.objname = mujoco.mjtObj.mjOBJ_XBODY, f"{leg}Tarsus1"  # subtree of the tarsus
        sensor.intprm[0] = 2  # data = force
        sensor.intprm[1] = 3  # reduce = netforce
        sensor.intprm[2] = 1  # num = 1
    add_stand_keyframe(spec, stand)
    return spec


def set_spring(joint, stiffness: float, damping: float) -> None:
    # MuJoCo 4 stores polynomial stiffness/damping coefficients; the linear term is the first.
    joint.stiffness = [stiffness, 0.0, 0.0]
    joint.damping = [damping, 0.0, 0.0]


def add_camera(spec: mujoco.MjSpec) -> None:
    spec.body("FlyBody").add_camera(name="track", mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM,
                                    pos=[0.0, -9.0, 4.0], xyaxes=[1, 0, 0, 0, 0.4, 0.92], fovy=45)


def add_ground_contact_class(spec: mujoco.MjSpec) -> None:
    """The leg-ground contact parameters, for the pairs physics/scene.py adds with the ground."""
    # Pair friction: mean of fly and floor friction as flygym does (both are FRICTION here).
    pair = spec.add_default(GROUND_CONTACT_CLASS, spec.default).pair
    pair.condim = 3
    pair.friction = [FRICTION[0], FRICTION[0], FRICTION[1], FRICTION[2], FRICTION[2]]
    pair.solref, pair.solimp = list(CONTACT_SOLREF), list(CONTACT_SOLIMP)


def flat_scene(spec: mujoco.MjSpec) -> mujoco.MjModel:
    scene = spec.copy()
    add_ground(scene, Terrain(TerrainParams(), kinds=("flat",)), GROUND_CONTACT_CLASS, GROUND_CONTACT_GEOMS)
    return scene.compile()


def add_stand_keyframe(spec: mujoco.MjSpec, stand: dict[str, float]) -> None:
    model = flat_scene(spec)
    data = mujoco.MjData(model)
    for name, angle in stand.items():
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid >= 0:
            data.qpos[model.jnt_qposadr[jid]] = angle
    data.qpos[2] = 0.0
    mujoco.mj_kinematics(model, data)
    data.qpos[2] = -lowest_contact_point(model, data) + STAND_CLEARANCE_MM
    ctrl = np.zeros(model.nu)
    for i in range(model.nu):
        if model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT:
            ctrl[i] = data.qpos[model.jnt_qposadr[model.actuator_trnid[i, 0]]]
    # Let the fly settle onto the floor under its own weight (passive tarsi relax, stance legs
    # load) with a fine, fully converged solver, so a fly spawned in the keyframe starts at rest.
    model.opt.iterations = 200
    data.ctrl[:] = ctrl
    for _ in range(int(SETTLE_SECONDS / model.opt.timestep)):
        mujoco.mj_step(model, data)
    qpos = data.qpos.copy()
    qpos[:2] = 0.0
    spec.add_key(name="stand", qpos=qpos.tolist(), ctrl=ctrl.tolist())


# ---------------------------------------------------------------- output

NOTICE = f"""NeuroMechFly v2 model, built for reinforcement learning by assets/build_neuromechfly.py.

Source: the NeuroMechFly v2 model in flygym {FLYGYM_VERSION} (https://github.com/NeLy-EPFL/flygym),
wheel {FLYGYM_WHEEL}, sha256 {FLYGYM_SHA256}.
Copyright the flygym authors (Neuroengineering Laboratory, EPFL), licensed under the Apache
License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).

Changes: meshes decimated to {MESH_KEEP_FRACTION:.0%} of their triangles (masses and inertias kept
as upstream through explicit inertials); free joint, leg-ground contact parameters, position and
adhesion actuators, contact sensors, solver settings and a standing keyframe added, with
flygym.Fly's default parameters. single_step.json: the recorded single walking step
(single_steps_untethered.pkl) that the CPG baseline replays; gait_table.json: that step redrawn by
inverse kinematics on this model (flat stance, lifted swing) at several stride amplitudes;
walking_210902_pr_fly1.json: the recorded walking 210902_pr_fly1.pkl and the stretch pose. Please cite NeuroMechFly v2 (Wang-Chen et al., Nature Methods 2024).
"""


def build(out: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n.startswith(DATA + "/") and
                 (n.startswith(f"{DATA}/mesh/") or n.startswith(f"{DATA}/pose/")
                  or n in (UPSTREAM_MJCF, f"{DATA}/behavior/single_steps_untethered.pkl", RECORDING))}
    spec = build_spec(files)
    reference = upstream_spec(files)
    reference.body("FlyBody").add_freejoint(name="root")
    reference = reference.compile()

    out.mkdir(parents=True, exist_ok=True)
    (out / "meshes").mkdir(exist_ok=True)
    for old in (out / "meshes").glob("*.stl"):
        old.unlink()
    for mesh_file in sorted({m.file for m in spec.meshes}):
        (out / "meshes" / mesh_file).write_bytes(decimate(files[f"{DATA}/mesh/{mesh_file}"]))
    (out / MODEL_FILE).write_text(spec.to_xml())
    step = step_kinematics(files)
    (out / STEP_FILE).write_text(step)
    model = mujoco.MjModel.from_xml_path(str(out / MODEL_FILE))
    (out / GAIT_TABLE_FILE).write_text(build_gait_table(model, json.loads(step), LEGS, LEG_DOFS))
    (out / RECORDING_FILE).write_text(recorded_walking(files))
    (out / "NOTICE").write_text(NOTICE)
    verify(out / MODEL_FILE, reference)


def verify(path: Path, reference: mujoco.MjModel) -> None:
    """The built model must carry the upstream masses and inertias (to the 6 digits MJCF keeps)."""
    model = mujoco.MjModel.from_xml_path(str(path))
    for i in range(1, reference.nbody):
        name = reference.body(i).name
        body = model.body(name)
        if not (np.allclose(body.mass, reference.body_mass[i], rtol=1e-5, atol=0)
                and np.allclose(body.inertia, reference.body_inertia[i], rtol=1e-5, atol=1e-18)):
            raise SystemExit(f"error: body {name} lost its upstream inertial")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild into a temp dir and compare with the committed files")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "neuromechfly-build")
    args = parser.parse_args()
    wheel = fetch_wheel(args.cache)
    if not args.check:
        build(OUT_DIR, wheel)
        size = sum(f.stat().st_size for f in OUT_DIR.rglob("*") if f.is_file())
        print(f"wrote {OUT_DIR} ({size / 1e6:.2f} MB)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), wheel)
        built = sorted(p.relative_to(tmp) for p in Path(tmp).rglob("*") if p.is_file())
        committed = sorted(p.relative_to(OUT_DIR) for p in OUT_DIR.rglob("*") if p.is_file())
        differ = [str(p) for p in built if p not in committed or not filecmp.cmp(Path(tmp) / p, OUT_DIR / p, shallow=False)]
        differ += [str(p) for p in committed if p not in built]
        if differ:
            raise SystemExit(f"error: rebuilt assets differ from the committed ones: {differ}")
        print(f"ok: {len(built)} files reproduced byte for byte")


if __name__ == "__main__":
    main()

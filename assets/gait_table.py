"""The gait table: NeuroMechFly's recorded step, redrawn by inverse kinematics at several stride
amplitudes so that a fly replaying it stands on flat ground and lifts its feet.

Replayed on the model as recorded (single_step.json), the step's stance feet do not stay on one
plane (they rise and fall by +-0.1 mm, five tarsal radii, around the plane that fits them best), and
the hind feet swing no higher than they stand: a fly replaying it bears its weight on a changing
subset of feet and drags its hind tarsi, so its tarsal contacts show neither stance nor swing.
For each stride amplitude `a` the table keeps the recorded timing and the recorded foot path in
the horizontal plane scaled by `a` around its mean, puts every stance foot on that best-fit plane,
lifts every swinging foot at least CLEARANCE_MM above it (a half sine, more where the recorded step
lifts higher), and solves each leg's 7 joint angles for that foot position, starting from the
recorded angles (damped least squares, within the actuators' ranges). Amplitude 0 is the posture
the step swings around, feet still on the plane.

Built by assets/build_neuromechfly.py into gait_table.json; read by fly/step.py (GaitTable).
"""
from __future__ import annotations

import json
import math

import mujoco
import numpy as np

AMPLITUDES = (0.0, 0.5, 1.0, 1.5, 2.0)
CLEARANCE_MM = 0.3  # swing height of the feet above the ground at amplitude >= 0.5 (less below it)
FOOT = "Tarsus5"  # the segment whose geom centre the solver places
IK_ITERATIONS = 60
IK_DAMPING = 1e-3


def build_gait_table(model: mujoco.MjModel, step: dict, legs, leg_dofs) -> str:
    joints = [f"joint_{leg}{dof}" for leg in legs for dof in leg_dofs]
    n = len(step["joints"][joints[0]]) - 1  # the last sample repeats the first
    recorded = np.array([step["joints"][j][:n] for j in joints])  # (42, n)
    duration = step["timestep_s"] * n
    swing_end = np.array([step["stance_start_s"][leg] / duration for leg in legs])
    cycle = np.arange(n) / n
    stance = cycle[None, :] >= swing_end[:, None]  # (6, n)

    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand"))
    base = data.qpos.copy()  # the standing keyframe: its body attitude is the frame the feet are placed in
    jid = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joints]
    qadr, vadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
    act = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"actuator_{j}") for j in joints]
    low, high = model.actuator_ctrlrange[act, 0], model.actuator_ctrlrange[act, 1]
    feet = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"{leg}{FOOT}") for leg in legs]
    per_leg = len(leg_dofs)

    def foot_positions(q: np.ndarray) -> np.ndarray:
        data.qpos[:] = base
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        return np.array([data.geom_xpos[g] - base[:3] for g in feet])

    recorded_feet = np.stack([foot_positions(recorded[:, k]) for k in range(n)], axis=1)  # (6, n, 3)
    rows = np.concatenate([np.stack([np.ones(stance[i].sum()), recorded_feet[i, stance[i], 0],
                                     recorded_feet[i, stance[i], 1]], axis=1) for i in range(len(legs))])
    heights = np.concatenate([recorded_feet[i, stance[i], 2] for i in range(len(legs))])
    plane = np.linalg.lstsq(rows, heights, rcond=None)[0]  # z = p0 + p1 x + p2 y

    def ground(x, y):
        return plane[0] + plane[1] * x + plane[2] * y

    centre = recorded_feet.mean(axis=1)
    jac = np.zeros((3, model.nv))

    def solve(start: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
        q = start.copy()
        error = 0.0
        for _ in range(IK_ITERATIONS):
            data.qpos[:] = base
            data.qpos[qadr] = q
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            error = 0.0
            for i, g in enumerate(feet):
                e = targets[i] - (data.geom_xpos[g] - base[:3])
                error = max(error, float(np.linalg.norm(e)))
                mujoco.mj_jacGeom(model, data, jac, None, g)
                cols = slice(i * per_leg, (i + 1) * per_leg)
                J = jac[:, vadr[cols]]
                dq = np.linalg.solve(J.T @ J + IK_DAMPING * np.eye(per_leg), J.T @ e)
                q[cols] = np.clip(q[cols] + dq, low[cols], high[cols])
            if error < 1e-6:
                break
        return q, error

    table, errors = [], []
    for a in AMPLITUDES:
        lift_scale = min(1.0, 2.0 * a)  # a barely stepping leg barely lifts
        angles, worst = np.zeros_like(recorded), 0.0
        for k in range(n):
            targets = np.zeros((len(legs), 3))
            for i in range(len(legs)):
                x, y = centre[i, :2] + a * (recorded_feet[i, k, :2] - centre[i, :2])
                z = ground(x, y)
                if not stance[i, k]:
                    lift = recorded_feet[i, k, 2] - ground(*recorded_feet[i, k, :2])
                    z += lift_scale * max(lift, CLEARANCE_MM * math.sin(math.pi * cycle[k] / swing_end[i]))
                targets[i] = (x, y, z)
            angles[:, k], error = solve(recorded[:, k], targets)
            worst = max(worst, error)
        table.append(angles)
        errors.append(worst)
    return json.dumps({
        "source": "single_step.json redrawn by inverse kinematics on neuromechfly.xml (assets/gait_table.py)",
        "timestep_s": step["timestep_s"],
        "stance_start_s": step["stance_start_s"],
        "amplitudes": list(AMPLITUDES),
        "clearance_mm": CLEARANCE_MM,
        "ground_plane": [round(float(v), 6) for v in plane],
        "max_foot_error_mm": [round(e, 6) for e in errors],
        "joints": {j: [[round(float(v), 6) for v in table[a][r]] + [round(float(table[a][r][0]), 6)]
                       for a in range(len(AMPLITUDES))] for r, j in enumerate(joints)},
    }, indent=1) + "\n"

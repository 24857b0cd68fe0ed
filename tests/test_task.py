"""The NeuroMechFly task's wiring on the CPU engine: measurements, observation layout, logging."""
import math

import pytest
import torch

from common.maths import heading_angle, quat_mul, yaw_quat
from physics import FAULT_KINDS, NO_DOF
from tasks.base.counters import EndCounters
from tasks.neuromechfly import NUM_OBS, observations


def move_by_hand(env, world: int, forward: float, left: float, turn: float):
    """Teleport world `world`: `forward` and `left` mm in the frame of its heading halfway through the
    turn, and `turn` rad about the vertical."""
    qpos = env.physics.qpos[world:world + 1].clone()
    heading = float(heading_angle(qpos[:, 3:7].float())[0]) + 0.5 * turn
    c, s = math.cos(heading), math.sin(heading)
    qpos[0, 0] += forward * c - left * s
    qpos[0, 1] += forward * s + left * c
    qpos[0, 3:7] = quat_mul(yaw_quat(torch.tensor([turn], dtype=qpos.dtype)), qpos[:, 3:7])[0]
    env.physics.reset_worlds(torch.tensor([world]), qpos, env.physics.qvel[world:world + 1].clone())


def test_speed_and_yaw_rate_are_measured_in_the_frame_of_the_current_heading(make_cpu_task):
    env = make_cpu_task("num_envs=3", "task.env.resetYawNoise=3.14159")
    reader, dt = env.reader, env.dt
    reader.read()
    reader.start_step()
    move_by_hand(env, 0, forward=0.1, left=0.0, turn=0.0)  # 20 mm/s straight ahead
    move_by_hand(env, 1, forward=0.05, left=-0.02, turn=0.01)  # 10 mm/s, 4 mm/s to the right, turning left 2 rad/s
    reader.read()
    reader.measure_motion(dt)
    s = env.state
    assert s.forward_speed[:2].tolist() == pytest.approx([20.0, 10.0], abs=1e-3)
    assert s.lateral_speed[:2].tolist() == pytest.approx([0.0, -4.0], abs=1e-3)
    assert s.yaw_rate[:2].tolist() == pytest.approx([0.0, 2.0], abs=1e-4)
    assert abs(float(s.forward_speed[2])) < 1.0  # world 2 was left alone (it only settles)
    # the window average over the steps so far (one: the first step after a reset)
    assert s.forward_speed_avg[0] == pytest.approx(20.0, abs=1e-3)


def test_foot_clearance_reads_feet_down_standing_and_up_when_the_fly_is_lifted(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.gait.reference=False", "task.env.resetJointNoise=0.0")
    env.reset()
    zero = torch.zeros(2, env.num_actions)
    for _ in range(20):  # 0.1 s standing still
        env.step(zero)
    standing = env.foot_clearance()
    assert standing.shape == (2, 6) and standing.abs().max() < 0.02  # every foot down, within a tarsal radius
    lifted = env.physics.qpos[1:2].clone()
    lifted[0, 2] += 0.5
    env.physics.reset_worlds(torch.tensor([1]), lifted, torch.zeros(1, env.physics.nv, dtype=lifted.dtype))
    env.physics.step()  # 5 ms of falling (0.12 mm); the unloaded legs hang a little lower
    rise = env.foot_clearance() - standing
    assert rise[0].abs().max() < 0.01  # world 0 was left alone
    assert ((rise[1] > 0.1) & (rise[1] < 0.4)).all(), rise[1]  # every foot of world 1 off the ground (body: 0.38)


def test_the_feet_height_jacobian_predicts_where_joint_noise_puts_the_feet():
    import mujoco
    import numpy as np

    from fly.model import FlyModelInfo, _feet_lowest_z, load_fly

    model = load_fly(adhesion=False)  # as the task loads it
    info = FlyModelInfo.from_model(model)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand"))
    mujoco.mj_kinematics(model, data)
    z0, q0 = _feet_lowest_z(model, data, info.foot_geoms), data.qpos.copy()
    assert (np.count_nonzero(info.stand_feet_dz, axis=1) == 7).all()  # a foot moves with its own leg's 7 joints
    rng, errors, drops = np.random.default_rng(0), [], []
    for _ in range(100):  # the task's reset noise, 0.1 rad
        noise = rng.uniform(-0.1, 0.1, len(info.qpos_adr))
        data.qpos[:] = q0
        data.qpos[info.qpos_adr] += noise
        mujoco.mj_kinematics(model, data)
        dz = _feet_lowest_z(model, data, info.foot_geoms) - z0
        errors.append(np.abs(dz - info.stand_feet_dz @ noise).max())
        drops.append(-dz.min())
    assert np.median(drops) > 0.1  # most resets would push a foot 0.1 mm or more into the ground
    assert max(errors) < 0.08 and np.median(errors) < 0.03  # first order in 0.1 rad


def test_a_fly_reset_with_joint_noise_stands_without_being_flung_up(make_cpu_task):
    # without the lift by the deepest foot a third of such starts rose 0.1 mm or more in 0.2 s and 2 of 256 fell over
    # (flat ground, the gait reference standing)
    env = make_cpu_task("num_envs=32", "task.env.commands.forwardSpeed=[0.0,0.0]",
                        "task.env.commands.yawRate=[0.0,0.0]")
    assert env.cfg_t.reset_joint_noise == pytest.approx(0.1)
    env.reset()
    start = env.state.root_pos[:, 2].clone()
    highest, upright = start.clone(), torch.ones(32)
    for _ in range(20):  # 0.1 s
        env.step(torch.zeros(32, env.num_actions))
        highest = torch.maximum(highest, env.state.root_pos[:, 2])
        upright = torch.minimum(upright, -env.state.projected_gravity[:, 2])
    assert not env.reset_buf.any()
    assert (highest - start).max() < 0.05, (highest - start).max()
    assert upright.min() > 0.98


def test_observation_layout_is_declared_once():
    slices = observations.OBSERVATIONS.layout()
    assert sum(o.size for o in observations.OBSERVATIONS) == NUM_OBS == max(s.stop for s in slices.values())
    assert list(slices) == [o.name for o in observations.OBSERVATIONS]


def test_task_fills_its_buffers_and_logs_each_term_by_name(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.episodeLength_s=0.05")
    assert env.obs_buf.shape == (2, NUM_OBS) and env.max_episode_length == 10
    obs = env.reset()["obs"]
    layout = observations.OBSERVATIONS.layout()
    cmd = obs[:, layout["command"]]
    assert torch.allclose(cmd[:, 0], env.command.speed * env.cfg_t.obs_scales["linVel"])
    logged = None
    for _ in range(10):
        obs, rew, reset, extras = env.step(torch.zeros(2, env.num_actions))
        logged = extras.get("episode", logged)
    assert reset.tolist() == [1, 1] and extras["time_outs"].tolist() == [1, 1]
    weights = env.cfg_t.rewards.scales
    assert {f"rew_{name}" for name, w in weights.items() if w != 0} <= set(logged)
    assert not {f"rew_{name}" for name, w in weights.items() if w == 0} & set(logged)  # weight 0: not computed
    assert {"forward_speed_mm_s", "speed_error_mm_s", "yaw_rate_error_rad_s", "length_s"} <= set(logged)
    assert float(logged["length_s"]) == pytest.approx(0.05)
    assert torch.isfinite(obs["obs"]).all() and (rew >= 0).all()


def test_num_threads_sets_the_cpu_engines_thread_pool(make_cpu_task):
    assert make_cpu_task("num_envs=4", "num_threads=1").physics.num_threads == 1
    assert make_cpu_task("num_envs=4", "num_threads=2").physics.num_threads == 2
    assert make_cpu_task("num_envs=1", "num_threads=0").physics.num_threads == 1  # one per core, at most one per world


def test_fault_counters_count_where_faults_started_and_blame_no_dof_for_overflows():
    counters = EndCounters(torch.device("cpu"), ["a", "b", "c"])
    codes = torch.tensor([0, FAULT_KINDS["nan"], FAULT_KINDS["overflow"], FAULT_KINDS["bad_qacc"], FAULT_KINDS["nan"]],
                         dtype=torch.int32)
    dofs = torch.tensor([2, 1, 0, 2, NO_DOF])  # world 0 did not fault: its entry means nothing
    counters.add(codes, codes != 0, torch.zeros(5, dtype=torch.bool), dofs)
    extras = {}
    counters.report(extras)
    assert extras["physics_fault_dof_names"] == ("no_dof", "a", "b", "c")
    assert extras["physics_fault_dofs"].tolist() == [2, 0, 1, 1]  # overflow and unknown, b, c
    assert int(extras["physics_faults"]) == 4

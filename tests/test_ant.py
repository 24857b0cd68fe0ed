"""IsaacGymEnvs' Ant on MuJoCo: the model, observations against hand-computed values, reward terms,
terminations, train.py and play on the CPU engine, and the CPU and Warp engines agreeing."""
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mujoco
import numpy as np
import pytest
import torch

from common.checks import ConfigError
from common.maths import quat_mul, quat_rotate
from runner.config import to_dict
from tasks.ant import NUM_OBS, Ant, observations, rewards, terminations
from tasks.ant.config import parse
from tasks.ant.state import AntModelInfo, foot_wrenches
from tasks.ant.task import load_ant
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
DENSITY = 5.0  # nv_ant's geom density, kg/m^3


def ant_config(*overrides):
    return compose_config("task=Ant", "sim_device=cpu", "rl_device=cpu", *overrides)


def make_ant(*overrides, num_envs=2, engine="mujoco"):
    torch.manual_seed(0)  # resets draw joint noise: the same start every run
    cfg = ant_config(f"num_envs={num_envs}", f"physics_engine={engine}", *overrides)
    return Ant(cfg=to_dict(cfg.task), rl_device="cpu", sim_device="cpu", graphics_device_id=0, headless=True)


def capsule_mass(radius, length):
    return DENSITY * (math.pi * radius ** 2 * length + 4 / 3 * math.pi * radius ** 3)


def axis_quat(axis, angle):
    axis = torch.tensor(axis, dtype=torch.float64)
    return torch.cat([torch.tensor([math.cos(angle / 2)]), math.sin(angle / 2) * axis])[None]


def set_state(env, world, pos, quat, lin_vel, ang_vel_world, dof_pos, dof_vel):
    """Put world `world` into a hand-made state (velocities in the world frame)."""
    qpos = env.physics.qpos[world:world + 1].clone()
    qvel = torch.zeros_like(env.physics.qvel[world:world + 1])
    qpos[0, 0:3], qpos[0, 3:7] = torch.as_tensor(pos), quat[0]
    qvel[0, 0:3] = torch.as_tensor(lin_vel)
    conj = torch.cat([quat[:, :1], -quat[:, 1:]], -1)
    qvel[0, 3:6] = quat_rotate(conj, torch.as_tensor(ang_vel_world, dtype=torch.float64)[None])[0]  # body frame
    qpos[0, env.qpos_adr] = torch.as_tensor(dof_pos, dtype=qpos.dtype)
    qvel[0, env.dof_adr] = torch.as_tensor(dof_vel, dtype=qvel.dtype)
    env.physics.reset_worlds(torch.tensor([world]), qpos, qvel)


def test_model_is_nv_ant_and_stands_on_its_legs():
    cfg = parse(to_dict(ant_config().task))
    model = load_ant(cfg)
    info = AntModelInfo.from_model(model)
    assert model.nu == 8 and np.all(model.actuator_gear[:, 0] == 15.0)
    assert np.all(model.actuator_ctrlrange == [-1.0, 1.0]) and np.all(model.actuator_ctrllimited)
    assert info.dof_names == tuple(f"{j}_{i}" for i in range(1, 5) for j in ("hip", "ankle"))
    assert list(info.actuator_ids) == list(range(8))  # actuators in DOF order: action i drives DOF i
    assert len(info.feet) == 4 and all("foot" in f for f in info.feet)
    contact = [s for s in range(model.nsensor) if model.sensor_type[s] == mujoco.mjtSensor.mjSENS_CONTACT]
    assert len(contact) == 4
    # masses from nv_ant's geometry at density 5: torso sphere and 4 capsules, 4 hips, 4 feet
    sphere = DENSITY * 4 / 3 * math.pi * 0.25 ** 3
    short, foot = capsule_mass(0.08, 0.2 * math.sqrt(2)), capsule_mass(0.08, 0.4 * math.sqrt(2))
    assert info.total_mass == pytest.approx(sphere + 8 * short + 4 * foot, rel=1e-6)
    assert np.degrees(info.dof_upper - info.dof_lower).tolist() == pytest.approx([80, 70] * 4)

    # Zero actions for 1 s on MuJoCo C: the ant stands on its joint limits and its feet carry its weight.
    env = make_ant(num_envs=1)
    for _ in range(round(1.0 / env.dt)):
        obs, _, reset, _ = env.step(torch.zeros(1, 8))
        assert obs["obs"][0, 0] > env.cfg_t.termination_height and reset[0] == 0
    assert float(obs["obs"][0, 0]) == pytest.approx(0.363, abs=0.005)  # hip height minus foot drop and radius
    quats = env.physics.sensordata[:, torch.as_tensor(info.foot_sensor_adr[:, 12:16])].float()[0]
    wrench = obs["obs"][0, observations.OBSERVATIONS.layout()["foot_forces"]].reshape(4, 6) / cfg.contact_force_scale
    ground = quat_rotate(quats, wrench[:, :3])  # back to the world frame
    weight = info.total_mass * 9.81
    assert float(ground[:, 2].sum()) == pytest.approx(weight, rel=0.01)
    assert float(ground[:, :2].sum(0).norm()) < 0.01 * weight
    assert (ground[:, 2] > 0.2 * weight).all()  # each foot carries its share


def test_foot_wrench_is_the_ground_reaction_about_the_foot_origin_in_its_frame():
    sensors = torch.zeros(1, 2, 16)
    # foot 0: MuJoCo reports the foot pressing the floor with 2 N at 0.5 m ahead of the foot's origin
    sensors[0, 0, 2] = -2.0
    sensors[0, 0, 6:9] = torch.tensor([1.5, 0.0, 0.0])
    sensors[0, 0, 9:12] = torch.tensor([1.0, 0.0, 0.0])
    sensors[0, 0, 12:16] = axis_quat([0, 0, 1], math.pi / 2)[0]  # foot frame yawed 90 deg
    # foot 1: no contact, and its sensors cleared: all zeros
    w = foot_wrenches(sensors)[0]
    # world: force (0, 0, 2), torque (0.5, 0, 0) x (0, 0, 2) = (0, -1, 0); in the yawed frame: (-1, 0, 0)
    assert w[0].tolist() == pytest.approx([0, 0, 2, -1, 0, 0], abs=1e-6)
    assert w[1].tolist() == [0.0] * 6


def test_observations_match_hand_computed_values():
    env = make_ant()
    assert env.obs_buf.shape == (2, NUM_OBS) and NUM_OBS == 60
    layout = observations.OBSERVATIONS.layout()
    roll, yaw, pos = 0.3, 0.4, (1.0, 2.0, 0.5)
    quat = quat_mul(axis_quat([0, 0, 1], yaw), axis_quat([1, 0, 0], roll))  # yawed, then rolled about its x
    v, w = (0.5, -0.2, 0.1), (0.1, 0.2, 0.3)
    lower, upper = env.dof_lower.double(), env.dof_upper.double()
    dof_pos = (0.5 * (lower + upper)).clone()
    dof_pos[1] = upper[1]
    dof_vel = torch.arange(8, dtype=torch.float64) - 3.5
    set_state(env, 0, pos, quat, v, w, dof_pos, dof_vel)
    set_state(env, 1, (0.0, 0.0, 0.44), axis_quat([1, 0, 0], -0.2), (0, 0, 0), (0, 0, 0), dof_pos, torch.zeros(8))
    env.actions[:] = torch.linspace(-1, 1, 8)
    env._measure()
    observations.OBSERVATIONS.compute(env, env.obs_buf)
    o = {k: env.obs_buf[:, s].double() for k, s in layout.items()}

    conj = torch.cat([quat[:, :1], -quat[:, 1:]], -1)
    assert o["torso_height"][:, 0].tolist() == pytest.approx([0.5, 0.44], abs=1e-6)
    for name, world_vec in (("lin_vel", v), ("ang_vel", w)):  # in the torso's frame
        body = quat_rotate(conj, torch.tensor([world_vec], dtype=torch.float64))[0]
        assert o[name][0].tolist() == pytest.approx(body.tolist(), abs=1e-6), name
    assert float(o["roll"][0]) == pytest.approx(roll, abs=1e-6) and float(o["yaw"][0]) == pytest.approx(yaw, abs=1e-6)
    assert float(o["roll"][1]) == pytest.approx(2 * math.pi - 0.2, abs=1e-5)  # IsaacGymEnvs' [0, 2 pi)
    assert float(o["up_proj"][0]) == pytest.approx(math.cos(roll), abs=1e-6)
    assert float(o["up_proj"][1]) == pytest.approx(math.cos(0.2), abs=1e-6)
    to_target = np.array([1000.0 - pos[0], -pos[1]])
    heading = np.array([math.cos(yaw), math.sin(yaw)]) @ to_target / np.linalg.norm(to_target)
    assert float(o["heading_proj"][0]) == pytest.approx(heading, abs=1e-6)
    assert float(o["angle_to_target"][0]) == pytest.approx(math.atan2(-pos[2], 1000.0 - pos[0]) - yaw, abs=1e-6)
    expected_dof = torch.zeros(8, dtype=torch.float64)
    expected_dof[1] = 1.0
    assert o["dof_pos"][0].tolist() == pytest.approx(expected_dof.tolist(), abs=1e-5)
    assert o["dof_vel"][0].tolist() == pytest.approx((0.2 * dof_vel).tolist(), abs=1e-6)
    assert o["foot_forces"].abs().max() == 0.0  # both ants in the air, sensors cleared by the reset
    assert o["actions"][0].tolist() == pytest.approx(torch.linspace(-1, 1, 8).tolist(), abs=1e-7)


def test_reward_terms_on_hand_made_values():
    p = parse(to_dict(ant_config().task)).rewards
    s = SimpleNamespace(
        potentials=torch.tensor([-59990.0, -60000.0]), prev_potentials=torch.tensor([-60000.0, -60000.0]),
        heading_proj=torch.tensor([0.9, 0.4]), up_proj=torch.tensor([0.95, 0.9]),
        actions=torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0], [0.5] * 8]),
        dof_vel=torch.tensor([[2.0, 0, 0, 0, 0, 0, 0, 0], [-1.0] * 8]),
        dof_pos_scaled=torch.tensor([[0.995, -1.0, 1.0, 0.98, 0, 0, 0, 0], [-0.999] * 8]))
    terms = {name: fn(s, p) for name, fn in rewards.REWARDS.items()}
    expected = {
        "progress": [10.0, 0.0],  # potential difference: 10 m/s toward the target, then standing
        "alive": [0.5, 0.5],
        "heading": [0.5, 0.5 * 0.4 / 0.8],  # full above 0.8, linear below
        "up": [0.1, 0.0],  # only above 0.93
        "actions": [-0.005 * 1.0, -0.005 * 8 * 0.25],
        "energy": [-0.05 * 1.0 * 2.0 * 0.2, -0.05 * 8 * 0.5 * 1.0 * 0.2],  # |action x speed x dofVelocityScale|
        "joints_at_limit": [-0.1 * 2, 0.0],  # above 0.99 of the range, the upper end only
    }
    for name, values in expected.items():
        assert terms[name].tolist() == pytest.approx(values, abs=1e-6), name
    reward = rewards.total(terms, torch.tensor([False, True]), p.death_cost)
    assert reward.tolist() == pytest.approx([sum(v[0] for v in expected.values()), -2.0], abs=1e-5)


def test_falling_below_termination_height_ends_the_episode_with_the_death_cost():
    s = SimpleNamespace(root_pos=torch.tensor([[0.0, 0.0, 0.30], [0.0, 0.0, 0.32]]))
    assert terminations.fell(s, 0.31).tolist() == [True, False]
    assert terminations.timed_out(torch.tensor([998, 999]), 1000).tolist() == [False, True]

    env = make_ant()
    start = env.physics.qpos[0:1].clone()
    # world 0 upside down, its torso 0.26 m up: it lies on its back, below terminationHeight (0.31 m)
    set_state(env, 0, (0.0, 0.0, 0.26), axis_quat([1, 0, 0], math.pi), (0, 0, 0), (0, 0, 0),
              start[0, env.qpos_adr], torch.zeros(8))
    obs, rew, reset, extras = env.step(torch.zeros(2, 8))
    assert rew[0] == pytest.approx(-2.0) and reset.tolist() == [1, 0] and extras["time_outs"].tolist() == [0, 0]
    assert rew[1] > 0.5 and extras["falls"] == 1
    assert float(obs["obs"][0, 0]) == pytest.approx(0.44)  # world 0 starts a new episode at once
    assert float(extras["episode"]["rew_death"]) == pytest.approx(-2.0)
    assert {f"rew_{k}" for k in rewards.REWARDS} | {"forward_velocity_m_s"} <= set(extras["episode"])

    env = make_ant("task.env.episodeLength=5")
    for k in range(4):
        _, _, reset, extras = env.step(torch.zeros(2, 8))
    assert reset.tolist() == [1, 1] and extras["time_outs"].tolist() == [1, 1]  # at episodeLength - 1


def test_bad_config_values_are_one_line_errors():
    cfg = to_dict(ant_config().task)
    cfg["env"]["terminationHeight"] = -1
    with pytest.raises(ConfigError, match=r"^task\.env\.terminationHeight=-1 is not allowed"):
        Ant.check_config(cfg)
    cfg = to_dict(ant_config().task)
    cfg["sim"]["gravity"] = [0, -9.81]
    with pytest.raises(ConfigError, match=r"^task\.sim\.gravity="):
        Ant.check_config(cfg)


def train_py(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_train_writes_a_checkpoint_and_play_loads_it(tmp_path):
    small = ["task=Ant", "num_envs=4", "sim_device=cpu", "rl_device=cpu", "headless=True", "physics_engine=mujoco"]
    result = train_py([*small, "max_iterations=2"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    checkpoints = sorted((tmp_path / "runs" / "Ant" / "nn").glob("*.pth"))
    assert checkpoints and "epoch: 2/2" in result.stdout
    state = torch.load(checkpoints[-1], weights_only=False)
    assert state["epoch"] == 2 and state["model"]["a2c_network.mu.weight"].shape == (8, 64)
    # play: episodes of 40 steps, so that 2 games end quickly
    result = train_py([*small, "test=True", f"checkpoint={checkpoints[-1]}", "train.params.config.player.games_num=2",
                       "task.env.episodeLength=40"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "=> loading checkpoint" in result.stdout and "av reward" in result.stdout


# Stated tolerances over 10 settling and 10 random-torque control steps; measured worst: 1.2e-5 (qpos),
# 1.3e-4 (observations), 4e-6 (reward). Later they part: at the 11th random step, an ant in mid-jump with
# three joints at their limits comes out 9e-3 apart in qpos, and the gap grows (float32 against float64
# under 15 N m torques on 0.07 kg feet).
QPOS_TOL, OBS_TOL, REWARD_TOL = 1e-4, 1e-3, 1e-4


def test_cpu_and_warp_engines_agree_for_a_few_control_steps():
    """The same resets and actions on MuJoCo C (float64) and MuJoCo Warp on Warp's CPU device (float32)."""
    pytest.importorskip("mujoco_warp")
    cpu, warp = make_ant(engine="mujoco"), make_ant(engine="mjwarp")
    assert torch.allclose(cpu.physics.qpos.float(), warp.physics.qpos.float(), atol=1e-6)
    g = torch.Generator().manual_seed(1)
    for k in range(20):  # 0.33 s: settling onto the floor, then random torques
        actions = torch.rand(2, 8, generator=g) * 2 - 1 if k >= 10 else torch.zeros(2, 8)
        a, b = cpu.step(actions)[0]["obs"], warp.step(actions)[0]["obs"]
        assert torch.allclose(cpu.physics.qpos.float(), warp.physics.qpos.float(), atol=QPOS_TOL), k
        assert torch.allclose(a, b, atol=OBS_TOL), (k, (a - b).abs().max())
        assert torch.allclose(cpu.rew_buf, warp.rew_buf, atol=REWARD_TOL), k

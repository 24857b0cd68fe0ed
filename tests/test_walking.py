"""Walking pieces on the CPU: the CPG baseline, the task's gait clock, evaluate.py and its gait metrics."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from controllers.cpg import TRIPOD_A, CPGNetwork
from physics import LEGS
from runner.evaluation import gait_metrics
from tasks.gait_clock import GaitClock

ROOT = Path(__file__).resolve().parents[1]


def test_cpg_phases_lock_into_two_alternating_tripods():
    torch.manual_seed(0)
    network = CPGNetwork(num_envs=16, device="cpu")
    network.reset(torch.arange(16))  # random phases
    network.advance(1.0)
    phase = network.phase
    in_a = torch.tensor([leg in TRIPOD_A for leg in LEGS])
    same = torch.cos(phase[:, in_a] - phase[:, in_a][:, :1]).mean()
    opposite = torch.cos(phase[:, ~in_a] - phase[:, in_a][:, :1]).mean()
    assert same > 0.99 and opposite < -0.99
    assert torch.allclose(network.magnitude, torch.ones_like(network.magnitude), atol=1e-6)


def test_gait_clock_follows_the_command_and_puts_tripods_half_a_cycle_apart():
    rest = torch.linspace(-0.5, 0.5, 42)
    clock = GaitClock(2, "cpu", frequency_per_speed=1.0, frequency_range=(8.0, 22.0), ramp_rate=20.0, rest_pose=rest)
    clock.reset(torch.arange(2), torch.tensor([15.0, 40.0]))
    assert torch.allclose(clock.reference(), rest.expand(2, -1))  # a reset world's reference is its rest pose
    assert clock.frequency.tolist() == [15.0, 22.0]  # the second clipped to the range
    start = clock.phase.clone()
    clock.advance(0.01)
    assert torch.allclose(torch.remainder(clock.phase - start, 2 * math.pi), 2 * math.pi * clock.frequency * 0.01)
    legs = clock.leg_phases()
    in_a = torch.tensor([leg in TRIPOD_A for leg in LEGS])
    assert torch.allclose(torch.cos(legs[:, ~in_a] - legs[:, in_a][:, :1]), torch.tensor(-1.0), atol=1e-6)
    # stance schedule: over a cycle every leg spends some time in swing and more in stance
    phases = torch.linspace(0, 2 * math.pi, 200)[:, None].expand(-1, 6)
    swing = clock.pattern.in_swing(phases).float().mean(0)
    assert ((swing > 0.1) & (swing < 0.5)).all()


def test_reset_worlds_stand_through_the_start_of_the_step(make_cpu_task):
    # default reset noise: a reference grown from the step's neutral pose flipped world 0 at once
    env = make_cpu_task("num_envs=4")
    assert torch.allclose(env.gait.reference(), env.default_dof_pos.expand(4, -1))
    for _ in range(10):
        env.step(torch.zeros(4, env.num_actions))
        assert not env.reset_buf.any()


def test_zero_residual_commands_the_recorded_step(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.resetJointNoise=0.0")  # no world falls and resets (see README)
    env.gait.magnitude.fill_(1.0)  # as after the start-up ramp
    expected = env.gait.reference().clamp(env.target_low, env.target_high)
    assert (expected - env.default_dof_pos).abs().max() > 0.1  # the step, not the standing pose
    env.step(torch.zeros(2, env.num_actions))
    assert torch.allclose(env.physics.joint_targets().float(), expected, atol=1e-5)
    actions = 0.2 * torch.randn(2, env.num_actions).clamp(-1, 1)
    targets = env._actions_to_targets(actions)
    inside = (targets > env.target_low + 1e-4) & (targets < env.target_high - 1e-4)  # not clipped to the range
    assert torch.allclose(env.targets_to_actions(targets)[inside], actions[inside], atol=1e-4)


def test_evaluate_cpg_prints_the_gait_metrics_and_draws_the_diagram(tmp_path):
    plot = tmp_path / "gait.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "task=NeuroMechFly", "+controller=cpg", "num_envs=2",
         "sim_device=cpu", "rl_device=cpu", "task.env.episodeLength=80", f"+gait_plot={plot}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("forward_speed_mm_s", "lateral_drift_mm_s", "fall_rate", "step_frequency_hz", "duty_factor",
                "tripod_coordination", "episodes", "sim_seconds", "physics_engine"):
        assert key in summary
    assert summary["physics_engine"] == "mujoco" and summary["episodes"] == 2
    assert summary["sim_seconds"] > 0 and summary["forward_speed_mm_s"] > 2.0  # it walks forward
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_rejects_an_unknown_controller_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "task=NeuroMechFly", "+controller=ppo", "sim_device=cpu",
         "rl_device=cpu"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "controller=ppo" in lines[0] and "policy" in lines[0] and "cpg" in lines[0]


def test_gait_metrics_of_a_perfect_tripod():
    dt, steps = 0.005, 400
    t = np.arange(steps) * dt
    in_a = np.array([leg in TRIPOD_A for leg in LEGS])
    phase = 2 * np.pi * 10.0 * t[:, None] + np.where(in_a, 0.0, np.pi)
    stance = (np.sin(phase + 0.1) > 0)[:, None, :]  # (T, 1 world, 6 legs), 10 Hz, duty 1/2
    metrics = gait_metrics(stance, np.ones((steps, 1), bool), dt)
    assert abs(metrics["step_frequency_hz"] - 10.0) < 0.3
    assert abs(metrics["duty_factor"] - 0.5) < 0.02
    assert metrics["tripod_coordination"] > 0.95


def test_shipped_policy_walks_straight_on_the_cpu_engine(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "task=NeuroMechFly",
         f"checkpoint={ROOT / 'checkpoints' / 'NeuroMechFly_walk.pth'}", "num_envs=4", "sim_device=cpu",
         "rl_device=cpu", "task.env.episodeLength=200"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["fall_rate"] == 0.0 and summary["episodes"] == 4
    assert summary["forward_speed_mm_s"] > 12.0 and summary["lateral_drift_mm_s"] < 3.0  # 1 s from standing


def test_adhesion_actions_drive_the_adhesion_actuators(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.enableAdhesion=True", "task.env.resetJointNoise=0.0")
    assert env.num_actions == 48 and env.physics.model.nu == 48
    actions = torch.zeros(2, 48)
    actions[0, 42:] = 1.0  # world 0: full adhesion on every leg; world 1: half (action 0)
    env.step(actions)
    adhesion = env.physics.ctrl[:, env.physics.info.adhesion_actuator_ids]
    assert torch.allclose(adhesion, torch.tensor([[1.0] * 6, [0.5] * 6], dtype=adhesion.dtype))
    assert make_cpu_task("num_envs=1").physics.model.nu == 42  # off by default: no adhesion actuators at all

"""Each reward term and termination of the NeuroMechFly task on hand-made states (no physics)."""
import math
from types import SimpleNamespace

import pytest
import torch

from tasks.neuromechfly import rewards, terminations
from tasks.neuromechfly.config import RewardConfig

P = RewardConfig(scales={}, speed_sigma=3.0, yaw_rate_sigma=0.5, min_walk_height=0.9, max_swing_time=0.05,
                 only_positive=True)


def state(**kw):
    n = 3
    base = dict(forward_speed_avg=torch.zeros(n), lateral_speed_avg=torch.zeros(n), yaw_rate_avg=torch.zeros(n),
                cmd_speed=torch.zeros(n), cmd_yaw_rate=torch.zeros(n), cmd_standing=torch.zeros(n, dtype=torch.bool),
                projected_gravity=torch.tensor([[0.0, 0.0, -1.0]]).repeat(n, 1), height=torch.full((n,), 1.5),
                contacts=torch.ones(n, 6, dtype=torch.bool), expected_stance=torch.ones(n, 6, dtype=torch.bool),
                torque=torch.zeros(n, 42), dof_vel=torch.zeros(n, 42), actions=torch.zeros(n, 42),
                prev_actions=torch.zeros(n, 42), dof_pos=torch.zeros(n, 42), target_low=-torch.ones(42),
                target_high=torch.ones(42), faults=torch.zeros(n, dtype=torch.int32))
    base.update(kw)
    return SimpleNamespace(**base)


def test_speed_tracking_peaks_at_the_command_and_falls_off_over_sigma():
    s = state(forward_speed_avg=torch.tensor([20.0, 23.0, 10.0]), cmd_speed=torch.tensor([20.0, 20.0, 20.0]))
    r = rewards.track_speed(s, P)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(math.exp(-1.0)) and r[2] < 1e-4


def test_yaw_rate_tracking_is_signed():
    s = state(yaw_rate_avg=torch.tensor([1.0, -1.0, 1.25]), cmd_yaw_rate=torch.tensor([1.0, 1.0, 1.0]))
    r = rewards.track_yaw_rate(s, P)
    assert r[0] == pytest.approx(1.0) and r[1] < 1e-6 and r[2] == pytest.approx(math.exp(-0.25))


def test_lateral_speed_and_stand_still_penalise_drift():
    s = state(lateral_speed_avg=torch.tensor([0.0, 2.0, -3.0]), forward_speed_avg=torch.tensor([1.0, 1.0, 0.0]),
              cmd_standing=torch.tensor([True, False, True]))
    assert rewards.lateral_speed(s, P).tolist() == [0.0, 4.0, 9.0]
    assert rewards.stand_still(s, P).tolist() == [1.0, 0.0, 3.0]  # only where told to stand, |v_fwd| + |v_lat|


def test_upright_height_and_alive():
    tilted = torch.tensor([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    s = state(projected_gravity=tilted, height=torch.tensor([1.5, 0.4, 0.9]))
    assert rewards.upright(s, P).tolist() == [1.0, 0.0, -1.0]
    assert rewards.height(s, P).tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert rewards.alive(s, P).tolist() == [1.0, 1.0, 1.0]


def test_tilt_and_roll_pitch_rate_grow_with_the_lean_and_ignore_yaw():
    deg = torch.deg2rad(torch.tensor([0.0, 20.0, 90.0]))
    rolled = torch.stack([torch.zeros(3), torch.sin(deg), -torch.cos(deg)], -1)  # gravity in the body frame
    ang_vel = torch.tensor([[0.0, 0.0, 5.0], [3.0, 0.0, 0.0], [1.0, 2.0, 0.0]])  # the first only yaws
    s = state(projected_gravity=rolled, base_ang_vel=ang_vel)
    assert rewards.tilt(s, P).tolist() == pytest.approx([0.0, math.sin(math.radians(20.0)) ** 2, 1.0], abs=1e-6)
    assert rewards.roll_pitch_rate(s, P).tolist() == [0.0, 9.0, 5.0]


def test_gait_contact_counts_legs_that_follow_the_schedule():
    expected = torch.tensor([[True, False, True, False, True, False]] * 3)
    contacts = expected.clone()
    contacts[1, :3] = ~contacts[1, :3]  # three legs wrong
    contacts[2] = ~contacts[2]  # all wrong
    r = rewards.gait_contact(state(contacts=contacts, expected_stance=expected), P)
    assert r.tolist() == [1.0, 0.5, 0.0]


def test_swing_overrun_counts_the_legs_swinging_past_the_longest_fly_swing():
    swing = torch.tensor([[0.0, 0.03, 0.05, 0.055, 0.2, 0.0], [0.0] * 6, [0.06] * 6])
    assert rewards.swing_overrun(state(swing_time=swing), P).tolist() == [2.0, 0.0, 6.0]


def test_the_swing_time_is_each_legs_time_since_its_load_went_off(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.commands.forwardSpeed=[5.0,5.0]", "task.env.commands.yawRate=[0.0,0.0]",
                        "task.env.commands.standingShare=0.0", "task.env.commands.turnInPlaceShare=0.0")
    env.reset()
    run = torch.zeros(2, 6)
    swung = False
    for _ in range(80):
        env.step(torch.zeros(2, env.num_actions))
        s = env.state
        run = torch.where(s.contacts, torch.zeros_like(run), run + env.dt)  # from the recorded contacts
        assert torch.allclose(s.swing_time, run)
        swung |= bool((run > 0.02).any())
    assert swung  # legs did swing at 5 mm/s
    env.reset_idx(torch.tensor([1]))
    assert s.swing_time[1].eq(0).all() and torch.equal(s.swing_time[0], run[0])


def test_energy_action_rate_and_joint_limit():
    torque = torch.zeros(3, 42)
    vel = torch.zeros(3, 42)
    torque[1, 0], vel[1, 0] = 2.0, -3.0  # negative power counts too
    actions = torch.zeros(3, 42)
    actions[2, :2] = 0.5
    pos = torch.zeros(3, 42)
    pos[0, 5], pos[2, 6] = 1.5, -1.25  # 0.5 and 0.25 rad beyond the range
    s = state(torque=torque, dof_vel=vel, actions=actions, dof_pos=pos)
    assert rewards.energy(s, P).tolist() == [0.0, 6.0, 0.0]
    assert rewards.action_rate(s, P).tolist() == [0.0, 0.0, 0.5]
    assert rewards.joint_limit(s, P).tolist() == [0.5, 0.0, 0.25]


def test_every_term_is_declared_once_and_configured_by_name():
    from tests.conftest import compose_config
    from runner.config import to_dict
    from tasks.neuromechfly.config import parse

    cfg = parse(to_dict(compose_config("task=NeuroMechFly").task))
    assert set(cfg.rewards.scales) == set(rewards.REWARDS)  # the shipped YAML weighs every term
    assert all(rewards.REWARDS[name].__name__ == name for name in rewards.REWARDS)


def test_terminations():
    s = state(height=torch.tensor([0.4, 1.0, 1.0]),
              projected_gravity=torch.tensor([[0.0, 0.0, -1.0], [0.0, -0.9, -0.3], [0.0, 0.0, -1.0]]),
              faults=torch.tensor([0, 0, 16], dtype=torch.int32))
    assert terminations.fell(s, 0.5).tolist() == [True, False, False]
    assert terminations.flipped(s, 0.5).tolist() == [False, True, False]
    assert terminations.faulted(s).tolist() == [False, False, True]
    assert terminations.timed_out(torch.tensor([599, 600, 3]), 600).tolist() == [False, True, False]

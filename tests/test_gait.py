"""The fly's walking pieces: the CPG baseline, the gait table and the gait reference."""
import dataclasses
import math

import mujoco
import numpy as np
import pytest
import torch

from controllers.cpg import CPGNetwork
from fly import LEGS, FlyModelInfo, load_fly
from fly.gait import GaitParams, GaitReference
from fly.step import TRIPOD_A, GaitTable

PARAMS = GaitParams(frequency=(3.3, 0.47), frequency_range=(4.0, 20.0), swing_s=0.04, max_swing_fraction=0.5,
                    stride_mm=1.3, max_amplitude=2.0, half_track_mm=3.0, ramp_rate=20.0)
IN_A = torch.tensor([leg in TRIPOD_A for leg in LEGS])


def test_cpg_phases_lock_into_two_alternating_tripods():
    torch.manual_seed(0)
    network = CPGNetwork(num_envs=16, device="cpu")
    network.reset(torch.arange(16))  # random phases
    network.advance(1.0)
    phase = network.phase
    same = torch.cos(phase[:, IN_A] - phase[:, IN_A][:, :1]).mean()
    opposite = torch.cos(phase[:, ~IN_A] - phase[:, IN_A][:, :1]).mean()
    assert same > 0.99 and opposite < -0.99
    assert torch.allclose(network.magnitude, torch.ones_like(network.magnitude), atol=1e-6)


def feet_heights(angles: np.ndarray) -> np.ndarray:
    """(6,) height of each foot (Tarsus5 geom centre) relative to the best-fit ground plane, with the
    body held in the standing keyframe's attitude."""
    import json

    from fly.step import GAIT_TABLE_FILE

    plane = json.loads(GAIT_TABLE_FILE.read_text())["ground_plane"]
    model = load_fly(adhesion=False)
    info = FlyModelInfo.from_model(model)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    root = data.qpos[:3].copy()
    data.qpos[info.qpos_adr] = angles
    mujoco.mj_kinematics(model, data)
    out = []
    for leg in LEGS:
        x, y, z = data.geom_xpos[model.geom(f"{leg}Tarsus5").id] - root
        out.append(z - (plane[0] + plane[1] * x + plane[2] * y))
    return np.array(out)


@pytest.mark.parametrize("amplitude", [1.0, 1.5])
def test_gait_table_stands_on_flat_ground_and_lifts_its_feet(amplitude):
    table = GaitTable()
    swing = table.swing_fraction.numpy()
    heights = []
    cycle = np.linspace(0, 1, 60, endpoint=False)
    for u in cycle:
        angles = table.joint_angles(torch.full((1, 6), 2 * math.pi * u), torch.full((1, 6), amplitude))[0]
        heights.append(feet_heights(angles.double().numpy()))
    heights = np.array(heights)  # (60, 6)
    stance = cycle[:, None] >= swing[None, :] + 0.03  # away from the touchdown
    assert np.abs(heights[stance]).max() < 0.02  # a tarsal radius; the recorded step: +-0.1 mm
    swing_mid = np.abs(cycle[:, None] - swing[None, :] / 2) < 0.05
    assert (heights[swing_mid] > 0.12).all()  # the recorded hind legs swung no higher than they stood


def test_gait_table_interpolates_between_amplitudes():
    table = GaitTable()
    phase = torch.rand(5, 6) * 2 * math.pi
    low, high = table.joint_angles(phase, torch.full((5, 6), 1.0)), table.joint_angles(phase, torch.full((5, 6), 1.5))
    mid = table.joint_angles(phase, torch.full((5, 6), 1.25))
    assert torch.allclose(mid, 0.5 * (low + high), atol=1e-5)


def test_reference_steps_at_the_real_fly_frequency_with_speed_set_by_stride_and_frequency():
    gait = GaitReference(3, "cpu", PARAMS, torch.zeros(42))
    gait.set_command(torch.tensor([8.0, 20.0, 28.0]), torch.zeros(3))
    assert gait.frequency.tolist() == pytest.approx([3.3 + 0.47 * v for v in (8.0, 20.0, 28.0)])
    stride = gait.target_amplitude[:, 0] * PARAMS.stride_mm  # mm per cycle
    assert (stride * gait.frequency).tolist() == pytest.approx([8.0, 20.0, 28.0])  # v = L f
    assert stride[0] < stride[1] < stride[2]  # faster flies take longer steps, as real ones
    # swing lasts swing_s at every speed (up to half the cycle): stance shortens, the duty factor falls
    duty = 1 - gait.swing_fraction()
    assert duty.tolist() == pytest.approx([1 - min(0.04 * f, 0.5) for f in gait.frequency.tolist()])
    assert duty[0] > 0.65 and duty[2] == 0.5


def test_turning_drives_the_sides_apart_and_turning_in_place_steps_one_side_backwards():
    gait = GaitReference(2, "cpu", PARAMS, torch.zeros(42))
    gait.set_command(torch.tensor([10.0, 0.0]), torch.tensor([1.0, 2.0]))
    left, right = gait.target_amplitude.unbind(-1)
    assert right[0] > left[0] > 0  # turning left: the right legs step longer
    assert left[1] < 0 < right[1] and left[1] == pytest.approx(-right[1])
    gait.amplitude = gait.target_amplitude.clone()
    start = gait.phase.clone()
    gait.advance(0.005)
    delta = torch.remainder(gait.phase - start + math.pi, 2 * math.pi) - math.pi
    assert delta[1, 0] < 0 < delta[1, 1]  # the left clock of world 1 runs backwards


def test_standing_reference_is_the_standing_pose_and_walking_follows_the_table():
    stand = torch.linspace(-0.5, 0.5, 42)
    gait = GaitReference(2, "cpu", PARAMS, stand)
    gait.reset(torch.arange(2))
    gait.set_command(torch.tensor([0.0, 20.0]), torch.zeros(2))
    assert torch.allclose(gait.reference(), stand.expand(2, -1))  # a reset world starts from its pose
    for _ in range(100):  # 0.5 s: the ramp is complete
        gait.advance(0.005)
    assert torch.allclose(gait.reference()[0], stand, atol=1e-6)  # told to stand: stands
    expected = gait.table.joint_angles(gait.recorded_phase(), gait.amplitude.abs()[:, gait.leg_side])
    assert torch.allclose(gait.reference()[1], expected[1], atol=1e-4)
    assert gait.expected_stance()[0].all()  # standing: every leg in stance
    legs = gait.leg_cycle()[1]
    assert torch.allclose(torch.cos(2 * math.pi * (legs[~IN_A] - legs[IN_A][0])), torch.tensor(-1.0), atol=1e-4)


def test_standing_residual_share_acts_once_the_fly_has_stopped_and_whole_at_the_next_walking_command():
    gait = GaitReference(2, "cpu", dataclasses.replace(PARAMS, standing_residual=0.25), torch.zeros(42))
    gait.reset(torch.arange(2))
    gait.set_command(torch.tensor([0.0, 20.0]), torch.zeros(2))
    assert torch.allclose(gait.residual_fraction(), torch.tensor([0.25, 1.0]))  # reset standing: the share only
    for _ in range(100):  # 0.5 s: the walking world's posture is up
        gait.advance(0.005)
    gait.set_command(torch.tensor([0.0, 0.0]), torch.zeros(2))  # the walker is told to stop
    fractions = []
    for _ in range(100):
        gait.advance(0.005)
        fractions.append(float(gait.residual_fraction()[1]))
    steps = np.diff([1.0, *fractions])
    assert (steps <= 0).all() and -steps.max() < 0.1 * 0.75 + 1e-6  # it follows the posture down, no jump
    assert abs(fractions[-1] - 0.25) < 1e-3
    gait.set_command(torch.tensor([0.0, 5.0]), torch.zeros(2))
    assert torch.allclose(gait.residual_fraction(), torch.tensor([0.25, 1.0]))  # whole again at once
    assert torch.allclose(GaitReference(2, "cpu", PARAMS, torch.zeros(42)).residual_fraction(), torch.ones(2))


def test_a_standing_fly_with_no_standing_residual_holds_the_reference_whatever_the_policy_says(make_cpu_task):
    env = make_cpu_task("num_envs=4", "task.env.gait.standingResidualScale=0.0",
                        "task.env.commands.forwardSpeed=[0.0,0.0]", "task.env.commands.yawRate=[0.0,0.0]")
    env.hold_commands(torch.tensor([0.0, 0.0, 20.0, 20.0]), torch.zeros(4))
    for _ in range(10):
        env.step(torch.zeros(4, env.num_actions))
    actions = torch.rand(4, env.num_actions) * 2 - 1
    targets = env._actions_to_targets(actions)
    reference = env.gait.reference().clamp(env.target_low, env.target_high)
    assert torch.allclose(targets[:2], reference[:2])  # standing: the reference's pose, whatever the actions
    assert (targets[2:] - reference[2:]).abs().max() > 0.1  # walking: the residual acts in full
    assert (env.targets_to_actions(targets)[:2] == 0).all()


def test_reset_worlds_stand_through_the_start_of_the_step(make_cpu_task):
    env = make_cpu_task("num_envs=4", "task.env.commands.standingShare=0.0")
    assert torch.allclose(env.gait.reference(), env.stand_dof_pos.expand(4, -1))
    for _ in range(20):
        env.step(torch.zeros(4, env.num_actions))
        assert not env.reset_buf.any()


def test_zero_residual_commands_the_reference(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.resetJointNoise=0.0")
    for _ in range(30):
        env.step(torch.zeros(2, env.num_actions))
    expected = env.gait.reference().clamp(env.target_low, env.target_high)
    env.step(torch.zeros(2, env.num_actions))
    assert torch.allclose(env.fly.joint_targets().float(), expected, atol=1e-5)
    actions = (0.2 * torch.randn(2, env.num_actions)).clamp(-1, 1)
    targets = env._actions_to_targets(actions)
    inside = (targets > env.target_low + 1e-4) & (targets < env.target_high - 1e-4)  # not clipped to the range
    assert torch.allclose(env.targets_to_actions(targets)[inside], actions[inside], atol=1e-4)


def test_adhesion_actions_are_residuals_on_the_gait_references_stance(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.enableAdhesion=True", "task.env.resetJointNoise=0.0",
                        "task.env.commands.forwardSpeed=[20.0,20.0]", "task.env.commands.standingShare=0.0",
                        "task.env.commands.turnInPlaceShare=0.0")
    assert env.num_actions == 48 and env.physics.model.nu == 48
    for _ in range(12):  # into the stride: some legs in swing
        env.step(torch.zeros(2, 48))
    stance = env.gait.expected_stance().float()
    assert 0 < stance[1].sum() < 6
    actions = torch.zeros(2, 48)
    actions[0, 42:] = 1.0  # world 0: full adhesion on every leg; world 1: action 0, the schedule's
    actions[1, 42:] = torch.where(stance[1] > 0, -0.25, 0.25)  # a quarter less in stance, a quarter in swing
    env.pre_physics_step(actions)
    adhesion = env.physics.ctrl[:, env.fly.adhesion_act].float()
    assert torch.allclose(adhesion[0], torch.ones(6))
    assert torch.allclose(adhesion[1], torch.where(stance[1] > 0, 0.75, 0.25))
    back = env.adhesion_to_actions(adhesion)  # the inverse: it commands the same adhesion
    assert torch.allclose(env._actions_to_adhesion(back), adhesion) and torch.allclose(back[1], actions[1, 42:])
    absolute = make_cpu_task("num_envs=1", "task.env.enableAdhesion=True", "task.env.gait.reference=False")
    absolute.pre_physics_step(torch.cat([torch.zeros(1, 42), torch.linspace(-1, 1, 6)[None]], dim=1))
    assert torch.allclose(absolute.physics.ctrl[0, absolute.fly.adhesion_act].float(), torch.linspace(0, 1, 6))
    assert make_cpu_task("num_envs=1").physics.model.nu == 42  # off by default: no adhesion actuators at all

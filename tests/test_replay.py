"""benchmarks/replay_flygym.py: flygym's recorded walking (210902_pr_fly1) replayed on this project's fly
with the MuJoCo C engine walks it forward, upright."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.replay_flygym import check_args, load_recording, replay, start_frames, start_worlds
from fly import ACTUATED_JOINTS
from fly.model import FORMER_CONTACT_DAMPING_RATIO, V2_CONTACT_SOLIMP


@pytest.fixture(scope="module")
def recording():
    return load_recording()


def test_recording_holds_the_42_actuated_joints_at_2_khz(recording):
    assert recording.angles.shape == (2000, len(ACTUATED_JOINTS))
    assert recording.timestep == pytest.approx(5e-4)
    assert recording.duration == pytest.approx(1.0)
    assert np.isfinite(recording.angles).all()
    # a smooth recording: no joint moves more than 0.2 rad between frames (the fastest, a front tarsus, 0.12)
    assert np.abs(np.diff(recording.angles, axis=0)).max() < 0.2
    assert list(start_frames(recording, 0.5, 3)) == [0, 500, 1000]
    with pytest.raises(ValueError, match="--seconds=1.5"):
        check_args(recording, 1.5, 1, None)


def test_replay_walks_the_fly_forward_upright(recording):
    # measured 2026-11-25: forward 1.46 mm, lateral 0.21 mm, thorax at 1.25 mm, min upright cosine 0.98
    world = replay("mujoco", recording, seconds=0.2, starts=1, adhesion=False)["worlds"][0]
    assert world["fault"] is None
    assert world["forward_mm"] > 0.7
    assert abs(world["lateral_mm"]) < 0.6
    assert 1.0 < world["mean_height_mm"] < 1.6
    assert world["upright"] and world["min_upright"] > 0.9


def test_the_assets_contact_impedance_keeps_adhering_flies_upright_where_v2s_tips_them(recording):
    # docs/physics.md, "Contact impedance": 0.995 instead of v2's 0.999-0.9999 (MuJoCo C, 4 starts x 0.5 s), found
    # at the damping ratio the asset had then
    asset = replay("mujoco", recording, seconds=0.5, starts=4, adhesion=True)
    v2 = replay("mujoco", recording, seconds=0.5, starts=4, adhesion=True, solimp=V2_CONTACT_SOLIMP,
                damping_ratio=FORMER_CONTACT_DAMPING_RATIO)
    assert asset["solimp"][:2] == [0.995, 0.995] and asset["faulted_worlds"] == v2["faulted_worlds"] == 0
    assert all(w["min_upright"] > 0.75 for w in asset["worlds"])  # measured 0.89-0.93
    assert min(w["min_upright"] for w in v2["worlds"]) < 0  # measured: one on its back, the others down to 0.23-0.48


def test_the_replay_moves_the_fly_within_the_issues_margins_of_flygyms(recording):
    # issue #16: within 10 % of flygym 1.2.1's 8.51 mm without adhesion (measured 9.20), within 25 % of its 2.45 mm
    # with adhesion always on (measured 2.76), upright
    free = replay("mujoco", recording, seconds=1.0, starts=1, adhesion=False)["worlds"][0]
    stuck = replay("mujoco", recording, seconds=1.0, starts=1, adhesion=True)["worlds"][0]
    assert 0.9 * 8.51 <= free["forward_mm"] <= 1.1 * 8.51 and free["upright"]
    assert 0.75 * 2.45 <= stuck["forward_mm"] <= 1.25 * 2.45 and stuck["upright"]


def test_light_tarsi_do_not_keep_adhering_flies_upright_on_v2s_contacts(recording):
    # docs/physics.md, "Against flygym": with v2's contact impedance, tarsal armature 3e-9 (float32's least) kept
    # adhering flies upright in 20 starts from the start pose of the asset as it was then; from the standing pose
    # the asset settles into now (14 um lower) the start at frame 333 ends on its back, at the former damping ratio
    # and at the asset's (MuJoCo C, 2026-11-27): the lead was as narrow as the others
    import mujoco

    from fly import load_fly

    before = load_fly(adhesion=False).dof_armature
    model = load_fly(adhesion=False, tarsal_armature=3e-9)
    changed = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, model.dof_jntid[d])
               for d in np.flatnonzero(model.dof_armature != before)}
    assert changed == {f"joint_{leg}Tarsus{k}" for leg in ("LF", "LM", "LH", "RF", "RM", "RH") for k in range(2, 6)}
    result = replay("mujoco", recording, seconds=0.5, adhesion=True, tarsal_armature=3e-9, frames=[333],
                    solimp=V2_CONTACT_SOLIMP, damping_ratio=FORMER_CONTACT_DAMPING_RATIO)
    assert result["faulted_worlds"] == 0 and result["worlds"][0]["end_upright"] < 0.0  # measured -0.97


def test_heavier_tarsal_damping_keeps_adhering_flies_upright_at_a_float32_armature(recording):
    # The lead of docs/physics.md before the asset's contact impedance changed (so with v2's, at the damping ratio
    # of then): tarsal armature 3e-8 (float32 needs >= 3e-9) tips adhering flies with v2's damping 0.01 (8 of 20
    # starts upright at 3e-8); with damping 1.0 all 20 stayed up (cosine >= 0.69; 0.71 from today's start pose).
    import mujoco

    from fly import load_fly

    before = load_fly(adhesion=False).dof_damping
    model = load_fly(adhesion=False, tarsal_damping=1.0)
    changed = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, model.dof_jntid[d])
               for d in np.flatnonzero(model.dof_damping != before)}
    assert changed == {f"joint_{leg}Tarsus{k}" for leg in ("LF", "LM", "LH", "RF", "RM", "RH") for k in range(2, 6)}
    result = replay("mujoco", recording, seconds=0.5, starts=4, adhesion=True, tarsal_armature=3e-8,
                    tarsal_damping=1.0, solimp=V2_CONTACT_SOLIMP, damping_ratio=FORMER_CONTACT_DAMPING_RATIO)
    assert result["faulted_worlds"] == 0 and result["tarsal_damping"] == 1.0
    assert all(w["min_upright"] > 0.6 for w in result["worlds"]), [w["min_upright"] for w in result["worlds"]]


def test_the_task_takes_its_tarsal_joints_from_the_config(make_cpu_task):
    from common.checks import ConfigError
    from runner.config import to_dict
    from tasks.neuromechfly.config import parse
    from tests.conftest import compose_config

    env = make_cpu_task("num_envs=1", "task.env.tarsalJoints.armature=3e-8", "task.env.tarsalJoints.damping=1.0")
    model = env.physics.model
    tarsal = [model.jnt_dofadr[j] for j in range(model.njnt) if "Tarsus3" in (model.joint(j).name or "")]
    femur = model.joint("joint_LFFemur").dofadr[0]
    assert len(tarsal) == 6 and np.allclose(model.dof_armature[tarsal], 3e-8)
    assert (model.dof_damping[tarsal] == 1.0).all()
    assert model.dof_damping[femur] != 1.0  # the actuated joints keep theirs
    cfg = to_dict(compose_config("task=NeuroMechFly").task)
    assert parse(cfg).tarsal_damping is None  # null: the asset's
    cfg["env"]["tarsalJoints"]["damping"] = -1.0
    with pytest.raises(ConfigError) as err:
        parse(cfg)
    assert str(err.value) == ("task.env.tarsalJoints.damping=-1.0 is not allowed "
                              "(allowed: a finite number >= 0, or null)")


def test_replayed_worlds_in_step_cannot_exhaust_the_contact_pool(recording):
    # MuJoCo Warp's shared pool holds the broadphase's candidate pairs as well as the contacts, and worlds
    # replaying one start move in step (64 worlds from the first frame overflowed a pool of 16 per world on an
    # H200, 18 candidates each at 0.66 s). The replay sizes it by the bound: the fly's leg-ground pairs are the
    # only pairs MuJoCo Warp's broadphase ever tests.
    engine, *_ = start_worlds("mjwarp", recording, 1.0, 2, adhesion=True)
    pairs = engine.warp_model.nxn_geom_pair_filtered.shape[0]
    assert pairs == engine.model.npair == engine.params.contacts_per_world == 48


def test_start_noise_makes_worlds_of_one_start_distinct_tries_of_it(recording):
    same = start_worlds("mujoco", recording, 1.0, 3)[0].qpos  # 1 s: every world starts at frame 0
    assert (same == same[0]).all()
    engine, info, *_ = start_worlds("mujoco", recording, 1.0, 3, start_noise=1e-4)
    moved = (engine.qpos - same).abs()
    joints = torch.as_tensor(info.qpos_adr)
    assert 1e-6 < float(moved[:, joints].max()) < 1e-3  # the 42 leg angles, by about 1e-4 rad
    others = torch.ones(engine.qpos.shape[1], dtype=torch.bool)
    others[joints] = False
    assert float(moved[:, others].max()) == 0.0  # body pose and passive joints as the start frame has them
    assert not torch.equal(engine.qpos[0], engine.qpos[1])


def test_a_recorded_start_velocity_moves_the_leg_joints_as_the_recording_does_there(recording):
    engine, info, *_ = start_worlds("mujoco", recording, 0.5, 1, frames=[531], start_velocity="recorded")
    joints = torch.as_tensor(info.qvel_adr)
    expected = (recording.angles[532] - recording.angles[530]) / (2 * recording.timestep)
    assert np.allclose(engine.qvel[0, joints].numpy(), expected)
    assert float(np.abs(expected).max()) > 1.0  # mid-stride: some joint turns faster than 1 rad/s
    others = torch.ones(engine.qvel.shape[1], dtype=torch.bool)
    others[joints] = False
    assert float(engine.qvel[0, others].abs().max()) == 0.0  # body and passive tarsi still
    # docs/physics.md, "Every start frame": at the former damping ratio frame 531 ended on its back from rest (the
    # servos' start jerk), not when its joints started as the recording moves them; at the asset's 3 it stays up
    # either way (measured: ends at 0.97 from rest, never under 0.91 moving)
    rest = replay("mujoco", recording, seconds=0.5, adhesion=True, frames=[531])
    moving = replay("mujoco", recording, seconds=0.5, adhesion=True, frames=[531], start_velocity="recorded")
    assert rest["start_velocity"] == "rest" and moving["start_velocity"] == "recorded"
    assert rest["worlds"][0]["end_upright"] > 0.8 and moving["worlds"][0]["min_upright"] > 0.8
    with pytest.raises(ValueError, match="--start-velocity=recorded is not allowed with --stretch"):
        start_worlds("mujoco", recording, 0.5, 1, stretch_pose=recording.angles[0], start_velocity="recorded")
    with pytest.raises(ValueError, match="--start-velocity=still is not allowed"):
        start_worlds("mujoco", recording, 0.5, 1, start_velocity="still")


def test_settling_in_the_start_pose_first_lands_the_body_on_its_legs_before_the_replay(recording):
    # docs/physics.md, "Every start frame": frame 153 passed cosine 0.38 from rest at the former damping ratio (0.82
    # at the asset's); held 50 ms in its start pose first, the body settles onto its legs and the replay keeps it
    # over 0.9
    engine, *_ = start_worlds("mujoco", recording, 0.5, 1, adhesion=True, frames=[153], settle=0.05)
    assert float(engine.qpos[0, 2]) < start_worlds("mujoco", recording, 0.5, 1, frames=[153])[0].qpos[0, 2]
    assert float(engine.qvel[0].abs().max()) < 5.0  # nearly still after 250 steps (no DoF at 5 rad/s or mm/s)
    settled = replay("mujoco", recording, seconds=0.5, adhesion=True, frames=[153], settle=0.05)
    assert settled["settle_s"] == 0.05 and settled["steps"] == 2500  # the 0.5 s replay follows the settling
    assert settled["worlds"][0]["min_upright"] > 0.9
    for bad, message in ((-0.01, "--settle=-0.01 is not allowed"), (float("nan"), "--settle=nan is not allowed"),
                         (2.0, "--settle=2.0 is not allowed")):
        with pytest.raises(ValueError, match=message):
            start_worlds("mujoco", recording, 0.5, 1, settle=bad)
    with pytest.raises(ValueError, match="--settle=0.05 is not allowed with --start-velocity=recorded"):
        start_worlds("mujoco", recording, 0.5, 1, settle=0.05, start_velocity="recorded")


def test_the_solver_cap_and_the_adhesion_gain_are_the_models_unless_asked(recording):
    default = replay("mujoco", recording, seconds=0.002, starts=1)
    assert default["iterations"] == 20 and default["tolerance"] == 1e-2
    assert replay("mujoco", recording, seconds=0.002, starts=1, iterations=50)["iterations"] == 50
    assert replay("mujoco", recording, seconds=0.002, starts=1, tolerance=1e-5)["tolerance"] == 1e-5
    assert replay("mujoco", recording, seconds=0.002, starts=1, adhesion=True)["adhesion_gain"] == 40.0  # v2's
    light = replay("mujoco", recording, seconds=0.002, starts=1, adhesion=True, adhesion_gain=1.0)
    assert light["adhesion_gain"] == 1.0  # flygym 2's default


def test_the_assets_contact_damping_holds_up_the_start_frame_that_the_former_ratio_tipped(recording):
    # docs/physics.md, "Contact damping": at the former ratio 1.5 frames 151-155 of the 1001 pass cosine 0.38
    # (measured 0.382 at frame 153, righting itself); the asset's 3 keeps the fly over 0.8 there (measured 0.82)
    asset = replay("mujoco", recording, seconds=0.5, adhesion=True, frames=[153])
    former = replay("mujoco", recording, seconds=0.5, adhesion=True, frames=[153],
                    damping_ratio=FORMER_CONTACT_DAMPING_RATIO)
    assert asset["starts"] == former["starts"] == 1 and asset["worlds"][0]["start_frame"] == 153
    assert asset["damping_ratio"] == 3.0 and former["damping_ratio"] == 1.5
    assert former["worlds"][0]["min_upright"] < 0.5 < former["worlds"][0]["end_upright"]
    assert asset["worlds"][0]["min_upright"] > 0.75
    with pytest.raises(ValueError, match="--start-frames 1001 is not allowed"):
        check_args(recording, 0.5, 1, None, [1001])


def test_a_bad_number_is_one_error_line():
    result = subprocess.run([sys.executable, "benchmarks/replay_flygym.py", "--tarsal-damping", "inf"],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: --tarsal-damping=inf is not allowed (allowed: a finite number >= 0)"]


def test_newton_stops_at_float32s_accuracy_at_the_assets_tolerance():
    # At MuJoCo Warp's floor (1e-6) float32 Newton runs adhering states to the cap without getting closer to
    # float64's solution, and a batch waits for its slowest world; at the asset's tolerance none reaches it and
    # the error stays float32's (benchmarks/solver_tolerance.py, docs/physics.md "Newton's tolerance")
    from benchmarks.solver_tolerance import reference, relative_error, sample_states, warp_solve

    model, states = sample_states(0.25, 4, adhesion=True, every=10)
    assert model.opt.tolerance == 1e-2 and len(states) == 500
    qacc64 = reference(model, states)[0]
    cap = model.opt.iterations
    solved = {}
    for tol in (1e-6, model.opt.tolerance):
        qacc, _, niter = warp_solve(model, states, tol, "cpu", rows=128, iterations=cap)
        solved[tol] = niter, relative_error(qacc, qacc64)
    (floor_iterations, floor_error), (iterations, error) = solved[1e-6], solved[model.opt.tolerance]
    assert (floor_iterations >= cap).mean() > 0.05  # measured: 20 % of these states at the cap
    assert iterations.max() < cap and iterations.mean() < 0.7 * floor_iterations.mean()  # 4.8 against 8.8
    assert np.median(error) < 1e-3  # of the acceleration; 5.7e-4 (1.6e-4 at the floor)
    assert np.percentile(error, 99) < 1.5 * np.percentile(floor_error, 99)  # 1.9e-2 against 1.6e-2


def test_v2s_leg_leg_contacts_pair_segments_but_parents_and_children_and_the_hind_coxae_touch(recording):
    import mujoco

    from fly import load_fly

    plain, v2 = load_fly(adhesion=False), load_fly(adhesion=False, leg_leg_contacts=True)
    assert v2.npair - plain.npair == 48 * 47 // 2 - 6 * 7  # 48 leg segments, 7 parent-child joints per leg
    names = {mujoco.mj_id2name(v2, mujoco.mjtObj.mjOBJ_PAIR, i) for i in range(v2.npair)}
    assert {"LHCoxa_RHCoxa", "LFTibia_LFTarsus2", "LFCoxa_RFFemur"} <= names
    assert not names & {"LFCoxa_LFFemur", "LFTarsus4_LFTarsus5", "RHTibia_RHTarsus1"}
    # In the recorded walking the hind coxae press on each other at most steps (MuJoCo C: 4,672 of the 5,000 of 1 s)
    engine, _, _, _, play = start_worlds("mujoco", recording, 0.05, 1, leg_leg_contacts=True)
    touching = 0
    for k in range(250):
        play(k)
        data = engine.world_data(0)
        pairs = {tuple(sorted(mujoco.mj_id2name(engine.model, mujoco.mjtObj.mjOBJ_GEOM, g)
                              for g in (data.contact.geom1[c], data.contact.geom2[c]))) for c in range(data.ncon)}
        touching += ("LHCoxa", "RHCoxa") in pairs
    engine.close()
    assert touching > 150, touching

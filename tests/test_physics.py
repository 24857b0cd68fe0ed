"""Physics sanity of the fly on the MuJoCo C engine, and engine selection errors."""
import shutil

import mujoco
import numpy as np
import pytest
import torch

from physics import ACTUATED_JOINTS, AssetError, SimParams, load_model, make_engine
from physics.fly_model import DEFAULT_MODEL_PATH, FlyModelInfo

from .conftest import stand_targets

# Sum of body masses of flygym 1.2.1's neuromechfly_seqik_kinorder_ypr_capsuletarsus.xml (g).
UPSTREAM_TOTAL_MASS = 1.025527544712718e-3


def test_model_layout_and_mass():
    model = load_model()
    info = FlyModelInfo.from_model(model)
    assert len(ACTUATED_JOINTS) == 42 and model.nq == 7 + 66
    assert info.total_mass == pytest.approx(UPSTREAM_TOTAL_MASS, rel=1e-5)
    assert np.allclose(info.kp, 45.0) and np.allclose(info.force_limit, 65.0)
    assert (info.target_low < info.stand_ctrl[info.joint_actuator_ids]).all()
    assert (info.stand_ctrl[info.joint_actuator_ids] < info.target_high).all()


def test_fly_stands_for_one_second(make_cpu_engine):
    engine = make_cpu_engine(substeps=50)
    start = engine.root_state()[0].clone()
    support = []
    for _ in range(100):  # 100 x 50 x 0.2 ms = 1 s
        engine.step()
        root = engine.root_state()[0]
        assert torch.isfinite(root).all()
        up = 1 - 2 * (root[4] ** 2 + root[5] ** 2)
        assert up > 0.95 and root[2] > 0.3
        support.append(engine.tarsal_contact_forces().sum().item())
    assert (root[:2] - start[:2]).norm() < 1.5  # mm in 1 s: under 10% of walking speed
    # The tarsi carry the weight (on average: stiff contacts chatter, about 25 % from one physics step
    # to the next, and samples 50 steps apart see the same phase of it).
    assert np.mean(support[50:]) == pytest.approx(engine.info.total_mass * 9810, rel=0.2)


def test_fly_falls_under_gravity(make_cpu_engine):
    engine = make_cpu_engine(substeps=50)  # 10 ms per step
    qpos = torch.as_tensor(engine.info.stand_qpos)[None].clone()
    qpos[0, 2] += 3.0
    engine.reset_worlds(torch.tensor([0]), qpos, torch.zeros(1, engine.info.nv, dtype=torch.float64))
    engine.step()
    drop = float(qpos[0, 2] - engine.root_state()[0, 2])
    assert drop == pytest.approx(0.5 * 9810 * 0.01 ** 2, rel=0.05)  # free fall, 10 ms
    assert engine.root_state()[0, 9] == pytest.approx(-9810 * 0.01, rel=0.05)


def test_joint_target_moves_joint(make_cpu_engine):
    engine = make_cpu_engine(substeps=50)
    tibia = ACTUATED_JOINTS.index("joint_LMTibia")
    targets = stand_targets(engine)
    before = engine.dof_pos()[0, tibia].item()
    targets[0, tibia] += 0.4
    engine.set_joint_targets(targets)
    for _ in range(5):
        engine.step()
    after = engine.dof_pos()[0, tibia].item()
    assert after - before > 0.25  # most of the way to the target in 50 ms


def test_reset_restores_one_world_and_leaves_the_others(make_cpu_engine):
    engine = make_cpu_engine(num_worlds=2)
    fresh = make_cpu_engine(num_worlds=1)
    targets = stand_targets(engine)
    targets[:, ::3] += 0.2
    engine.set_joint_targets(targets)
    for _ in range(5):
        engine.step()
    other = engine.qpos[1].clone(), engine.qvel[1].clone()
    stand = torch.as_tensor(engine.info.stand_qpos)[None]
    engine.reset_worlds(torch.tensor([0]), stand, torch.zeros(1, engine.info.nv, dtype=torch.float64))
    assert torch.equal(engine.qpos[0], stand[0])
    assert torch.equal(engine.qpos[1], other[0]) and torch.equal(engine.qvel[1], other[1])
    # A reset world evolves exactly as a new one does.
    engine.set_joint_targets(stand_targets(engine))
    fresh.set_joint_targets(stand_targets(fresh))
    for _ in range(3):
        engine.step()
        fresh.step()
    assert torch.equal(engine.qpos[0], fresh.qpos[0])


def test_unknown_engine_is_one_line_error():
    with pytest.raises(ValueError, match=r"physics_engine='physx' is unknown; choose one of mjwarp, mujoco"):
        make_engine("physx", 1, "cpu", SimParams(dt=2e-4, substeps=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_device_is_one_line_error():
    with pytest.raises(ValueError, match=r"sim_device=cuda:0 is not available on this machine"):
        make_engine(None, 1, "cuda:0", SimParams(dt=2e-4, substeps=1))


def test_missing_and_corrupt_asset(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        load_model(tmp_path / "nope.xml")
    folder = tmp_path / "neuromechfly"
    shutil.copytree(DEFAULT_MODEL_PATH.parent, folder)
    (folder / "neuromechfly.xml").write_text("<mujoco><worldbody><geom type='box'/></worldbody")
    with pytest.raises(AssetError, match="is corrupt"):
        load_model(folder / "neuromechfly.xml")
    assert "\n" not in str(pytest.raises(AssetError, load_model, folder / "neuromechfly.xml").value)


def test_cpu_engine_reports_divergence_as_nan(make_cpu_engine):
    engine = make_cpu_engine()
    qvel = torch.zeros(1, engine.info.nv, dtype=torch.float64)
    qvel[0, 10:] = 1e12  # a state no solver survives
    engine.reset_worlds(torch.tensor([0]), torch.as_tensor(engine.info.stand_qpos)[None], qvel)
    engine.step()
    assert not torch.isfinite(engine.qpos).all()
    assert mujoco.mjtWarning.mjWARN_BADQACC is not None


def test_adhesion_actuators_only_when_asked_for():
    full, lean = load_model(adhesion=True), load_model(adhesion=False)
    assert (full.nu, lean.nu) == (48, 42)
    assert np.array_equal(full.key_ctrl[0, :42], lean.key_ctrl[0]) and np.array_equal(full.key_qpos, lean.key_qpos)
    assert np.array_equal(full.body_mass, lean.body_mass) and np.array_equal(full.dof_armature, lean.dof_armature)
    engine = make_engine("mujoco", 1, "cpu", SimParams(dt=2e-4, substeps=1))  # the default leaves adhesion out
    error = pytest.raises(RuntimeError, engine.set_adhesion, torch.ones(1, 6)).value
    assert "adhesion=True" in str(error) and "\n" not in str(error)


def test_adhesion_presses_the_tarsi_onto_the_floor():
    params = SimParams(dt=2e-4, substeps=250)  # 50 ms per step
    engine = make_engine("mujoco", 2, "cpu", params, adhesion=True)
    engine.set_joint_targets(stand_targets(engine))
    engine.set_adhesion(torch.tensor([[0.0] * 6, [1.0] * 6], dtype=torch.float64))
    engine.step()
    weight = engine.info.total_mass * 9810
    without, with_adhesion = engine.tarsal_contact_forces().sum(dim=1).tolist()
    assert without == pytest.approx(weight, rel=0.3)
    assert with_adhesion > 3 * weight  # adhesion pulls each stance tarsus against the floor

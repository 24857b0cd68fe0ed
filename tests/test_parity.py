"""The same model, start state and controls on `mujoco` (float64, CPU) and `mjwarp` (MuJoCo Warp
on Warp's CPU device, float32) agree over 100 control steps."""
import numpy as np
import pytest
import torch

from physics import SimParams, make_engine

from .conftest import stand_targets

pytest.importorskip("mujoco_warp")

# Stated tolerances (measured worst case: 0.0075 mm, 0.0022, 0.010 rad).
POS_TOL_MM, QUAT_TOL, JOINT_TOL_RAD = 0.02, 0.01, 0.03


def test_cpu_and_warp_engines_agree():
    params = SimParams(dt=2e-4, substeps=5)
    cpu = make_engine("mujoco", 2, "cpu", params)
    warp = make_engine("mjwarp", 2, "cpu", params)
    base = stand_targets(cpu)
    support = {cpu: [], warp: []}
    for k in range(100):
        targets = base + 0.1 * np.sin(2 * np.pi * 10 * k * params.dt * params.substeps)
        cpu.set_joint_targets(targets)
        warp.set_joint_targets(targets)
        cpu.step()
        warp.step()
        a, b = cpu.root_state(), warp.root_state().double()
        assert (a[:, :3] - b[:, :3]).abs().max() < POS_TOL_MM, k
        assert (a[:, 3:7] - b[:, 3:7]).abs().max() < QUAT_TOL, k
        assert (cpu.dof_pos() - warp.dof_pos().double()).abs().max() < JOINT_TOL_RAD, k
        for engine in support:
            support[engine].append(engine.tarsal_contact_forces().sum(dim=1).double())
    # Contact sensors, which MuJoCo Warp evaluates on the last substep of a control step only, carry
    # the body's weight on both engines over the last 50 steps (stiff contacts chatter from one
    # sample to the next, and how the load splits across the six legs is not unique).
    weight = cpu.info.total_mass * 9810
    for engine, forces in support.items():
        assert torch.stack(forces[50:]).mean(dim=0).tolist() == pytest.approx([weight] * 2, rel=0.2)


def test_warp_reports_worlds_whose_constraints_do_not_fit():
    from physics.fly_model import load_model
    from physics.mujoco_warp_gpu import MujocoWarpEngine

    params = SimParams(dt=2e-4, substeps=1)
    tight = MujocoWarpEngine(load_model(adhesion=False), 2, torch.device("cpu"), params, constraint_rows=40)
    roomy = make_engine("mjwarp", 2, "cpu", params)  # 128 rows
    stand = torch.as_tensor(tight.info.stand_qpos)[None]
    pressed = stand.repeat(2, 1)
    pressed[:, 2] -= 0.1  # legs 0.1 mm into the floor: 20 contacts, 80 rows (MuJoCo C)
    for engine in (tight, roomy):
        engine.reset_worlds(torch.arange(2), pressed, torch.zeros(2, engine.info.nv))
        engine.set_joint_targets(stand_targets(engine))
        engine.step()
    assert tight.overflowed().all() and not roomy.overflowed().any()
    tight.reset_worlds(torch.tensor([0]), stand, torch.zeros(1, tight.info.nv))
    assert tight.overflowed().tolist() == [False, True]  # a reset world starts clean
    tight.qpos[1] = stand[0].to(tight.qpos.dtype)  # world 1 stands again, without a reset
    tight.step()
    assert not tight.overflowed().any()  # each control step reports on itself

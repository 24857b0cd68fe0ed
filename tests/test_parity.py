"""The same model, start state and controls on `mujoco` (float64, CPU) and `mjwarp` (MuJoCo Warp
on Warp's CPU device, float32) agree over 100 control steps."""
import numpy as np
import pytest
import torch

from fly import FlyIO, load_fly
from physics import FAULT_KINDS, SimParams, make_engine
from physics.engine import CONTACT_POOL_MIN

pytest.importorskip("mujoco_warp")

# Stated tolerances (measured worst case: see docs/physics.md).
POS_TOL_MM, QUAT_TOL, JOINT_TOL_RAD = 0.02, 0.01, 0.03
# Every joint swung +-0.05 rad at 10 Hz around the standing pose. At +-0.1 rad the feet start to slip
# after ~50 steps, and float32 and float64 take different sides of that slip (0.14 mm apart 20 steps
# later, with contacts damped at ratio 1.5; 0.004 mm at ratio 1): a trajectory comparison then
# measures the slip's sensitivity, not the engines.
SWING_RAD = 0.05


def test_cpu_and_warp_engines_agree():
    params = SimParams(dt=2e-4, substeps=5)
    cpu = FlyIO(make_engine("mujoco", load_fly(adhesion=False), 2, "cpu", params))
    warp = FlyIO(make_engine("mjwarp", load_fly(adhesion=False), 2, "cpu", params))
    base = cpu.stand_targets()
    support = {"cpu": [], "warp": []}
    worst, worst_feet = np.zeros(3), 0.0
    for k in range(100):
        targets = base + SWING_RAD * np.sin(2 * np.pi * 10 * k * params.dt * params.substeps)
        cpu.set_joint_targets(targets)
        warp.set_joint_targets(targets)
        cpu.engine.step()
        warp.engine.step()
        a, b = cpu.engine.root_state(), warp.engine.root_state().double()
        error = [(a[:, :3] - b[:, :3]).abs().max(), (a[:, 3:7] - b[:, 3:7]).abs().max(),
                 (cpu.dof_pos() - warp.dof_pos().double()).abs().max()]
        worst = np.maximum(worst, [float(e) for e in error])
        assert error[0] < POS_TOL_MM and error[1] < QUAT_TOL and error[2] < JOINT_TOL_RAD, (k, error)
        for name, fly in (("cpu", cpu), ("warp", warp)):
            support[name].append(fly.tarsal_contact_forces().sum(dim=1).double())
        # the feet's heights (evaluate.py's foot-lift swing) read the same geoms on both engines
        feet = (cpu.foot_lowest_points()[..., 2] - warp.foot_lowest_points()[..., 2].double()).abs().max()
        worst_feet = max(worst_feet, float(feet))
        assert feet < POS_TOL_MM, (k, float(feet))
    print("worst root position, quaternion, joint errors:", worst, "foot heights:", worst_feet)
    # Contact sensors, which MuJoCo Warp evaluates on the last substep of a control step only, carry
    # the body's weight on both engines over the last 50 steps.
    weight = cpu.info.total_mass * 9810
    for forces in support.values():
        assert torch.stack(forces[50:]).mean(dim=0).tolist() == pytest.approx([weight] * 2, rel=0.2)


def test_warp_reports_worlds_whose_constraints_do_not_fit():
    tight = make_engine("mjwarp", load_fly(adhesion=False), 2, "cpu",
                        SimParams(dt=2e-4, substeps=1, constraint_rows=40))
    # 128 rows; a pool of 4 contacts per world that the pool's floor (CONTACT_POOL_MIN) widens
    roomy = make_engine("mjwarp", load_fly(adhesion=False), 2, "cpu", SimParams(dt=2e-4, substeps=1,
                                                                                contacts_per_world=4))
    stand = torch.as_tensor(tight.model.key_qpos[0])[None]
    pressed = stand.repeat(2, 1)
    pressed[:, 2] -= 0.1  # legs 0.1 mm into the floor: 20 contacts, 80 rows (MuJoCo C)
    for engine in (tight, roomy):
        engine.reset_worlds(torch.arange(2), pressed, torch.zeros(2, engine.nv))
        FlyIO(engine).set_joint_targets(FlyIO(engine).stand_targets())
        engine.step()
    assert (tight.faults() == FAULT_KINDS["overflow"]).all() and not roomy.faults().any()
    assert (roomy.buffer_usage()[0] > 4).all()  # each world kept more contacts than the average it was given
    # the shared pool holds both worlds' broadphase candidates (leg-ground pairs near the floor) and contacts
    candidates, contacts, size = roomy.pool_usage()
    assert size == CONTACT_POOL_MIN and contacts == int(roomy.buffer_usage()[0].sum())
    assert contacts // 2 <= candidates <= 2 * roomy.model.npair, (candidates, contacts)
    assert tight.pool_usage()[0] == candidates  # the same poses: the same candidates, whatever the rows
    tight.reset_worlds(torch.tensor([0]), stand, torch.zeros(1, tight.nv))
    assert tight.faults().tolist() == [0, FAULT_KINDS["overflow"]]  # a reset world starts clean
    tight.qpos[1] = stand[0].to(tight.qpos.dtype)  # world 1 stands again, without a reset
    tight.step()
    assert not tight.faults().any()  # each control step reports on itself


@pytest.mark.parametrize("engine_name", ["mujoco", "mjwarp"])
def test_a_worlds_own_impratio_steps_it_as_a_model_with_that_impratio(engine_name):
    # the task's friction randomisation sets it (tasks/neuromechfly/randomization.py); MuJoCo Warp keeps
    # 1 / sqrt(impratio) per world, MuJoCo C sets the world's opt.impratio before stepping it
    params = SimParams(dt=2e-4, substeps=5, world_fields=("impratio_invsqrt",))
    batch = FlyIO(make_engine(engine_name, load_fly(adhesion=False), 2, "cpu", params))
    batch.engine.world_fields["impratio_invsqrt"][1] = 0.25 ** -0.5
    model = load_fly(adhesion=False)
    model.opt.impratio = 0.25
    alone = FlyIO(make_engine(engine_name, model, 1, "cpu", SimParams(dt=2e-4, substeps=5)))
    base = alone.stand_targets()
    for k in range(40):
        targets = base + SWING_RAD * np.sin(2 * np.pi * 10 * k * params.dt * params.substeps)
        batch.set_joint_targets(targets.expand(2, -1))
        alone.set_joint_targets(targets)
        batch.engine.step()
        alone.engine.step()
    qpos = batch.engine.qpos.double()
    assert torch.allclose(qpos[1], alone.engine.qpos[0].double(), atol=1e-5)
    assert (qpos[1] - qpos[0]).abs().max() > 1e-4  # and it matters: a softer pyramid than world 0's

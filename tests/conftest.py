import pytest
import torch

from physics import SimParams, make_engine


@pytest.fixture
def make_cpu_engine():
    def make(num_worlds=1, substeps=10, dt=2e-4):
        return make_engine("mujoco", num_worlds, "cpu", SimParams(dt=dt, substeps=substeps))
    return make


def stand_targets(engine):
    info = engine.info
    return torch.as_tensor(info.stand_ctrl[info.joint_actuator_ids]).expand(engine.num_worlds, -1).clone()

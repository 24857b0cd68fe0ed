import pytest
import torch
from hydra import compose, initialize_config_dir

from physics import SimParams, make_engine
from runner.config import CFG_DIR, register_resolvers, to_dict


@pytest.fixture
def make_cpu_engine():
    def make(num_worlds=1, substeps=10, dt=2e-4):
        return make_engine("mujoco", num_worlds, "cpu", SimParams(dt=dt, substeps=substeps))
    return make


@pytest.fixture
def make_cpu_task():
    """The NeuroMechFly task on the CPU engine, from the shipped configs plus Hydra overrides."""
    def make(*overrides):
        from tasks import isaacgym_task_map

        register_resolvers()
        torch.manual_seed(0)  # resets draw joint noise, yaw, commands and gait phases: same start every run
        with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", *overrides])
        return isaacgym_task_map["NeuroMechFly"](cfg=to_dict(cfg.task), rl_device="cpu", sim_device="cpu",
                                                 graphics_device_id=0, headless=True)
    return make


def stand_targets(engine):
    info = engine.info
    return torch.as_tensor(info.stand_ctrl[info.joint_actuator_ids]).expand(engine.num_worlds, -1).clone()

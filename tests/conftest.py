import warnings

import pytest
import torch
from hydra import compose, initialize_config_dir

from fly import FlyIO, load_fly
from physics import SimParams, make_engine
from runner.config import CFG_DIR, register_resolvers, to_dict


@pytest.fixture
def make_cpu_fly():
    """N flies on the MuJoCo C engine and their FlyIO view."""
    def make(num_worlds=1, substeps=10, dt=2e-4, adhesion=False):
        params = SimParams(dt=dt, substeps=substeps)
        engine = make_engine("mujoco", load_fly(adhesion=adhesion), num_worlds, "cpu", params)
        return FlyIO(engine)
    return make


def compose_config(*overrides):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def policy_actor(train_params: dict, state: dict, num_obs: int, num_actions: int):
    """A checkpoint's policy on the CPU, built as evaluate.py builds it (analysis.evaluation.PolicyActor)."""
    from analysis.evaluation import PolicyActor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # rl_games' torch.jit.script of its normaliser
        return PolicyActor(train_params, state, num_obs, num_actions, torch.device("cpu"))


QUIET_WORLD = ("task.env.terrain.type=flat", "task.env.randomization.enabled=False")


@pytest.fixture
def make_cpu_task():
    """The NeuroMechFly task on the CPU engine, from the shipped configs plus Hydra overrides."""
    def make(*overrides):
        from tasks import isaacgym_task_map

        torch.manual_seed(0)  # resets draw joint noise, yaw, commands and gait phases: same start every run
        # flat ground, no randomisation, unless a test asks: behaviour tests compare with flat-ground numbers
        quiet = [o for o in QUIET_WORLD if not any(x.startswith(o.split("=")[0] + "=") for x in overrides)]
        cfg = compose_config("task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", *quiet, *overrides)
        return isaacgym_task_map["NeuroMechFly"](cfg=to_dict(cfg.task), rl_device="cpu", sim_device="cpu",
                                                 graphics_device_id=0, headless=True)
    return make

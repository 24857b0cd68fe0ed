"""task.env.asymmetricCritic: the critic's states (the observation, then what only the critic sees), IsaacGymEnvs'
hand-over of them to rl_games' central value, and a short training run with it on the CPU engine."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.checks import ConfigError
from physics.terrain import KINDS
from runner.config import central_value_config
from runner.rl_games_glue import critic_from_policy
from tasks.neuromechfly import NUM_OBS, observations

ROOT = Path(__file__).resolve().parents[1]


def test_the_states_are_the_observation_then_the_ground_and_the_world_the_policy_cannot_see(make_cpu_task):
    env = make_cpu_task("num_envs=8", "task.env.asymmetricCritic=True", "task.env.terrain.type=curriculum",
                        "task.env.terrain.levels=3", "task.env.randomization.enabled=True",
                        "task.env.observationHistory.terms=[contacts]", "task.env.observationHistory.length=2")
    assert env.num_obs == NUM_OBS + 12
    assert env.num_states == env.num_obs + observations.PRIVILEGED.size == env.state_space.shape[0]
    out = env.step(torch.zeros(8, env.num_actions))[0]
    assert set(out) == {"obs", "states"} and out["states"].shape == (8, env.num_states)
    assert torch.equal(out["states"][:, :env.num_obs], out["obs"])
    layout = {k: slice(s.start + env.num_obs, s.stop + env.num_obs)
              for k, s in observations.PRIVILEGED.layout().items()}
    states = env.states_buf
    assert torch.allclose(states[:, layout["height"]].squeeze(1), env.state.height)
    assert 0.5 < float(env.state.height.mean()) < 2.0  # mm: a standing fly's thorax above the ground under it
    terrain = states[:, layout["terrain"]]
    assert torch.equal(terrain[:, :len(KINDS)].argmax(1), env.terrain.kind)
    assert torch.allclose(terrain[:, -1], env.terrain.level.float() / 2)
    assert terrain[:, :len(KINDS)].sum(1).eq(1).all()
    # the randomised worlds' own friction and mass scale, read back from the physics' per-world fields
    rand = states[:, layout["randomization"]]
    fields = env.physics.world_fields
    mass = fields["body_mass"][:, 1] / env.randomization.base["body_mass"][1]
    assert torch.allclose(rand[:, 1], mass.float(), rtol=1e-5)
    assert torch.allclose(rand[:, 0], fields["pair_friction"][:, 0, 0].float())
    assert rand[:, 1].std() > 0  # the worlds differ
    for _ in range(9):  # 50 ms in all: a reset starts the fly with its lowest foot down and lets it settle
        env.step(torch.zeros(8, env.num_actions))
    load = env.states_buf[:, layout["tarsal_load"]]
    assert 0.8 < float(load.sum(1).mean()) < 1.2  # a standing fly's six legs carry its weight
    assert (states[:, layout["foot_clearance"]].abs() <= 1.0).all()


def test_a_world_whose_physics_faulted_gives_the_critic_no_nan(make_cpu_task):
    # on the GPU a world that just went NaN keeps NaN geom poses until its reset; one NaN state made the
    # critic's normaliser, every value and the policy's next update NaN (H100, 2026-11-26)
    env = make_cpu_task("num_envs=4", "task.env.asymmetricCritic=True")
    clearance = env.foot_clearance
    env.foot_clearance = lambda: torch.where(torch.arange(4)[:, None] == 2, torch.nan, clearance())
    env.compute_observations()
    states = env.obs_dict()["states"]
    assert torch.isfinite(states).all() and torch.equal(states[:, :env.num_obs], env.obs_dict()["obs"])
    layout = observations.PRIVILEGED.layout()["foot_clearance"]
    assert states[2, env.num_obs + layout.start:env.num_obs + layout.stop].eq(0).all()
    assert states[0, env.num_obs + layout.start:env.num_obs + layout.stop].ne(0).any()


def test_without_it_there_are_no_states(make_cpu_task):
    env = make_cpu_task("num_envs=1")
    assert env.num_states == 0 and set(env.reset()) == {"obs"}


def test_the_central_value_config_goes_with_the_states():
    central = {"minibatch_size": 8, "network": {"name": "actor_critic"}}
    assert central_value_config({"central_value_config": central, "central_value": central}, 10) is central
    with pytest.raises(ConfigError, match=r"^task.env.numStates=10 needs train.params.config.central_value_config"):
        central_value_config({"central_value_config": None}, 10)
    with pytest.raises(ConfigError, match="is set but the task has no states for it"):
        central_value_config({"central_value_config": central}, 0)
    config = {"central_value_config": None, "central_value": central}
    assert central_value_config(config, 0) is None and "central_value" not in config


def test_training_with_it_trains_a_critic_on_the_states_and_resumes_it(tmp_path):
    small = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True", "num_envs=4",
             "task.env.episodeLength_s=0.02", "train.params.config.horizon_length=8", "task.env.asymmetricCritic=True"]

    def train(*args):
        result = subprocess.run([sys.executable, str(ROOT / "train.py"), *small, *args], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result.stdout, sorted((tmp_path / "runs" / "NeuroMechFly" / "nn").glob("last_*.pth"))[-1]

    # warm start from the shipped policy, which has no central value: the critic starts from its value head
    out, first = train(f"checkpoint={ROOT / 'checkpoints' / 'NeuroMechFly_walk.pth'}", "max_iterations=2")
    assert "the critic starts from the policy's value head" in out
    state = torch.load(first, weights_only=False)
    critic = state["assymetric_vf_nets"]
    first_layer = [v for k, v in critic.items() if k.endswith(".weight") and v.ndim == 2][0]
    assert first_layer.shape[1] == NUM_OBS + observations.PRIVILEGED.size
    assert critic["model.running_mean_std.count"] > 1  # its input normaliser saw the states
    out, second = train(f"checkpoint={first}", "max_iterations=3")
    assert "the critic starts" not in out
    resumed = torch.load(second, weights_only=False)
    assert resumed["epoch"] == 3 and resumed["assymetric_vf_nets"]["model.running_mean_std.count"] > \
        critic["model.running_mean_std.count"]


def _network(units, **extra):
    from rl_games.algos_torch import model_builder
    mlp = {"units": units, "activation": "elu", "d2rl": False, "initializer": {"name": "default"},
           "regularizer": {"name": "None"}}
    return model_builder.ModelBuilder().load({"model": {"name": extra.pop("model")},
                                              "network": {"name": "actor_critic", **extra, "mlp": mlp}})


def test_a_warm_critic_values_the_states_as_the_policy_valued_their_observation():
    policy_state = torch.load(ROOT / "checkpoints" / "NeuroMechFly_walk.pth", weights_only=False)["model"]
    size, extra = policy_state["running_mean_std.running_mean"].shape[0], observations.PRIVILEGED.size
    policy = _network([512, 256, 128], model="continuous_a2c_logstd", separate=False, space={"continuous": {
        "mu_activation": "None", "sigma_activation": "None", "mu_init": {"name": "default"},
        "sigma_init": {"name": "const_initializer", "val": 0}, "fixed_sigma": True}}).build(
        {"input_shape": (size,), "actions_num": 42, "num_seqs": 1, "value_size": 1, "normalize_value": True,
         "normalize_input": True})
    policy.load_state_dict(policy_state)
    critic = _network([512, 256, 128], model="central_value", central_value=True).build(
        {"input_shape": (size + extra,), "actions_num": 42, "num_seqs": 1, "value_size": 1,
         "normalize_value": True, "normalize_input": True})
    warm = critic_from_policy(policy_state, critic.state_dict())
    critic.load_state_dict(warm)
    policy.eval(), critic.eval()
    gen = torch.Generator().manual_seed(0)
    obs = policy_state["running_mean_std.running_mean"] + torch.randn(64, size, generator=gen) * \
        policy_state["running_mean_std.running_var"].sqrt()
    obs = obs.float()
    states = torch.cat([obs, 5 * torch.randn(64, extra, generator=gen)], 1)  # whatever the privileged inputs are
    with torch.no_grad():
        value = policy({"obs": obs, "is_train": False})["values"]
        critic_value = critic({"obs": states, "is_train": False})["values"]
    assert value.std() > 1e-3 and torch.allclose(critic_value, value, rtol=1e-5, atol=1e-6)
    assert warm["running_mean_std.count"] == 1  # the first rollout sets the new inputs' statistics
    # a critic of another shape (here narrower) is not warm-started
    other = _network([256, 128], model="central_value", central_value=True).build(
        {"input_shape": (size + extra,), "actions_num": 42, "num_seqs": 1, "value_size": 1,
         "normalize_value": True, "normalize_input": True})
    assert critic_from_policy(policy_state, other.state_dict()) is None

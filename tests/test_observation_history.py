"""task.env.observationHistory (tasks/base/observations.py: ObservationHistory) on the real task, its config
errors, and scripts/adapt_checkpoint.py carrying a policy over to a layout with a history appended."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.checks import ConfigError
from fly import NUM_DOF
from runner.config import to_dict
from tasks.neuromechfly import NUM_OBS, observations
from tasks.neuromechfly.config import parse
from tests.conftest import compose_config, policy_actor

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ("task.env.observationHistory.terms=[contacts,projected_gravity]", "task.env.observationHistory.length=3",
           "task.env.observationHistory.every=2")


def test_history_holds_earlier_observations_newest_first_and_starts_full_after_a_reset(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.episodeLength_s=0.05", *HISTORY)  # episodes of 10 steps
    own = observations.OBSERVATIONS.layout()
    hist = env.obs_history.layout(NUM_OBS)
    assert env.num_obs == NUM_OBS + 3 * (6 + 3) == hist["projected_gravity_history"].stop
    assert list(hist) == ["contacts_history", "projected_gravity_history"]

    def terms(obs):
        return torch.cat([obs[:, own["contacts"]], obs[:, own["projected_gravity"]]], dim=-1)

    def history(obs):  # (N, 3 samples, 9): newest first, the contacts then the gravity of each sample
        c = obs[:, hist["contacts_history"]].reshape(-1, 3, 6)
        g = obs[:, hist["projected_gravity_history"]].reshape(-1, 3, 3)
        return torch.cat([c, g], dim=-1)

    obs = env.reset()["obs"]
    seen = [terms(obs)]
    assert torch.equal(history(obs), seen[0][:, None].expand(-1, 3, -1))  # no past yet: the first sample
    env.hold_commands()  # observing again without a step changes nothing
    assert torch.equal(history(env.obs_buf), history(obs))
    actions = torch.zeros(2, env.num_actions)
    for step in range(1, 10):
        obs, _, reset, _ = env.step(actions)
        obs = obs["obs"]
        assert not reset.any()
        seen.append(terms(obs))
        want = torch.stack([seen[max(step - lag, 0)] for lag in (2, 4, 6)], dim=1)
        assert torch.equal(history(obs), want), step
    assert not torch.equal(seen[-1], seen[0])  # the fly moved: the test compares samples that differ
    obs, _, reset, _ = env.step(actions)  # the 10th step ends both episodes: each starts again with no past
    obs = obs["obs"]
    assert reset.all()
    assert torch.equal(history(obs), terms(obs)[:, None].expand(-1, 3, -1))


def test_no_history_is_the_observation_as_before(make_cpu_task):
    env = make_cpu_task("num_envs=1")
    assert env.num_obs == NUM_OBS == observations.num_observations(env.cfg_t.observation_history)


@pytest.mark.parametrize("key, value, message", [
    ("terms", ["contacts", "height"], "task.env.observationHistory.terms='height' is unknown (allowed: "
                                      "projected_gravity, base_lin_vel,"),
    ("terms", ["contacts", "contacts"], "task.env.observationHistory.terms=['contacts', 'contacts'] is not allowed"),
    ("terms", "contacts", "task.env.observationHistory.terms='contacts' is not allowed (allowed: a list of"),
    ("length", -1, "task.env.observationHistory.length=-1 is not allowed (allowed: an integer >= 0)"),
    ("every", 0, "task.env.observationHistory.every=0 is not allowed (allowed: an integer >= 1)"),
])
def test_bad_history_values_are_one_line_errors(key, value, message):
    cfg = to_dict(compose_config("task=NeuroMechFly").task)
    cfg = copy.deepcopy(cfg)
    cfg["env"]["observationHistory"][key] = value
    with pytest.raises(ConfigError) as err:
        parse(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_checkpoint_trained_with_a_history_names_it_to_a_run_without(make_cpu_task):
    from runner.checkpoints import CheckpointError, action_meaning, check_checkpoint_fits

    trained = make_cpu_task("num_envs=1", *HISTORY)
    state = {"model": {"running_mean_std.running_mean": torch.zeros(trained.num_obs)},
             "env_state": trained.get_env_state()}
    check_checkpoint_fits(state, "hist.pth", trained.num_obs, trained.num_actions, action_meaning(trained))
    plain = make_cpu_task("num_envs=1")
    with pytest.raises(CheckpointError) as err:
        check_checkpoint_fits(state, "hist.pth", plain.num_obs, plain.num_actions, action_meaning(plain))
    h = "task.env.observationHistory"
    assert str(err.value) == (
        f"checkpoint=hist.pth was trained with {h}.terms=[contacts,projected_gravity] and {h}.length=3 and "
        f"{h}.every=2, this run has [] and 0 and 1 (allowed: the checkpoint's values; pass "
        f"{h}.terms=[contacts,projected_gravity] {h}.length=3 {h}.every=2)")


def _actor(path: Path, num_obs: int):
    from runner.checkpoints import read_checkpoint

    cfg = to_dict(compose_config("task=NeuroMechFly", "train=NeuroMechFlyPPO"))
    return policy_actor(cfg["train"]["params"], read_checkpoint(str(path)), num_obs, NUM_DOF)


def test_adapt_checkpoint_appends_inputs_the_policy_ignores_until_it_learns_to_use_them(tmp_path):
    """The shipped policy with 3 samples of the contacts and the gravity appended acts as before, whatever
    the new inputs hold; their normaliser statistics are those of the terms they repeat."""
    own = observations.OBSERVATIONS.layout()
    c, g = own["contacts"], own["projected_gravity"]
    out = tmp_path / "warm.pth"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "adapt_checkpoint.py"),
                             str(ROOT / "checkpoints" / "NeuroMechFly_walk.pth"), str(out),
                             "--append", f"{c.start}:{c.stop}*3", f"{g.start}:{g.stop}*3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    size = NUM_OBS + 3 * 9
    assert result.stdout.strip().endswith(f"{NUM_OBS} -> {size} observations, {NUM_DOF} -> {NUM_DOF} actions")
    before, after = _actor(ROOT / "checkpoints" / "NeuroMechFly_walk.pth", NUM_OBS), _actor(out, size)
    mean = after.model.running_mean_std.running_mean
    assert torch.equal(mean[NUM_OBS:NUM_OBS + 6], mean[c]) and torch.equal(mean[-3:], mean[g])
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn((64, NUM_OBS), generator=gen)
    extra = 3.0 * torch.randn((64, size - NUM_OBS), generator=gen)
    assert torch.allclose(after(torch.cat([obs, extra], -1)), before(obs), atol=1e-6)
    assert not torch.allclose(before(obs), before(obs.roll(1, 0)), atol=1e-3)  # the actions do depend on the input

    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "adapt_checkpoint.py"), str(out),
                          str(tmp_path / "x.pth"), "--append", "0:3*0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "error: --append '0:3*0' is not allowed (allowed: an index, a range a:b, or either followed by *k, k >= 1)"]
    assert not (tmp_path / "x.pth").exists()


def test_export_reads_the_observation_size_with_its_history_from_the_config():
    from scripts.export_onnx import declared_size

    cfg = to_dict(compose_config("task=NeuroMechFly", *HISTORY, "task.env.enableAdhesion=True"))
    assert declared_size("NeuroMechFly", cfg, "numObservations", "NUM_OBS") == NUM_OBS + 27
    assert declared_size("NeuroMechFly", cfg, "numActions", "NUM_ACTIONS") == NUM_DOF + 6


def test_adapting_drops_an_asymmetric_critic_whose_states_no_longer_fit():
    from scripts.adapt_checkpoint import adapt

    state = {"model": {"running_mean_std.running_mean": torch.zeros(4), "running_mean_std.running_var": torch.ones(4),
                       "a2c_network.actor_mlp.0.weight": torch.ones(2, 4)},
             "assymetric_vf_nets": {"model.a2c_network.actor_mlp.0.weight": torch.ones(2, 9)},
             "assymetric_vf_optimizer": {}, "central_val_stats": {}, "epoch": 7, "frame": 70}
    out = adapt(state, drop=[], append=[1, 1])
    assert not {"assymetric_vf_nets", "assymetric_vf_optimizer", "central_val_stats"} & set(out)
    assert out["model"]["a2c_network.actor_mlp.0.weight"].shape == (2, 6) and out["epoch"] == 0

"""scripts/adapt_checkpoint.py --add-actions: the shipped rough policy carried over to adhesion's 6 more actions."""
from pathlib import Path

import pytest
import torch

from fly import NUM_DOF
from runner.checkpoints import CheckpointError, read_checkpoint
from runner.config import to_dict
from scripts.adapt_checkpoint import add_actions
from tests.conftest import compose_config, policy_actor

ROOT = Path(__file__).resolve().parents[1]
ROUGH = ROOT / "checkpoints" / "NeuroMechFly_rough.pth"


def _actor(state: dict, num_actions: int):
    cfg = to_dict(compose_config("task=NeuroMechFlyRough", "train=NeuroMechFlyRoughPPO"))
    num_obs = state["model"]["running_mean_std.running_mean"].shape[0]
    return policy_actor(cfg["train"]["params"], state, num_obs, num_actions), num_obs


def test_added_actions_start_at_zero_and_leave_the_old_ones_as_they_were():
    before, num_obs = _actor(read_checkpoint(str(ROUGH)), NUM_DOF)
    state = add_actions(read_checkpoint(str(ROUGH)), 6)
    after, _ = _actor(state, NUM_DOF + 6)
    obs = torch.randn((64, num_obs), generator=torch.Generator().manual_seed(0))
    old, new = before(obs), after(obs)
    assert new.shape == (64, NUM_DOF + 6) and torch.equal(new[:, NUM_DOF:], torch.zeros(64, 6))
    assert torch.allclose(new[:, :NUM_DOF], old, atol=1e-6) and old.abs().max() > 0.05
    sigma = state["model"]["a2c_network.sigma"]
    assert torch.allclose(sigma[NUM_DOF:], sigma[:NUM_DOF].mean().expand(6))  # explores like the old actions
    # Adam's moments grow with their parameters (zeros for the new rows); the critic, which sees no actions, stays
    moments = [m for m in state["optimizer"]["state"].values() if m["exp_avg"].shape[0] == NUM_DOF + 6]
    assert len(moments) == 3 and all(m["exp_avg"][NUM_DOF:].abs().sum() == 0 for m in moments)
    assert "assymetric_vf_nets" in state and state["epoch"] == 0
    assert torch.equal(add_actions(read_checkpoint(str(ROUGH)), 6, sigma=-3.0)["model"]["a2c_network.sigma"][-6:],
                       torch.full((6,), -3.0))


def test_a_checkpoint_without_a_continuous_head_is_refused_in_one_line():
    with pytest.raises(CheckpointError) as err:
        add_actions({"model": {"a2c_network.mu.weight": torch.zeros(2, 3)}}, 6)
    assert str(err.value).startswith("a2c_network.sigma is not in the checkpoint (allowed: an rl_games continuous")


def test_a_policy_with_adhesion_names_the_key_a_run_without_it_must_pass(make_cpu_task):
    from runner.checkpoints import action_meaning, check_checkpoint_fits

    adhering = make_cpu_task("num_envs=1", "task.env.enableAdhesion=True")
    state = {"model": {"running_mean_std.running_mean": torch.zeros(adhering.num_obs),
                       "a2c_network.mu.weight": torch.zeros(adhering.num_actions, 8)},
             "env_state": adhering.get_env_state()}
    check_checkpoint_fits(state, "adh.pth", adhering.num_obs, adhering.num_actions, action_meaning(adhering))
    plain = make_cpu_task("num_envs=1")
    with pytest.raises(CheckpointError) as err:
        check_checkpoint_fits(state, "adh.pth", plain.num_obs, plain.num_actions, action_meaning(plain))
    assert str(err.value) == ("checkpoint=adh.pth was trained with task.env.enableAdhesion=True, this run has False "
                              "(allowed: the checkpoint's value; pass task.env.enableAdhesion=True)")


def test_the_shipped_adhesion_policy_walks_adhering_in_stance(make_cpu_task):
    """checkpoints/NeuroMechFly_rough_adhesion.pth plays under task=NeuroMechFlyRough with adhesion: on flat ground at
    15 mm/s it walks upright at about the commanded speed, its stance legs adhering and its swing legs letting go."""
    from runner.checkpoints import action_meaning, check_checkpoint

    env = make_cpu_task("task=NeuroMechFlyRough", "num_envs=2", "task.env.enableAdhesion=True",
                        "task.env.commands.forwardSpeed=[15.0,15.0]", "task.env.commands.yawRate=[0.0,0.0]",
                        "task.env.commands.standingShare=0.0", "task.env.commands.turnInPlaceShare=0.0")
    path = str(ROOT / "checkpoints" / "NeuroMechFly_rough_adhesion.pth")
    actor, _ = _actor(check_checkpoint(path, env.num_obs, env.num_actions, action_meaning(env)), env.num_actions)
    env.hold_commands()
    obs, speeds, stance_adh, swing_adh = env.reset()["obs"], [], [], []
    for step in range(160):  # 0.8 s
        obs = env.step(actor(obs))[0]["obs"]
        adhesion, stance = env.physics.ctrl[:, env.fly.adhesion_act].float(), env.gait.expected_stance()
        stance_adh.append(adhesion[stance].mean())
        swing_adh.append(adhesion[~stance].mean() if (~stance).any() else adhesion.new_tensor(0.0))
        if step >= 80:
            speeds.append(env.state.forward_speed_avg.mean())
    assert not env.reset_buf.any() and (env.state.projected_gravity[:, 2] < -0.9).all()
    assert 12.0 < float(torch.stack(speeds).mean()) < 18.0
    assert float(torch.stack(stance_adh).mean()) > 0.8 and float(torch.stack(swing_adh).mean()) < 0.3


@pytest.mark.parametrize("args, message", [
    (["--add-actions", "-1"], "error: --add-actions -1 is not allowed (allowed: an integer >= 1)"),
    (["--drop", "0", "--sigma", "-2"],
     "error: --sigma -2.0 without --add-actions is not allowed (allowed: --sigma with --add-actions k, for the added "
     "actions)"),
    (["--add-actions", "6", "--sigma", "nan"], "error: --sigma nan is not allowed (allowed: a finite log-std)")])
def test_bad_action_options_are_one_line_errors_and_write_nothing(tmp_path, args, message):
    import subprocess
    import sys

    out = tmp_path / "x.pth"
    script = str(ROOT / "scripts" / "adapt_checkpoint.py")
    result = subprocess.run([sys.executable, script, str(ROUGH), str(out), *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and result.stderr.strip().splitlines() == [message] and not out.exists()

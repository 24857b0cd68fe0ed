"""Command sampling and redraws, and the config's one-line errors for bad command ranges."""
import pytest
import torch

from common.checks import ConfigError
from runner.config import to_dict
from tasks.neuromechfly.commands import VelocityCommand
from tasks.neuromechfly.config import CommandConfig, parse

from .conftest import compose_config


def commands(n=20000, **kw):
    cfg = dict(forward_speed=(5.0, 30.0), yaw_rate=(-2.0, 2.0), standing_share=0.1, turn_in_place_share=0.1,
               straight_share=0.25, resample_time=(1.5, 3.0))
    cfg.update(kw)
    torch.manual_seed(0)
    return VelocityCommand(n, torch.device("cpu"), CommandConfig(**cfg))


def test_draws_follow_the_ranges_and_shares():
    c = commands()
    c.draw(torch.arange(c.speed.shape[0]))
    standing = (c.speed == 0) & (c.yaw_rate == 0)
    in_place = (c.speed == 0) & (c.yaw_rate != 0)
    straight = (c.speed != 0) & (c.yaw_rate == 0)
    for mask, share in ((standing, 0.1), (in_place, 0.1), (straight, 0.25)):
        assert mask.float().mean() == pytest.approx(share, abs=0.01)
    walking = c.speed[c.speed != 0]
    assert walking.min() >= 5.0 and walking.max() <= 30.0 and walking.mean() == pytest.approx(17.5, abs=0.3)
    assert c.yaw_rate.abs().max() <= 2.0 and c.standing.equal(standing)
    assert c.time_left.min() >= 1.5 and c.time_left.max() <= 3.0


def test_commands_are_redrawn_when_their_time_is_up_and_only_then():
    c = commands(n=1000)
    c.draw(torch.arange(1000))
    c.time_left[:500] = 0.004  # due within the next 5 ms step
    before = c.speed.clone(), c.yaw_rate.clone()
    redrawn = c.update(0.005)
    assert redrawn[:500].all() and not redrawn[500:].any()
    changed = (c.speed != before[0]) | (c.yaw_rate != before[1])
    assert changed[:500].float().mean() > 0.9 and not changed[500:].any()
    assert (c.time_left[:500] >= 1.5).all()


def test_held_commands_stay_through_redraw_times_and_resets():
    c = commands(n=4)
    c.draw(torch.arange(4))
    c.hold()
    c.set(None, torch.tensor([0.0, 5.0, 10.0, 30.0]), torch.tensor([0.0, 1.0, -2.0, 0.0]))
    c.update(10.0)
    c.draw(torch.arange(4))  # what a reset does
    assert c.speed.tolist() == [0.0, 5.0, 10.0, 30.0] and c.yaw_rate.tolist() == [0.0, 1.0, -2.0, 0.0]
    assert c.standing.tolist() == [True, False, False, False]


@pytest.mark.parametrize("override, message", [
    ("task.env.commands.forwardSpeed=[20.0,10.0]", "task.env.commands.forwardSpeed=[20.0, 10.0] is not allowed"),
    ("task.env.commands.forwardSpeed=[-1.0,10.0]", "task.env.commands.forwardSpeed=[-1.0, 10.0] is not allowed"),
    ("task.env.commands.yawRate=[a,1.0]", "task.env.commands.yawRate=['a', 1.0] is not allowed"),
    ("task.env.commands.resampleTime=[0.0,1.0]", "task.env.commands.resampleTime=[0.0, 1.0] is not allowed"),
    ("task.env.gait.maxAmplitude=2.5", "task.env.gait.maxAmplitude=2.5 is not allowed (allowed: a number in (0, 2]"),
    ("task.env.gait.standingResidualScale=1.5", "task.env.gait.standingResidualScale=1.5 is not allowed"),
    ("task.env.gait.standingResidualScale=-0.1", "task.env.gait.standingResidualScale=-0.1 is not allowed"),
    ("task.env.commands.straightShare=0.9",
     "task.env.commands.standingShare + turnInPlaceShare + straightShare = 1.1 is not allowed"),
])
def test_bad_task_config_is_one_line_naming_the_key(override, message):
    cfg = to_dict(compose_config("task=NeuroMechFly", override).task)
    with pytest.raises(ConfigError) as error:
        parse(cfg)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert "allowed" in str(error.value)

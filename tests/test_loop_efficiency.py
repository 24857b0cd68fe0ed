"""benchmarks/loop_efficiency.py's reading of rl_games' per-epoch lines (the benchmark itself prints numbers)."""
import pytest

from benchmarks.loop_efficiency import epoch_rates, median_fps, train_command

LOG = "\n".join(f"fps step: {v + 100} fps step and policy inference: {v + 50} fps total: {v} epoch: {i + 1}/5 frames: 0"
                for i, v in enumerate([900.0, 20000.0, 22000.0, 21000.0, 30000.0]))


def test_the_median_leaves_out_the_warm_up_epochs():
    assert median_fps(LOG, skip=1) == (21500.0, 4)  # the compiling first epoch (900) left out
    assert median_fps(LOG, skip=2) == (22000.0, 3)
    assert median_fps(LOG, skip=1, label="fps step") == (21600.0, 4)  # not the inference line's 21550
    assert median_fps(LOG, skip=1, label="fps step and policy inference") == (21550.0, 4)


def test_too_few_epochs_is_one_line_naming_the_counts():
    with pytest.raises(ValueError) as err:
        median_fps(LOG, skip=5)
    assert "5 'fps total' lines, none after the first 5" in str(err.value) and "\n" not in str(err.value)


def test_every_epoch_rate_is_kept_in_order():
    assert epoch_rates(LOG) == [900.0, 20000.0, 22000.0, 21000.0, 30000.0]


def test_training_on_from_a_checkpoint_counts_its_epochs():
    fresh = train_command("mjwarp", 4096, "flat", 40, "cuda:0")
    assert "max_iterations=40" in fresh and not any(a.startswith("checkpoint=") for a in fresh)
    on = train_command("mjwarp", 4096, "flat", 40, "cuda:0", "checkpoints/NeuroMechFly_rough.pth", 600)
    assert "max_iterations=640" in on and on[-1] == "checkpoint=checkpoints/NeuroMechFly_rough.pth"

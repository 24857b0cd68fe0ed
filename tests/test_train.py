"""train.py end to end on the CPU engine: a short PPO run, play mode and overrides (bad input,
signals, resume and reproducibility: tests/test_robustness.py)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True", "num_envs=4",
         "task.env.episodeLength_s=0.006", "task.env.controlFrequencyInv=5", "train.params.config.horizon_length=8",
         "train.params.config.save_best_after=0"]


def train_py(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("run")
    result = train_py([*SMALL, "max_iterations=2", "seed=3"], cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return cwd, result


def test_short_training_writes_checkpoint_and_summaries(trained):
    cwd, result = trained
    run = cwd / "runs" / "NeuroMechFly"
    checkpoints = sorted((run / "nn").glob("*.pth"))
    assert checkpoints, result.stdout[-2000:]
    state = torch.load(checkpoints[-1], weights_only=False)
    assert state["epoch"] == 2 and "model" in state and "optimizer" in state
    assert list((run / "summaries").glob("events.out.tfevents.*"))
    assert "epoch: 2/2" in result.stdout


def test_overrides_are_honoured(trained):
    cwd, _ = trained
    cfg = yaml.safe_load((cwd / "runs" / "NeuroMechFly" / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["task"]["env"]["numEnvs"] == 4
    assert cfg["train"]["params"]["config"]["max_epochs"] == 2
    assert cfg["task"]["env"]["controlFrequencyInv"] == 5


def test_play_mode_loads_the_checkpoint(trained):
    cwd, _ = trained
    checkpoint = sorted((cwd / "runs" / "NeuroMechFly" / "nn").glob("last_*.pth"))[-1]
    result = train_py([*SMALL, "test=True", f"checkpoint={checkpoint}",
                       "train.params.config.player.games_num=4"], cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "=> loading checkpoint" in result.stdout and "av reward" in result.stdout

"""Issue #7: multi_gpu=True under torchrun, the IsaacGymEnvs way. On the CPU (gloo), two ranks train
one policy: each simulates its own worlds with its own seed, rl_games averages the gradients, and
rank 0 alone writes the run's files. Also: the one-line errors, the device and backend choice."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.distributed import (LAUNCH, TORCHRUN_VARIABLES, Ranks, backend_for, rank_device, tensors_digest,
                                torchrun_ranks)
from common.checks import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# tests/test_train.py's tiny run: 4 worlds x 8 control steps per rank and epoch, 6-step episodes
SMALL = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True", "num_envs=4",
         "task.env.episodeLength_s=0.006", "task.env.controlFrequencyInv=5", "train.params.config.horizon_length=8",
         "train.params.config.save_best_after=0", "max_iterations=2"]
# videos (as in tests/test_video.py) where an MP4 writer is installed: recordings start at steps 0 and 8
VIDEO = (["capture_video=True", "capture_video_len=3", "capture_video_freq=8", "+video_width=64", "+video_height=48"]
         if importlib.util.find_spec("imageio_ffmpeg") else [])
DIGEST = re.compile(r"^rank (\d) of 2: network parameters sha256 (\w+), observation normaliser sha256 (\w+)$", re.M)


def without_torchrun_variables():
    return {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}


def train_py(args, cwd, env=None):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env or without_torchrun_variables())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("multi_gpu")
    logs = tmp_path_factory.mktemp("torchelastic")  # torchrun's own (empty) log folders, else left in /tmp
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                             "--nproc_per_node=2", f"--log-dir={logs}", str(ROOT / "train.py"), *SMALL, *VIDEO,
                             "seed=3", "multi_gpu=True"],
                            cwd=cwd, capture_output=True, text=True, timeout=300, env=without_torchrun_variables())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return cwd / "runs" / "NeuroMechFly", result


def test_rank_0_alone_writes_one_set_of_outputs(two_ranks):
    run, result = two_ranks
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    checkpoints = [f for f in files if f.startswith("nn/")]
    events = [f for f in files if f.startswith("summaries/")]
    videos = [f for f in files if f.startswith("videos/")]
    assert files == sorted(["config.yaml", *checkpoints, *events, *videos]), files  # nothing else, no temp files
    assert checkpoints[0] == "nn/NeuroMechFly.pth" and len(checkpoints) == 2, checkpoints  # best + last
    assert re.fullmatch(r"nn/last_NeuroMechFly_ep_2_rew_.*\.pth", checkpoints[1]), checkpoints
    assert len(events) == 1, events  # rank 1 opens no SummaryWriter
    summaries = EventAccumulator(str(run / "summaries"))
    summaries.Reload()
    assert [e.value for e in summaries.Scalars("info/epochs")] == [1, 2]  # one writer, once per epoch
    assert result.stdout.count("run folder:") == 1 and result.stdout.count("epoch: 2/2") == 1
    state = torch.load(run / checkpoints[1], weights_only=False)
    assert state["epoch"] == 2 and state["frame"] == 2 * 2 * 8 * 4  # frames of both ranks: 2 epochs, 8 steps, 4 worlds
    if VIDEO:  # the same file names from two ranks would show as two "video: wrote" lines each
        assert videos == ["videos/rl-video-step-0.mp4", "videos/rl-video-step-8.mp4"]
        assert result.stdout.count("video: wrote") == 2
    else:
        assert videos == []


def test_each_rank_has_its_own_seed(two_ranks):
    run, result = two_ranks
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 3  # rank 0's
    assert "self.seed = 3" in result.stdout and "self.seed = 4" in result.stdout  # rl_games' Runner: seed + rank
    ranks = {int(rank): (network, normaliser) for rank, network, normaliser in DIGEST.findall(result.stdout)}
    assert sorted(ranks) == [0, 1], result.stdout[-3000:]
    assert ranks[0][1] != ranks[1][1]  # the observation normalisers saw different rollouts


def test_gradient_averaging_keeps_the_ranks_networks_identical(two_ranks):
    """Different rollouts (above) give different gradients: equal networks after two epochs of updates
    mean the all-reduce averaged them. Rank 0's checkpoint holds that network and its own normaliser."""
    run, result = two_ranks
    ranks = {int(rank): (network, normaliser) for rank, network, normaliser in DIGEST.findall(result.stdout)}
    assert ranks[0][0] == ranks[1][0], ranks
    model = torch.load(next((run / "nn").glob("last_*.pth")), weights_only=False)["model"]
    network = [(k, v) for k, v in model.items() if k.startswith("a2c_network.")]
    normaliser = [(k, v) for k, v in model.items() if k.startswith("running_mean_std.")]
    assert tensors_digest(network) == ranks[0][0] and tensors_digest(normaliser) == ranks[0][1]


LAUNCH_ERRORS = [  # (arguments, environment, what the line starts with, what it names further on)
    (["multi_gpu=True"], {}, "multi_gpu=True, but this process was not started by torchrun",
     "(LOCAL_RANK, RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set); launch one process per GPU with: " + LAUNCH),
    (["multi_gpu=True", "test=True"], {}, "multi_gpu=True is for training", "without multi_gpu"),
    ([], {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}, "multi_gpu=False, but torchrun started WORLD_SIZE=2",
     "add multi_gpu=True"),
]


@pytest.mark.parametrize("args, env, start, names", LAUNCH_ERRORS,
                         ids=["no_torchrun", "play", "torchrun_without_multi_gpu"])
def test_wrong_launch_is_one_line(tmp_path, args, env, start, names):
    result = train_py([*SMALL, *args], tmp_path, env={**without_torchrun_variables(), **env})
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + start) and names in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "runs").exists() and "build mlp" not in result.stdout  # before rl_games or physics


def test_each_rank_gets_its_own_gpu_and_cpu_stays_cpu():
    rank1 = Ranks(rank=1, local_rank=1, world_size=2, multi_gpu=True)
    assert [rank_device(d, rank1) for d in ("cuda:0", "cuda", "cpu")] == ["cuda:1", "cuda:1", "cpu"]
    assert rank_device("cuda:0", Ranks()) == "cuda:0"  # one process: the configured device
    environ = {"LOCAL_RANK": "1", "RANK": "3", "WORLD_SIZE": "4", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}
    assert torchrun_ranks(True, environ=environ) == Ranks(rank=3, local_rank=1, world_size=4, multi_gpu=True)
    assert torchrun_ranks(False, environ={}) == Ranks()
    with pytest.raises(ConfigError, match="do not fit together"):
        torchrun_ranks(True, environ={**environ, "RANK": "4"})


def test_backend_is_gloo_on_cpu_and_nccl_without_nvls_on_cuda(monkeypatch):
    monkeypatch.delenv("NCCL_NVLS_ENABLE", raising=False)
    assert backend_for("cpu") == "gloo" and "NCCL_NVLS_ENABLE" not in os.environ
    assert backend_for("cuda:1") == "nccl" and os.environ["NCCL_NVLS_ENABLE"] == "0"
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")  # the user's own setting is kept
    assert backend_for("cuda:0") == "nccl" and os.environ["NCCL_NVLS_ENABLE"] == "1"

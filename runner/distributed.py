"""Multi-GPU training the IsaacGymEnvs way: torchrun starts one train.py process (rank) per device,
each with its own simulation, its own seed (seed + rank) and its own copy of the policy; rl_games
averages the gradients with torch.distributed, so the networks stay identical, and only rank 0
prints statistics, writes TensorBoard summaries and saves checkpoints.

    torchrun --standalone --nnodes=1 --nproc_per_node=2 train.py task=NeuroMechFly multi_gpu=True

This module reads torchrun's environment, gives each rank its device (cuda:<LOCAL_RANK> where the
config names a CUDA device, cpu stays cpu) and starts the process group with the backend that fits
the device: NCCL for CUDA, gloo for the CPU (rl_games 1.6.5 would always ask for NCCL; see
runner/rl_games_glue.py for how it is made to use this group). No rl_games import here: train.py
calls it before it pays for importing rl_games.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch

from common.checks import ConfigError

LAUNCH = "torchrun --standalone --nnodes=1 --nproc_per_node=<number of GPUs> train.py multi_gpu=True ..."
TORCHRUN_VARIABLES = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (a single process: rank 0 of 1)."""

    rank: int = 0  # global rank: 0 is the one that writes
    local_rank: int = 0  # rank on this machine: picks the GPU
    world_size: int = 1
    multi_gpu: bool = False

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def torchrun_ranks(multi_gpu: bool, test: bool = False, environ=os.environ) -> Ranks:
    """The ranks torchrun gave this process. multi_gpu=True without torchrun or in play mode, or
    several torchrun processes without multi_gpu=True (each would train alone into the same run
    folder), is a one-line ConfigError."""
    if multi_gpu and test:
        raise ConfigError("multi_gpu=True is for training (allowed: play a checkpoint in one process, "
                          "python train.py test=True ... without multi_gpu)")
    if not multi_gpu:
        world = environ.get("WORLD_SIZE", "1")
        if world.strip() not in ("", "0", "1"):
            raise ConfigError(f"multi_gpu=False, but torchrun started WORLD_SIZE={world} processes that would each "
                              "train alone into the same run folder (allowed: add multi_gpu=True, or start one "
                              "process with python train.py)")
        return Ranks()
    missing = [name for name in TORCHRUN_VARIABLES if name not in environ]
    if missing:
        raise ConfigError(f"multi_gpu=True, but this process was not started by torchrun ({', '.join(missing)} "
                          f"not set); launch one process per GPU with: {LAUNCH}")
    try:
        ranks = Ranks(int(environ["RANK"]), int(environ["LOCAL_RANK"]), int(environ["WORLD_SIZE"]), True)
    except ValueError:
        shown = ", ".join(f"{name}={environ[name]!r}" for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        raise ConfigError(f"multi_gpu=True: torchrun's {shown} are not integers; launch with: {LAUNCH}") from None
    if not (ranks.world_size >= 1 and 0 <= ranks.rank < ranks.world_size and ranks.local_rank >= 0):
        raise ConfigError(f"multi_gpu=True: RANK={ranks.rank}, LOCAL_RANK={ranks.local_rank}, "
                          f"WORLD_SIZE={ranks.world_size} do not fit together; launch with: {LAUNCH}")
    return ranks


def rank_device(name: str, ranks: Ranks) -> str:
    """The device this rank uses for a configured device: each rank its own GPU, cuda:<LOCAL_RANK>,
    whatever CUDA index the config names (as IsaacGymEnvs does); a CPU device stays cpu. Names that
    are not devices are returned as they are, for physics.resolve_device to report."""
    if not ranks.multi_gpu:
        return name
    try:
        is_cuda = torch.device(name).type == "cuda"
    except (RuntimeError, TypeError):
        return name
    return f"cuda:{ranks.local_rank}" if is_cuda else name


def check_rank_device(name: str, key: str, ranks: Ranks) -> None:
    """A rank whose GPU is not there: one line that says so in torchrun's terms."""
    if not ranks.multi_gpu or name != f"cuda:{ranks.local_rank}":
        return
    count = torch.cuda.device_count()
    if ranks.local_rank >= count:
        raise ConfigError(f"multi_gpu=True: the process with LOCAL_RANK={ranks.local_rank} trains on {key}={name}, "
                          f"but this machine has {count} CUDA device(s) (allowed: --nproc_per_node at most {count}, "
                          "or sim_device=cpu rl_device=cpu)")


def backend_for(rl_device: str) -> str:
    """torch.distributed backend for gradients on `rl_device`: NCCL on CUDA, gloo on the CPU. With
    NCCL, NVLink SHARP multicast (NVLS) stays off unless the user set NCCL_NVLS_ENABLE: it needs
    fabric-manager support that many machines lack, and an all-reduce of a few MB gains nothing."""
    if torch.device(rl_device).type == "cuda":
        os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
        return "nccl"
    return "gloo"


def init_process_group(ranks: Ranks, rl_device: str) -> str | None:
    """Join the other ranks (torchrun's MASTER_ADDR/MASTER_PORT rendezvous); returns the backend."""
    if not ranks.multi_gpu:
        return None
    import torch.distributed as dist

    backend = backend_for(rl_device)
    if backend == "nccl":
        torch.cuda.set_device(torch.device(rl_device))  # NCCL's communicator lives on the rank's GPU
    dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size)
    return backend


def shutdown() -> None:
    """Leave the process group (torch warns at exit about one that was not destroyed)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def tensors_digest(named_tensors) -> str:
    """A short sha256 of (name, tensor) pairs, in name order: equal digests mean equal values, bit for
    bit. The ranks print one of their network parameters at the end of training; tests compare it with
    rank 0's checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]

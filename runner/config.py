"""Hydra/OmegaConf helpers with IsaacGymEnvs' resolvers and one-line checks of the command line."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

CFG_DIR = Path(__file__).resolve().parents[1] / "cfg"


def register_resolvers() -> None:
    resolvers = {
        "eq": lambda x, y: x.lower() == y.lower(),
        "contains": lambda x, y: x.lower() in y.lower(),
        "if": lambda pred, a, b: a if pred else b,
        # ${resolve_default:DEFAULT,VALUE}: VALUE unless it is empty
        "resolve_default": lambda default, arg: default if arg in ("", None) else arg,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def check_task_argument(argv: list[str]) -> None:
    """Hydra answers an unknown task with a multi-line error; give one line instead."""
    tasks = sorted(p.stem for p in (CFG_DIR / "task").glob("*.yaml"))
    for arg in argv:
        if arg.startswith("task="):
            name = arg.split("=", 1)[1]
            if name not in tasks:
                raise SystemExit(f"error: task={name} is unknown; available tasks: {', '.join(tasks)}")


def set_seed(seed: int, torch_deterministic: bool = False, rank: int = 0) -> int:
    if seed == -1:
        seed = 42 if torch_deterministic else np.random.randint(0, 10000)
    seed += rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if torch_deterministic:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
    return seed


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def divisor_at_most(total: int, limit: int) -> int:
    """The largest divisor of `total` not above `limit` (rl_games needs batch % minibatch == 0)."""
    for candidate in range(min(limit, total), 0, -1):
        if total % candidate == 0:
            return candidate
    return 1

"""Hydra/OmegaConf helpers with IsaacGymEnvs' resolvers and one-line checks of the command line."""
from __future__ import annotations

import fnmatch
import os
import random
import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from tasks.base.vec_task import VALUE_KINDS, ConfigError, check_value

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
    """Hydra answers an unknown task, an unknown key or an unparsable override with several lines;
    give one instead. Runs before Hydra, so it composes the config once more (a fraction of a second)."""
    tasks = sorted(p.stem for p in (CFG_DIR / "task").glob("*.yaml"))
    for arg in argv:
        if arg.startswith("task="):
            name = arg.split("=", 1)[1]
            if name not in tasks:
                raise SystemExit(f"error: task={name} is unknown (allowed: {', '.join(tasks)})")
    if any(arg.startswith(("-", "hydra.", "hydra/")) for arg in argv):
        return  # Hydra's own flags (--help, --cfg, -m) and hydra.* keys: leave them to Hydra
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
            compose("config", overrides=list(argv))
    except HydraException as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = str(exc.__cause__).strip().splitlines()[0] if exc.__cause__ and str(exc.__cause__).strip() else ""
        missing = re.match(r"Could not override '(.+)'", lines[0]) if lines else None
        if missing and "not in struct" in cause:
            raise SystemExit(f"error: {missing.group(1)} is not a key of the config (allowed: the keys in cfg/; "
                             f"add a new one with +{missing.group(1)}=...)") from None
        detail = "; ".join(lines[:2] + ([cause] if cause else []))
        raise SystemExit(f"error: {detail}") from None


# (dotted key, kind of value allowed: tasks.base.vec_task.VALUE_KINDS). The last part of a key may be
# a glob. Absent keys are skipped (a task YAML may drop one; the task's own checks still apply).
CONFIG_RULES = [
    ("seed", "seed"), ("torch_deterministic", "bool"), ("test", "bool"), ("headless", "bool"), ("multi_gpu", "bool"),
    ("task.env.numEnvs", "int>=1"), ("task.env.episodeLength", "int>=1"), ("task.env.controlFrequencyInv", "int>=1"),
    ("task.env.clipObservations", "number>0"), ("task.env.clipActions", "number>0"),
    ("task.env.actionScale", "number>0"), ("task.env.enableAdhesion", "bool"),
    ("task.env.observationScales.*", "number"), ("task.env.rewards.*Sigma", "number>0"),
    ("task.env.rewards.onlyPositive", "bool"), ("task.env.rewards.*", "number"),
    ("task.env.gait.reference", "bool"), ("task.env.gait.residualScale", "number>0"),
    ("task.env.gait.frequencyPerSpeed", "number>0"), ("task.env.gait.rampRate", "number>0"),
    ("task.env.terminationHeight", "number>=0"), ("task.env.terminationUpright", "[-1,1]"),
    ("task.env.resetJointNoise", "number>=0"), ("task.env.resetYawNoise", "number>=0"),
    ("task.env.contactThreshold", "number>=0"),
    ("task.sim.dt", "number>0"), ("task.sim.mujoco.iterations", "int>=1"), ("task.sim.mujoco.ls_iterations", "int>=1"),
    ("task.sim.mujoco.warp_qacc_smooth", "bool"),
    ("train.params.config.max_epochs", "int>=1"), ("train.params.config.horizon_length", "int>=1"),
    ("train.params.config.minibatch_size", "int>=1"), ("train.params.config.mini_epochs", "int>=1"),
    ("train.params.config.seq_length", "int>=1"), ("train.params.config.learning_rate", "number>0"),
    ("train.params.config.kl_threshold", "number>0"), ("train.params.config.gamma", "(0,1]"),
    ("train.params.config.tau", "[0,1]"), ("train.params.config.e_clip", "number>0"),
    ("train.params.config.grad_norm", "number>0"), ("train.params.config.entropy_coef", "number>=0"),
    ("train.params.config.critic_coef", "number>=0"), ("train.params.config.bounds_loss_coef", "number>=0"),
    ("train.params.config.save_frequency", "int>=0"), ("train.params.config.save_best_after", "int>=0"),
    ("train.params.config.reward_shaper.scale_value", "number"),
    ("train.params.config.player.games_num", "int>=1"),
]
# Keys a top-level shortcut fills: name the shortcut when the user set it.
SHORTCUTS = {"task.env.numEnvs": "num_envs", "train.params.config.max_epochs": "max_iterations"}


def validate_config(cfg: DictConfig) -> None:
    """Check every value in CONFIG_RULES, and the engine name, before anything is built: a wrong type
    or an out-of-range value is one ConfigError line naming the key, the value and what is allowed."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(f"the configuration does not resolve ({str(exc).strip().splitlines()[0]})") from None
    checked = set()
    for key, kind in CONFIG_RULES:
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name in [k for k in node if fnmatch.fnmatchcase(str(k), leaf)]:
            full = ".".join([*parents, str(name)])
            if full in checked:
                continue
            checked.add(full)
            shortcut = SHORTCUTS.get(full)
            shown = shortcut if shortcut and values.get(shortcut) not in ("", None) else full
            check_value(node[name], shown, kind)
    speeds = values.get("task", {}).get("env", {}).get("commands", {}).get("forwardSpeed")
    is_number = VALUE_KINDS["number"][0]
    if speeds is not None and not (isinstance(speeds, list) and len(speeds) == 2
                                   and all(is_number(v) for v in speeds) and speeds[0] <= speeds[1]):
        raise ConfigError(f"task.env.commands.forwardSpeed={speeds!r} is not allowed "
                          "(allowed: [low, high], two numbers in mm/s with low <= high)")
    engine = values.get("physics_engine") or ""
    from physics import ENGINES

    if engine not in ("", *ENGINES):
        raise ConfigError(f"physics_engine={engine!r} is unknown (allowed: {', '.join(ENGINES)}, "
                          "or empty to follow sim_device)")
    sigma = values.get("sigma", "")
    if sigma not in ("", None):
        check_value(sigma, "sigma", "number>=0")
    checkpoint = values.get("checkpoint", "")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise ConfigError(f"checkpoint={checkpoint!r} is not allowed (allowed: a path to a .pth file, or empty)")


def set_seed(seed: int, torch_deterministic: bool = False, rank: int = 0) -> int:
    if seed == -1:
        seed = 42 if torch_deterministic else np.random.randint(0, 10000)
    seed += rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    set_determinism(torch_deterministic)
    return seed


def set_determinism(torch_deterministic: bool) -> None:
    """Deterministic kernels only. rl_games' Runner() turns TF32 and cudnn.benchmark on whatever the
    config says, so this is called again after creating it."""
    if not torch_deterministic:
        return
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.use_deterministic_algorithms(True)


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def divisor_at_most(total: int, limit: int) -> int:
    """The largest divisor of `total` not above `limit` (rl_games needs batch % minibatch == 0)."""
    for candidate in range(min(limit, total), 0, -1):
        if total % candidate == 0:
            return candidate
    return 1

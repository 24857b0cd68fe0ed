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

from common.checks import ConfigError, check_value

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


# IsaacGymEnvs keys that configure Isaac Gym (PhysX, its viewer) and mean nothing on MuJoCo: what to
# use instead.
PHYSX_KEYS = {
    "force_render": "use headless=False in play mode for MuJoCo's viewer, which draws every step; training "
                    "draws nothing unless capture_video=True",
    "pipeline": "use sim_device=cuda:0 (MuJoCo Warp keeps the simulation on the GPU) or sim_device=cpu (MuJoCo C)",
    "solver_type": "use task.sim.mujoco.iterations, ls_iterations and jacobian for MuJoCo's Newton solver",
    "num_subscenes": "use num_threads for MuJoCo C's threads; MuJoCo Warp steps all worlds in one launch",
}


def check_task_argument(argv: list[str]) -> None:
    """Hydra answers an unknown task, an unknown key or an unparsable override with several lines;
    give one instead. Runs before Hydra, so it composes the config once more (a fraction of a second)."""
    tasks = sorted(p.stem for p in (CFG_DIR / "task").glob("*.yaml"))
    for arg in argv:
        key = arg.lstrip("+~").split("=", 1)[0]
        if key in PHYSX_KEYS or key.startswith("task.sim.physx"):
            name = "task.sim.physx" if key.startswith("task.sim.physx") else key
            hint = PHYSX_KEYS.get(key, "use task.sim.mujoco for MuJoCo's solver settings")
            owner = "Isaac Gym's viewer" if key == "force_render" else "Isaac Gym's PhysX"
            raise SystemExit(f"error: {name} belongs to {owner} and means nothing on MuJoCo ({hint})")
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


# Top-level and train keys: (dotted key, kind of value allowed: common.checks.VALUE_KINDS). The last
# part of a key may be a glob. Absent keys are skipped. Task keys are the task's own business
# (tasks/<name>/config.py, through the task class's check_config).
CONFIG_RULES = [
    ("seed", "seed"), ("torch_deterministic", "bool"), ("test", "bool"), ("headless", "bool"), ("multi_gpu", "bool"),
    ("num_threads", "int>=0"), ("capture_video", "bool"),
    ("wandb_activate", "bool"), ("wandb_logcode", "bool"), ("wandb_project", "str"), ("wandb_entity", "str"),
    ("wandb_group", "str"), ("wandb_name", "str"), ("wandb_tags", "tags"),
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
    """Check every value before anything is built: the rules above, the engine name, the task's own
    keys (its class's check_config). A wrong type or an out-of-range value is one ConfigError line
    naming the key, the value and what is allowed."""
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
            check_value(node[name], _shown(full, values), kind)
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
    from tasks import isaacgym_task_map

    try:
        isaacgym_task_map[values["task_name"]].check_config(values["task"])
    except ConfigError as exc:
        message = str(exc)
        for full, short in SHORTCUTS.items():
            if message.startswith(f"{full}=") and values.get(short) not in ("", None):
                message = short + message[len(full):]
        raise ConfigError(message) from None


def _shown(full: str, values: dict) -> str:
    shortcut = SHORTCUTS.get(full)
    return shortcut if shortcut and values.get(shortcut) not in ("", None) else full


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


def central_value_config(config: dict, num_states: int) -> dict | None:
    """rl_games' central value settings (`train.params.config.central_value_config`, its template
    `central_value` dropped) for a task with `num_states` critic states: present exactly when the task has
    states, else a one-line ConfigError (an asymmetric critic without states, or states nobody reads)."""
    config.pop("central_value", None)
    central = config.get("central_value_config")
    if central is not None and not isinstance(central, dict):
        raise ConfigError(f"train.params.config.central_value_config={central!r} is not allowed (allowed: a section "
                          "of keys, or null)")
    if central is not None and num_states == 0:
        raise ConfigError("train.params.config.central_value_config is set but the task has no states for it "
                          "(allowed: null, or a task with states, e.g. task.env.asymmetricCritic=True)")
    if central is None and num_states > 0:
        raise ConfigError(f"task.env.numStates={num_states} needs train.params.config.central_value_config "
                          "(allowed: the train config's central_value section, as NeuroMechFlyPPO.yaml sets it)")
    return central

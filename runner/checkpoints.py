"""Checkpoint files: written atomically, read with torch's weights_only=True (never running pickled
code), checked before use so that a bad path is one clear line; and the SIGINT/SIGTERM request that
ends training with a checkpoint. No rl_games import here: train.py checks its input before it pays
for importing rl_games."""
from __future__ import annotations

import os
import pickle
import re
import signal
import tempfile

import numpy as np
import torch

# Types rl_games puts in a checkpoint besides tensors (`last_mean_rewards` is a numpy scalar).
CHECKPOINT_SAFE_GLOBALS = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float32DType, np.dtypes.Float64DType]


class CheckpointError(ValueError):
    """A checkpoint path that cannot be used."""


def atomic_save(state: dict, filename: str) -> None:
    """torch.save to a temporary file beside `filename`, then rename: a crash never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_load(filename: str) -> dict:
    """Load a checkpoint with weights_only=True, allowing only the numpy types rl_games stores."""
    with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
        return torch.load(filename, map_location="cpu", weights_only=True)


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint safely and check it is an rl_games one; a one-line CheckpointError otherwise."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint={path} does not exist (allowed: a .pth file written by a training run)")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint={path} is not a file (allowed: a .pth file written by a training run)")
    try:
        state = safe_load(path)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"GLOBAL (\S+)", str(exc))
        if "Weights only load failed" in str(exc) and refused:
            raise CheckpointError(f"checkpoint={path} holds a pickled {refused.group(1)}, not only tensors and plain "
                                  "data; refused, since loading it could run code (allowed: rl_games checkpoints)") from None
        raise CheckpointError(f"checkpoint={path} is corrupt or not a checkpoint (torch.load: {_first_line(exc)}) "
                              "(allowed: a .pth file written by a training run)") from None
    except Exception as exc:  # truncated zip, a text file, an empty file...
        raise CheckpointError(f"checkpoint={path} is corrupt or not a checkpoint (torch.load: {_first_line(exc)}) "
                              "(allowed: a .pth file written by a training run)") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"checkpoint={path} is not an rl_games checkpoint (no 'model' weights)")
    return state


def action_meaning(env) -> dict | None:
    """The config values that give a task's actions their meaning (`env.action_meaning()`; None if it has none)."""
    return env.action_meaning() if hasattr(env, "action_meaning") else None


def check_checkpoint_fits(state: dict, path: str, num_obs: int, num_actions: int, meaning: dict | None = None) -> None:
    """The checkpoint's observation and action sizes are this task's, and so are the config values that give
    its inputs and actions their meaning (`meaning`, against those its training run kept in env_state; a checkpoint
    without them is not checked)."""
    # the config values first: a different observation history also changes the size, and names the key to pass
    env_state = state.get("env_state")
    saved = env_state.get("action_meaning") if isinstance(env_state, dict) else None
    differ = [k for k, v in (saved or {}).items() if meaning is not None and k in meaning and meaning[k] != v]
    if differ:  # all of them in one line: a history differs in up to three keys
        trained = " and ".join(f"{k}={_override(saved[k])}" for k in differ)
        this_run = " and ".join(_override(meaning[k]) for k in differ)
        values = "value" if len(differ) == 1 else "values"
        raise CheckpointError(f"checkpoint={path} was trained with {trained}, this run has {this_run} (allowed: the "
                              f"checkpoint's {values}; pass {' '.join(f'{k}={_override(saved[k])}' for k in differ)})")
    model = state["model"]
    mean = model.get("running_mean_std.running_mean")
    mu = model.get("a2c_network.mu.weight")
    got_obs = mean.shape[-1] if mean is not None else None
    got_act = mu.shape[0] if mu is not None else None
    if got_obs not in (None, num_obs) or got_act not in (None, num_actions):
        raise CheckpointError(f"checkpoint={path} was trained for {got_obs or '?'} observations and {got_act or '?'} "
                              f"actions (allowed: a checkpoint of this task, {num_obs} and {num_actions})")


def _override(value) -> str:
    """A config value as a Hydra override writes it: [a,b] for a list."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override(v) for v in value) + "]"
    return str(value)


def check_checkpoint(path: str, num_obs: int, num_actions: int, meaning: dict | None = None) -> dict:
    """Load and validate a checkpoint for this task; a one-line CheckpointError otherwise."""
    state = read_checkpoint(path)
    check_checkpoint_fits(state, path, num_obs, num_actions, meaning)
    return state


def _first_line(exc: BaseException) -> str:
    """The exception's type and first sentence: torch's messages run to several lines."""
    text = str(exc).strip()
    first = re.split(r"(?<=\.) |\n", text)[0][:120] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class TrainingInterrupted(BaseException):
    """SIGINT/SIGTERM stopped training. BaseException: rl_games' `except Exception` must not swallow it."""

    def __init__(self, signum: int, checkpoint: str | None = None, epoch: int = 0):
        super().__init__(signum, checkpoint, epoch)
        self.signum, self.checkpoint, self.epoch = signum, checkpoint, epoch

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopRequest:
    """First SIGINT/SIGTERM: finish the running epoch, save, exit. A second one: stop at once, unsaved."""

    def __init__(self):
        self.signum: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise TrainingInterrupted(signum)
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: saving a checkpoint after this epoch "
              "(send it again to stop now without saving)", flush=True)

"""Loading an MJCF file into an MjModel, with one-line errors for a missing or broken file."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import mujoco


class AssetError(RuntimeError):
    """The model file is missing or cannot be compiled."""


def load_mjcf(path: str | Path, edit: Callable[[mujoco.MjSpec], None] | None = None,
              restore_hint: str = "restore it with git checkout") -> mujoco.MjModel:
    """Compile `path`, after `edit(spec)` if given."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"model {path} not found; {restore_hint}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # upstream MJCF may carry deprecated attributes
            spec = mujoco.MjSpec.from_file(str(path))
            if edit is not None:
                edit(spec)
            return spec.compile()
    except Exception as exc:  # mujoco raises ValueError with a multi-line message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssetError(f"model {path} is corrupt ({reason}); {restore_hint}") from exc

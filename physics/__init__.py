"""Physics engines: one batched interface over N worlds of a MuJoCo model, two engines.

`make_engine` is the entry point tasks use; it picks the engine from the IsaacGymEnvs key
`physics_engine` (`mjwarp` GPU, `mujoco` CPU), defaulting from `sim_device`. Nothing here knows
what the model is: tasks load their model and read the state with their own tables.
"""
from __future__ import annotations

import mujoco
import torch

from .engine import FAULT_KINDS, NO_DOF, PhysicsEngine, SimParams, dof_names
from .model import AssetError, load_mjcf

ENGINES = ("mjwarp", "mujoco")

__all__ = ["ENGINES", "FAULT_KINDS", "NO_DOF", "AssetError", "PhysicsEngine", "SimParams", "default_engine",
           "dof_names", "load_mjcf", "make_engine", "resolve_device"]


def resolve_device(name: str, key: str = "sim_device") -> torch.device:
    """A torch device from a config string, with a one-line error when it is not there."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{key}={name!r} is not a device name (allowed: cpu or cuda:<index>)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ValueError(f"{key}={name} is not available on this machine ({found}); use {key}=cpu"
                             + (f" or cuda:0..cuda:{count - 1}" if count else ""))
        device = torch.device("cuda", index)
    elif device.type != "cpu":
        raise ValueError(f"{key}={name!r} is not supported (allowed: cpu or cuda:<index>)")
    return device


def default_engine(sim_device: torch.device) -> str:
    return "mjwarp" if sim_device.type == "cuda" else "mujoco"


def make_engine(physics_engine: str | None, model: mujoco.MjModel, num_worlds: int,
                sim_device: str | torch.device, params: SimParams) -> PhysicsEngine:
    """`num_worlds` worlds of `model` on the engine `physics_engine` names (empty: from the device)."""
    device = sim_device if isinstance(sim_device, torch.device) else resolve_device(sim_device)
    engine = physics_engine or default_engine(device)
    if engine not in ENGINES:
        raise ValueError(f"physics_engine={engine!r} is unknown (allowed: {', '.join(ENGINES)}, "
                         "or empty to follow sim_device)")
    if engine == "mujoco":
        from .mujoco_cpu import MujocoCpuEngine

        return MujocoCpuEngine(model, num_worlds, device, params)
    from .mujoco_warp_gpu import MujocoWarpEngine

    return MujocoWarpEngine(model, num_worlds, device, params)

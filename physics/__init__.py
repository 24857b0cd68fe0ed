"""Physics engines for NeuroMechFly: one batched interface, two MuJoCo engines.

`make_engine` is the only entry point the task uses; it picks the engine from the IsaacGymEnvs
key `physics_engine` (`mjwarp` GPU, `mujoco` CPU), defaulting from `sim_device`.
"""
from __future__ import annotations

import torch

from .engine import PhysicsEngine, SimParams
from .fly_model import ACTUATED_JOINTS, LEGS, NUM_DOF, AssetError, FlyModelInfo, load_model

ENGINES = ("mjwarp", "mujoco")

__all__ = ["ACTUATED_JOINTS", "ENGINES", "LEGS", "NUM_DOF", "AssetError", "FlyModelInfo", "PhysicsEngine",
           "SimParams", "default_engine", "make_engine", "load_model", "resolve_device"]


def resolve_device(name: str, key: str = "sim_device") -> torch.device:
    """A torch device from a config string, with a one-line error when it is not there."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{key}={name!r} is not a device name; use cpu or cuda:<index>") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ValueError(f"{key}={name} is not available on this machine ({found}); use {key}=cpu"
                             + (f" or cuda:0..cuda:{count - 1}" if count else ""))
        device = torch.device("cuda", index)
    elif device.type != "cpu":
        raise ValueError(f"{key}={name!r} is not supported; use cpu or cuda:<index>")
    return device


def default_engine(sim_device: torch.device) -> str:
    return "mjwarp" if sim_device.type == "cuda" else "mujoco"


def make_engine(physics_engine: str | None, num_worlds: int, sim_device: str | torch.device,
                params: SimParams, model_path: str | None = None, adhesion: bool = False) -> PhysicsEngine:
    """N worlds of the fly on the engine `physics_engine` names; `adhesion` keeps the tarsal
    adhesion actuators (they cost time every substep, so they are left out unless asked for)."""
    device = sim_device if isinstance(sim_device, torch.device) else resolve_device(sim_device)
    engine = physics_engine or default_engine(device)
    if engine not in ENGINES:
        raise ValueError(f"physics_engine={engine!r} is unknown; choose one of {', '.join(ENGINES)} "
                         "(or leave it empty to follow sim_device)")
    model = load_model(model_path, adhesion=adhesion)
    if engine == "mujoco":
        from .mujoco_cpu import MujocoCpuEngine

        return MujocoCpuEngine(model, num_worlds, device, params)
    from .mujoco_warp_gpu import MujocoWarpEngine

    return MujocoWarpEngine(model, num_worlds, device, params)

"""IsaacGymEnvs' Ant on MuJoCo: run toward a target 1000 m ahead with 8 torque-driven joints."""
from .observations import NUM_OBS
from .task import Ant

__all__ = ["NUM_OBS", "Ant"]

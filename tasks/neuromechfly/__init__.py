"""The NeuroMechFly locomotion task (IsaacGymEnvs VecTask): see task.py for how the parts fit."""
from .observations import NUM_OBS
from .task import NeuroMechFly

__all__ = ["NUM_OBS", "NeuroMechFly"]

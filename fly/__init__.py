"""NeuroMechFly itself, below the task and the CPG baseline: the model's names and index tables
(model.py), the recorded walking step and the tripods (step.py), and the gait reference that turns a
speed and yaw-rate command into joint angles (gait.py)."""
from .model import (ACTUATED_JOINTS, ADHESION_PREFIX, DEFAULT_MODEL_PATH, LEG_DOFS, LEGS, NUM_DOF, FlyIO, FlyModelInfo,
                    load_fly)

__all__ = ["ACTUATED_JOINTS", "ADHESION_PREFIX", "DEFAULT_MODEL_PATH", "LEG_DOFS", "LEGS", "NUM_DOF", "FlyIO",
           "FlyModelInfo", "load_fly"]

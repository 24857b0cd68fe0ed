"""Task map, IsaacGymEnvs style. Importing this also registers the tasks into IsaacGymEnvs'
own `isaacgym_task_map` when `isaacgymenvs` is installed, so its train.py can select them."""
from .ant import Ant
from .neuromechfly import NeuroMechFly

isaacgym_task_map = {"NeuroMechFly": NeuroMechFly, "Ant": Ant}

try:  # pragma: no cover - isaacgymenvs needs Isaac Gym, which modern Pythons cannot install
    import isaacgymenvs.tasks as _isaacgymenvs_tasks

    _isaacgymenvs_tasks.isaacgym_task_map.update(isaacgym_task_map)
except ImportError:
    pass

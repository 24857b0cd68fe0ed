"""A scene composed at load time: a robot's MJCF (no floor of its own) placed on a terrain.

The robot file says how it touches the ground: a default class whose `<pair>` holds the contact
parameters (friction, solref, solimp, condim). `compose` adds the terrain's geoms (physics/terrain.py),
a light and the ground's look, and one explicit contact pair of that class between each named robot
geom and each terrain geom, so only those geoms collide with the ground and nothing else is tested.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import mujoco
import numpy as np

from .model import load_mjcf
from .terrain import Terrain, TerrainParams

TERRAIN_GEOM = "terrain"


def add_ground(spec: mujoco.MjSpec, terrain: Terrain, contact_class: str, contact_geoms: Sequence[str]) -> None:
    """Put `terrain` into `spec`'s world and pair it with `contact_geoms` (class `contact_class`)."""
    default = spec.find_default(contact_class)
    if default is None:
        raise ValueError(f"the model has no default class {contact_class!r} with the ground contact parameters")
    spec.add_texture(name="ground", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.82, 0.80, 0.74], rgb2=[0.70, 0.68, 0.62], width=512, height=512)
    material = spec.add_material(name="ground", texrepeat=[1, 1], reflectance=0.1)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "ground"
    # the pair's sliding friction is the ground's (per-world friction is randomised on the pairs)
    ground = terrain.add_to(spec, TERRAIN_GEOM, friction=default.pair.friction[[0, 2, 3]], material="ground")
    spec.worldbody.add_light(name="sun", pos=[0, 0, 30], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    for target in ground:
        for geom in contact_geoms:
            pair = spec.add_pair(default)
            pair.name, pair.geomname1, pair.geomname2 = f"{target}_{geom}", geom, target


def compose(path: str | Path, terrain: Terrain | None, contact_class: str, contact_geoms: Sequence[str],
            edit: Callable[[mujoco.MjSpec], None] | None = None,
            restore_hint: str = "restore it with git checkout") -> mujoco.MjModel:
    """Compile the robot at `path` on `terrain` (flat ground alone when None), after `edit(spec)` if given."""
    if terrain is None:
        terrain = Terrain(TerrainParams(), kinds=("flat",))

    def build(spec: mujoco.MjSpec) -> None:
        if edit is not None:
            edit(spec)
        add_ground(spec, terrain, contact_class, contact_geoms)

    return load_mjcf(path, edit=build, restore_hint=restore_hint)


def lowest_point(model: mujoco.MjModel, data: mujoco.MjData, geom: int) -> float:
    """Lowest world z of a mesh or capsule geom (after mj_kinematics)."""
    rot, pos = data.geom_xmat[geom].reshape(3, 3), data.geom_xpos[geom]
    if model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = model.geom_dataid[geom]
        start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
        return float((model.mesh_vert[start:start + count] @ rot.T + pos)[:, 2].min())
    radius, half_length = model.geom_size[geom, :2]
    ends = pos[2] + np.array([1.0, -1.0]) * half_length * rot[2, 2]
    return float(ends.min() - radius)


def lowest_contact_point(model: mujoco.MjModel, data: mujoco.MjData) -> float:
    """Lowest world z of the robot geoms that `add_ground` paired with the ground (the pairs' geoms that
    are not the terrain's: those hang from the world body or the terrain's mocap body)."""
    geoms = np.unique(np.concatenate([model.pair_geom1, model.pair_geom2]))
    body = model.geom_bodyid[geoms]
    robot = geoms[(body != 0) & (model.body_mocapid[body] < 0)]
    return min(lowest_point(model, data, int(g)) for g in robot)

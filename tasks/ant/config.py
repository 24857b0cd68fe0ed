"""Every key of cfg/task/Ant.yaml, checked once, into typed settings.

The keys and their meanings are IsaacGymEnvs' Ant.yaml, less those that configure Isaac Gym alone
(`sim.physx`, `sim.substeps`, `envSpacing`, `enableDebugVis`, `plane.dynamicFriction`,
`plane.restitution`, `task.randomize`): MuJoCo's substeps are `env.controlFrequencyInv` and its solver
settings `sim.mujoco`. `parse` is called by train.py (through Ant.check_config) and by the task's
constructor. A bad value is one ConfigError line naming the key, the value and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.checks import ConfigError, check_value, is_number, number, positive_float, section
from physics import SimParams
from tasks.base.sim_config import parse_sim
from tasks.base.vec_task import BaseEnvConfig

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class RewardConfig:
    heading_weight: float  # paid in full while the torso's x axis points within ~37 deg of the target
    up_weight: float  # paid while the torso's z axis is within ~22 deg of vertical
    actions_cost: float  # per sum of squared actions
    energy_cost: float  # per sum of |action x scaled joint speed|
    joints_at_limit_cost: float  # per joint in the top 1 % of its range
    death_cost: float  # the step's whole reward when the torso falls below terminationHeight
    dof_vel_scale: float  # the energy cost uses the observed (scaled) joint speeds, as IsaacGymEnvs does


@dataclass(frozen=True)
class AntConfig:
    base: BaseEnvConfig
    sim: SimParams
    gravity: tuple[float, float, float]  # m/s^2
    episode_length: int  # control steps
    power_scale: float
    dof_vel_scale: float
    contact_force_scale: float
    rewards: RewardConfig
    termination_height: float  # m, torso above the floor
    static_friction: float  # floor-ant sliding friction
    asset_file: Path


def _asset_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else ASSETS_DIR / path


def parse(cfg: dict) -> AntConfig:
    env, sim = cfg["env"], cfg["sim"]
    base = BaseEnvConfig.parse(env)
    e = "task.env"
    gravity = sim.get("gravity")
    if not (isinstance(gravity, (list, tuple)) and len(gravity) == 3 and all(is_number(g) for g in gravity)):
        raise ConfigError(f"task.sim.gravity={gravity!r} is not allowed (allowed: [x, y, z], three numbers in m/s^2)")
    plane = section(env, "plane", e)
    asset = section(env, "asset", e)
    asset_name = check_value(asset.get("assetFileName"), f"{e}.asset.assetFileName", "str")
    if not asset_name:
        raise ConfigError(f"{e}.asset.assetFileName='' is not allowed (allowed: an MJCF path, relative to assets/)")
    dof_vel_scale = number(env, "dofVelocityScale", e)
    rewards = RewardConfig(
        heading_weight=number(env, "headingWeight", e),
        up_weight=number(env, "upWeight", e),
        actions_cost=number(env, "actionsCost", e, "number>=0"),
        energy_cost=number(env, "energyCost", e, "number>=0"),
        joints_at_limit_cost=number(env, "jointsAtLimitCost", e, "number>=0"),
        death_cost=number(env, "deathCost", e),
        dof_vel_scale=dof_vel_scale)
    return AntConfig(
        base=base,
        sim=parse_sim(sim, base.control_freq_inv),
        gravity=(float(gravity[0]), float(gravity[1]), float(gravity[2])),
        episode_length=int(check_value(env.get("episodeLength"), f"{e}.episodeLength", "int>=1")),
        power_scale=positive_float(env.get("powerScale"), f"{e}.powerScale"),
        dof_vel_scale=dof_vel_scale,
        contact_force_scale=number(env, "contactForceScale", e),
        rewards=rewards,
        termination_height=number(env, "terminationHeight", e, "number>=0"),
        static_friction=number(plane, "staticFriction", f"{e}.plane", "number>=0"),
        asset_file=_asset_path(asset_name),
    )

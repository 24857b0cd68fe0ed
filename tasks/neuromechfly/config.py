"""Every key of cfg/task/NeuroMechFly.yaml, checked once, into typed settings.

`parse` is called by train.py and evaluate.py before anything is built (through
NeuroMechFly.check_config) and by the task's constructor; nothing else reads the task YAML.
A bad value is one ConfigError line naming the key, the value and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from common.checks import (VALUE_KINDS, ConfigError, check_choice, check_range, check_value, number, optional,
                           positive_float, section)
from fly.gait import GaitParams
from fly.model import LEG_COLLISIONS
from fly.step import table_max_amplitude
from physics import SimParams
from physics.terrain import KINDS, BlocksParams, GappedParams, MixedParams, TerrainParams
from tasks.base.observations import HistorySpec
from tasks.base.sim_config import parse_sim
from tasks.base.vec_task import BaseEnvConfig

from .observations import OBSERVATIONS
from .rewards import REWARDS


@dataclass(frozen=True)
class CommandConfig:
    forward_speed: tuple[float, float]  # mm/s
    yaw_rate: tuple[float, float]  # rad/s, positive: to the left
    standing_share: float  # of draws: speed and yaw rate 0
    turn_in_place_share: float  # of draws: speed 0, a yaw rate from yaw_rate
    straight_share: float  # of draws: yaw rate 0, a speed from forward_speed
    resample_time: tuple[float, float]  # s between draws inside an episode


@dataclass(frozen=True)
class RewardConfig:
    scales: dict[str, float]  # term -> weight per second of episode (the step's reward is weight x term x dt)
    speed_sigma: float  # mm/s
    yaw_rate_sigma: float  # rad/s
    min_walk_height: float  # mm
    max_swing_time: float  # s: swing_overrun counts legs swinging longer
    only_positive: bool


TERRAIN_TYPES = (*KINDS, "curriculum")


@dataclass(frozen=True)
class TerrainConfig:
    type: str  # a KINDS arena, or "curriculum": worlds over `kinds` x `levels`
    kinds: tuple[str, ...]  # the kinds worlds walk (one for an arena)
    shares: tuple[float, ...]  # curriculum: each kind's share of the worlds in training (sum 1)
    levels: int  # difficulty levels (1 for an arena: the arena itself)
    params: TerrainParams
    init_level: int  # curriculum: worlds start on levels 0..init_level
    promote: float  # of the commanded distance walked without a fall: one level up
    demote: float  # walked less, or fell: one level down
    spawn_jitter: float  # mm along the walking direction

    @property
    def curriculum(self) -> bool:
        return self.type == "curriculum"


@dataclass(frozen=True)
class RandomizationConfig:
    enabled: bool
    friction: tuple[float, float]  # ground sliding friction coefficient
    mass_scale: tuple[float, float]  # every body's mass and inertia
    gain_scale: tuple[float, float]  # the joint actuators' position gain
    push_interval: tuple[float, float]  # s between pushes
    push_speed: float  # mm/s: largest horizontal velocity change of a push


@dataclass(frozen=True)
class TaskConfig:
    base: BaseEnvConfig
    sim: SimParams
    episode_length_s: float
    asset_file: str | None
    adhesion: bool
    leg_collision: str
    tarsal_armature: float | None  # None: the asset's
    tarsal_damping: float | None
    action_scale: float
    gait_reference: bool
    residual_scale: float
    gait: GaitParams
    commands: CommandConfig
    obs_scales: dict[str, float]
    observation_history: HistorySpec
    asymmetric_critic: bool  # the critic sees the states (observation + privileged terms)
    rewards: RewardConfig
    velocity_window_s: float
    termination_height: float
    termination_upright: float
    reset_joint_noise: float
    reset_yaw_noise: float
    contact_threshold: float  # of body weight
    terrain: TerrainConfig
    randomization: RandomizationConfig


OBS_SCALE_KEYS = ("linVel", "angVel", "yawRate", "dofPos", "dofVel")


def _pair(section: dict, key: str, path: str, allowed: str) -> tuple[float, float]:
    value = section.get(key)
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(VALUE_KINDS["number>=0"][0](v) for v in value)):
        raise ConfigError(f"{path}.{key}={value!r} is not allowed (allowed: [{allowed}])")
    return float(value[0]), float(value[1])


def _max_amplitude(gait: dict, path: str) -> float:
    value = number(gait, "maxAmplitude", path, "number>0")
    largest = table_max_amplitude()
    if value > largest:
        raise ConfigError(f"{path}.maxAmplitude={value!r} is not allowed (allowed: a number in (0, {largest:g}], "
                          "the stride amplitudes of assets/neuromechfly/gait_table.json)")
    return value


def _dims(env_terrain: dict, name: str, path: str, cls):
    """A terrain kind's dimensions from its YAML section (camelCase keys of the dataclass fields)."""
    sec = section(env_terrain, name, path)
    keys = {"".join(w.capitalize() if i else w for i, w in enumerate(f.split("_"))): f
            for f in cls.__dataclass_fields__}
    for key in sec:
        if key not in keys:
            raise ConfigError(f"{path}.{name}.{key} is not a dimension of {name} (allowed: {', '.join(keys)})")
    return cls(**{f: number(sec, key, f"{path}.{name}", "number>0") for key, f in keys.items()})


def parse_terrain(env: dict, e: str) -> TerrainConfig:
    t = section(env, "terrain", e)
    tp = f"{e}.terrain"
    kind = check_choice(t.get("type"), f"{tp}.type", TERRAIN_TYPES)
    kinds = t.get("curriculumKinds")
    if not (isinstance(kinds, (list, tuple)) and kinds and all(k in KINDS for k in kinds)
            and len(set(kinds)) == len(kinds)):
        raise ConfigError(f"{tp}.curriculumKinds={kinds!r} is not allowed (allowed: a list of distinct "
                          f"terrain kinds from {', '.join(KINDS)})")
    shares = t.get("curriculumShares")
    if shares is None:
        shares = [1.0] * len(kinds)
    if not (isinstance(shares, (list, tuple)) and len(shares) == len(kinds)
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
                    for x in shares) and sum(shares) > 0):
        raise ConfigError(f"{tp}.curriculumShares={shares!r} is not allowed (allowed: null for equal shares, or "
                          f"one number >= 0 per curriculumKinds entry ({len(kinds)}), not all 0)")
    levels = int(check_value(t.get("levels"), f"{tp}.levels", "int>=1"))
    init_level = int(check_value(t.get("initLevel"), f"{tp}.initLevel", "int>=0"))
    if init_level >= levels:
        raise ConfigError(f"{tp}.initLevel={init_level} is not allowed (allowed: 0..levels-1 = 0..{levels - 1})")
    promote, demote = number(t, "promote", tp, "[0,1]"), number(t, "demote", tp, "[0,1]")
    if demote > promote:
        raise ConfigError(f"{tp}.demote={demote:g} is not allowed (allowed: a fraction <= promote = {promote:g})")
    curriculum = kind == "curriculum"
    params = TerrainParams(gapped=_dims(t, "gapped", tp, GappedParams), blocks=_dims(t, "blocks", tp, BlocksParams),
                           mixed=_dims(t, "mixed", tp, MixedParams))
    m = params.mixed
    if m.period < 3 * m.block_size + 2 * m.gap_width + 1.5 * m.flat_block_width:
        raise ConfigError(f"{tp}.mixed.period={m.period:g} is not allowed (allowed: at least 3 blockSize + "
                          "2 gapWidth + 1.5 flatBlockWidth, the blocks, gaps and strips of one repeat)")
    return TerrainConfig(type=kind, kinds=tuple(kinds) if curriculum else (kind,),
                         shares=tuple(float(x) / sum(shares) for x in shares) if curriculum else (1.0,),
                         levels=levels if curriculum else 1,
                         params=params, init_level=init_level, promote=promote, demote=demote,
                         spawn_jitter=number(t, "spawnJitter", tp, "number>=0"))


def parse_randomization(env: dict, e: str) -> RandomizationConfig:
    r = section(env, "randomization", e)
    rp = f"{e}.randomization"
    return RandomizationConfig(
        enabled=bool(check_value(r.get("enabled"), f"{rp}.enabled", "bool")),
        friction=check_range(r.get("friction"), f"{rp}.friction", low=1e-3),
        mass_scale=check_range(r.get("massScale"), f"{rp}.massScale", low=1e-2),
        gain_scale=check_range(r.get("gainScale"), f"{rp}.gainScale", low=1e-2),
        push_interval=check_range(r.get("pushInterval"), f"{rp}.pushInterval", "s", low=1e-3),
        push_speed=number(r, "pushSpeed", rp, "number>=0"))


def parse_history(env: dict, e: str) -> HistorySpec:
    """task.env.observationHistory; absent (configs and checkpoints from before it): no history."""
    if env.get("observationHistory") is None:
        return HistorySpec()
    h = section(env, "observationHistory", e)
    hp = f"{e}.observationHistory"
    terms = h.get("terms") or []
    names = OBSERVATIONS.names()
    if not isinstance(terms, (list, tuple)) or len(set(map(str, terms))) != len(terms):
        raise ConfigError(f"{hp}.terms={terms!r} is not allowed (allowed: a list of distinct observation "
                          f"terms: {', '.join(names)})")
    for t in terms:
        check_choice(t, f"{hp}.terms", names)
    return HistorySpec(terms=tuple(terms), length=int(check_value(h.get("length", 0), f"{hp}.length", "int>=0")),
                       every=int(check_value(h.get("every", 1), f"{hp}.every", "int>=1")))


def parse(cfg: dict) -> TaskConfig:
    env = cfg["env"]
    base = BaseEnvConfig.parse(env)
    e = "task.env"

    c = section(env, "commands", e)
    cp = f"{e}.commands"
    shares = {k: number(c, k, cp, "[0,1]") for k in ("standingShare", "turnInPlaceShare", "straightShare")}
    if sum(shares.values()) > 1.0:
        raise ConfigError(f"{cp}.standingShare + turnInPlaceShare + straightShare = {sum(shares.values()):g} "
                          "is not allowed (allowed: a sum <= 1)")
    commands = CommandConfig(
        forward_speed=check_range(c.get("forwardSpeed"), f"{cp}.forwardSpeed", "mm/s", low=0.0),
        yaw_rate=check_range(c.get("yawRate"), f"{cp}.yawRate", "rad/s"),
        standing_share=shares["standingShare"], turn_in_place_share=shares["turnInPlaceShare"],
        straight_share=shares["straightShare"],
        resample_time=check_range(c.get("resampleTime"), f"{cp}.resampleTime", "s", low=1e-3))

    g = section(env, "gait", e)
    gp = f"{e}.gait"
    f0, f1 = _pair(g, "frequency", gp, "f0 Hz and f1 Hz per mm/s, both >= 0")
    gait = GaitParams(
        frequency=(f0, f1),
        frequency_range=check_range(g.get("frequencyRange"), f"{gp}.frequencyRange", "Hz", low=1e-3),
        swing_s=number(g, "swingDuration", gp, "number>0"),
        max_swing_fraction=number(g, "maxSwingFraction", gp, "(0,1]"),
        stride_mm=number(g, "strideLength", gp, "number>0"),
        max_amplitude=_max_amplitude(g, gp),
        half_track_mm=number(g, "halfTrack", gp, "number>=0"),
        ramp_rate=number(g, "rampRate", gp, "number>0"),
        standing_residual=float(check_value(g.get("standingResidualScale", 1.0), f"{gp}.standingResidualScale",
                                            "[0,1]")),
    )

    scales_cfg = section(env, "observationScales", e)
    obs_scales = {k: number(scales_cfg, k, f"{e}.observationScales") for k in OBS_SCALE_KEYS}

    r = section(env, "rewards", e)
    rp = f"{e}.rewards"
    weights = section(r, "scales", rp)
    for name in weights:
        if name not in REWARDS:
            raise ConfigError(f"{rp}.scales.{name} is not a reward term (allowed: {', '.join(REWARDS)})")
    rewards = RewardConfig(
        scales={k: number(weights, k, f"{rp}.scales") for k in weights},
        speed_sigma=number(r, "speedSigma", rp, "number>0"),
        yaw_rate_sigma=number(r, "yawRateSigma", rp, "number>0"),
        min_walk_height=number(r, "minWalkHeight", rp, "number>0"),
        max_swing_time=number(r, "maxSwingTime", rp, "number>0"),
        only_positive=bool(check_value(r.get("onlyPositive"), f"{rp}.onlyPositive", "bool")))

    tarsi = section(env, "tarsalJoints", e) if "tarsalJoints" in env else {}
    for key in tarsi:
        if key not in ("armature", "damping"):
            raise ConfigError(f"{e}.tarsalJoints.{key} is not a tarsal joint setting (allowed: armature, damping)")
    asset = env.get("assetFile") or None
    if asset is not None:
        check_value(asset, f"{e}.assetFile", "str")
    return TaskConfig(
        base=base,
        sim=parse_sim(cfg["sim"], base.control_freq_inv),
        episode_length_s=number(env, "episodeLength_s", e, "number>0"),
        asset_file=asset,
        adhesion=bool(check_value(env.get("enableAdhesion", False), f"{e}.enableAdhesion", "bool")),
        leg_collision=check_choice(env.get("legCollision", "mesh"), f"{e}.legCollision", LEG_COLLISIONS),
        tarsal_armature=optional(tarsi, "armature", f"{e}.tarsalJoints", "number>=0"),
        tarsal_damping=optional(tarsi, "damping", f"{e}.tarsalJoints", "number>=0"),
        action_scale=positive_float(env.get("actionScale", 1.0), f"{e}.actionScale"),
        gait_reference=bool(check_value(g.get("reference"), f"{gp}.reference", "bool")),
        residual_scale=number(g, "residualScale", gp, "number>0"),
        gait=gait,
        commands=commands,
        obs_scales=obs_scales,
        observation_history=parse_history(env, e),
        asymmetric_critic=bool(check_value(env.get("asymmetricCritic", False), f"{e}.asymmetricCritic", "bool")),
        rewards=rewards,
        velocity_window_s=number(env, "velocityWindow", e, "number>0"),
        termination_height=number(env, "terminationHeight", e, "number>=0"),
        termination_upright=number(env, "terminationUpright", e, "[-1,1]"),
        reset_joint_noise=number(env, "resetJointNoise", e, "number>=0"),
        reset_yaw_noise=number(env, "resetYawNoise", e, "number>=0"),
        contact_threshold=number(env, "contactThreshold", e, "number>=0"),
        terrain=parse_terrain(env, e),
        randomization=parse_randomization(env, e),
    )

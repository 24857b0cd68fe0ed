"""Rough ground: the terrains' geometry against flygym 1.2.1's arenas, measured by casting rays on the
compiled MuJoCo model; a fly dropped on each stands; heights from the ground under the fly; the
terrain curriculum; domain randomisation; config errors."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from common.checks import ConfigError
from fly import load_fly
from common.maths import quat_rotate
from fly import DEFAULT_MODEL_PATH
from physics import AssetError
from physics.scene import TERRAIN_GEOM, compose
from physics.terrain import KIND_INDEX, Terrain, TerrainParams
from tasks.neuromechfly.config import parse
from tasks.neuromechfly.terrain import next_levels
from tests.conftest import compose_config

WINDOW = 3.9


def ray_heights(kind: str, d: float, focus: tuple[float, float], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Heights of the terrain's geoms under points, laid out for one world around `focus`, by casting
    rays straight down in MuJoCo."""
    terrain = Terrain(TerrainParams(window=WINDOW))
    spec = mujoco.MjSpec()
    terrain.add_to(spec)
    model = spec.compile()
    terrain.place_in_model(model, kind, d, focus)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geomid = np.zeros(1, dtype=np.int32)
    xs, ys = np.broadcast_arrays(xs, ys)
    return np.array([10.0 - mujoco.mj_ray(model, data, np.array([x, y, 10.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1,
                                          geomid) for x, y in zip(xs.ravel(), ys.ravel())]).reshape(xs.shape)


def formula(kind: str, d: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    terrain = Terrain(TerrainParams(window=WINDOW))
    xs, ys = np.broadcast_arrays(xs, ys)
    h = terrain.height(torch.tensor([KIND_INDEX[kind]]), torch.tensor([d]), torch.tensor(xs.ravel()[None]).float(),
                       torch.tensor(ys.ravel()[None]).float())
    return h[0].numpy().reshape(xs.shape)


def runs(heights: np.ndarray, threshold: float, step: float) -> list[tuple[bool, float]]:
    """(above `threshold`, length) of each run along a scan line."""
    above = heights > threshold
    edges = np.flatnonzero(np.diff(above)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(above)]
    return [(bool(above[a]), (b - a) * step) for a, b in zip(starts, ends)]


def test_gapped_terrain_has_flygyms_blocks_and_gaps():
    xs = np.arange(-3.5, 3.5, 0.005)
    heights = ray_heights("gapped", 1.0, (0.0, 0.0), xs, np.zeros_like(xs))
    line = runs(heights, -1.0, 0.005)[1:-1]  # whole runs only
    tops, gaps = [n for top, n in line if top], [n for top, n in line if not top]
    assert len(tops) >= 4 and len(gaps) >= 4
    assert np.allclose(tops, 1.0, atol=0.011)  # flygym: block_width 1.0
    assert np.allclose(gaps, 0.3, atol=0.011)  # gap_width 0.3
    assert heights.max() == pytest.approx(0.0, abs=1e-6) and heights.min() == pytest.approx(-2.0, abs=1e-6)
    # the first block starts 10 mm behind the start (flygym's x_range (-10, ...)): a gap from 0.1 to 0.4
    assert ray_heights("gapped", 1.0, (0.0, 0.0), np.array([-0.5, 0.25, 0.6]), np.zeros(3)).round(3).tolist() \
        == [0.0, -2.0, 0.0]


def test_blocks_terrain_is_flygyms_checkerboard():
    size = 1.3
    centres = -10.0 + size * (np.arange(5, 11) + 0.5)  # flygym's box centres along x at y cell 15
    y0 = -20.0 + size * 15.5
    h = ray_heights("blocks", 1.0, (0.0, 0.0), centres, np.full(6, y0))
    assert np.allclose(h, [0.35, 0.0] * 3, atol=1e-4)  # every other square raised by height 0.35
    xs = np.arange(-3.0, 3.0, 0.005)
    along = runs(ray_heights("blocks", 1.0, (0.0, 0.0), xs, np.full_like(xs, y0)), 0.175, 0.005)[1:-1]
    # flygym's boxes are 1.1 x the pitch: raised squares overhang their low neighbours by 0.065 mm
    assert np.allclose([n for up, n in along if up], 1.43, atol=0.011)
    assert np.allclose([n for up, n in along if not up], 1.17, atol=0.011)


def test_mixed_terrain_repeats_blocks_gaps_and_flat_ground():
    # one period from flygym's x = -4: blocks to -0.1, strip, gap 0.4-0.7, strip, gap 1.7-2.0, flat to 5
    probe = np.array([-3.35, -2.05, 0.2, 0.55, 1.2, 1.85, 3.5])
    y = np.full(len(probe), -20.0 + 0.65 + 1.3 * 16)
    assert ray_heights("mixed", 1.0, (0.0, 0.0), probe, y).round(3).tolist() == [0.0, -0.35, 0.0, -1.0, 0.0, -1.0, 0.0]
    # and again one period on, around a fly that walked there
    assert ray_heights("mixed", 1.0, (9.0, 0.0), probe + 9.0, y).round(3).tolist() == \
        [0.0, -0.35, 0.0, -1.0, 0.0, -1.0, 0.0]


@pytest.mark.parametrize("kind", ["gapped", "blocks", "mixed"])
@pytest.mark.parametrize("d", [0.0, 0.5, 1.0])
def test_the_geoms_around_a_fly_are_the_terrain_the_formula_describes(kind, d):
    focus = (18.5, -1.7)  # somewhere along the walk, with gaps and blocks of each kind in reach
    xs, ys = np.meshgrid(np.arange(-3.0, 3.0, 0.09) + focus[0], np.arange(-3.0, 3.0, 0.13) + focus[1])
    rays, heights = ray_heights(kind, d, focus, xs, ys), formula(kind, d, xs, ys)
    assert (np.abs(rays - heights) < 1e-3).mean() > 0.97  # all but points on a box edge (float32)
    if d == 0.0:
        assert np.allclose(rays, 0.0, atol=1e-6)  # difficulty 0 is flat ground
    else:
        scale = {"gapped": (-2.0, 0.0), "blocks": (0.0, 0.35 * d), "mixed": (-1.0, 0.0)}[kind]
        assert rays.min() == pytest.approx(scale[0], abs=1e-4) and rays.max() == pytest.approx(scale[1], abs=1e-4)


def test_ground_under_a_fly_is_the_surface_it_stands_on():
    terrain = Terrain(TerrainParams())
    k = lambda name: torch.tensor([KIND_INDEX[name]])  # noqa: E731
    one = torch.ones(1)
    over_gap = torch.tensor([[0.25, 0.0]])
    assert float(terrain.height(k("gapped"), one, over_gap[:, :1], over_gap[:, 1:])) == -2.0  # over a gap ...
    assert float(terrain.ground(k("gapped"), one, over_gap)) == 0.0  # ... the blocks beside it carry the fly
    low = torch.tensor([[-10 + 1.3 * 8.5, -20 + 1.3 * 15.5]])
    assert float(terrain.height(k("blocks"), one, low[:, :1], low[:, 1:])) == 0.0  # on a low square ...
    assert float(terrain.ground(k("blocks"), one, low)) == pytest.approx(0.35)  # ... among raised ones


def test_the_scene_pairs_the_fly_with_every_terrain_geom():
    terrain = Terrain(TerrainParams(), kinds=("gapped", "blocks"))
    model = load_fly(adhesion=False, terrain=terrain)
    ground = {model.geom(TERRAIN_GEOM).id} | {model.geom(f"{TERRAIN_GEOM}_{i}").id for i in range(terrain.num_boxes)}
    assert terrain.num_boxes == terrain.slots["blocks"]
    assert model.npair == 48 * len(ground)  # 6 legs x 8 segments each, with the asset's contact parameters
    assert all({int(a), int(b)} & ground for a, b in zip(model.pair_geom1, model.pair_geom2))
    assert np.allclose(model.pair_solref, [2e-4, 3.0])
    flat = load_fly(adhesion=False)
    assert flat.npair == 48 and flat.ngeom == model.ngeom - terrain.num_boxes  # flat ground: the plane alone
    with pytest.raises(AssetError, match="no_such_class"):
        compose(DEFAULT_MODEL_PATH, None, "no_such_class", ["LFTarsus5"])


@pytest.mark.parametrize("kind, legs", [("gapped", "mesh"), ("blocks", "mesh"), ("mixed", "mesh"),
                                        ("gapped", "capsule")])
def test_a_fly_dropped_on_each_terrain_stands_for_one_second(make_cpu_task, kind, legs):
    env = make_cpu_task("num_envs=6", f"task.env.terrain.type={kind}", "task.env.resetJointNoise=0.0",
                        "task.env.resetYawNoise=0.0", f"task.env.legCollision={legs}",
                        "task.env.commands.forwardSpeed=[0.0,0.0]", "task.env.commands.yawRate=[0.0,0.0]")
    env.hold_commands()
    ended = 0
    for _ in range(200):  # 1 s
        _, _, done, extras = env.step(torch.zeros(6, env.num_actions))
        ended += int(done.sum())
    s = env.state
    assert ended == 0 and (s.faults == 0).all()
    assert (-s.projected_gravity[:, 2] > 0.9).all()  # upright
    assert (s.height > 1.2).all()  # the thorax well above the ground it stands on (1.6 on flat ground)
    assert (s.contacts.sum(-1) >= 3).all()  # at least three feet down
    capsule = mujoco.mj_name2id(env.physics.model, mujoco.mjtObj.mjOBJ_GEOM, "RHFemur_capsule")
    assert (capsule >= 0) == (legs == "capsule")


def test_task_heights_are_measured_from_the_ground_under_the_fly(make_cpu_task):
    env = make_cpu_task("num_envs=4", "task.env.terrain.type=blocks")
    s = env.state
    offset = torch.tensor(env.info.root_com_offset, dtype=torch.float32).expand(4, 3)
    com = s.root_pos + quat_rotate(s.root_quat, offset)
    ground = env.terrain_model.ground(env.terrain.kind, env.terrain.difficulty(), com[:, :2])
    assert (ground > 0).any()  # some flies start among raised squares
    assert torch.allclose(s.height, com[:, 2] - ground, atol=1e-5)
    assert (s.height > 1.2).all()  # not "fallen" because the ground is higher than z = 0


def test_flies_spawn_on_the_highest_ground_and_away_from_gaps(make_cpu_task):
    from tasks.neuromechfly.terrain import FOOTPRINT, GAP_BELOW

    env = make_cpu_task("num_envs=4", "task.env.terrain.type=curriculum", "task.env.terrain.levels=3")
    t, k = env.terrain, 96
    jitter = t.cfg.spawn_jitter
    # the looked-up spawn heights are the highest ground over the spawn area, kind by kind and level by level
    for kind in ("gapped", "blocks", "mixed", "flat"):
        for level in range(3):
            top = env.terrain_model.highest(torch.tensor([KIND_INDEX[kind]]), torch.tensor([level / 2]),
                                            torch.tensor([[jitter / 2, 0.0]]), FOOTPRINT[0] + jitter / 2, FOOTPRINT[1])
            assert float(t.spawn_top[KIND_INDEX[kind], level]) == pytest.approx(float(top[0])), (kind, level)
    t.kind = torch.full((k,), KIND_INDEX["gapped"])
    t.level = torch.full((k,), 2)
    drawn = torch.linspace(-0.3, 0.3, k)
    start, yaw = t.spawn(torch.arange(k), drawn, env.stand_feet, 0.3)
    assert ((start[:, 0] >= 0) & (start[:, 0] <= jitter)).all() and (start[:, 1] == 0).all()
    assert (start[:, 2] == 0).all()  # gapped ground's top
    assert (yaw.abs() <= 0.3).all()

    def over_gap(x, heading):
        c, s = torch.cos(heading)[:, None], torch.sin(heading)[:, None]
        fx = env.stand_feet[None, :, 0] * c - env.stand_feet[None, :, 1] * s
        fy = env.stand_feet[None, :, 0] * s + env.stand_feet[None, :, 1] * c
        return (env.terrain_model.height(t.kind, torch.ones(k), x[:, None] + fx, fy) <= -GAP_BELOW).any(1)

    # a fly put down anywhere in the spawn area has a foot over one of the 2 mm deep gaps more often than not;
    # spawn takes the first place without one at the drawn heading, and for headings that have none (a tenth
    # here) a place at a heading of its own
    assert over_gap(torch.rand(k) * jitter, drawn).float().mean() > 0.5
    assert over_gap(start[:, 0], yaw).float().mean() < 0.03  # keeping every drawn heading: 0.12
    kept = yaw == drawn
    assert 0.75 < kept.float().mean() < 1.0  # most keep the drawn heading; those that could not, changed it


def test_the_boxes_follow_each_fly(make_cpu_task):
    env = make_cpu_task("num_envs=2", "task.env.terrain.type=gapped")
    env.step(torch.zeros(2, env.num_actions))
    boxes = env.terrain.geoms[1:]
    x = env.physics.world_fields["geom_pos"][:, boxes, 0].float()
    fly_x = env.state.root_pos[:, 0:1]
    assert ((x.min(1).values - 0.5)[:, None] <= fly_x - WINDOW).all()  # the bars cover the window
    assert ((x.max(1).values + 0.5)[:, None] >= fly_x + WINDOW).all()
    qpos = env.physics.qpos.clone()
    qpos[1, 0] += 20.0  # world 1's fly moves on: its boxes go with it, world 0's stay
    env.physics.reset_worlds(torch.tensor([1]), qpos[1:2], env.physics.qvel[1:2].clone())
    env.reader.read()
    env.step(torch.zeros(2, env.num_actions))
    moved = env.physics.world_fields["geom_pos"][:, boxes, 0].float()
    assert torch.allclose(moved[0], x[0]) and (moved[1] - x[1]).mean() > 19.0


def test_curriculum_promotes_walkers_and_demotes_fallers_and_stallers():
    level = torch.tensor([0, 2, 2, 2, 1, 4, 3])
    commanded = torch.tensor([30.0, 30.0, 30.0, 30.0, 0.0, 30.0, 0.0])
    walked = torch.tensor([28.0, 20.0, 5.0, 29.0, 0.0, 30.0, 0.0])
    fell = torch.tensor([False, False, False, True, False, False, True])
    new = next_levels(level, walked, commanded, fell, promote=0.8, demote=0.4, num_levels=5,
                      generator=torch.Generator().manual_seed(0))
    assert new[:5].tolist() == [1, 2, 1, 1, 1]  # walked far: up; in between: stays; stalled or fell: down
    assert 0 <= int(new[5]) < 5  # past the last level: a random one
    assert int(new[6]) == 2  # asked to stand and fell: down
    assert next_levels(torch.tensor([0]), torch.zeros(1), torch.ones(1), torch.ones(1, dtype=torch.bool),
                       0.8, 0.4, 5).tolist() == [0]  # never below the first level


def test_the_task_moves_worlds_between_levels_at_the_end_of_episodes(make_cpu_task):
    env = make_cpu_task("num_envs=4", "task.env.terrain.type=curriculum", "task.env.terrain.levels=3",
                        "task.env.terrain.initLevel=1", "task.env.terrain.curriculumKinds=[blocks,gapped]")
    assert env.terrain.learning and env.terrain.kind.tolist() == [KIND_INDEX[k] for k in ("blocks", "gapped") * 2]
    env.terrain.level[:] = 1
    env.progress_buf[:] = 100
    env.episode_sums["cmd_speed"][:] = 20.0 / env.dt  # commanded 20 mm in the episode
    env.episode_sums["forward_speed"][:] = torch.tensor([19.0, 2.0, 12.0, 19.0]) / env.dt
    env.fell_buf = torch.tensor([False, False, False, True])
    env.reset_idx(torch.arange(4))
    assert env.terrain.level.tolist() == [2, 0, 1, 0]
    assert torch.allclose(env.terrain.difficulty(), torch.tensor([1.0, 0.0, 0.5, 0.0]))
    # each fly starts afresh at the start, within the jitter along x
    assert (env.physics.qpos[:, 0].abs() <= 2.6).all() and (env.physics.qpos[:, 1] == 0).all()
    env.spread_over_terrain()  # evaluation: frozen, every kind and level
    assert not env.terrain.learning and env.terrain.level.tolist() == [0, 0, 1, 1]


def test_a_resumed_run_continues_the_curriculum_levels_it_saved(make_cpu_task):
    args = ("task.env.terrain.type=curriculum", "task.env.terrain.levels=4", "task.env.terrain.initLevel=0",
            "task.env.terrain.curriculumKinds=[blocks,gapped]")
    trained = make_cpu_task("num_envs=4", *args)
    trained.terrain.level[:] = torch.tensor([3, 1, 2, 1])
    state = trained.get_env_state()
    resumed = make_cpu_task("num_envs=4", *args)
    assert resumed.terrain.level.tolist() == [0, 0, 0, 0]
    resumed.set_env_state(state)
    assert resumed.terrain.level.tolist() == [3, 1, 2, 1]
    # more worlds: each takes a level its kind had reached (blocks: 3 or 2, gapped: 1)
    more = make_cpu_task("num_envs=6", *args)
    more.set_env_state(state)
    assert set(more.terrain.level[0::2].tolist()) <= {3, 2} and more.terrain.level[1::2].tolist() == [1, 1, 1]
    # another curriculum (other levels) or no checkpoint state: levels as they start
    other = make_cpu_task("num_envs=4", *args[:1], "task.env.terrain.levels=5", *args[2:])
    other.set_env_state(state)
    other.set_env_state(None)
    assert other.terrain.level.tolist() == [0, 0, 0, 0]


def test_domain_randomisation_gives_each_world_its_own_physics(make_cpu_task):
    env = make_cpu_task("num_envs=4", "task.env.randomization.enabled=True", "task.env.randomization.pushSpeed=20.0",
                        "task.env.randomization.pushInterval=[0.004,0.004]")
    fields, base = env.physics.world_fields, env.randomization.base
    friction = fields["pair_friction"][:, 0, 0]
    mass = fields["body_mass"].sum(-1) / base["body_mass"].sum()
    gain = fields["actuator_gainprm"][:, env.fly.joint_act, 0][:, 0] / base["actuator_gainprm"][env.fly.joint_act[0], 0]
    for values, (low, high) in ((friction, (0.6, 1.4)), (mass, (0.85, 1.15)), (gain, (0.85, 1.15))):
        assert len(set(values.tolist())) == 4 and (values >= low - 1e-9).all() and (values <= high + 1e-9).all()
    bias = fields["actuator_biasprm"][:, env.fly.joint_act, 1]
    assert torch.allclose(bias, -fields["actuator_gainprm"][:, env.fly.joint_act, 0])  # still a position servo
    # below v2's friction (1.0) impratio keeps the pyramid's regulariser, 2 mu^2 (1 + mu^2) / impratio, at v2's
    rnd, every = env.randomization, torch.arange(4)
    for mu, impratio in ((0.6, 2 * 0.36 * 1.36 / 4), (0.9, 2 * 0.81 * 1.81 / 4), (1.2, 1.0)):
        rnd.cfg = dataclasses.replace(rnd.cfg, friction=(mu, mu))
        rnd.reset(every)
        assert torch.allclose(fields["impratio_invsqrt"] ** -2, torch.tensor(impratio, dtype=torch.float64))
    before = env.physics.qvel[:, 0:2].clone()
    env.randomization.push(env.dt)  # every clock runs out: every world is pushed
    assert ((env.physics.qvel[:, 0:2] - before).abs() > 0).all()
    env.step(torch.zeros(4, env.num_actions))  # the engine steps every world with its own values
    assert (env.state.faults == 0).all()


def test_evaluation_turns_randomisation_off_and_names_the_terrain(make_cpu_task):
    from evaluate import build

    cfg = compose_config("task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "num_envs=2",
                         "task.env.terrain.type=gapped",
                         "+controller=zero")
    env = build(cfg)[0]
    assert env.randomization is None and env.cfg_t.terrain.type == "gapped" and not env.terrain.learning


def base_cfg() -> dict:
    from runner.config import to_dict

    return to_dict(compose_config("task=NeuroMechFly").task)


@pytest.mark.parametrize("key, value, message", [
    ("type", "lava", "task.env.terrain.type='lava' is unknown (allowed: flat, gapped, blocks, mixed, curriculum)"),
    ("gapped", {"blockWidth": 1.0, "gapWidth": -0.3, "gapDepth": 2.0},
     "task.env.terrain.gapped.gapWidth=-0.3 is not allowed (allowed: a finite number > 0)"),
    ("blocks", {"blockSize": 1.3, "height": 0.35, "hieght": 1.0}, "task.env.terrain.blocks.hieght is not a dimension"),
    ("spawnJitter", -1.0, "task.env.terrain.spawnJitter=-1.0 is not allowed (allowed: a finite number >= 0)"),
    ("mixed", {"period": 3.0, "blockSize": 1.3, "height": 0.35, "flatBlockWidth": 1.0, "gapWidth": 0.3,
               "gapDepth": 1.0}, "task.env.terrain.mixed.period=3 is not allowed"),
    ("initLevel", 9, "task.env.terrain.initLevel=9 is not allowed (allowed: 0..levels-1"),
    ("curriculumKinds", ["flat", "ice"], "task.env.terrain.curriculumKinds=['flat', 'ice'] is not allowed"),
    ("curriculumShares", [1, 1], "task.env.terrain.curriculumShares=[1, 1] is not allowed (allowed: null for equal "
     "shares, or one number >= 0 per curriculumKinds entry (4), not all 0)"),
    ("curriculumShares", [1, -1, 1, 1], "task.env.terrain.curriculumShares=[1, -1, 1, 1] is not allowed"),
])
def test_bad_terrain_values_are_one_line_errors(key, value, message):
    cfg = copy.deepcopy(base_cfg())
    cfg["env"]["terrain"][key] = value
    with pytest.raises(ConfigError) as err:
        parse(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_capsule_legs_pair_capsules_fitted_to_the_meshes_with_the_ground():
    from fly.model import CAPSULE_SUFFIX, MESH_CONTACT_GEOMS

    terrain = Terrain(TerrainParams(), kinds=("blocks",))
    meshes = load_fly(adhesion=False, terrain=terrain)
    capsules = load_fly(adhesion=False, terrain=terrain, leg_collision="capsule")

    def paired(m):
        return {m.geom(int(g)).name for g in np.concatenate([m.pair_geom1, m.pair_geom2])}

    assert capsules.npair == meshes.npair
    assert paired(capsules) - paired(meshes) == {name + CAPSULE_SUFFIX for name in MESH_CONTACT_GEOMS}
    assert not paired(capsules) & set(MESH_CONTACT_GEOMS)  # the meshes stay, seen but not touching
    assert np.array_equal(capsules.body_mass, meshes.body_mass)
    assert np.array_equal(capsules.body_inertia, meshes.body_inertia)
    for name in MESH_CONTACT_GEOMS:
        mesh, capsule = meshes.geom(name), capsules.geom(name + CAPSULE_SUFFIX)
        assert capsule.type[0] == mujoco.mjtGeom.mjGEOM_CAPSULE and capsule.group[0] == 3
        assert capsule.contype[0] == 0 and capsule.conaffinity[0] == 0 and capsule.bodyid[0] == mesh.bodyid[0]
        # in the mesh's own frame, along its long axis: MuJoCo fits the capsule to the mesh's inertia, so it
        # reaches 0.74-1.03 of the mesh's farthest vertex along it and is 0.52-0.67 of its widest half-width
        assert np.allclose(capsule.pos, mesh.pos) and np.allclose(capsule.quat, mesh.quat)
        data = meshes.geom_dataid[mesh.id]
        vert = meshes.mesh_vert[meshes.mesh_vertadr[data]:meshes.mesh_vertadr[data] + meshes.mesh_vertnum[data]]
        radius, half = capsule.size[:2]
        assert 0.7 <= (radius + half) / np.abs(vert[:, 2]).max() <= 1.05
        assert 0.5 <= radius / np.abs(vert[:, :2]).max() <= 0.7


def test_bad_leg_collision_is_a_one_line_error():
    cfg = copy.deepcopy(base_cfg())
    cfg["env"]["legCollision"] = "cylinder"
    with pytest.raises(ConfigError) as err:
        parse(cfg)
    assert str(err.value) == "task.env.legCollision='cylinder' is unknown (allowed: mesh, capsule)"
    with pytest.raises(ValueError, match="leg_collision='cylinder' is unknown"):
        load_fly(leg_collision="cylinder")


@pytest.mark.parametrize("kind, rows", [("flat", 128), ("blocks", 128), ("gapped", 256), ("mixed", 256),
                                        ("curriculum", 256)])
def test_each_terrain_gets_its_measured_constraint_budget_unless_one_is_given(kind, rows):
    from runner.config import to_dict

    assert to_dict(compose_config("task=NeuroMechFly", f"task.env.terrain.type={kind}").task)["sim"]["mujoco"][
        "constraint_rows"] == rows
    given = compose_config("task=NeuroMechFly", f"task.env.terrain.type={kind}", "task.sim.mujoco.constraint_rows=300")
    assert to_dict(given.task)["sim"]["mujoco"]["constraint_rows"] == 300


@pytest.mark.parametrize("kind, gamma", [("flat", 0.99), ("blocks", 0.995), ("curriculum", 0.995)])
def test_rough_ground_training_discounts_over_a_longer_horizon_unless_one_is_given(kind, gamma):
    from runner.config import to_dict

    config = lambda *o: to_dict(compose_config("task=NeuroMechFly", f"task.env.terrain.type={kind}", *o).train)  # noqa: E731
    assert config()["params"]["config"]["gamma"] == gamma
    assert config("train.params.config.gamma=0.98")["params"]["config"]["gamma"] == 0.98


def test_curriculum_shares_set_each_kinds_share_of_the_training_worlds():
    from tasks.neuromechfly.terrain import share_out

    assert share_out((0.25,) * 4, 8) == [0, 1, 2, 3, 0, 1, 2, 3]  # equal shares interleave
    worlds = share_out((0.4, 0.2, 0.2, 0.2), 1000)
    assert [worlds.count(i) for i in range(4)] == [400, 200, 200, 200]
    assert worlds[:5].count(0) == 2  # interleaved: every prefix close to the shares
    assert share_out((0.0, 1.0), 3) == [1, 1, 1]  # a kind with no share gets no world


def test_curriculum_shares_reach_the_task_and_evaluation_still_spreads_evenly(make_cpu_task):
    env = make_cpu_task("num_envs=6", "task.env.terrain.type=curriculum",
                        "task.env.terrain.curriculumKinds=[blocks,gapped]", "task.env.terrain.curriculumShares=[2,1]")
    assert env.terrain.kind.tolist() == [KIND_INDEX[k] for k in ("blocks", "gapped", "blocks") * 2]
    env.spread_over_terrain()
    assert env.terrain.kind.tolist() == [KIND_INDEX[k] for k in ("blocks", "gapped") * 3]


def test_a_checkpoint_is_refused_by_a_run_whose_gait_reference_differs(make_cpu_task):
    """A policy's actions are residuals on its gait reference: the rough-ground policy steps on a swing of at
    most 0.4 of the cycle, the flat-ground one on 0.5. Its training run keeps those values in env_state."""
    from runner.checkpoints import CheckpointError, action_meaning, check_checkpoint_fits

    trained = make_cpu_task("num_envs=2", "task.env.gait.maxSwingFraction=0.4")
    state = {"model": {}, "env_state": trained.get_env_state()}
    assert state["env_state"]["action_meaning"]["task.env.gait.maxSwingFraction"] == 0.4
    check_checkpoint_fits(state, "rough.pth", 0, 0, action_meaning(trained))
    with pytest.raises(CheckpointError) as err:
        check_checkpoint_fits(state, "rough.pth", 0, 0, action_meaning(make_cpu_task("num_envs=2")))
    assert str(err.value) == ("checkpoint=rough.pth was trained with task.env.gait.maxSwingFraction=0.4, this run has "
                              "0.5 (allowed: the checkpoint's value; pass task.env.gait.maxSwingFraction=0.4)")
    # checkpoints from before the values were kept are not checked
    check_checkpoint_fits({"model": {}, "env_state": {"terrain": None}}, "old.pth", 0, 0, action_meaning(trained))


def test_the_rough_task_config_carries_the_rough_policys_settings():
    """task=NeuroMechFlyRough is NeuroMechFly with the settings NeuroMechFly_rough.pth learnt with (as
    IsaacGymEnvs' AnymalTerrain is Anymal's): the checkpoint plays and resumes without further keys."""
    from runner.checkpoints import CheckpointError, action_meaning, check_checkpoint
    from runner.config import to_dict
    from tasks import isaacgym_task_map

    def task(name):
        cfg = compose_config(f"task={name}", "sim_device=cpu", "rl_device=cpu", "num_envs=4")
        return cfg, isaacgym_task_map[cfg.task_name](cfg=to_dict(cfg.task), rl_device="cpu", sim_device="cpu",
                                                     graphics_device_id=0, headless=True)

    cfg, env = task("NeuroMechFlyRough")
    assert cfg.task_name == "NeuroMechFly" and cfg.train.params.config.name == "NeuroMechFlyRough"
    assert cfg.train.params.config.gamma == 0.995 and env.terrain.learning and env.terrain.num_levels == 9
    assert env.cfg_t.leg_collision == "capsule"  # it learnt its last 5 M steps on capsule legs
    rough = str(Path(__file__).resolve().parents[1] / "checkpoints" / "NeuroMechFly_rough.pth")
    state = check_checkpoint(rough, env.num_obs, env.num_actions, action_meaning(env))
    env.set_env_state(state["env_state"])  # resumes on the levels its worlds reached
    with pytest.raises(CheckpointError, match="maxSwingFraction=0.4"):
        check_checkpoint(rough, env.num_obs, env.num_actions, action_meaning(task("NeuroMechFly")[1]))

"""Where each world's fly walks: its terrain (kind and difficulty level), its start, the ground height
under it, the boxes around it, and the terrain curriculum that moves it between levels.

Every world has a kind (fixed) and a level. With `task.env.terrain.type` one arena, every world walks
that arena at full difficulty. With `curriculum`, worlds are spread over `curriculumKinds` (in the
proportions of `curriculumShares`, legged_gym's terrain proportions; equal by default) and
start on levels 0..initLevel (difficulty level / (levels - 1): 0 is flat ground, the last level the
arena); at the end of each episode `next_levels` moves a world up a level when it walked most of its
commanded distance and down when it fell or stalled (legged_gym's curriculum, with each world's own
terrain instead of a shared grid of tiles: physics/terrain.py says why). Evaluation freezes the levels
and spreads the worlds evenly over every kind and level.
"""
from __future__ import annotations

import torch

from common.cuda_graph import GraphedCall
from physics.scene import TERRAIN_GEOM
from physics.terrain import FIELDS, KIND_INDEX, Terrain

from .config import TerrainConfig

# mm around the fly's root where terrain boxes exist: its legs reach 1.8 mm in the standing pose and
# about 3.1 mm while striding (amplitude 2) in any heading, plus one control step of walking.
LEG_REACH = 3.9
# mm around the root that the standing fly's legs cover (x -1.7..1.8, y -1.5..1.4): where a spawn
# height is looked for.
FOOTPRINT = (2.2, 1.9)
SPAWN_TRIES = 32
GAP_BELOW = 0.5  # mm: a foot whose ground lies this far below the highest under the fly hangs over a gap
FOOT_MARGIN = 0.05  # mm
TERRAIN_FIELDS = FIELDS


def next_levels(level: torch.Tensor, walked: torch.Tensor, commanded: torch.Tensor, fell: torch.Tensor,
                promote: float, demote: float, num_levels: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Levels after one episode each: up one where the fly walked at least `promote` of the distance it
    was commanded to walk without falling, down one where it fell or walked less than `demote` of it
    (asked to stand, only a fall counts). A world that climbs past the last level goes to a random one,
    so that the hardest level never holds every world."""
    asked = commanded > 0
    up = ~fell & asked & (walked >= promote * commanded)
    down = fell | (asked & (walked < demote * commanded))
    new = level + up.long() - (down & ~up).long()
    past = new >= num_levels
    if past.any():
        random = torch.randint(0, num_levels, level.shape, device=level.device, generator=generator)
        new = torch.where(past, random, new)
    return new.clamp_min(0)


def share_out(shares: tuple[float, ...], num_envs: int) -> list[int]:
    """Each world's index into `shares` (fractions summing to 1): interleaved, every prefix of worlds as
    close to the shares as whole worlds allow (equal shares: 0, 1, 2, 3, 0, 1, ...)."""
    counts, out = [0] * len(shares), []
    for world in range(num_envs):
        behind = [share * (world + 1) - count for share, count in zip(shares, counts)]
        pick = max(range(len(shares)), key=lambda i: (behind[i], -i))
        counts[pick] += 1
        out.append(pick)
    return out


class TerrainState:
    def __init__(self, cfg: TerrainConfig, terrain: Terrain, engine, num_envs: int, device: torch.device):
        self.cfg, self.terrain, self.engine, self.device = cfg, terrain, engine, device
        self.kinds = torch.tensor([KIND_INDEX[k] for k in cfg.kinds], device=device)
        self.num_levels = cfg.levels
        self._set_kinds(share_out(cfg.shares, num_envs))
        self.level = torch.randint(0, cfg.init_level + 1, (num_envs,), device=device) if cfg.curriculum \
            else torch.full((num_envs,), self.num_levels - 1, dtype=torch.long, device=device)
        self.learning = cfg.curriculum  # levels move with episode outcomes (off in evaluation)
        self.flat = terrain.num_boxes == 0
        if not self.flat:
            self.geoms = torch.tensor(terrain.geom_ids(engine.model, TERRAIN_GEOM), device=engine.device)
            self.fields = {name: engine.world_fields[name] for name in TERRAIN_FIELDS}
            self.spawn_top = self._spawn_tops()
            self.foot_margins = torch.tensor([-FOOT_MARGIN, 0.0, FOOT_MARGIN], device=device)
        # every control step, on the GPU: one graph launch each instead of a few hundred small kernels
        self._place = GraphedCall(lambda kind, level, xy: self.terrain.place(
            self.fields, self.geoms, kind, self._difficulty(level), xy))
        self._ground = GraphedCall(lambda kind, level, xy: self.terrain.ground(kind, self._difficulty(level), xy))
        self._surface = GraphedCall(lambda kind, level, points: self.terrain.height(
            kind, self._difficulty(level), points[..., 0], points[..., 1]))

    def _spawn_tops(self) -> torch.Tensor:
        """(kinds, levels) the highest ground the standing fly's legs may meet anywhere in the spawn area (the
        same area in every world), per terrain kind (KINDS' order) and level: looked up at each reset."""
        kinds, levels = len(KIND_INDEX), self.num_levels
        kind = torch.arange(kinds, device=self.device).repeat_interleave(levels)
        level = torch.arange(levels, device=self.device).repeat(kinds)
        jitter = self.cfg.spawn_jitter
        centre = torch.tensor([[jitter / 2, 0.0]], device=self.device).expand(len(kind), 2)
        top = self.terrain.highest(kind, self._difficulty(level), centre, FOOTPRINT[0] + jitter / 2, FOOTPRINT[1],
                                   step=0.05)
        return top.view(kinds, levels)

    def _set_kinds(self, indices: list[int]) -> None:
        """Each world's kind, from its index into cfg.kinds (fixed until the next call)."""
        self.kind = self.kinds[torch.tensor(indices, device=self.device, dtype=torch.long)]
        used = set(indices)
        # (N,) float masks of each kind's worlds, for per-kind means without host syncs
        self.kind_masks = {name: (self.kind == KIND_INDEX[name]).float() for i, name in enumerate(self.cfg.kinds)
                           if i in used}

    def difficulty(self, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._difficulty(self.level if env_ids is None else self.level[env_ids])

    def _difficulty(self, level: torch.Tensor) -> torch.Tensor:
        return level.float() / max(self.num_levels - 1, 1) if self.num_levels > 1 else torch.ones_like(level.float())

    def spread(self) -> None:
        """Freeze the levels and put the worlds evenly over every kind and level (evaluation)."""
        self.learning = False
        world = torch.arange(len(self.kind), device=self.device)
        self._set_kinds([w % len(self.kinds) for w in range(len(self.kind))])
        self.level = (world // len(self.kinds)) % self.num_levels if self.cfg.curriculum \
            else torch.full_like(world, self.num_levels - 1)

    def state(self) -> dict:
        """What a training checkpoint keeps of the curriculum: each world's kind and level."""
        return {"kinds": list(self.cfg.kinds), "levels": self.cfg.levels, "kind": self.kind.cpu(),
                "level": self.level.cpu()}

    def restore(self, state: dict | None) -> bool:
        """Continue a curriculum where a checkpoint left it: each world takes a level its kind had there
        (drawn from them when the number of worlds differs). A checkpoint of other kinds or levels, or of
        no curriculum, leaves the levels as they start. Returns whether levels were restored."""
        if not (self.learning and state and state.get("kinds") == list(self.cfg.kinds)
                and state.get("levels") == self.num_levels):
            return False
        kind, level = state["kind"].to(self.device), state["level"].to(self.device)
        if len(level) == len(self.level) and bool((kind == self.kind).all()):
            self.level.copy_(level)
            return True
        for index in self.kinds.tolist():
            saved, mine = level[kind == index], (self.kind == index).nonzero().flatten()
            if len(saved) and len(mine):
                self.level[mine] = saved[torch.randint(0, len(saved), (len(mine),), device=self.device)]
        return True

    def mean_levels(self) -> dict[str, torch.Tensor]:
        """Each kind's mean level (0-dim tensors; kinds that no world walks are left out)."""
        level = self.level.float()
        return {name: (level * mine).sum() / mine.sum() for name, mine in self.kind_masks.items()}

    def ground_height(self, xy: torch.Tensor) -> torch.Tensor:
        """(N,) height of the ground a body at xy (N, 2) stands on (physics.terrain.Terrain.ground). On the GPU
        this is the graph's own output buffer, which the next call overwrites."""
        if self.flat:
            return torch.zeros(len(xy), device=xy.device)
        return self._ground(self.kind, self.level, xy)

    def surface_height(self, points: torch.Tensor) -> torch.Tensor:
        """(N, M) height of the surface right under points (N, M, 2) (physics.terrain.Terrain.height). On the
        GPU this is the graph's own output buffer, which the next call overwrites."""
        if self.flat:
            return torch.zeros(points.shape[:2], device=points.device)
        return self._surface(self.kind, self.level, points)

    def features(self) -> torch.Tensor:
        """(N, kinds + 1) each world's terrain kind, one-hot in KINDS' order, and its level from 0 to 1 (for the
        critic: tasks/neuromechfly/observations.py, PRIVILEGED)."""
        kind = torch.nn.functional.one_hot(self.kind, len(KIND_INDEX)).float()
        return torch.cat([kind, self.difficulty()[:, None]], dim=-1)

    def place(self, root_xy: torch.Tensor) -> None:
        """Lay out each world's boxes around its fly's root (N, 2), for the next physics steps."""
        if not self.flat:
            self._place(self.kind, self.level, root_xy)

    def end_episodes(self, env_ids: torch.Tensor, walked: torch.Tensor, commanded: torch.Tensor,
                     fell: torch.Tensor) -> None:
        if self.learning:
            self.level[env_ids] = next_levels(self.level[env_ids], walked, commanded, fell, self.cfg.promote,
                                              self.cfg.demote, self.num_levels)

    def spawn(self, env_ids: torch.Tensor, yaw: torch.Tensor, feet: torch.Tensor, yaw_noise: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, 3) start of each world's fly and (k,) its heading: x somewhere in spawnJitter along the walking
        direction, y = 0, and the highest ground its standing legs may meet. Of SPAWN_TRIES places at the drawn
        heading `yaw`, the first where none of the feet (6, 2 from the root at heading 0) is over a gap: a fly whose
        standing feet hang in gaps often tips over before it takes a step. (On flygym's gapped terrain the standing
        pose finds such a place in about a seventh of the positions.) For some headings there is none (on gapped
        ground 12 % of the draws within 0.3 rad): then the first of SPAWN_TRIES more, each at a heading of its own
        within `yaw_noise`, and where none of those either (0.7 %), the first place at the drawn heading."""
        k, dev = len(env_ids), self.device
        x = torch.rand((k, SPAWN_TRIES), device=dev) * self.cfg.spawn_jitter
        if self.flat:
            return torch.stack([x[:, 0], torch.zeros_like(x[:, 0]), torch.zeros_like(x[:, 0])], -1), yaw
        x = torch.cat([x, torch.rand((k, SPAWN_TRIES), device=dev) * self.cfg.spawn_jitter], 1)
        yaws = torch.cat([yaw[:, None].expand(k, SPAWN_TRIES),
                          (torch.rand((k, SPAWN_TRIES), device=dev) * 2 - 1) * yaw_noise], 1)  # (k, tries)
        kind, level = self.kind[env_ids], self.level[env_ids]
        top = self.spawn_top[kind, level]
        c, s = torch.cos(yaws)[..., None], torch.sin(yaws)[..., None]
        fx = feet[None, None, :, 0] * c - feet[None, None, :, 1] * s  # (k, tries, 6)
        fy = feet[None, None, :, 0] * s + feet[None, None, :, 1] * c
        # each foot and FOOT_MARGIN before and behind it (the reset's joint noise moves the feet): (k, tries, 6, 3)
        px = x[..., None, None] + fx[..., None] + self.foot_margins
        py = fy[..., None].expand_as(px)
        under = self.terrain.height(kind, self._difficulty(level), px.flatten(1), py.flatten(1))
        ok = (under.view(k, 2 * SPAWN_TRIES, -1) > top[:, None, None] - GAP_BELOW).all(-1)  # (k, tries)
        first = torch.where(ok.any(-1), ok.float().argmax(-1), torch.zeros(k, dtype=torch.long, device=dev))
        rows = torch.arange(k, device=dev)
        return torch.stack([x[rows, first], torch.zeros(k, device=dev), top], -1), yaws[rows, first]

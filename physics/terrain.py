"""Terrains as box geoms around each world's robot: the rough arenas of flygym 1.2.1
(arena/complex_terrain.py), at any difficulty, per world.

flygym builds its arenas from boxes: hundreds of them. A MuJoCo height field instead breaks on these
arenas' 2 mm deep, 0.3 mm wide gaps: a thin limb pushed into a wall sits inside prisms thinner than
its penetration, MuJoCo C returns up to 50 contacts per limb segment, MuJoCo Warp overflows its 50 and
returns NaN, and robots sink into or are thrown out of the ground (docs/terrain.md). So a terrain here
is what flygym's is, boxes, but only those within `window` mm of each world's focus point (the robot,
moved every control step) exist as geoms: their positions and sizes are per-world model fields
(physics.engine.WORLD_FIELDS), so every world has its own arena and difficulty in one model, and a
limb only ever meets the boxes it can reach. One plane under them all is the floor of the gaps.

Heights, in the frame where a robot starts at x = y = 0 walking along +x, with the surface it starts
on at z = 0:
- gapped: blocks `block_width` long in x, separated by `gap_width`, `gap_depth` deep; the first block
  starts at x = -10 (flygym's x_range (-10, ...)).
- blocks: a checkerboard of `block_size` squares from (-10, -20); every other square raised by
  `height`. flygym's boxes are 1.1 x the pitch: raised squares overhang their low neighbours by 5 %
  of the pitch on each side.
- mixed: every `period` mm from x = -4, three columns of blocks (raised ones at 0, low ones at
  -height), a `flat_block_width` / 2 strip, a gap, a `flat_block_width` strip, a gap, then flat
  ground; flygym's floor under these gaps lies `gap_depth` = 1 mm down.
Difficulty d in [0, 1] scales the gap widths and block heights: 0 is flat ground, 1 the arena.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import torch

KINDS = ("flat", "gapped", "blocks", "mixed")
FIELDS = ("geom_pos", "geom_size", "geom_rbound", "geom_aabb")  # the per-world model fields a layout writes
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}
# Ground under a point: the highest surface within this radius (half of flygym's block pitch), so that a
# body over a gap or a low square is measured from the blocks that carry it.
SUPPORT_RADIUS = 0.65
BOX_BOTTOM = 1.0  # mm below the lowest surface that every box reaches
PARKED = (0.0, 0.0, -1000.0)  # where unused boxes wait, out of every limb's reach
GAPPED_X0, BLOCKS_X0, BLOCKS_Y0, MIXED_X0 = -10.0, -10.0, -20.0, -4.0  # flygym's pattern origins


@dataclass(frozen=True)
class GappedParams:
    block_width: float = 1.0
    gap_width: float = 0.3
    gap_depth: float = 2.0


@dataclass(frozen=True)
class BlocksParams:
    block_size: float = 1.3
    height: float = 0.35


@dataclass(frozen=True)
class MixedParams:
    period: float = 9.0
    block_size: float = 1.3
    height: float = 0.35
    flat_block_width: float = 1.0
    gap_width: float = 0.3
    gap_depth: float = 1.0


@dataclass(frozen=True)
class TerrainParams:
    window: float = 3.9  # mm around the focus point in x and y where boxes exist
    gapped: GappedParams = field(default_factory=GappedParams)
    blocks: BlocksParams = field(default_factory=BlocksParams)
    mixed: MixedParams = field(default_factory=MixedParams)


def _slots(p: TerrainParams) -> dict[str, int]:
    """Boxes each kind needs to cover a window."""
    w = p.window
    bars = math.ceil(2 * w / p.gapped.block_width) + 2
    rows_b = 2 * math.ceil(w / p.blocks.block_size) + 1
    rows_m = 2 * math.ceil(w / p.mixed.block_size) + 1
    periods = math.ceil(2 * w / p.mixed.period) + 1
    return {"gapped": bars, "blocks": rows_b * (rows_b // 2 + 1), "mixed": periods * (1 + 2 * rows_m + 3)}


class Terrain:
    """One plane and `num_boxes` boxes whose per-world layout `layout` computes; heights by formula."""

    def __init__(self, params: TerrainParams, kinds: tuple[str, ...] = KINDS):
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(f"terrain kind {kind!r} is unknown (allowed: {', '.join(KINDS)})")
        self.params, self.kinds = params, tuple(kinds)
        self.slots = _slots(params)
        # flat ground alone needs no boxes
        self.num_boxes = max([self.slots[k] for k in kinds if k != "flat"], default=0)

    # ------------------------------------------------------------ MuJoCo

    def add_to(self, spec: mujoco.MjSpec, name: str = "terrain", friction=(1.0, 0.005, 0.0001),
               material: str | None = None) -> list[str]:
        """Add the plane (`name`) and the boxes (`name`_0, ...) to `spec`'s world, parked, without contacts
        of their own (contype and conaffinity 0: robots pair with them). Returns the geom names."""
        world = spec.worldbody
        if self.num_boxes:
            # geoms of the world body are static to MuJoCo Warp (their poses computed once); a mocap body's
            # are placed every step from their (per-world) geom_pos
            world = world.add_body(name=name, mocap=True)
        names = [name] + [f"{name}_{i}" for i in range(self.num_boxes)]
        for i, geom_name in enumerate(names):
            if i == 0:
                # with boxes, the plane moves per world: a geom at its body's frame would be pinned to it
                # (MuJoCo's geom_sameframe), so it starts off the origin
                geom = world.add_geom(name=geom_name, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1],
                                      pos=[0, 0, -1.0] if self.num_boxes else [0, 0, 0])
            else:
                geom = world.add_geom(name=geom_name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.1, 0.1, 0.1],
                                      pos=list(PARKED))
            geom.contype, geom.conaffinity = 0, 0
            geom.density = 0.0  # no mass: the terrain is not part of anything's dynamics
            geom.friction = list(friction)
            if material is not None:
                geom.material = material
        return names

    # ------------------------------------------------------------ heights (torch, per world)

    def height(self, kind: torch.Tensor, d: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Surface height at points x, y (N, M) of worlds of `kind` (N,) and difficulty `d` (N,)."""
        d = d[:, None]
        out = torch.zeros_like(x)
        g = self.params.gapped
        u = torch.remainder(x - GAPPED_X0, g.block_width + g.gap_width * d)
        out = torch.where((kind == KIND_INDEX["gapped"])[:, None],
                          torch.where(u < g.block_width, 0.0, -g.gap_depth), out)
        b = self.params.blocks
        blocks = _checkerboard(x - BLOCKS_X0, y - BLOCKS_Y0, b.block_size, torch.zeros_like(d), b.height * d)
        out = torch.where((kind == KIND_INDEX["blocks"])[:, None], blocks, out)
        m = self.params.mixed
        gap = m.gap_width * d
        u = torch.remainder(x - MIXED_X0, m.period)
        part = 3 * m.block_size
        first = part + m.flat_block_width / 2
        second = first + gap + m.flat_block_width
        in_gap = ((u >= first) & (u < first + gap)) | ((u >= second) & (u < second + gap))
        squares = _checkerboard(u, y - BLOCKS_Y0, m.block_size, -m.height * d, torch.zeros_like(d), columns=3)
        mixed = torch.where(u < part, squares, torch.where(in_gap, -m.gap_depth, 0.0))
        return torch.where((kind == KIND_INDEX["mixed"])[:, None], mixed, out)

    def highest(self, kind: torch.Tensor, d: torch.Tensor, xy: torch.Tensor, radius_x: float, radius_y: float,
                step: float = 0.05) -> torch.Tensor:
        """(N,) highest surface within a rectangle of half-sizes radius_x, radius_y around xy (N, 2),
        sampled every `step` mm."""
        ox = torch.arange(-radius_x, radius_x + 1e-9, step, device=xy.device)
        oy = torch.arange(-radius_y, radius_y + 1e-9, step, device=xy.device)
        gx, gy = torch.meshgrid(ox, oy, indexing="ij")
        x = xy[:, 0:1] + gx.reshape(1, -1)
        y = xy[:, 1:2] + gy.reshape(1, -1)
        return self.height(kind, d, x, y).amax(dim=1)

    def ground(self, kind: torch.Tensor, d: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """(N,) height of the ground a body at xy stands on: the highest surface within SUPPORT_RADIUS."""
        angles = torch.arange(8, device=xy.device) * (math.pi / 4)
        ring = torch.stack([torch.cos(angles), torch.sin(angles)], -1) * SUPPORT_RADIUS
        offsets = torch.cat([torch.zeros(1, 2, device=xy.device), ring, ring * 0.5])
        points = xy[:, None, :] + offsets[None]
        return self.height(kind, d, points[..., 0], points[..., 1]).amax(dim=1)

    # ------------------------------------------------------------ layout (torch, per world)

    def layout(self, kind: torch.Tensor, d: torch.Tensor, focus: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-world plane height (N,), box centres (N, num_boxes, 3) and half-sizes (N, num_boxes, 3) of
        the terrain within `window` of `focus` (N, 2) for worlds of `kind` and difficulty `d`."""
        n, dev = len(kind), focus.device
        pos = _parked(dev).repeat(n, self.num_boxes, 1)
        size = torch.full((n, self.num_boxes, 3), 0.1, device=dev)
        plane = torch.zeros(n, device=dev)
        for name, fn in (("gapped", self._gapped), ("blocks", self._blocks), ("mixed", self._mixed)):
            if name not in self.kinds:
                continue
            sel = kind == KIND_INDEX[name]
            p, s, z = fn(d, focus)
            k = p.shape[1]
            pos[:, :k] = torch.where(sel[:, None, None], p, pos[:, :k])
            size[:, :k] = torch.where(sel[:, None, None], s, size[:, :k])
            plane = torch.where(sel, z, plane)
        return plane, pos, size

    def place(self, fields: dict, geoms: torch.Tensor, kind: torch.Tensor, d: torch.Tensor,
              focus: torch.Tensor) -> None:
        """Write the layout around `focus` (N, 2) into an engine's per-world fields (WORLD_FIELDS geom_pos,
        geom_size, geom_rbound, geom_aabb); `geoms` are the plane's and the boxes' geom ids."""
        plane, pos, size = self.layout(kind, d, focus)
        pos = torch.cat([torch.zeros_like(pos[:, :1]), pos], 1)
        pos[:, 0, 2] = plane
        device, dtype = fields["geom_pos"].device, fields["geom_pos"].dtype
        fields["geom_pos"][:, geoms] = pos.to(device, dtype)
        boxes = geoms[1:]
        fields["geom_size"][:, boxes] = size.to(device, dtype)
        fields["geom_rbound"][:, boxes] = size.norm(dim=-1).to(device, dtype)
        # MuJoCo's box AABB in its own frame: centre 0, half-sizes
        fields["geom_aabb"][:, boxes] = torch.cat([torch.zeros_like(size), size], -1).to(device, dtype)

    def place_in_model(self, model: mujoco.MjModel, kind: str, d: float, focus: tuple[float, float],
                       name: str = "terrain") -> None:
        """Lay the terrain of `kind` at difficulty `d` around `focus` into `model` itself (one world, no
        per-world fields): for a plain MjData, a ray cast or a reproducer."""
        fields = {field: torch.from_numpy(getattr(model, field))[None] for field in FIELDS}  # views of the model
        self.place(fields, torch.tensor(self.geom_ids(model, name)), torch.tensor([KIND_INDEX[kind]]),
                   torch.tensor([float(d)]), torch.tensor([focus], dtype=torch.float32))  # as the task lays it out

    def geom_ids(self, model: mujoco.MjModel, name: str = "terrain") -> list[int]:
        """Ids of the plane and the boxes `add_to` added to `model` under `name`."""
        return [model.geom(name).id] + [model.geom(f"{name}_{i}").id for i in range(self.num_boxes)]

    def _boxes(self, x0, x1, y0, y1, top, bottom, valid):
        """Boxes from corners (broadcast tensors); invalid ones parked."""
        x0, x1, y0, y1, top, bottom, valid = torch.broadcast_tensors(x0, x1, y0, y1, top, bottom, valid)
        pos = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, (top + bottom) / 2], -1)
        size = torch.stack([(x1 - x0) / 2, (y1 - y0) / 2, (top - bottom) / 2], -1).clamp_min(1e-3)
        parked = _parked(pos.device)
        valid = valid & (size[..., 0] > 1e-3) & (size[..., 2] > 1e-3)
        size = torch.where(valid[..., None], size, torch.full_like(size, 0.1))
        return torch.where(valid[..., None], pos, parked), size

    def _gapped(self, d, focus):
        g, w = self.params.gapped, self.params.window
        pitch = (g.block_width + g.gap_width * d)[:, None]
        first = torch.floor((focus[:, 0:1] - w - GAPPED_X0) / pitch)
        k = first + torch.arange(self.slots["gapped"], device=d.device)[None]
        x0 = GAPPED_X0 + k * pitch
        fy = focus[:, 1:2].expand_as(x0)
        top = torch.zeros_like(x0)
        pos, size = self._boxes(x0, x0 + g.block_width, fy - w - 1.0, fy + w + 1.0, top,
                                top - g.gap_depth - BOX_BOTTOM, torch.ones_like(x0, dtype=torch.bool))
        return pos, size, torch.full_like(d, -g.gap_depth)

    def _squares(self, fx, fy, size, x_origin, y_origin, rows, columns=None):
        """Cells (i, j) of a checkerboard within the window whose i + j is even (the raised ones): their
        x0, x1, y0, y1 and validity, (N, rows * per_row)."""
        dev = fx.device
        half = rows // 2
        i0 = torch.floor((fx - x_origin) / size) - half
        j = torch.floor((fy - y_origin) / size)[:, None] - half + torch.arange(rows, device=dev)[None]  # (N, rows)
        per_row = half + 1
        if columns is not None:
            i0 = torch.zeros_like(i0)
            per_row = (columns + 1) // 2
        first = i0[:, None] + torch.remainder(i0[:, None] + j, 2)  # first raised column of each row
        i = first[..., None] + 2 * torch.arange(per_row, device=dev)  # (N, rows, per_row)
        last = (columns - 1) if columns is not None else (2 * half)
        valid = i <= i0[:, None, None] + last
        jj = j[..., None].expand_as(i)
        over = 0.05 * size  # flygym's boxes: 1.1 x the pitch
        x0 = x_origin + i * size - over
        y0 = y_origin + jj * size - over
        flat = lambda t: t.reshape(len(fx), -1)  # noqa: E731
        return flat(x0), flat(x0 + size + 2 * over), flat(y0), flat(y0 + size + 2 * over), flat(valid)

    def _blocks(self, d, focus):
        b, w = self.params.blocks, self.params.window
        rows = 2 * math.ceil(w / b.block_size) + 1
        x0, x1, y0, y1, valid = self._squares(focus[:, 0], focus[:, 1], b.block_size, BLOCKS_X0, BLOCKS_Y0, rows)
        top = (b.height * d)[:, None].expand_as(x0)
        valid = valid & (top > 1e-6)  # at difficulty 0 the plane alone is the ground
        pos, size = self._boxes(x0, x1, y0, y1, top, torch.full_like(top, -BOX_BOTTOM), valid)
        return pos, size, torch.zeros_like(d)

    def _mixed(self, d, focus):
        m, w = self.params.mixed, self.params.window
        n, dev = len(d), d.device
        rows = 2 * math.ceil(w / m.block_size) + 1
        periods = math.ceil(2 * w / m.period) + 1
        gap = (m.gap_width * d)[:, None]
        q0 = torch.floor((focus[:, 0] - w - MIXED_X0) / m.period)
        bottom = -m.gap_depth - BOX_BOTTOM
        part = 3 * m.block_size
        fy = focus[:, 1:2]
        low = -(m.height * d)[:, None]
        # the raised squares of a block part, from its start (the same in every period)
        sx0, sx1, sy0, sy1, svalid = self._squares(torch.zeros_like(d), focus[:, 1], m.block_size, 0.0, BLOCKS_Y0,
                                                   rows, columns=3)
        # every period in the window at once: (N, periods) starts, (N, periods x boxes) per piece
        start = MIXED_X0 + (q0[:, None] + torch.arange(periods, device=dev)[None]) * m.period
        per_period = lambda t: t[:, None, :].expand(n, periods, t.shape[1]).reshape(n, -1)  # noqa: E731
        shift = start[..., None].expand(n, periods, sx0.shape[1]).reshape(n, -1)
        # under the block part, at the low squares' height; the raised squares stand on it
        base = self._boxes(start, start + part, fy - w - 1.0, fy + w + 1.0, low, torch.full_like(low, bottom),
                           torch.ones((n, 1), dtype=torch.bool, device=dev))
        raised = self._boxes(per_period(sx0) + shift, per_period(sx1) + shift, per_period(sy0), per_period(sy1),
                             torch.zeros_like(shift), torch.full_like(shift, bottom), per_period(svalid))
        s1 = start + part
        s2 = s1 + m.flat_block_width / 2 + gap
        s3 = s2 + m.flat_block_width + gap
        x0 = torch.stack([s1, s2, s3], -1).reshape(n, -1)
        x1 = torch.stack([s1 + m.flat_block_width / 2, s2 + m.flat_block_width, start + m.period], -1).reshape(n, -1)
        strips = self._boxes(x0, x1, fy - w - 1.0, fy + w + 1.0, torch.zeros_like(x0), torch.full_like(x0, bottom),
                             torch.ones_like(x0, dtype=torch.bool))
        all_pos, all_size = zip(base, raised, strips)
        return torch.cat(all_pos, 1), torch.cat(all_size, 1), torch.full_like(d, -m.gap_depth)


def _parked(device: torch.device) -> torch.Tensor:
    """PARKED as a (3,) tensor made by kernels alone (no host copy), so that a layout can be captured in a
    CUDA graph (common/cuda_graph.py)."""
    out = torch.empty(3, device=device)
    for i, value in enumerate(PARKED):
        out[i:i + 1].fill_(value)  # a fill kernel; `out[i] = value` would copy a host tensor
    return out


def _checkerboard(x: torch.Tensor, y: torch.Tensor, size: float, low: torch.Tensor, high: torch.Tensor,
                  columns: int | None = None) -> torch.Tensor:
    """flygym's checkerboard of boxes 1.1 x `size` wide centred every `size` from the origin of x and y;
    box (i, j) is `high` where i and j have the same parity, else `low` (per world, (N, 1)).
    `columns` limits i to 0..columns-1.

    A point lies in its own cell's box and, within 0.05 `size` of a cell border, also in the neighbour's
    across it (and, near a corner, the diagonal one): four candidates, not nine (fewer kernels per step)."""
    u, v = x / size, y / size
    i0, j0 = torch.floor(u), torch.floor(v)
    fu, fv = u - i0, v - j0
    near_u, near_v = (fu - 0.5).abs() >= 0.45, (fv - 0.5).abs() >= 0.45  # the boxes overhang 0.05 size
    own = torch.remainder(i0 + j0, 2) == 0
    mine, other = torch.where(own, high, low), torch.where(own, low, high)  # diagonal: mine; sides: other
    if columns is None:
        return torch.where(near_u | near_v, torch.maximum(mine, other), mine)
    i_near = i0 + torch.where(fu > 0.5, 1.0, -1.0)
    own_ok = (i0 >= 0) & (i0 < columns)
    near_ok = near_u & (i_near >= 0) & (i_near < columns)
    inf = torch.full_like(mine, -math.inf)
    best = torch.where(own_ok, mine, inf)
    best = torch.where(near_v & own_ok, torch.maximum(best, other), best)
    best = torch.where(near_ok, torch.maximum(best, other), best)
    return torch.where(near_ok & near_v, torch.maximum(best, mine), best)

"""The land of one scene: fields, roads, tracks, buildings, structures, trees, water and vehicles as
polygons in full-size pixel units (``fpx``: RGB pixels of the full ~3400 px scene, ~0.31 m).

:func:`make_layout` returns a :class:`Layout`: the label layers (DSTL layer name -> polygons), the
row direction of crop fields, and the objects by kind (:class:`Parts`) for
:func:`sattag.synth.dress.dress` to paint. Besides the labelled objects the land has what real scenes
have and labels leave out: fallow fields, bare building plots, yards, car parks and patios,
orchards, field margins and animal trails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon, box

from sattag.synth.shapes import (circles, curve, drop_overlaps, fast_union, l_shapes, polys_of, rot_rects,
                                 union)
from sattag.synth.surfaces import Paint


@dataclass
class Layout:
    """The land of one scene in full-size pixel units (fpx)."""

    width: float
    height: float
    # layer name -> list of polygons (labels)
    layers: dict[str, list] = field(default_factory=dict)
    # crop fields with their row direction and period (fpx) for row texture
    fields: list[tuple[object, float, float]] = field(default_factory=list)
    # the objects by kind, for :func:`sattag.synth.dress.dress`
    parts: "Parts | None" = None
    # painter's list for rendering, in painting order (filled by ``dress``)
    paint: list[Paint] = field(default_factory=list)
    # what casts shadows (buildings, structures, trees, bushes): (geometry, height in fpx, is a crown)
    casters: list[tuple[object, float, bool]] = field(default_factory=list)

    def add(self, layer: str, geoms) -> None:
        """Add label polygons to ``layer``, cut at the scene's edge as the real labels are."""
        frame = box(0, 0, self.width, self.height)
        geoms = [g for g in geoms if g is not None and not g.is_empty]
        if geoms:
            arr = np.array(geoms, dtype=object)
            inside = shapely.within(arr, frame)
            arr[~inside] = shapely.intersection(arr[~inside], frame)
            geoms = [g for g in arr if not g.is_empty and g.area > 0]
        self.layers.setdefault(layer, []).extend(geoms)


@dataclass
class Parts:
    """The objects of a scene by kind (fpx), as :func:`sattag.synth.dress.dress` paints them.

    ``crop_fields``: (field, row direction); ``track_lines``: (centre line, half width) of cart tracks;
    ``roads``: (surface, is a main road); ``buildings``: roof kind -> footprints; ``rects``: id of a
    rectangular house -> (cx, cy, w, h, angle); ``no_tree``: where no tree may stand.
    """

    kind: str
    meadow: list
    orchards: list
    wood_cells: list
    settle_blocks: list
    paved: list
    patios: list
    crop_fields: list
    margins: list
    tracks: list
    track_lines: list
    paths: list
    river: list
    ponds: list
    roads: list
    woods: list
    hedges: list
    groups: list
    singles: list
    orchard_trees: list
    buildings: dict
    rects: dict
    sheds: list
    walls: list
    structures: list
    pylons: list
    fences: list
    large_vehicles: list
    small_vehicles: list
    no_tree: object


class _NearParts:
    """A polygonal geometry that small ones are cut by, many times: :meth:`around` gives the parts of it
    that can touch a geometry, for ``g.difference(near.around(g))`` = ``g.difference(whole)``.

    GEOS cuts ``a.difference(b)`` by clipping ``b`` to ``a``'s envelope (expanded by a tenth) and goes
    over every vertex of ``b`` to do so; parts of ``b`` wholly outside are clipped away. So the parts
    whose envelopes reach that region (with a wide margin), in their order, plus the parts that make
    ``b``'s envelope (so GEOS takes the same path: its envelope checks see the same extent), give the
    same result, vertex for vertex, without going over the rest.
    """

    def __init__(self, geom):
        self.whole = geom
        self.parts = None
        if isinstance(geom, MultiPolygon) and len(geom.geoms) > 8:
            self.parts = np.array(list(geom.geoms), dtype=object)
            self.tree = shapely.STRtree(self.parts)
            b = shapely.bounds(self.parts)
            self.extent = np.unique([b[:, 0].argmin(), b[:, 1].argmin(), b[:, 2].argmax(), b[:, 3].argmax()])

    def around(self, g):
        if self.parts is None or g.is_empty:
            return self.whole
        x0, y0, x1, y1 = g.bounds
        m = 1.0 + 0.25 * max(x1 - x0, y1 - y0)
        near = self.tree.query(box(x0 - m, y0 - m, x1 + m, y1 + m))
        return MultiPolygon(list(self.parts[np.union1d(near, self.extent)]))


_SCENE_TYPES = ("rural", "village", "suburban", "urban")
#: land-use probabilities per scene type: crop, meadow, settlement, woodland
_LANDUSE = {
    "rural": (0.47, 0.37, 0.04, 0.12),
    "village": (0.35, 0.33, 0.22, 0.1),
    "suburban": (0.23, 0.28, 0.41, 0.08),
    "urban": (0.06, 0.12, 0.77, 0.05),
}


def make_layout(rng: np.random.Generator, W: float, H: float) -> Layout:
    """Make the land of one scene: every class with plausible shapes, in fpx (0..W, 0..H), with the
    label layers and the objects by kind (what they are made of: :func:`sattag.synth.dress.dress`)."""
    L = Layout(W, H)
    frame = box(0, 0, W, H)
    kind = _SCENE_TYPES[rng.choice(4, p=[0.5, 0.3, 0.14, 0.06])]
    p_use = _LANDUSE[kind]

    # ---- field grid: jittered, rotated; cells are fields / blocks
    cs = rng.uniform(520, 1000)
    theta = rng.uniform(-0.5, 0.5)
    pad = 0.3 * max(W, H)
    nx = int((W + 2 * pad) / cs) + 2
    ny = int((H + 2 * pad) / cs) + 2
    gx, gy = np.meshgrid(np.arange(nx + 1) * cs - pad, np.arange(ny + 1) * cs - pad)
    gx = gx + rng.uniform(-0.22, 0.22, gx.shape) * cs
    gy = gy + rng.uniform(-0.22, 0.22, gy.shape) * cs
    cxm, cym = W / 2, H / 2
    c, s = math.cos(theta), math.sin(theta)
    X = cxm + c * (gx - cxm) - s * (gy - cym)
    Y = cym + s * (gx - cxm) + c * (gy - cym)
    corners = np.stack([X, Y], -1)  # (ny+1, nx+1, 2)
    quads = np.stack(
        [corners[:-1, :-1], corners[:-1, 1:], corners[1:, 1:], corners[1:, :-1], corners[:-1, :-1]], axis=2
    ).reshape(-1, 5, 2)
    cells = shapely.polygons(quads)
    keep = shapely.intersects(cells, frame)
    cell_idx = np.flatnonzero(keep)
    cells = cells[keep]
    use = rng.choice(4, size=len(cells), p=p_use)  # 0 crop 1 meadow 2 settlement 3 woodland
    # settlements cluster: a cell next to a settlement tends to be one (smooth it once)
    iy, ix = np.divmod(cell_idx, nx)
    grid_use = np.full((ny, nx), -1)
    grid_use[iy, ix] = use
    for k, (a, b) in enumerate(zip(iy, ix)):
        nb = grid_use[max(0, a - 1): a + 2, max(0, b - 1): b + 2]
        if use[k] != 2 and (nb == 2).sum() >= 3 and rng.random() < 0.5:
            use[k] = 2

    # ---- roads: some full grid lines, a curvy main road, streets round settlement cells
    road_lines = []  # (LineString, half width)
    for axis in (0, 1):
        n_lines = rng.poisson({"rural": 0.3, "village": 0.5, "suburban": 0.9, "urban": 1.4}[kind])
        lines = corners[rng.integers(1, ny, n_lines)] if axis == 0 else corners[:, rng.integers(1, nx, n_lines)].transpose(1, 0, 2)
        for ln in lines:
            road_lines.append((shapely.linestrings(ln), rng.uniform(8, 12)))
    if rng.random() < 0.7:
        side = rng.integers(4)
        start = [(0, rng.uniform(0, H)), (W, rng.uniform(0, H)), (rng.uniform(0, W), 0), (rng.uniform(0, W), H)][side]
        heading = [0, math.pi, math.pi / 2, -math.pi / 2][side] + rng.normal(0, 0.3)
        pts = curve(rng, np.array(start) - 200 * np.array([math.cos(heading), math.sin(heading)]), heading, 1.5 * (W + H), 60, 0.03)
        road_lines.append((shapely.linestrings(pts), rng.uniform(9, 13)))
    settle = np.flatnonzero(use == 2)
    street_lines = []
    for k in settle:
        # streets along some sides of the block, and through larger blocks
        q = shapely.get_coordinates(cells[k])
        for e in range(4):
            if rng.random() < 0.22:
                street_lines.append((shapely.linestrings(q[e:e + 2]), rng.uniform(5, 7)))
        if cells[k].area > 500 ** 2:
            a, b = (q[0] + q[1]) / 2, (q[2] + q[3]) / 2
            street_lines.append((shapely.linestrings([a, b]), rng.uniform(4.5, 6.5)))
    all_roads = road_lines + street_lines
    road_geoms = [ln.buffer(hw, quad_segs=4) for ln, hw in all_roads]
    roads = union(road_geoms).intersection(frame) if road_geoms else Polygon()

    # ---- river (waterway) in some scenes
    river = Polygon()
    if rng.random() < 0.3:
        vertical = rng.random() < 0.5
        t = np.linspace(-300, (H if vertical else W) + 300, 200)
        base = rng.uniform(0.2, 0.8) * (W if vertical else H)
        wav = (rng.uniform(80, 250) * np.sin(2 * np.pi * t / rng.uniform(900, 2200) + rng.uniform(0, 6))
               + rng.uniform(30, 120) * np.sin(2 * np.pi * t / rng.uniform(300, 700) + rng.uniform(0, 6)))
        off = base + wav + np.cumsum(rng.normal(0, 6, t.size))
        pts = np.stack([off, t], 1) if vertical else np.stack([t, off], 1)
        river = shapely.linestrings(pts).buffer(rng.uniform(22, 70), quad_segs=6).intersection(frame)
    river_zone = river.buffer(12) if not river.is_empty else river

    # ---- ponds (standing water)
    ponds = []
    for _ in range(rng.poisson(2.0 if kind != "urban" else 1.0)):
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        parts = []
        for _ in range(rng.integers(1, 4)):
            r = rng.uniform(15, 70)
            e = shapely.affinity.scale(shapely.Point(cx + rng.normal(0, r / 2), cy + rng.normal(0, r / 2)).buffer(r, quad_segs=8),
                                       rng.uniform(0.6, 1.6), 1.0)
            parts.append(shapely.affinity.rotate(e, rng.uniform(0, 180), origin="centroid"))
        pond = union(parts)
        if not pond.buffer(8).intersects(roads) and not pond.intersects(river_zone):
            ponds.append(pond)
    pond_u = union(ponds).intersection(frame) if ponds else Polygon()
    water_block = union([river_zone, pond_u.buffer(6) if ponds else Polygon()])

    # ---- fields: crops, meadow, woodland, settlement ground
    margin = rng.uniform(6, 14)
    crop_fields, meadow, settle_blocks, wood_cells, orchards = [], [], [], [], []
    for k, cell in enumerate(cells):
        inner = cell.buffer(-margin, join_style="mitre")
        if inner.is_empty:
            continue
        if use[k] == 0:
            f = inner.difference(roads.buffer(4)).difference(water_block).intersection(frame)
            if f.area > 2000:
                ang = theta + (0 if rng.random() < 0.5 else math.pi / 2) + rng.normal(0, 0.05)
                crop_fields.append((f, None, ang))
        elif use[k] == 1:
            if rng.random() < 0.2:
                orchards.append(inner.difference(roads.buffer(4)).difference(water_block))
            else:
                meadow.append(inner)
        elif use[k] == 2:
            settle_blocks.append(inner)
        else:
            wood_cells.append(inner)

    # ---- buildings in settlement blocks (plus large ones), sheds (structures)
    buildings_res, buildings_non, buildings_large, sheds, patios, outbuildings = [], [], [], [], [], []
    rects: dict[int, tuple] = {}
    paved = []
    busy = union([roads, water_block])
    for blk in settle_blocks:
        core = blk.buffer(-rng.uniform(6, 14))
        if core.is_empty:
            continue
        core_p = core
        shapely.prepare(core_p)
        if rng.random() < {"rural": 0.15, "village": 0.2, "suburban": 0.3, "urban": 0.5}[kind]:
            # a large (industrial / public) building with a yard, maybe a courtyard
            c0 = core.representative_point()
            w, h = rng.uniform(120, 360), rng.uniform(100, 260)
            big = rot_rects(c0.x, c0.y, w, h, theta + rng.normal(0, 0.03))[0]
            if rng.random() < 0.45:
                big = big.difference(rot_rects(c0.x, c0.y, w * rng.uniform(0.35, 0.6), h * rng.uniform(0.35, 0.6), theta)[0])
            big = big.intersection(core)
            if big.area > 3000 and not big.intersects(busy):
                buildings_large.append(big)
                yard = big.buffer(rng.uniform(25, 60), join_style="mitre").intersection(core).difference(big)
                paved.append(yard)
                busy = busy.union(big.buffer(20))
        if rng.random() < 0.2:
            # a car park
            p0 = core.representative_point() if rng.random() < 0.3 else None
            minx, miny, maxx, maxy = core.bounds
            cx0, cy0 = (p0.x, p0.y) if p0 is not None else (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            lot = rot_rects(cx0, cy0, rng.uniform(60, 160), rng.uniform(40, 100), theta)[0].intersection(core)
            if lot.area > 1500 and not lot.intersects(busy):
                paved.append(lot)
                busy = busy.union(lot.buffer(4))
        # houses on a lattice in the block's frame
        minx, miny, maxx, maxy = core.bounds
        sx, sy = rng.uniform(60, 110), rng.uniform(70, 120)
        rr = math.hypot(maxx - minx, maxy - miny) / 2 + sx
        u, v = np.meshgrid(np.arange(-rr, rr, sx), np.arange(-rr, rr, sy))
        u = u.ravel() + rng.normal(0, 4, u.size)
        v = v.ravel() + rng.normal(0, 4, v.size)
        mcx, mcy = (minx + maxx) / 2, (miny + maxy) / 2
        px = mcx + c * u - s * v
        py = mcy + s * u + c * v
        dens = {"rural": 0.55, "village": 0.7, "suburban": 0.8, "urban": 0.9}[kind]
        keep = shapely.contains_xy(core, px, py) & (rng.random(px.size) < dens)
        px, py = px[keep], py[keep]
        n = px.size
        if n == 0:
            continue
        w = np.minimum(rng.uniform(26, 60, n), sx - 16)
        h = np.minimum(rng.uniform(30, 75, n), sy - 16)
        ang = theta + rng.normal(0, 0.03, n) + np.where(rng.random(n) < 0.2, math.pi / 2, 0)
        is_l = rng.random(n) < 0.22
        polys = np.empty(n, dtype=object)
        polys[~is_l] = rot_rects(px[~is_l], py[~is_l], w[~is_l], h[~is_l], ang[~is_l])
        if is_l.any():
            polys[is_l] = l_shapes(rng, px[is_l], py[is_l], w[is_l] * 1.3, h[is_l] * 1.3, ang[is_l])
        ok = shapely.within(polys, core_p) & ~shapely.intersects(polys, busy)
        for k in np.flatnonzero(ok & ~is_l):  # rectangles: a ridge along the long side
            rects[id(polys[k])] = (px[k], py[k], w[k], h[k], ang[k])
        polys = polys[ok]
        nonres = rng.random(polys.size) < 0.18
        buildings_res.extend(polys[~nonres])
        buildings_non.extend(polys[nonres])
        # patios and driveways in front of some houses: paved, unlabelled
        m = rng.random(ok.sum()) < 0.45
        if m.any():
            hx, hy, hw, hh, ha = px[ok][m], py[ok][m], w[ok][m], h[ok][m], ang[ok][m]
            depth = rng.uniform(6, 16, hx.size)
            d = hh / 2 + depth / 2
            patios.extend(rot_rects(hx + np.sin(ha) * d, hy - np.cos(ha) * d, hw * rng.uniform(0.4, 1.0, hx.size),
                                    depth, ha))
        # garden sheds behind some houses
        m = rng.random(ok.sum()) < 0.6
        if m.any():
            hx, hy, hw, hh, ha = px[ok][m], py[ok][m], w[ok][m], h[ok][m], ang[ok][m]
            d = hh / 2 + rng.uniform(8, 16, hx.size)
            shx, shy = hx - np.sin(ha) * d, hy + np.cos(ha) * d
            sq = rot_rects(shx, shy, rng.uniform(5, 26, hx.size), rng.uniform(5, 18, hx.size), ha)
            sq = sq[shapely.within(sq, core_p) & ~shapely.intersects(sq, busy)]
            # a garage or outbuilding is labelled a building, a shed a small structure: the same
            # kind of small roofed object, either way
            garage = rng.random(sq.size) < 0.3
            sheds.extend(sq[~garage])
            outbuildings.extend(sq[garage])
    # houses of neighbouring lattice cells may touch: keep buildings apart, as they are on the ground
    keep_b = set(map(id, drop_overlaps(buildings_large + buildings_res + buildings_non, pad=1.5)))
    buildings_res = [b for b in buildings_res if id(b) in keep_b]
    buildings_non = [b for b in buildings_non if id(b) in keep_b]
    keep_o = set(map(id, drop_overlaps(buildings_large + buildings_res + buildings_non + outbuildings, pad=1.0)))
    outbuildings = [b for b in outbuildings if id(b) in keep_o]
    all_buildings = buildings_res + buildings_non + buildings_large + outbuildings
    build_u = fast_union(all_buildings)
    shapely.prepare(build_u)

    # ---- structures elsewhere: silos/tanks (circles), pylons and huts in fields
    # compound and garden walls round some houses (small structures too): ~0.5 m wide
    walls, garden_fences = [], []
    res_arr = np.array(buildings_res, dtype=object)
    clear = union([build_u.buffer(2), busy])  # no wall through houses, roads or water
    near_clear = _NearParts(clear)
    for b in res_arr[rng.random(len(res_arr)) < 0.7]:
        if id(b) not in rects:
            continue
        cx0, cy0, w0, h0, a0 = rects[id(b)]
        d = rng.uniform(8, 20)
        ring = rot_rects(cx0, cy0, w0 + 2 * d, h0 + 2 * d, a0)[0].exterior
        wall = ring.buffer(rng.uniform(0.7, 1.2), cap_style="flat", join_style="mitre")
        # a gate, and nothing through houses, roads or water
        gate = shapely.Point(shapely.get_coordinates(ring)[int(rng.integers(4))]).buffer(rng.uniform(8, 14))
        wall = wall.difference(gate)
        wall = wall.difference(near_clear.around(wall))
        # masonry walls, or light fences (posts and wire: mostly the garden between them)
        (walls if rng.random() < 0.5 else garden_fences).extend(p for p in polys_of(wall) if p.area > 4)
    structs = list(sheds) + walls
    pylons = []
    n_st = rng.poisson(90 + 60 * (kind in ("suburban", "urban")))
    xy = rng.uniform([0, 0], [W, H], (n_st, 2))
    st = np.where(rng.random(n_st) < 0.3, circles(xy, rng.uniform(3, 16, n_st), 4),
                  rot_rects(xy[:, 0], xy[:, 1], rng.uniform(5, 36, n_st), rng.uniform(5, 24, n_st), theta))
    st = st[~shapely.intersects(st, busy) & ~shapely.intersects(st, build_u)]
    structs.extend(st)
    if rng.random() < 0.4:  # a power line: pylons in a row (unscored layer)
        p0 = rng.uniform([0, 0], [W, H])
        hd = rng.uniform(0, math.pi)
        t = np.arange(-3000, 3000, 900.0)
        pxy = p0 + np.stack([np.cos(hd) * t, np.sin(hd) * t], 1)
        pl = rot_rects(pxy[:, 0], pxy[:, 1], 9, 9, hd)
        pylons = list(pl[shapely.within(pl, frame) & ~shapely.intersects(pl, busy)])

    # ---- tracks: some field-grid edges, footpaths
    tracks, paths = [], []
    edges = []
    for a in range(ny + 1):
        for b in range(nx):
            edges.append((corners[a, b], corners[a, b + 1]))
    for a in range(ny):
        for b in range(nx + 1):
            edges.append((corners[a, b], corners[a + 1, b]))
    edges = np.array(edges)
    p_track = {"rural": 0.7, "village": 0.6, "suburban": 0.4, "urban": 0.15}[kind]
    sel = rng.random(len(edges)) < p_track
    track_lines = []  # (centre line, half width) of the cart tracks on field edges
    if sel.any():
        lines = shapely.linestrings(edges[sel])
        hws = rng.uniform(6, 10, sel.sum())
        tracks.extend(shapely.buffer(lines, hws, quad_segs=2))
        track_lines = list(zip(lines, hws))
    for f, _, ang in crop_fields:  # tractor tracks across some fields
        if rng.random() < 0.8:
            p = f.representative_point()
            ln = shapely.linestrings([[p.x - 3000 * math.cos(ang), p.y - 3000 * math.sin(ang)],
                                      [p.x + 3000 * math.cos(ang), p.y + 3000 * math.sin(ang)]])
            tracks.append(ln.buffer(rng.uniform(4, 6), quad_segs=2).intersection(f))
    for _ in range(rng.poisson(8)):
        pts = curve(rng, rng.uniform([0, 0], [W, H]), rng.uniform(0, 2 * math.pi), rng.uniform(400, 1500), 40, 0.12)
        paths.append(shapely.linestrings(pts).buffer(rng.uniform(2, 4), quad_segs=2))
    track_u = union(tracks).difference(roads).difference(water_block).intersection(frame) if tracks else Polygon()
    path_u = union(paths).difference(roads).difference(water_block).difference(build_u).intersection(frame) if paths else Polygon()

    # ---- fences round paddocks and fields (small structures): posts and wire, mostly the ground
    # between them, along the field's side of some field edges
    fences = list(garden_fences)
    fe = np.flatnonzero(rng.random(len(edges)) < 0.45)
    for e in edges[fe]:
        d = e[1] - e[0]
        nrm = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-9)
        off = nrm * margin * 0.8 * (1 if rng.random() < 0.5 else -1)
        fence = shapely.linestrings(e + off).buffer(rng.uniform(0.8, 1.4), cap_style="flat")
        fences += [p for p in polys_of(fence.difference(busy).difference(build_u).intersection(frame)) if p.area > 4]

    # ---- trees
    no_tree = union([roads.buffer(2), water_block,
                      fast_union(list(shapely.buffer(np.array(all_buildings + structs, dtype=object), 4, quad_segs=1,
                                                      join_style="mitre")))])
    shapely.prepare(no_tree)
    woods = []
    for wc in wood_cells:
        # open woodland: crowns of many sizes, closing up in places, with glades between them
        minx, miny, maxx, maxy = wc.bounds
        n = int(wc.area / rng.uniform(350, 700)) + 5
        xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
        xy = xy[shapely.contains_xy(wc, xy[:, 0], xy[:, 1])]
        if len(xy):
            blob = union(circles(xy, rng.uniform(5, 18, len(xy)), 3)).intersection(wc.buffer(20))
            woods.append(blob.difference(no_tree))
    groups = []
    for f in [f for f, _, _ in crop_fields] + meadow:  # tree groups in crop fields and meadows
        for _ in range(rng.poisson(4.5)):
            p = f.representative_point() if rng.random() < 0.2 else None
            minx, miny, maxx, maxy = f.bounds
            cx, cy = (p.x, p.y) if p is not None else (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if not f.contains(shapely.Point(cx, cy)):
                continue
            k = rng.integers(5, 35)
            xy = np.array([cx, cy]) + rng.normal(0, rng.uniform(15, 45), (k, 2))
            groups.append(union(circles(xy, rng.uniform(4, 14, k), 3)).intersection(f).difference(no_tree))
    hedges = []
    he = rng.random(len(edges)) < {"rural": 0.35, "village": 0.3, "suburban": 0.15, "urban": 0.05}[kind]
    for e in edges[he]:
        # a wobbly line of shrubs along the field edge, with a gap here and there
        ln = np.linalg.norm(e[1] - e[0])
        t = np.arange(0, ln, 14.0) / max(ln, 1)
        xy = e[0] + t[:, None] * (e[1] - e[0]) + rng.normal(0, 2.0, (t.size, 2))
        cut = np.flatnonzero(rng.random(t.size) < 0.04)
        for seg in np.split(xy, cut):
            if len(seg) >= 2:
                hedges.append(shapely.linestrings(seg).buffer(rng.uniform(5, 10), quad_segs=2))
    hedge_u = union(hedges).difference(no_tree).intersection(frame) if hedges else Polygon()
    # standalone trees: gardens, meadows, along roads
    n_single = rng.poisson({"rural": 1500, "village": 2200, "suburban": 2600, "urban": 1600}[kind])
    xy = rng.uniform([0, 0], [W, H], (n_single, 2))
    in_settle = np.zeros(n_single, bool)
    for blk in settle_blocks + meadow:
        in_settle |= shapely.contains_xy(blk, xy[:, 0], xy[:, 1])
    xy = xy[in_settle | (rng.random(n_single) < 0.15)]
    singles = circles(xy, rng.uniform(3, 12, len(xy)), 3)
    # a tree stands clear of roads and houses, but its crown may hang over them
    singles = singles[~shapely.contains_xy(no_tree, xy[:, 0], xy[:, 1])]
    singles = polys_of(union(singles).intersection(frame)) if len(singles) else []

    # ---- vehicles on roads and in yards
    small_v, moto, large_v = [], [], []
    dens_small = {"rural": 1 / 2500, "village": 1 / 1300, "suburban": 1 / 700, "urban": 1 / 350}[kind]
    for ln, hw in all_roads:
        length = ln.length
        for big in (False, True):
            n = rng.poisson(length * dens_small * (0.05 if big else 1.0))
            if n == 0:
                continue
            d = rng.uniform(0, length, n)
            p1 = shapely.get_coordinates(shapely.line_interpolate_point(ln, np.maximum(d - 3, 0)))
            p2 = shapely.get_coordinates(shapely.line_interpolate_point(ln, np.minimum(d + 3, length)))
            tang = np.arctan2(p2[:, 1] - p1[:, 1], p2[:, 0] - p1[:, 0])
            side = np.where(rng.random(n) < 0.5, -1, 1) * hw * rng.uniform(0.3, 0.55, n)
            mid = (p1 + p2) / 2
            cx, cy = mid[:, 0] - np.sin(tang) * side, mid[:, 1] + np.cos(tang) * side
            if big:
                v = rot_rects(cx, cy, rng.uniform(35, 60, n), rng.uniform(8.5, 10.5, n), tang)
                v = v[shapely.within(v, frame)]
                large_v.extend(v)
            else:
                is_m = rng.random(n) < 0.04
                v = rot_rects(cx, cy, np.where(is_m, 6.5, rng.uniform(13, 17, n)), np.where(is_m, 2.5, rng.uniform(5.5, 6.5, n)), tang)
                okv = shapely.within(v, frame)
                small_v.extend(v[okv & ~is_m])
                moto.extend(v[okv & is_m])
    for yard in paved:  # parked cars in yards
        for p in polys_of(yard):
            if p.area < 3000:
                continue
            minx, miny, maxx, maxy = p.bounds
            n = int(p.area / 2500)
            xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
            v = rot_rects(xy[:, 0], xy[:, 1], 15, 6, theta + math.pi / 2 * rng.integers(0, 2, n))
            v = v[shapely.within(v, p)]
            small_v.extend(v)
            if rng.random() < 0.5:  # lorries at depots and in car parks
                k = int(rng.integers(1, 4))
                xy = rng.uniform([minx, miny], [maxx, maxy], (k, 2))
                v = rot_rects(xy[:, 0], xy[:, 1], rng.uniform(35, 60, k), rng.uniform(8.5, 10.5, k),
                              theta + math.pi / 2 * rng.integers(0, 2, k))
                large_v.extend(v[shapely.within(v, p)])
    # small vehicles must not overlap each other (keep the first of overlapping ones)
    small_v = drop_overlaps(small_v)
    large_v = drop_overlaps(large_v)
    large_u = union(large_v)
    small_v = [v for v in small_v if not v.intersects(large_u)]

    # ---- crops class polygons: fields minus ponds (trees inside stay: classes overlap as in reality)
    crop_polys = []
    for f, mat, ang in crop_fields:
        f2 = f.difference(pond_u).difference(build_u) if not pond_u.is_empty else f
        if f2.area > 2000:
            crop_polys.append(f2)
            L.fields.append((f2, ang, rng.uniform(6, 14)))

    # ---- orchards (an unscored layer): fruit trees in rows over grass, neither Trees nor Crops
    orchard_trees = []
    for o in orchards:
        if o.is_empty:
            continue
        c0 = o.centroid
        minx, miny, maxx, maxy = o.bounds
        rr = math.hypot(maxx - minx, maxy - miny) / 2
        dx, dy = rng.uniform(22, 36), rng.uniform(22, 36)
        u, v = np.meshgrid(np.arange(-rr, rr, dx), np.arange(-rr, rr, dy))
        u, v = u.ravel(), v.ravel()
        ox = c0.x + c * u - s * v + rng.normal(0, 1.0, u.size)
        oy = c0.y + s * u + c * v + rng.normal(0, 1.0, u.size)
        inside = shapely.contains_xy(o, ox, oy) & (rng.random(u.size) < 0.9)
        crowns = circles(np.stack([ox[inside], oy[inside]], 1), rng.uniform(5, 11, inside.sum()), 2)
        orchard_trees += list(crowns[~shapely.intersects(crowns, no_tree)])
    # ---- unlabelled lines of bare ground: field margins, ditches, animal trails
    margins = []
    me = rng.random(len(edges)) < 0.3
    for e in edges[me]:
        margins.append(shapely.linestrings(e).buffer(rng.uniform(2, 5), quad_segs=1))
    for _ in range(rng.poisson(4)):
        pts = curve(rng, rng.uniform([0, 0], [W, H]), rng.uniform(0, 2 * math.pi), rng.uniform(300, 1200), 30, 0.2)
        margins.append(shapely.linestrings(pts).buffer(rng.uniform(1.2, 2.5), quad_segs=1))

    bridges = roads.intersection(river) if not river.is_empty else Polygon()
    waterway = river.difference(roads) if not river.is_empty else Polygon()

    # ---- label layers
    L.add("001_MM_L3_RESIDENTIAL_BUILDING", buildings_res)
    L.add("001_MM_L3_NON_RESIDENTIAL_BUILDING", buildings_non + outbuildings)
    L.add("001_MM_L2_LARGE_BUILDING", buildings_large)
    L.add("001_MM_L5_MISC_SMALL_STRUCTURE", [s.intersection(frame) for s in structs] + fences)
    L.add("002_TR_L3_GOOD_ROADS", polys_of(roads))
    L.add("002_TR_L4_POOR_DIRT_CART_TRACK", polys_of(track_u))
    L.add("002_TR_L6_FOOTPATH_TRAIL", polys_of(path_u))
    L.add("006_VEG_L2_WOODLAND", [p for w in woods for p in polys_of(w)])
    L.add("006_VEG_L3_HEDGEROWS", polys_of(hedge_u))
    L.add("006_VEG_L5_GROUP_TREES", [p for g in groups for p in polys_of(g)])
    L.add("006_VEG_L5_STANDALONE_TREES", singles)
    for f in crop_polys:
        L.add("007_AGR_L6_ROW_CROP" if rng.random() < 0.7 else "007_AGR_L2_CONTOUR_PLOUGHING_CROPLAND", polys_of(f))
    L.add("008_WTR_L3_WATERWAY", polys_of(waterway))
    L.add("008_WTR_L2_STANDING_WATER", polys_of(pond_u))
    L.add("003_VH_L4_LARGE_VEHICLE", large_v)
    L.add("003_VH_L5_SMALL_VEHICLE", small_v)
    L.add("003_VH_L6_MOTORBIKE", moto)
    L.add("001_MM_L4_BRIDGE", polys_of(bridges))
    L.add("004_UPI_L5_PYLONS", pylons)
    L.add("007_AGR_L2_ORCHARD", [p for o in orchards for p in polys_of(o)])

    L.parts = Parts(
        kind=kind, meadow=meadow, orchards=[p for o in orchards for p in polys_of(o)], wood_cells=wood_cells,
        settle_blocks=settle_blocks, paved=paved, patios=patios, crop_fields=[(f, ang) for f, _, ang in crop_fields],
        margins=margins, tracks=tracks, track_lines=track_lines, paths=paths, river=polys_of(river),
        ponds=polys_of(pond_u), roads=[(g.intersection(frame), k < len(road_lines)) for k, g in enumerate(road_geoms)],
        woods=[p for w in woods for p in polys_of(w)], hedges=polys_of(hedge_u),
        groups=[p for g in groups for p in polys_of(g)], singles=singles, orchard_trees=orchard_trees,
        buildings={"residential": buildings_res, "non_residential": buildings_non, "large": buildings_large,
                   "shed": outbuildings},
        rects=rects, sheds=list(sheds), walls=walls, structures=structs[len(sheds) + len(walls):], pylons=pylons,
        fences=fences, large_vehicles=large_v, small_vehicles=small_v + moto, no_tree=no_tree)
    return L

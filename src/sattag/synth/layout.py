"""The land of one scene: fields, roads, tracks, buildings, structures, trees, water and vehicles as
polygons in full-size pixel units (``fpx``: RGB pixels of the full ~3400 px scene, ~0.31 m).

:func:`make_layout` returns a :class:`Layout`: the label layers (DSTL layer name -> polygons) and the
painter's list of (polygon, material) the renderer draws, with shadow casters, crop-row directions
and per-object brightness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Polygon, box

from sattag.synth.shapes import (circles, curve, drop_overlaps, fast_union, l_shapes, polys_of, rot_rects,
                                 union)


@dataclass
class Layout:
    """The land of one scene in full-size pixel units (fpx)."""

    width: float
    height: float
    # layer name -> list of polygons (labels)
    layers: dict[str, list] = field(default_factory=dict)
    # painter's list for rendering: (geometry, material name), in painting order
    paint: list[tuple[object, str]] = field(default_factory=list)
    # geometries that cast shadows (buildings, trees) with their height factor
    shadow_casters: list[tuple[object, float]] = field(default_factory=list)
    # crop fields with their row direction and period (fpx) for row texture
    fields: list[tuple[object, float, float]] = field(default_factory=list)
    # objects whose brightness differs from their material's (roof age, field moisture): (geometry, factor)
    tints: list[tuple[object, float]] = field(default_factory=list)

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


_SCENE_TYPES = ("rural", "village", "suburban", "urban")
#: land-use probabilities per scene type: crop, meadow, settlement, woodland
_LANDUSE = {
    "rural": (0.60, 0.24, 0.04, 0.12),
    "village": (0.42, 0.25, 0.23, 0.10),
    "suburban": (0.25, 0.17, 0.50, 0.08),
    "urban": (0.06, 0.06, 0.85, 0.03),
}


def make_layout(rng: np.random.Generator, W: float, H: float) -> Layout:
    """Make the land of one scene: every class with plausible shapes, in fpx (0..W, 0..H)."""
    L = Layout(W, H)
    frame = box(0, 0, W, H)
    kind = _SCENE_TYPES[rng.choice(4, p=[0.4, 0.3, 0.2, 0.1])]
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
        n_lines = rng.poisson({"rural": 0.6, "village": 1.0, "suburban": 1.5, "urban": 2.0}[kind])
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
            if rng.random() < 0.45:
                street_lines.append((shapely.linestrings(q[e:e + 2]), rng.uniform(5, 7)))
        if cells[k].area > 500 ** 2:
            a, b = (q[0] + q[1]) / 2, (q[2] + q[3]) / 2
            street_lines.append((shapely.linestrings([a, b]), rng.uniform(4.5, 6.5)))
    all_roads = road_lines + street_lines
    road_geoms = [ln.buffer(hw, quad_segs=4) for ln, hw in all_roads]
    roads = union(road_geoms).intersection(frame) if road_geoms else Polygon()
    roads_p = shapely.prepare(roads) or roads

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
    crop_fields, meadow, settle_blocks, wood_cells = [], [], [], []
    for k, cell in enumerate(cells):
        inner = cell.buffer(-margin, join_style="mitre")
        if inner.is_empty:
            continue
        if use[k] == 0:
            f = inner.difference(roads.buffer(4)).difference(water_block).intersection(frame)
            if f.area > 2000:
                ang = theta + (0 if rng.random() < 0.5 else math.pi / 2) + rng.normal(0, 0.05)
                crop_fields.append((f, rng.choice(["crop_green", "crop_mid", "crop_ripe"], p=[0.45, 0.3, 0.25]), ang))
        elif use[k] == 1:
            meadow.append(inner)
        elif use[k] == 2:
            settle_blocks.append(inner)
        else:
            wood_cells.append(inner)

    # ---- buildings in settlement blocks (plus large ones), sheds (structures)
    buildings_res, buildings_non, buildings_large, sheds = [], [], [], []
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
        polys = polys[ok]
        nonres = rng.random(polys.size) < 0.18
        buildings_res.extend(polys[~nonres])
        buildings_non.extend(polys[nonres])
        # garden sheds behind some houses
        m = rng.random(ok.sum()) < 0.6
        if m.any():
            hx, hy, hw, hh, ha = px[ok][m], py[ok][m], w[ok][m], h[ok][m], ang[ok][m]
            d = hh / 2 + rng.uniform(8, 16, hx.size)
            shx, shy = hx - np.sin(ha) * d, hy + np.cos(ha) * d
            sq = rot_rects(shx, shy, rng.uniform(9, 24, hx.size), rng.uniform(8, 18, hx.size), ha)
            sq = sq[shapely.within(sq, core_p) & ~shapely.intersects(sq, busy)]
            sheds.extend(sq)
    # houses of neighbouring lattice cells may touch: keep buildings apart, as they are on the ground
    keep_b = set(map(id, drop_overlaps(buildings_large + buildings_res + buildings_non, pad=1.5)))
    buildings_res = [b for b in buildings_res if id(b) in keep_b]
    buildings_non = [b for b in buildings_non if id(b) in keep_b]
    all_buildings = buildings_res + buildings_non + buildings_large
    build_u = fast_union(all_buildings)
    shapely.prepare(build_u)

    # ---- structures elsewhere: silos/tanks (circles), pylons and huts in fields
    structs = list(sheds)
    pylons = []
    n_st = rng.poisson(40 + 50 * (kind in ("suburban", "urban")))
    xy = rng.uniform([0, 0], [W, H], (n_st, 2))
    st = np.where(rng.random(n_st) < 0.3, circles(xy, rng.uniform(6, 20, n_st), 4),
                  rot_rects(xy[:, 0], xy[:, 1], rng.uniform(10, 45, n_st), rng.uniform(8, 30, n_st), theta))
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
    if sel.any():
        lines = shapely.linestrings(edges[sel])
        tracks.extend(shapely.buffer(lines, rng.uniform(6, 9, sel.sum()), quad_segs=2))
    for f, _, ang in crop_fields:  # tractor tracks across some fields
        if rng.random() < 0.5:
            p = f.representative_point()
            ln = shapely.linestrings([[p.x - 3000 * math.cos(ang), p.y - 3000 * math.sin(ang)],
                                      [p.x + 3000 * math.cos(ang), p.y + 3000 * math.sin(ang)]])
            tracks.append(ln.buffer(rng.uniform(4, 6), quad_segs=2).intersection(f))
    for _ in range(rng.poisson(3)):
        pts = curve(rng, rng.uniform([0, 0], [W, H]), rng.uniform(0, 2 * math.pi), rng.uniform(400, 1500), 40, 0.12)
        paths.append(shapely.linestrings(pts).buffer(rng.uniform(2, 3.5), quad_segs=2))
    track_u = union(tracks).difference(roads).difference(water_block).intersection(frame) if tracks else Polygon()
    path_u = union(paths).difference(roads).difference(water_block).difference(build_u).intersection(frame) if paths else Polygon()

    # ---- trees
    no_tree = union([roads.buffer(2), water_block,
                      fast_union(list(shapely.buffer(np.array(all_buildings + structs, dtype=object), 4, quad_segs=1,
                                                      join_style="mitre")))])
    shapely.prepare(no_tree)
    woods = []
    for wc in wood_cells:
        minx, miny, maxx, maxy = wc.bounds
        n = int(wc.area / 2500) + 5
        xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
        xy = xy[shapely.contains_xy(wc, xy[:, 0], xy[:, 1])]
        if len(xy):
            blob = union(circles(xy, rng.uniform(30, 70, len(xy)), 4)).intersection(wc.buffer(20))
            woods.append(blob.difference(no_tree))
    groups = []
    for f, _, _ in crop_fields:  # tree groups inside crop fields
        for _ in range(rng.poisson(0.8)):
            p = f.representative_point() if rng.random() < 0.2 else None
            minx, miny, maxx, maxy = f.bounds
            cx, cy = (p.x, p.y) if p is not None else (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if not f.contains(shapely.Point(cx, cy)):
                continue
            k = rng.integers(4, 25)
            xy = np.array([cx, cy]) + rng.normal(0, rng.uniform(15, 45), (k, 2))
            groups.append(union(circles(xy, rng.uniform(8, 22, k), 4)).intersection(f).difference(no_tree))
    hedges = []
    he = rng.random(len(edges)) < {"rural": 0.25, "village": 0.2, "suburban": 0.1, "urban": 0.03}[kind]
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
    n_single = rng.poisson({"rural": 250, "village": 600, "suburban": 1000, "urban": 700}[kind])
    xy = rng.uniform([0, 0], [W, H], (n_single, 2))
    in_settle = np.zeros(n_single, bool)
    for blk in settle_blocks + meadow:
        in_settle |= shapely.contains_xy(blk, xy[:, 0], xy[:, 1])
    xy = xy[in_settle | (rng.random(n_single) < 0.15)]
    singles = circles(xy, rng.uniform(5, 16, len(xy)), 3)
    singles = singles[~shapely.intersects(singles, no_tree)]
    singles = polys_of(union(singles).intersection(frame)) if len(singles) else []

    # ---- vehicles on roads and in yards
    small_v, moto, large_v = [], [], []
    veh_mat_small = []
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

    bridges = roads.intersection(river) if not river.is_empty else Polygon()
    waterway = river.difference(roads) if not river.is_empty else Polygon()

    # ---- label layers
    L.add("001_MM_L3_RESIDENTIAL_BUILDING", buildings_res)
    L.add("001_MM_L3_NON_RESIDENTIAL_BUILDING", buildings_non)
    L.add("001_MM_L2_LARGE_BUILDING", buildings_large)
    L.add("001_MM_L5_MISC_SMALL_STRUCTURE", [s.intersection(frame) for s in structs])
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

    # ---- painter's list (materials); background (soil/grass mosaic) is drawn by the renderer
    # meadows and fallow (bare, ploughed) fields: not crops, and the crops' main confuser
    L.paint += [(m, "grass" if rng.random() < 0.6 else "soil") for m in meadow]
    # settlement ground: gardens, with paved blocks in the denser places
    p_paved = {"rural": 0.15, "village": 0.2, "suburban": 0.3, "urban": 0.6}[kind]
    L.paint += [(b, "paved" if rng.random() < p_paved else "grass") for b in settle_blocks]
    L.paint += [(p, "paved") for p in paved]
    L.paint += [(f, mat) for f, mat, _ in crop_fields]
    L.paint += [(g, "track") for g in polys_of(track_u) + polys_of(path_u)]
    L.paint += [(g, "water") for g in polys_of(river)]
    L.paint += [(g, "pond") for g in polys_of(pond_u)]
    L.paint += [(g, "road") for g in polys_of(roads)]
    trees_all = L.layers.get("006_VEG_L2_WOODLAND", []) + polys_of(hedge_u) + L.layers.get("006_VEG_L5_GROUP_TREES", []) + singles
    L.paint += [(g, "tree") for g in trees_all]
    roofs = rng.choice(["roof_grey", "roof_red", "roof_dark"], size=len(all_buildings), p=[0.4, 0.4, 0.2])
    L.paint += list(zip(all_buildings, roofs))
    L.paint += [(g, "structure") for g in structs + pylons]
    L.paint += [(g, "truck") for g in large_v]
    cars = rng.choice(["car_white", "car_dark", "car_red"], size=len(small_v) + len(moto), p=[0.5, 0.35, 0.15])
    L.paint += list(zip(small_v + moto, cars))
    L.shadow_casters = [(b, 1.0) for b in all_buildings] + [(t, 1.3) for t in trees_all]
    L.tints = ([(b, f) for b, f in zip(all_buildings, rng.uniform(0.8, 1.2, len(all_buildings)))]
               + [(f, t) for (f, _, _), t in zip(crop_fields, rng.uniform(0.88, 1.12, len(crop_fields)))]
               + [(m, t) for m, t in zip(meadow, rng.uniform(0.9, 1.1, len(meadow)))])
    return L

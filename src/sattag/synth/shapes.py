"""Geometry helpers of the generator: vectorised rotated rectangles and circles, smooth random
curves, unions and rescaling of many shapely polygons at once."""
from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon


def rot_rects(cx, cy, w, h, ang) -> np.ndarray:
    """Rotated rectangles (vectorised): centres, widths along ``ang`` (radians), heights -> polygons."""
    u = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    v = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    return place(u, v, cx, cy, w, h, ang)


def place(u, v, cx, cy, w, h, ang) -> np.ndarray:
    """Unit-shape vertices (u, v) scaled by (w, h), rotated by ``ang`` and moved to (cx, cy)."""
    cx, cy, w, h, ang = (np.atleast_1d(np.asarray(a, float)) for a in (cx, cy, w, h, ang))
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    x = np.asarray(u)[None, :] * w[:, None]
    y = np.asarray(v)[None, :] * h[:, None]
    coords = np.stack([cx[:, None] + c * x - s * y, cy[:, None] + s * x + c * y], axis=-1)
    return shapely.polygons(coords)


def l_shapes(rng, cx, cy, w, h, ang) -> np.ndarray:
    """L-shaped buildings: a rectangle with one corner cut away."""
    n = len(cx)
    a = rng.uniform(-0.15, 0.2, n)
    b = rng.uniform(-0.15, 0.2, n)
    out = []
    for i in range(n):  # few per scene; the cut differs per building
        u = [-0.5, 0.5, 0.5, b[i], b[i], -0.5, -0.5]
        v = [-0.5, -0.5, a[i], a[i], 0.5, 0.5, -0.5]
        out.append(place(u, v, cx[i], cy[i], w[i], h[i], ang[i])[0])
    return np.array(out, dtype=object)


def curve(rng, p0, heading, length, step=60.0, turn_sd=0.05, drift=0.0) -> np.ndarray:
    """A smooth random polyline from ``p0`` with ``heading`` (radians): (n, 2) points."""
    n = max(2, int(length / step))
    turns = np.cumsum(rng.normal(drift, turn_sd, n))
    turns = np.convolve(turns, np.ones(5) / 5, mode="same")
    ang = heading + turns
    pts = np.cumsum(np.stack([np.cos(ang), np.sin(ang)], 1) * step, axis=0)
    return np.vstack([p0, p0 + pts])


def circles(xy: np.ndarray, r: np.ndarray, quad_segs: int = 3) -> np.ndarray:
    return shapely.buffer(shapely.points(xy), r, quad_segs=quad_segs)


def polys_of(geom) -> list[Polygon]:
    """The non-empty polygons of any geometry."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [g for g in geom.geoms if not g.is_empty]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in polys_of(g)]
    return []


def as_multipolygon(geom) -> MultiPolygon:
    """A valid MultiPolygon from any geometry (polygon parts only)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = [p for p in polys_of(geom) if p.area > 0]
    mp = MultiPolygon(polys)
    if not mp.is_valid:
        mp = MultiPolygon(polys_of(shapely.make_valid(mp)))
    return mp


def union(geoms) -> object:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return Polygon()
    return shapely.union_all(np.array(geoms, dtype=object))


def fast_union(geoms) -> object:
    """Union of polygons where most touch nothing: only the overlapping ones go through GEOS union."""
    arr = np.array([g for p in geoms for g in polys_of(p)], dtype=object)
    if len(arr) == 0:
        return MultiPolygon()
    a, b = shapely.STRtree(arr).query(arr, predicate="intersects")
    hit = np.zeros(len(arr), bool)
    pair = a != b
    hit[a[pair]] = True
    hit[b[pair]] = True
    parts = list(arr[~hit])
    if hit.any():
        parts += polys_of(shapely.union_all(arr[hit]))
    return MultiPolygon(parts)


def scale_many(geoms, sx: float, sy: float, ox: float = 0.0, oy: float = 0.0) -> list:
    """Scale (and move) many geometries at once: x' = sx*x + ox, y' = sy*y + oy."""
    if len(geoms) == 0:
        return []
    arr = np.array(list(geoms), dtype=object)
    mul = np.array([sx, sy])
    add = np.array([ox, oy])
    return list(shapely.transform(arr, lambda xy: xy * mul + add))



def drop_overlaps(polys: list, pad: float = 0.0) -> list:
    """Keep polygons that overlap (or come within ``pad`` of) no earlier kept one."""
    if not polys:
        return []
    arr = np.array(polys, dtype=object)
    tree = shapely.STRtree(arr)
    if pad > 0:
        a, b = tree.query(arr, predicate="dwithin", distance=pad)
    else:
        a, b = tree.query(arr, predicate="intersects")
    drop = np.zeros(len(arr), bool)
    for i, j in sorted(zip(a.tolist(), b.tolist())):
        if i < j and not drop[i]:
            drop[j] = True
    return list(arr[~drop])

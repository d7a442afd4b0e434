"""Class masks to valid (multi)polygons in scene coordinates, holes kept, simplified.

How
---
A polygon must cover a mask's pixels *as area*: pixel (row r, col c) is the unit square
``[c, c+1] x [r, r+1]`` in pixel-edge coordinates, and rasterizing the polygon by pixel centres gives
the mask back. OpenCV's ``findContours`` is fast (Suzuki's border following, one pass over the image)
but traces pixel *centres*. So the mask is first drawn on a doubled grid of ``(2H+1) x (2W+1)`` points:
pixel (r, c) becomes the closed 3 x 3 block of points ``[2r, 2r+2] x [2c, 2c+2]`` (a 3 x 3 dilation of
the pixel centres). The borders of those blocks are the pixels' edges, so the contours that
``findContours`` traces on the doubled grid, halved, are exactly the pixel-edge outlines.
``RETR_CCOMP`` gives the two-level hierarchy a polygon needs: outer borders and the holes inside each;
an island in a hole is again an outer border at the top level, so a field with a pond with an island
gives two polygons (the field with a hole, and the island).

Where two pixels touch only at a corner, Suzuki's 8-connected tracing steps diagonally from one
block's edge midpoint to the other's, cutting a quarter-pixel triangle; every such diagonal step is
replaced by the shared corner (the point of the step's square with both coordinates even), and then
every point with an odd coordinate (an edge midpoint, always collinear after the fix) is dropped.
What is left are the pixel corners where the outline turns, as integers.

Validity: rings that never took a diagonal step are simple rectilinear rings, so their polygons are
valid by construction and never go through ``is_valid``. A ring with a diagonal step may pass the
same corner twice (two parts of one 8-connected component touching at a corner, or a hole pinched at
a corner), which OGC validity forbids. Such rings are split at their repeated corners into simple
loops (a short Python walk over those rings only); a loop that runs the other way round than its
ring changes role (a hole ring's loop around an island becomes a shell), and each hole loop goes to
the smallest shell loop of its component that contains a probe point a quarter pixel inside the
hole's first edge (a background pixel of that hole). This is exact and far cheaper than
``make_valid`` on the large, ragged polygons of predicted masks. The polygons still invalid after that
(holes touching each other at two or more corners, which cuts the interior in two) go through
``make_valid(method="structure")``, which splits them without changing the area. (Splitting those in
pixel space instead -- 4-connected components of their pixels, each vectorized alone -- was tried and
cost the same CPU time on ragged full-scene masks, so the simpler path stays.)

Memory and size: the doubled grid is 4 bytes per mask pixel (45 MB for a full 3348 x 3400 DSTL scene).
Masks larger than ``VectorizeConfig.tile_px`` on either side are cut into ``tile_px`` x ``tile_px``
tiles, so the doubled grid never exceeds ``4 * tile_px**2`` bytes. Polygons that do not touch an
inner tile edge are final as they are; only the ones that touch one are merged with
``shapely.union_all`` (exact: every coordinate is an integer in pixel space). Polygons are built from
one flat coordinate array with ``shapely.linearrings``/``shapely.polygons`` (no Python loop per vertex).

Simplify: in pixel space, before the transform, where ``simplify_px`` means what it says on both
axes (a DSTL grid has slightly different x and y scales, so one scene-unit tolerance could not), with
``shapely.simplify(preserve_topology=True)`` over the whole MultiPolygon at once (so rings of
different parts do not cross either), then ``make_valid`` if the result is not valid. Parts under
``min_area_px`` are dropped before simplifying. A pixel can change only if its centre is within
``simplify_px + 0.5`` px of the exact outline (tests/test_vectorize.py checks this). The affine
transform to scene coordinates comes last.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import shapely
from affine import Affine
from shapely.geometry import MultiPolygon

from sattag.classes import ClassTable
from sattag.config import VectorizeConfig
from sattag.scene import Grid

__all__ = ["mask_to_polygons", "masks_to_polygons", "pixel_polygons", "simplify_parts", "as_multipolygon"]

_EMPTY = MultiPolygon()
_KERNEL = np.ones((3, 3), np.uint8)


def as_multipolygon(geom) -> MultiPolygon:
    """``geom`` as a MultiPolygon: polygons kept, lines and points dropped, None/empty -> EMPTY."""
    if geom is None or shapely.is_empty(geom):
        return _EMPTY
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    parts = shapely.get_parts(geom)
    polys = []
    for p in parts:
        if p.geom_type == "Polygon" and not p.is_empty:
            polys.append(p)
        elif p.geom_type in ("MultiPolygon", "GeometryCollection"):
            polys.extend(as_multipolygon(p).geoms)
    return MultiPolygon(polys) if polys else _EMPTY


def _block_polygons(m: np.ndarray, row0: int = 0, col0: int = 0) -> np.ndarray:
    """Valid polygons (pixel-edge coordinates, offset by ``col0``, ``row0``) of a uint8 0/1 block."""
    # Work on the bounding box of the set pixels only: sparse classes (vehicles, water) cost little.
    rows = np.flatnonzero(m.any(axis=1))
    if not len(rows):
        return np.empty(0, dtype=object)
    cols = np.flatnonzero(m.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = m[r0:r1, c0:c1]
    row0, col0 = row0 + int(r0), col0 + int(c0)
    h, w = m.shape
    # Doubled grid with a 1-point margin: findContours ignores the outermost row/column of an image.
    g = np.zeros((2 * h + 3, 2 * w + 3), np.uint8)
    g[2:-1:2, 2:-1:2] = m
    g = cv2.dilate(g, _KERNEL)
    contours, hierarchy = cv2.findContours(g, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.empty(0, dtype=object)
    parent = hierarchy[0, :, 3]
    n = len(contours)
    # Order rings so that each shell is followed by its holes (what shapely.polygons(indices=) wants).
    owner = np.where(parent < 0, np.arange(n), parent)
    order = np.lexsort((parent >= 0, owner))
    lengths = np.fromiter((len(contours[i]) for i in order), np.int64, n)
    pts = np.concatenate([contours[i] for i in order]).reshape(-1, 2).astype(np.int64) - 1
    ring = np.repeat(np.arange(n), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # Next point in the same ring (cyclic).
    nxt = np.arange(len(pts)) + 1
    ends = starts + lengths
    nxt[ends - 1] = starts
    d = pts[nxt] - pts
    diag = (d[:, 0] != 0) & (d[:, 1] != 0)
    even = (pts[:, 0] % 2 == 0) & (pts[:, 1] % 2 == 0)
    # Points out: a kept corner for a straight step from an even-even point; k corners for a
    # diagonal run of k unit steps (one per step); nothing for a midpoint starting a straight run.
    k = np.abs(d[:, 0])
    count = np.where(diag, k, even.astype(np.int64))
    src = np.repeat(np.arange(len(pts)), count)
    step = np.arange(len(src)) - np.repeat(np.cumsum(count) - count, count)  # 0..k-1 within a run
    u = np.sign(d[src])
    a = pts[src] + np.where(diag[src, None], step[:, None] * u, 0)  # start of each unit step
    x_odd = (a[:, 0] % 2) == 1
    corner = a.copy()
    is_diag = diag[src]
    corner[is_diag & x_odd, 0] += u[is_diag & x_odd, 0]
    corner[is_diag & ~x_odd, 1] += u[is_diag & ~x_odd, 1]
    out = corner // 2
    out_ring = ring[src]
    suspect_ring = np.zeros(n, bool)
    suspect_ring[ring[diag]] = True
    # Drop repeated points and points in the middle of a straight run (cyclic within a ring).
    out, out_ring = _drop_redundant(out, out_ring, n)
    poly_index = np.unique(owner[order], return_inverse=True)[1]
    n_polys = int(poly_index[-1]) + 1
    suspect = np.zeros(n_polys, bool)
    suspect[poly_index[suspect_ring]] = True
    ring_suspect = suspect[poly_index]
    offset = np.array([col0, row0], np.float64)
    keep_pt = ~ring_suspect[out_ring]
    ring_ids = out_ring[keep_pt]
    polys = []
    if len(ring_ids):
        uniq, dense = np.unique(ring_ids, return_inverse=True)  # shapely wants indices 0..n-1
        rings = shapely.linearrings(out[keep_pt].astype(np.float64) + offset, indices=dense)
        polys.append(shapely.polygons(rings, indices=np.unique(poly_index[uniq], return_inverse=True)[1]))
    if suspect.any():
        polys.append(_split_touching(out[~keep_pt], out_ring[~keep_pt], poly_index, offset))
    return np.concatenate(polys) if len(polys) > 1 else polys[0]


def _loops(xy: np.ndarray) -> list[np.ndarray]:
    """Split a closed walk (points without the closing repeat) at repeated points into simple loops."""
    stack: list[tuple[int, int]] = []
    where: dict[tuple[int, int], int] = {}
    loops = []
    for p in map(tuple, xy.tolist()):
        i = where.get(p)
        if i is None:
            where[p] = len(stack)
            stack.append(p)
        else:
            loops.append(stack[i:])
            for q in stack[i + 1:]:
                del where[q]
            del stack[i + 1:]
    loops.append(stack)
    return [np.asarray(lp, np.float64) for lp in loops if len(lp) >= 3]




def _loop_areas(xy: np.ndarray, loop: np.ndarray, n: int) -> np.ndarray:
    """Signed (shoelace) area of each of ``n`` closed loops; points of loop i are where loop == i."""
    counts = np.bincount(loop, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    nxt = np.arange(len(xy)) + 1
    nxt[starts + counts - 1] = starts
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * np.bincount(loop, x * y[nxt] - x[nxt] * y, minlength=n)


def _split_touching(pts: np.ndarray, ring: np.ndarray, poly_index: np.ndarray,
                    offset: np.ndarray) -> np.ndarray:
    """Valid polygons from rings that touch themselves at pixel corners (diagonal neighbours).

    Each ring is split at its repeated corners into simple loops. A loop keeps its ring's role
    (shell or hole) when it runs the same way round as the whole ring, and takes the other role when
    it runs the other way (a hole ring's loop around an island is a shell). Every hole loop then goes
    to the smallest shell loop of the same polygon that contains a point just inside the hole's first
    edge (a background pixel of that hole, so never inside an island within it). Exact, and much
    faster than ``make_valid`` on the large noisy polygons where such touches are common.
    """
    bounds = np.flatnonzero(np.diff(ring)) + 1
    chunks = np.split(pts, bounds)
    ring_ids = ring[np.concatenate(([0], bounds))]
    # Only rings that pass a corner twice need splitting (found without a Python loop).
    span = int(pts.max()) + 2 if len(pts) else 1
    key = (ring.astype(np.int64) * span + pts[:, 1]) * span + pts[:, 0]
    uniq, counts = np.unique(key, return_counts=True)
    repeats = np.zeros(int(ring.max()) + 1 if len(ring) else 0, bool)
    repeats[uniq[counts > 1] // (span * span)] = True
    loops: list[np.ndarray] = []
    loop_ring = []
    for r, xy in zip(ring_ids.tolist(), chunks):
        for lp in (_loops(xy) if repeats[r] else [xy.astype(np.float64)]):
            loops.append(lp)
            loop_ring.append(r)
    n = len(loops)
    loop_ring_a = np.asarray(loop_ring)
    lengths = np.fromiter((len(lp) for lp in loops), np.int64, n)
    xy = np.concatenate(loops)
    loop_of_pt = np.repeat(np.arange(n), lengths)
    area = _loop_areas(xy, loop_of_pt, n)
    ring_total = np.bincount(np.searchsorted(ring_ids, loop_ring_a), area, minlength=len(ring_ids))
    total = ring_total[np.searchsorted(ring_ids, loop_ring_a)]
    group = poly_index[loop_ring_a]
    first_ring = np.full(int(poly_index.max()) + 1, -1)
    # The first ring of each polygon is its shell (rings were sorted that way); ring_ids ascend.
    first_ring[poly_index[ring_ids[::-1]]] = ring_ids[::-1]
    ring_is_shell = first_ring[group] == loop_ring_a
    is_shell = (np.sign(area) == np.sign(total)) == ring_is_shell
    rings = shapely.linearrings(xy + offset, indices=loop_of_pt)
    shell_idx = np.flatnonzero(is_shell)
    hole_idx = np.flatnonzero(~is_shell)
    holes_of: dict[int, list[int]] = {int(i): [] for i in shell_idx}
    if len(hole_idx):
        # A point a quarter pixel inside each hole loop, beside the middle of its first edge.
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[hole_idx]
        p0, p1 = xy[starts], xy[starts + 1]
        d = np.sign(p1 - p0)
        left = np.column_stack((-d[:, 1], d[:, 0]))  # interior is on the left of a CCW loop
        inward = np.where((area[hole_idx] > 0)[:, None], left, -left)
        probe = (p0 + p1) / 2 + 0.25 * inward + offset
        shells_by_group: dict[int, list[int]] = {}
        for i in shell_idx.tolist():
            shells_by_group.setdefault(int(group[i]), []).append(i)
        hole_groups = group[hole_idx]
        for g in np.unique(hole_groups).tolist():
            sel = np.flatnonzero(hole_groups == g)
            cands = shells_by_group.get(g, [])
            if len(cands) == 1:
                holes_of[cands[0]].extend(hole_idx[sel].tolist())
                continue
            cands_a = np.asarray(cands)
            cand_polys = shapely.polygons(rings[cands_a])
            inside = np.stack([shapely.contains_xy(cp, probe[sel, 0], probe[sel, 1]) for cp in cand_polys])
            cand_area = np.abs(area[cands_a])[:, None]
            best = np.argmin(np.where(inside, cand_area, np.inf), axis=0)
            ok = inside[best, np.arange(len(sel))]
            for h, b in zip(hole_idx[sel][ok].tolist(), best[ok].tolist()):
                holes_of[int(cands_a[b])].append(h)
    out = np.array([shapely.Polygon(rings[i], [rings[h] for h in holes_of[int(i)]])
                    for i in shell_idx], dtype=object)
    # Holes that touch each other at corners can still cut the interior in two ("interior is
    # disconnected"). (A simple loop with no holes is valid: only polygons with holes need the check.)
    has_holes = np.fromiter((bool(holes_of[int(i)]) for i in shell_idx), bool, len(shell_idx))
    bad = np.zeros(len(out), bool)
    bad[has_holes] = ~shapely.is_valid(out[has_holes])
    if bad.any():
        fixed = shapely.make_valid(out[bad], method="structure", keep_collapsed=False)
        out = np.concatenate([out[~bad], _polygon_parts(fixed)])
    return out


def _drop_redundant(pts: np.ndarray, ring: np.ndarray, n_rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove consecutive duplicate points and collinear middle points of each (cyclic) ring."""
    for _ in range(2):  # removing duplicates can make new collinear triples and vice versa
        counts = np.bincount(ring, minlength=n_rings)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        idx = np.arange(len(pts))
        nxt = idx + 1
        prv = idx - 1
        nonempty = counts > 0
        nxt[(starts + counts - 1)[nonempty]] = starts[nonempty]
        prv[starts[nonempty]] = (starts + counts - 1)[nonempty]
        d_in = pts - pts[prv]
        d_out = pts[nxt] - pts
        dup = (d_in == 0).all(axis=1)
        cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
        dot = (d_in * d_out).sum(axis=1)
        collinear = (cross == 0) & (dot > 0)
        keep = ~(dup | collinear)
        if keep.all():
            break
        pts, ring = pts[keep], ring[keep]
    return pts, ring


def _polygon_parts(geoms: np.ndarray) -> np.ndarray:
    """All non-empty Polygon parts of an array of geometries (collections flattened)."""
    parts = shapely.get_parts(geoms)
    while True:
        types = shapely.get_type_id(parts)
        multi = (types == 6) | (types == 7)
        if not multi.any():
            break
        parts = np.concatenate([parts[~multi], shapely.get_parts(parts[multi])])
    types = shapely.get_type_id(parts)
    return parts[(types == 3) & ~shapely.is_empty(parts)]


def tile_pixel_polygons(mask: np.ndarray, row0: int, col0: int, height: int, width: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The polygons of one tile of a larger mask, split into those that are complete and those that
    touch a seam.

    ``mask``: 2-D (h, w) the tile's pixels (nonzero inside), placed at ``row0, col0`` of an (``height``,
    ``width``) mask. Returns ``(whole, seam)``: numpy object arrays of valid Polygons in the whole
    mask's pixel-edge coordinates; ``seam`` holds the ones that reach an edge of the tile shared with
    another tile (not the mask's own border): they are pieces, to be joined with the neighbouring
    tiles' seam polygons by :func:`join_seams`.
    """
    m = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if not m.any():
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    r1, c1 = row0 + m.shape[0], col0 + m.shape[1]
    polys = _block_polygons(m, row0, col0)
    b = shapely.bounds(polys)
    touches = ((col0 > 0) & (b[:, 0] == col0)) | ((c1 < width) & (b[:, 2] == c1)) | \
              ((row0 > 0) & (b[:, 1] == row0)) | ((r1 < height) & (b[:, 3] == r1))
    return polys[~touches], polys[touches]


def join_seams(whole: list[np.ndarray], seam: list[np.ndarray]) -> np.ndarray:
    """All polygons of a mask from its tiles' :func:`tile_pixel_polygons`: the complete ones as they
    are, the seam pieces unioned (a shape cut by seams becomes one polygon again). Numpy object array
    of valid Polygons whose union covers exactly the mask's pixels."""
    final = [w for w in whole if len(w)]
    seam_polys = [p for p in seam if len(p)]
    if seam_polys:
        merged = shapely.union_all(np.concatenate(seam_polys))
        final.append(_polygon_parts(np.array([merged], dtype=object)))
    return np.concatenate(final) if final else np.empty(0, dtype=object)


def join_band_seams(seam: Sequence[np.ndarray], rows: tuple[int, int], height: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The seam pieces of one band of tile rows, unioned: a share of :func:`join_seams` that can run
    beside the other bands' (a dense class's seam pieces over a big scene take most of its polygons'
    time: 43 s of 72 s for a 20 000-px scene's crops).

    ``seam``: the pieces (:func:`tile_pixel_polygons`) of the tiles whose rows are ``rows = (r0, r1)``
    (pixel px, end exclusive) of a mask of ``height`` rows. Returns ``(closed, open)``, numpy object
    arrays of Polygons: ``closed`` lie inside the band's rows, clear of its edges shared with other
    bands, so no piece of another band can touch them: they are final, as :func:`join_seams` would
    give them. ``open`` reach such an edge; :func:`join_bands` unions them with the other bands'.
    """
    pieces = [p for p in seam if len(p)]
    if not pieces:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    parts = _polygon_parts(np.array([shapely.union_all(np.concatenate(pieces))], dtype=object))
    r0, r1 = rows
    b = shapely.bounds(parts)
    reach = ((r0 > 0) & (b[:, 1] <= r0)) | ((r1 < height) & (b[:, 3] >= r1))
    return parts[~reach], parts[reach]


def join_bands(open_parts: Sequence[np.ndarray]) -> np.ndarray:
    """The ``open`` pieces of every band (:func:`join_band_seams`) unioned across the bands' edges:
    numpy object array of Polygons. Each band's pieces are one MultiPolygon (disjoint after its own
    union) and the bands are unioned two by two, neighbours first: a few large unions instead of a
    cascade over many pieces (3x faster on a 10 000-px scene's crops)."""
    bands = [shapely.multipolygons(p) for p in open_parts if len(p)]
    if not bands:
        return np.empty(0, dtype=object)
    while len(bands) > 1:
        bands = [shapely.union(bands[i], bands[i + 1]) if i + 1 < len(bands) else bands[i]
                 for i in range(0, len(bands), 2)]
    return _polygon_parts(np.array(bands, dtype=object))


def pixel_polygons(mask: np.ndarray, tile_px: int = VectorizeConfig.tile_px,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Valid polygons of a 2-D mask in pixel-edge coordinates (x = column, y = row, unit pixels).

    Nonzero is inside. Returns a numpy object array of shapely Polygons (holes kept), whose union
    covers exactly the mask's pixels. Masks larger than ``tile_px`` on a side are done by tiles
    (:func:`tile_pixel_polygons`, :func:`join_seams`); ``progress(1)`` is called after each tile.
    """
    m = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    h, w = m.shape
    if h == 0 or w == 0 or not m.any():
        return np.empty(0, dtype=object)
    if max(h, w) <= tile_px:
        out = _block_polygons(m)
        if progress:
            progress(1)
        return out
    whole, seam = [], []
    for r0 in range(0, h, tile_px):
        for c0 in range(0, w, tile_px):
            a, b = tile_pixel_polygons(m[r0:r0 + tile_px, c0:c0 + tile_px], r0, c0, h, w)
            whole.append(a)
            seam.append(b)
            if progress:
                progress(1)
    return join_seams(whole, seam)


def _affine_coords(transform: Affine) -> Callable[[np.ndarray], np.ndarray]:
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack((a * x + b * y + c, d * x + e * y + f))

    return apply


def near_pairs(polys: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``polys`` (numpy object array of geometries) less than or equal to ``distance``
    apart: index arrays ``(a, b)``, each pair in both orders, no geometry paired with itself. The
    same pairs as ``STRtree(polys).query(polys, predicate="dwithin", distance=distance)`` less the
    self pairs.

    Why not that query: it prepares the *query* side, so a small part near a huge one (a crop field
    network joined across a 10 000-px scene's seams: 1.5 M vertices) is measured against every
    vertex of the huge one, once per small part: 14 s of 43 s of a class's polygons. Here the
    candidates come from the envelopes grown by ``distance`` (a superset: two shapes that close have
    envelopes that close), and each candidate pair is measured from the side with more vertices,
    prepared (an indexed facet distance): 0.2 s, the same pairs.
    """
    empty = np.empty(0, np.intp)
    if len(polys) < 2:
        return empty, empty
    grown = shapely.bounds(polys) + np.array([-distance, -distance, distance, distance])
    a, b = shapely.STRtree(polys).query(shapely.box(*grown.T))
    keep = a < b
    a, b = a[keep], b[keep]
    if not len(a):
        return empty, empty
    size = shapely.get_num_coordinates(polys)
    first = size[a] >= size[b]
    big, small = np.where(first, a, b), np.where(first, b, a)
    bigs = np.unique(big)
    fresh = bigs[~shapely.is_prepared(polys[bigs])]
    shapely.prepare(polys[fresh])
    try:
        hit = shapely.dwithin(polys[big], polys[small], distance)
    finally:
        # the caller's geometries come back as they were (preparing caches an index on each)
        shapely.destroy_prepared(polys[fresh])
    a, b = a[hit], b[hit]
    return np.concatenate([a, b]), np.concatenate([b, a])


def simplify_parts(polys: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify polygons (pixel units) so that each stays valid and no two come to overlap.

    Douglas-Peucker (``preserve_topology=False``) is 10-30x faster than GEOS's topology-preserving
    simplifier, and much faster again than running the latter over one big MultiPolygon. So: parts
    more than ``2 * tolerance + 1`` from every other part are simplified alone with Douglas-Peucker
    (each outline moves by at most ``tolerance``, so they cannot meet), and the few that come out
    invalid or empty are redone topology-preserving; parts closer to each other are simplified
    together as a coverage (``shapely.coverage_simplify``, ``tolerance`` as its distance), so rings
    of neighbouring parts cannot cross.
    """
    if not len(polys):
        return polys
    a, b = near_pairs(polys, 2 * tolerance + 1)
    alone = np.ones(len(polys), bool)
    alone[a] = False
    out = np.empty(len(polys), dtype=object)
    idx = np.flatnonzero(alone)
    if len(idx):
        simple = shapely.simplify(polys[idx], tolerance, preserve_topology=False)
        bad = shapely.is_empty(simple) | ~shapely.is_valid(simple) | (shapely.get_type_id(simple) != 3)
        if bad.any():
            simple[bad] = shapely.simplify(polys[idx[bad]], tolerance, preserve_topology=True)
        out[idx] = simple
    parts = [out[idx]] if len(idx) else []
    if len(a):
        # Parts within reach of each other are simplified together as a polygonal coverage (GEOS's
        # topology-preserving Visvalingam-Whyatt: no simplified edge crosses another, so none come to
        # overlap). Simplifying each connected group as one MultiPolygon with the topology-preserving
        # Douglas-Peucker did the same but grew superlinearly with the group: a dense 2000-px mask
        # took 23.6 s against 1.7 s, and a 20 000-px scene's classes minutes.
        grouped = polys[~alone]
        simple = shapely.coverage_simplify(grouped, tolerance, simplify_boundary=True)
        bad = shapely.is_empty(simple) | ~shapely.is_valid(simple)
        if bad.any():  # not seen: keep such a part as it was
            simple[bad] = grouped[bad]
        parts.append(_polygon_parts(simple))
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def mask_to_polygons(mask: np.ndarray, transform: Affine | None = None,
                     config: VectorizeConfig | None = None,
                     progress: Callable[[int], None] | None = None) -> MultiPolygon:
    """One class mask to a valid MultiPolygon in scene coordinates.

    Parameters
    ----------
    mask:
        (H, W) bool or uint8; nonzero pixels are inside.
    transform:
        Affine pixel (col, row) -> scene coordinates (``Grid.transform``; DSTL grid units for DSTL
        stacks). None: identity, i.e. pixel-edge coordinates.
    config:
        ``simplify_px`` (Douglas-Peucker tolerance in pixels, topology kept; 0 = exact pixel
        outlines), ``min_area_px`` (parts with a smaller area in pixels are dropped), ``tile_px``.

    Returns a MultiPolygon (EMPTY when nothing is left) that passes ``is_valid``; holes are kept.
    With ``simplify_px=0`` and ``min_area_px<=1`` it covers exactly the mask's pixels.
    """
    config = config or VectorizeConfig()
    return finish_polygons(pixel_polygons(mask, config.tile_px, progress), transform, config)


def settle_tile_polygons(whole: np.ndarray, seam: np.ndarray, rows: tuple[int, int], cols: tuple[int, int],
                         height: int, width: int, config: VectorizeConfig | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Finish in its tile what a tile's complete polygons allow: ``(settled, rest)``.

    ``whole``, ``seam``: :func:`tile_pixel_polygons` of the tile at ``rows``, ``cols`` (pixel px, end
    exclusive) of an (``height``, ``width``) mask. ``settled``: the complete polygons that no polygon
    outside the tile and no seam piece can come near (more than ``2 * simplify_px + 1`` px from the
    tile's shared edges and from the seam pieces), small ones dropped and simplified: exactly what
    :func:`finish_polygons` would make of them over the whole mask, since :func:`simplify_parts` only
    groups parts that near. ``rest``: the other complete polygons (small ones dropped), to finish with
    the joined seams (``finish_polygons(..., settled=...)``). Lets tile tasks do most of a big scene's
    vectorizing in parallel.
    """
    config = config or VectorizeConfig()
    if len(whole) and config.min_area_px > 0:
        whole = whole[shapely.area(whole) >= config.min_area_px]
    if not len(whole) or config.simplify_px <= 0:
        return whole, np.empty(0, dtype=object)
    margin = 2 * config.simplify_px + 1
    (r0, r1), (c0, c1) = rows, cols
    b = shapely.bounds(whole)
    far = ~(((c0 > 0) & (b[:, 0] - c0 <= margin)) | ((c1 < width) & (c1 - b[:, 2] <= margin)) |
            ((r0 > 0) & (b[:, 1] - r0 <= margin)) | ((r1 < height) & (r1 - b[:, 3] <= margin)))
    if far.any() and (len(seam) or not far.all()):
        # simplify_parts groups parts by nearness, transitively: a part is settled only when its whole
        # group (connected parts of the "near" graph, seam pieces included) is far from the edges.
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        parts = np.concatenate([whole, seam]) if len(seam) else whole
        a, b = near_pairs(parts, margin)
        n = len(parts)
        _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
        pinned = np.zeros(label.max() + 1, bool)
        pinned[label[np.concatenate([np.flatnonzero(~far), np.arange(len(whole), n)])]] = True
        far &= ~pinned[label[:len(whole)]]
    return simplify_parts(whole[far], config.simplify_px), whole[~far]


def finish_polygons(polys: np.ndarray, transform: Affine | None = None,
                    config: VectorizeConfig | None = None, settled: Sequence[np.ndarray] = ()) -> MultiPolygon:
    """Pixel polygons of one class mask (:func:`pixel_polygons`, or :func:`join_seams` of a tiled
    mask's) to the class's valid MultiPolygon in scene coordinates: small parts dropped, simplified,
    transformed, as :func:`mask_to_polygons` describes. ``settled``: parts already finished in their
    tiles (:func:`settle_tile_polygons`), added as they are."""
    config = config or VectorizeConfig()
    if len(polys) and config.min_area_px > 0:
        polys = polys[shapely.area(polys) >= config.min_area_px]
    if len(polys) and config.simplify_px > 0:
        polys = simplify_parts(polys, config.simplify_px)
    polys = np.concatenate([polys, *[p for p in settled if len(p)]]) if any(len(p) for p in settled) else polys
    if not len(polys):
        return _EMPTY
    geom = shapely.multipolygons(polys) if len(polys) else _EMPTY
    if config.simplify_px > 0 and not shapely.is_valid(geom):  # safety net; not seen in tests
        geom = as_multipolygon(shapely.make_valid(geom, method="structure", keep_collapsed=False))
    if transform is not None and not transform.is_identity:
        geom = shapely.transform(geom, _affine_coords(transform))
    return as_multipolygon(geom)


def masks_to_polygons(masks: np.ndarray, grid: Grid, classes: ClassTable,
                      config: VectorizeConfig | None = None,
                      progress: Callable[[int], None] | None = None) -> dict[int, MultiPolygon]:
    """All class masks of a scene to ``{class_id: MultiPolygon}`` in the grid's coordinates.

    ``masks``: (C, H, W) with ``C == len(classes)`` and (H, W) == ``grid.shape``; index i is
    ``classes.classes[i]``. ``progress(1)`` is called after each class.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != len(classes):
        raise ValueError(f"masks must be ({len(classes)}, H, W), got {masks.shape}")
    if masks.shape[1:] != grid.shape:
        raise ValueError(f"masks are {masks.shape[1:]} but the grid is {grid.shape}")
    out = {}
    for i, cls in enumerate(classes):
        out[cls.id] = mask_to_polygons(masks[i], grid.transform, config)
        if progress:
            progress(1)
    return out

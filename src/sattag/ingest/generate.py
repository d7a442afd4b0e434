"""DSTL-format look-alike data: scenes that look like land, written in the real DSTL layout.

The layout and the facts it imitates are in ``/work/shared/dstl-format.md``. A scene is made in
three steps:

1. **Geometry** (``_layout``): fields on a jittered, rotated grid (crops, meadow, settlement,
   woodland), roads along grid lines and a curvy main road, tracks and footpaths, buildings
   (rectangles, L-shapes, large ones with courtyards = holes), small structures, trees (woodland,
   hedgerows, groups inside crop fields, standalone), a meandering river in some scenes, ponds,
   vehicles on the roads. Everything is built in *full-size pixel units* (``fpx``: RGB pixels of the
   full ~3400 px scene, ~0.31 m), so one seed gives the same land at every ``size``.
2. **Radiance** (``_render``): a material map is rasterized on the R grid (painter's order: soil,
   crops, tracks, water, roads, trees, buildings, structures, vehicles); each material has a
   reflectance curve over 400-2400 nm, sampled over each band's range (RGB, P, M1-8, A1-8), times a
   texture field (per-material fine, mid and low-frequency noise, crop rows, shadows) plus a
   vegetation-vigour field that moves NIR against red.
3. **Sensor** (``_sense``): per band group the radiance on the R grid is seen through the optics PSF
   sampled at the group's offset (blur and exact sub-pixel shift in one filter, reflected border),
   area-averaged to the group's grid (``cv2.resize`` INTER_AREA, half-pixel-centre convention),
   blurred by a small PSF, given sensor noise, scaled to counts and rounded to uint16 within the
   bit depth (11-bit, A 14-bit).

Offset convention (the same as ``sattag.ingest.align``): group g has offset (dx, dy) in R pixels when a feature at
R pixel (x, y) appears in g's image, resampled onto the R grid without correction, at (x+dx, y+dy).
The true offsets go to ``generator_truth.csv`` (columns ``scene,group,dx,dy``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import rasterio
import shapely
import shapely.affinity
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import MultiPolygon, Polygon, box, mapping

from sattag._files import atomic_path, write_csv
from sattag.scene import dstl_transform

# --------------------------------------------------------------------------------------------- ids

#: Grid squares of the DSTL dataset; each is cut 5 x 5 into ImageIds ``GGGG_r_c``.
GRID_SQUARES: tuple[str, ...] = tuple(str(g) for g in range(6010, 6181, 10))
ALL_IDS: tuple[str, ...] = tuple(f"{g}_{r}_{c}" for g in GRID_SQUARES for r in range(5) for c in range(5))
#: The 25 training images of the real dataset, used (in this order) for the first ``n_train`` scenes.
REAL_TRAIN_IDS: tuple[str, ...] = (
    "6010_1_2", "6040_2_2", "6100_1_3", "6120_2_2", "6170_4_1", "6010_4_2", "6010_4_4", "6040_1_0",
    "6040_1_3", "6040_4_4", "6060_2_3", "6070_2_3", "6090_2_0", "6100_2_2", "6100_2_3", "6110_1_2",
    "6110_3_1", "6110_4_0", "6120_2_0", "6140_1_2", "6140_3_1", "6150_2_3", "6160_2_1", "6170_0_4",
    "6170_2_4",
)

#: Band names per file group, in file order.
GROUP_BANDS: dict[str, tuple[str, ...]] = {
    "R": ("R", "G", "B"),
    "P": ("P",),
    "M": tuple(f"M{i}" for i in range(1, 9)),
    "A": tuple(f"A{i}" for i in range(1, 9)),
}
BIT_DEPTH: dict[str, int] = {"R": 11, "P": 11, "M": 11, "A": 14}

#: Layer files per DSTL class (dstl-format.md) — the first is the default layer.
CLASS_LAYERS: dict[int, tuple[str, ...]] = {
    1: ("001_MM_L3_RESIDENTIAL_BUILDING", "001_MM_L2_LARGE_BUILDING", "001_MM_L3_NON_RESIDENTIAL_BUILDING"),
    2: ("001_MM_L5_MISC_SMALL_STRUCTURE",),
    3: ("002_TR_L3_GOOD_ROADS",),
    4: ("002_TR_L4_POOR_DIRT_CART_TRACK", "002_TR_L6_FOOTPATH_TRAIL"),
    5: ("006_VEG_L5_GROUP_TREES", "006_VEG_L2_WOODLAND", "006_VEG_L3_HEDGEROWS", "006_VEG_L5_STANDALONE_TREES"),
    6: ("007_AGR_L6_ROW_CROP", "007_AGR_L2_CONTOUR_PLOUGHING_CROPLAND"),
    7: ("008_WTR_L3_WATERWAY",),
    8: ("008_WTR_L2_STANDING_WATER",),
    9: ("003_VH_L4_LARGE_VEHICLE",),
    10: ("003_VH_L5_SMALL_VEHICLE", "003_VH_L6_MOTORBIKE"),
}
#: Unscored layers the generator sometimes writes (readers must ignore them).
EXTRA_LAYERS: tuple[str, ...] = ("001_MM_L4_BRIDGE", "004_UPI_L5_PYLONS")
LAYER_CLASS: dict[str, int] = {layer: cid for cid, layers in CLASS_LAYERS.items() for layer in layers}

# Full-size geometry of the real images (RGB/P pixels).
FULL_WIDTHS = (3391, 3403)  # inclusive range of RGB widths
FULL_HEIGHTS = (3345, 3349)
NOMINAL_FULL_WIDTH = 3396
M_RATIO = 4.0
A_RATIO = 25.0
MIN_A_PX = 8

PLACEHOLDER_WKT = "MULTIPOLYGON (((0 0, 0.0001 0, 0.0001 -0.0001, 0 -0.0001, 0 0)))"


def scene_int(scene_id: str) -> int:
    """A stable integer for an ImageId ``GGGG_r_c`` (used to derive per-scene seeds)."""
    g, r, c = scene_id.split("_")
    return int(g) * 100 + int(r) * 10 + int(c)


def dataset_scene_ids(n_scenes: int = 450, n_train: int = 25, seed: int = 0) -> tuple[list[str], list[str]]:
    """The ImageIds of a generated dataset: (all ids, training ids); training ids come first.

    Training ids are the real training ids (in ``REAL_TRAIN_IDS`` order) while they last, then random
    ones; the rest are drawn from the 450 real ids with ``seed``.
    """
    if not 1 <= n_scenes <= len(ALL_IDS):
        raise ValueError(f"n_scenes must be 1..{len(ALL_IDS)}, got {n_scenes}")
    if not 0 <= n_train <= n_scenes:
        raise ValueError(f"n_train must be 0..n_scenes ({n_scenes}), got {n_train}")
    rng = np.random.default_rng([seed, 7919])
    train = list(REAL_TRAIN_IDS[:n_train])
    rest = [i for i in ALL_IDS if i not in train]
    rest = [rest[k] for k in rng.permutation(len(rest))]
    train += rest[: n_train - len(train)]
    rest = rest[max(0, n_train - len(REAL_TRAIN_IDS)):]
    others = rest[: n_scenes - n_train]
    return train + others, train


# --------------------------------------------------------------------------------------------- spectra

#: Wavelength anchors (nm) of the reflectance curves below.
_WL = np.array([400, 480, 550, 620, 670, 710, 760, 850, 1000, 1200, 1600, 1700, 2200, 2300], float)
#: Materials: name -> reflectance at ``_WL``. Index in this dict = value in the material map.
_MATERIALS: dict[str, tuple[float, ...]] = {
    "soil": (.06, .09, .12, .16, .19, .21, .23, .26, .28, .31, .36, .37, .33, .30),
    "grass": (.03, .04, .09, .06, .045, .12, .30, .34, .35, .30, .22, .20, .11, .10),
    "crop_green": (.03, .045, .11, .07, .05, .17, .42, .48, .48, .38, .25, .23, .12, .11),
    "crop_mid": (.04, .06, .12, .10, .09, .20, .37, .42, .43, .37, .28, .26, .17, .15),
    "crop_ripe": (.05, .07, .14, .17, .16, .22, .33, .37, .38, .36, .33, .32, .24, .22),
    "tree": (.02, .03, .06, .04, .025, .09, .36, .42, .43, .33, .18, .15, .07, .06),
    "road": (.09, .10, .11, .115, .12, .125, .13, .14, .15, .17, .21, .22, .23, .23),
    "track": (.10, .14, .18, .22, .25, .27, .29, .31, .33, .36, .41, .41, .38, .36),
    "water": (.06, .07, .065, .05, .04, .035, .025, .015, .01, .005, .003, .003, .002, .002),
    "pond": (.05, .07, .09, .07, .05, .045, .04, .03, .02, .01, .005, .005, .003, .003),
    "roof_grey": (.18, .20, .22, .23, .235, .24, .25, .26, .27, .30, .34, .35, .33, .32),
    "roof_red": (.06, .07, .08, .13, .24, .29, .31, .33, .35, .38, .42, .42, .40, .39),
    "roof_dark": (.06, .065, .07, .07, .075, .08, .085, .09, .10, .13, .20, .21, .22, .22),
    "paved": (.14, .16, .18, .19, .20, .20, .21, .22, .23, .26, .30, .31, .29, .28),
    "structure": (.25, .28, .30, .31, .32, .32, .33, .34, .35, .37, .40, .40, .38, .37),
    "car_white": (.45, .50, .52, .53, .53, .53, .53, .53, .53, .52, .45, .43, .35, .33),
    "car_dark": (.04, .04, .04, .04, .04, .04, .05, .05, .06, .07, .08, .08, .08, .08),
    "car_red": (.05, .05, .06, .10, .35, .40, .42, .44, .45, .45, .40, .38, .30, .28),
    "truck": (.35, .40, .42, .43, .43, .43, .43, .44, .44, .44, .40, .38, .30, .29),
}
MAT = {name: i for i, name in enumerate(_MATERIALS)}
_REFL = np.array(list(_MATERIALS.values()), float)  # (materials, anchors)

#: Wavelength range (nm) of every band, in DSTL_BANDS order.
BAND_RANGES: dict[str, tuple[float, float]] = {
    "R": (620, 690), "G": (500, 580), "B": (440, 510), "P": (450, 800),
    "M1": (400, 450), "M2": (450, 510), "M3": (510, 580), "M4": (585, 625),
    "M5": (630, 690), "M6": (705, 745), "M7": (770, 895), "M8": (860, 1040),
    "A1": (1195, 1225), "A2": (1550, 1590), "A3": (1640, 1680), "A4": (1710, 1750),
    "A5": (2145, 2185), "A6": (2185, 2225), "A7": (2235, 2285), "A8": (2295, 2365),
}

# Per-material texture amplitudes (relative brightness): fine (pixel), mid (~3 m), row stripes.
_TEX = {
    "soil": (0.05, 0.08, 0.0), "grass": (0.05, 0.06, 0.0), "crop_green": (0.04, 0.05, 0.07),
    "crop_mid": (0.04, 0.05, 0.08), "crop_ripe": (0.04, 0.05, 0.09), "tree": (0.16, 0.12, 0.0),
    "road": (0.02, 0.03, 0.0), "track": (0.04, 0.06, 0.0), "water": (0.01, 0.02, 0.0),
    "pond": (0.015, 0.03, 0.0), "roof_grey": (0.03, 0.03, 0.0), "roof_red": (0.03, 0.03, 0.0),
    "roof_dark": (0.03, 0.03, 0.0), "paved": (0.04, 0.05, 0.0), "structure": (0.03, 0.02, 0.0),
    "car_white": (0.02, 0.0, 0.0), "car_dark": (0.02, 0.0, 0.0), "car_red": (0.02, 0.0, 0.0),
    "truck": (0.02, 0.0, 0.0),
}
_VEG = {"grass": 0.12, "crop_green": 0.15, "crop_mid": 0.12, "crop_ripe": 0.08, "tree": 0.15}
# Counts = dark + gain * reflectance * illumination (+ path radiance for short wavelengths).
_GAIN = {11: 2200.0, 14: 15500.0}
_DARK = {11: 60.0, 14: 250.0}
_NOISE = {11: 2.5, 14: 18.0}


def band_reflectance(band: str) -> np.ndarray:
    """Mean reflectance of every material over ``band``'s wavelength range: (materials,) float."""
    lo, hi = BAND_RANGES[band]
    wl = np.linspace(lo, hi, 32)
    return np.array([np.interp(wl, _WL, r).mean() for r in _REFL])


def _path_radiance(band: str, bits: int) -> float:
    """Atmospheric path radiance in counts: strong at short wavelengths, none in the SWIR."""
    lo, hi = BAND_RANGES[band]
    centre = (lo + hi) / 2
    return 0.06 * _GAIN[bits] * (450.0 / centre) ** 4 if centre < 1100 else 0.0


# --------------------------------------------------------------------------------------------- geometry helpers


def _rot_rects(cx, cy, w, h, ang) -> np.ndarray:
    """Rotated rectangles (vectorised): centres, widths along ``ang`` (radians), heights -> polygons."""
    u = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    v = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    return _place(u, v, cx, cy, w, h, ang)


def _place(u, v, cx, cy, w, h, ang) -> np.ndarray:
    """Unit-shape vertices (u, v) scaled by (w, h), rotated by ``ang`` and moved to (cx, cy)."""
    cx, cy, w, h, ang = (np.atleast_1d(np.asarray(a, float)) for a in (cx, cy, w, h, ang))
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    x = np.asarray(u)[None, :] * w[:, None]
    y = np.asarray(v)[None, :] * h[:, None]
    coords = np.stack([cx[:, None] + c * x - s * y, cy[:, None] + s * x + c * y], axis=-1)
    return shapely.polygons(coords)


def _l_shapes(rng, cx, cy, w, h, ang) -> np.ndarray:
    """L-shaped buildings: a rectangle with one corner cut away."""
    n = len(cx)
    a = rng.uniform(-0.15, 0.2, n)
    b = rng.uniform(-0.15, 0.2, n)
    out = []
    for i in range(n):  # few per scene; the cut differs per building
        u = [-0.5, 0.5, 0.5, b[i], b[i], -0.5, -0.5]
        v = [-0.5, -0.5, a[i], a[i], 0.5, 0.5, -0.5]
        out.append(_place(u, v, cx[i], cy[i], w[i], h[i], ang[i])[0])
    return np.array(out, dtype=object)


def _curve(rng, p0, heading, length, step=60.0, turn_sd=0.05, drift=0.0) -> np.ndarray:
    """A smooth random polyline from ``p0`` with ``heading`` (radians): (n, 2) points."""
    n = max(2, int(length / step))
    turns = np.cumsum(rng.normal(drift, turn_sd, n))
    turns = np.convolve(turns, np.ones(5) / 5, mode="same")
    ang = heading + turns
    pts = np.cumsum(np.stack([np.cos(ang), np.sin(ang)], 1) * step, axis=0)
    return np.vstack([p0, p0 + pts])


def _circles(xy: np.ndarray, r: np.ndarray, quad_segs: int = 3) -> np.ndarray:
    return shapely.buffer(shapely.points(xy), r, quad_segs=quad_segs)


def _polys_of(geom) -> list[Polygon]:
    """The non-empty polygons of any geometry."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [g for g in geom.geoms if not g.is_empty]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polys_of(g)]
    return []


def _as_multipolygon(geom) -> MultiPolygon:
    """A valid MultiPolygon from any geometry (polygon parts only)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = [p for p in _polys_of(geom) if p.area > 0]
    mp = MultiPolygon(polys)
    if not mp.is_valid:
        mp = MultiPolygon(_polys_of(shapely.make_valid(mp)))
    return mp


def _union(geoms) -> object:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return Polygon()
    return shapely.union_all(np.array(geoms, dtype=object))


def _fast_union(geoms) -> object:
    """Union of polygons where most touch nothing: only the overlapping ones go through GEOS union."""
    arr = np.array([g for p in geoms for g in _polys_of(p)], dtype=object)
    if len(arr) == 0:
        return MultiPolygon()
    a, b = shapely.STRtree(arr).query(arr, predicate="intersects")
    hit = np.zeros(len(arr), bool)
    pair = a != b
    hit[a[pair]] = True
    hit[b[pair]] = True
    parts = list(arr[~hit])
    if hit.any():
        parts += _polys_of(shapely.union_all(arr[hit]))
    return MultiPolygon(parts)


def _scale_many(geoms, sx: float, sy: float, ox: float = 0.0, oy: float = 0.0) -> list:
    """Scale (and move) many geometries at once: x' = sx*x + ox, y' = sy*y + oy."""
    if len(geoms) == 0:
        return []
    arr = np.array(list(geoms), dtype=object)
    mul = np.array([sx, sy])
    add = np.array([ox, oy])
    return list(shapely.transform(arr, lambda xy: xy * mul + add))


# --------------------------------------------------------------------------------------------- layout


@dataclass
class _Layout:
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


def _layout(rng: np.random.Generator, W: float, H: float) -> _Layout:
    """Make the land of one scene: every class with plausible shapes, in fpx (0..W, 0..H)."""
    L = _Layout(W, H)
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
        pts = _curve(rng, np.array(start) - 200 * np.array([math.cos(heading), math.sin(heading)]), heading, 1.5 * (W + H), 60, 0.03)
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
    roads = _union(road_geoms).intersection(frame) if road_geoms else Polygon()
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
        pond = _union(parts)
        if not pond.buffer(8).intersects(roads) and not pond.intersects(river_zone):
            ponds.append(pond)
    pond_u = _union(ponds).intersection(frame) if ponds else Polygon()
    water_block = _union([river_zone, pond_u.buffer(6) if ponds else Polygon()])

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
    busy = _union([roads, water_block])
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
            big = _rot_rects(c0.x, c0.y, w, h, theta + rng.normal(0, 0.03))[0]
            if rng.random() < 0.45:
                big = big.difference(_rot_rects(c0.x, c0.y, w * rng.uniform(0.35, 0.6), h * rng.uniform(0.35, 0.6), theta)[0])
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
        polys[~is_l] = _rot_rects(px[~is_l], py[~is_l], w[~is_l], h[~is_l], ang[~is_l])
        if is_l.any():
            polys[is_l] = _l_shapes(rng, px[is_l], py[is_l], w[is_l] * 1.3, h[is_l] * 1.3, ang[is_l])
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
            sq = _rot_rects(shx, shy, rng.uniform(9, 24, hx.size), rng.uniform(8, 18, hx.size), ha)
            sq = sq[shapely.within(sq, core_p) & ~shapely.intersects(sq, busy)]
            sheds.extend(sq)
    # houses of neighbouring lattice cells may touch: keep buildings apart, as they are on the ground
    keep_b = set(map(id, _drop_overlaps(buildings_large + buildings_res + buildings_non, pad=1.5)))
    buildings_res = [b for b in buildings_res if id(b) in keep_b]
    buildings_non = [b for b in buildings_non if id(b) in keep_b]
    all_buildings = buildings_res + buildings_non + buildings_large
    build_u = _fast_union(all_buildings)
    shapely.prepare(build_u)

    # ---- structures elsewhere: silos/tanks (circles), pylons and huts in fields
    structs = list(sheds)
    pylons = []
    n_st = rng.poisson(40 + 50 * (kind in ("suburban", "urban")))
    xy = rng.uniform([0, 0], [W, H], (n_st, 2))
    st = np.where(rng.random(n_st) < 0.3, _circles(xy, rng.uniform(6, 20, n_st), 4),
                  _rot_rects(xy[:, 0], xy[:, 1], rng.uniform(10, 45, n_st), rng.uniform(8, 30, n_st), theta))
    st = st[~shapely.intersects(st, busy) & ~shapely.intersects(st, build_u)]
    structs.extend(st)
    if rng.random() < 0.4:  # a power line: pylons in a row (unscored layer)
        p0 = rng.uniform([0, 0], [W, H])
        hd = rng.uniform(0, math.pi)
        t = np.arange(-3000, 3000, 900.0)
        pxy = p0 + np.stack([np.cos(hd) * t, np.sin(hd) * t], 1)
        pl = _rot_rects(pxy[:, 0], pxy[:, 1], 9, 9, hd)
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
        pts = _curve(rng, rng.uniform([0, 0], [W, H]), rng.uniform(0, 2 * math.pi), rng.uniform(400, 1500), 40, 0.12)
        paths.append(shapely.linestrings(pts).buffer(rng.uniform(2, 3.5), quad_segs=2))
    track_u = _union(tracks).difference(roads).difference(water_block).intersection(frame) if tracks else Polygon()
    path_u = _union(paths).difference(roads).difference(water_block).difference(build_u).intersection(frame) if paths else Polygon()

    # ---- trees
    no_tree = _union([roads.buffer(2), water_block,
                      _fast_union(list(shapely.buffer(np.array(all_buildings + structs, dtype=object), 4, quad_segs=1,
                                                      join_style="mitre")))])
    shapely.prepare(no_tree)
    woods = []
    for wc in wood_cells:
        minx, miny, maxx, maxy = wc.bounds
        n = int(wc.area / 2500) + 5
        xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
        xy = xy[shapely.contains_xy(wc, xy[:, 0], xy[:, 1])]
        if len(xy):
            blob = _union(_circles(xy, rng.uniform(30, 70, len(xy)), 4)).intersection(wc.buffer(20))
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
            groups.append(_union(_circles(xy, rng.uniform(8, 22, k), 4)).intersection(f).difference(no_tree))
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
    hedge_u = _union(hedges).difference(no_tree).intersection(frame) if hedges else Polygon()
    # standalone trees: gardens, meadows, along roads
    n_single = rng.poisson({"rural": 250, "village": 600, "suburban": 1000, "urban": 700}[kind])
    xy = rng.uniform([0, 0], [W, H], (n_single, 2))
    in_settle = np.zeros(n_single, bool)
    for blk in settle_blocks + meadow:
        in_settle |= shapely.contains_xy(blk, xy[:, 0], xy[:, 1])
    xy = xy[in_settle | (rng.random(n_single) < 0.15)]
    singles = _circles(xy, rng.uniform(5, 16, len(xy)), 3)
    singles = singles[~shapely.intersects(singles, no_tree)]
    singles = _polys_of(_union(singles).intersection(frame)) if len(singles) else []

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
                v = _rot_rects(cx, cy, rng.uniform(35, 60, n), rng.uniform(8.5, 10.5, n), tang)
                v = v[shapely.within(v, frame)]
                large_v.extend(v)
            else:
                is_m = rng.random(n) < 0.04
                v = _rot_rects(cx, cy, np.where(is_m, 6.5, rng.uniform(13, 17, n)), np.where(is_m, 2.5, rng.uniform(5.5, 6.5, n)), tang)
                okv = shapely.within(v, frame)
                small_v.extend(v[okv & ~is_m])
                moto.extend(v[okv & is_m])
    for yard in paved:  # parked cars in yards
        for p in _polys_of(yard):
            if p.area < 3000:
                continue
            minx, miny, maxx, maxy = p.bounds
            n = int(p.area / 2500)
            xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
            v = _rot_rects(xy[:, 0], xy[:, 1], 15, 6, theta + math.pi / 2 * rng.integers(0, 2, n))
            v = v[shapely.within(v, p)]
            small_v.extend(v)
    # small vehicles must not overlap each other (keep the first of overlapping ones)
    small_v = _drop_overlaps(small_v)
    large_v = _drop_overlaps(large_v)
    large_u = _union(large_v)
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
    L.add("002_TR_L3_GOOD_ROADS", _polys_of(roads))
    L.add("002_TR_L4_POOR_DIRT_CART_TRACK", _polys_of(track_u))
    L.add("002_TR_L6_FOOTPATH_TRAIL", _polys_of(path_u))
    L.add("006_VEG_L2_WOODLAND", [p for w in woods for p in _polys_of(w)])
    L.add("006_VEG_L3_HEDGEROWS", _polys_of(hedge_u))
    L.add("006_VEG_L5_GROUP_TREES", [p for g in groups for p in _polys_of(g)])
    L.add("006_VEG_L5_STANDALONE_TREES", singles)
    for f in crop_polys:
        L.add("007_AGR_L6_ROW_CROP" if rng.random() < 0.7 else "007_AGR_L2_CONTOUR_PLOUGHING_CROPLAND", _polys_of(f))
    L.add("008_WTR_L3_WATERWAY", _polys_of(waterway))
    L.add("008_WTR_L2_STANDING_WATER", _polys_of(pond_u))
    L.add("003_VH_L4_LARGE_VEHICLE", large_v)
    L.add("003_VH_L5_SMALL_VEHICLE", small_v)
    L.add("003_VH_L6_MOTORBIKE", moto)
    L.add("001_MM_L4_BRIDGE", _polys_of(bridges))
    L.add("004_UPI_L5_PYLONS", pylons)

    # ---- painter's list (materials); background (soil/grass mosaic) is drawn by the renderer
    # meadows and fallow (bare, ploughed) fields: not crops, and the crops' main confuser
    L.paint += [(m, "grass" if rng.random() < 0.6 else "soil") for m in meadow]
    # settlement ground: gardens, with paved blocks in the denser places
    p_paved = {"rural": 0.15, "village": 0.2, "suburban": 0.3, "urban": 0.6}[kind]
    L.paint += [(b, "paved" if rng.random() < p_paved else "grass") for b in settle_blocks]
    L.paint += [(p, "paved") for p in paved]
    L.paint += [(f, mat) for f, mat, _ in crop_fields]
    L.paint += [(g, "track") for g in _polys_of(track_u) + _polys_of(path_u)]
    L.paint += [(g, "water") for g in _polys_of(river)]
    L.paint += [(g, "pond") for g in _polys_of(pond_u)]
    L.paint += [(g, "road") for g in _polys_of(roads)]
    trees_all = L.layers.get("006_VEG_L2_WOODLAND", []) + _polys_of(hedge_u) + L.layers.get("006_VEG_L5_GROUP_TREES", []) + singles
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


def _drop_overlaps(polys: list, pad: float = 0.0) -> list:
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


# --------------------------------------------------------------------------------------------- rendering


def _smooth_noise(rng: np.random.Generator, H: int, W: int, scale_px: float) -> np.ndarray:
    """Gaussian-ish noise with features ~``scale_px`` pixels, std ~1: (H, W) float32."""
    gh = max(2, int(math.ceil(H / max(scale_px, 1.0))) + 2)
    gw = max(2, int(math.ceil(W / max(scale_px, 1.0))) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    sd = float(big.std()) or 1.0
    return big / sd


def _render(L: _Layout, rng: np.random.Generator, H: int, W: int, sx: float, sy: float):
    """Rasterize materials and texture on the R grid (H, W) of the generated size; fpx -> px is
    x_px = sx * x_fpx, y_px = sy * y_fpx.

    Returns (materials uint8 (H, W), brightness float32 (H, W), vigour float32 (H, W)).
    """
    s = (sx + sy) / 2
    low = _smooth_noise(rng, H, W, 400 * s)
    mat = np.where(_smooth_noise(rng, H, W, 250 * s) > 0.0, MAT["soil"], MAT["grass"]).astype(np.uint8)
    paint = [(g, m) for g, m in L.paint if not g.is_empty]
    shapes = list(zip(_scale_many([g for g, _ in paint], sx, sy), [MAT[m] for _, m in paint]))
    if shapes:
        rasterize(shapes, out=mat, transform=Affine.identity())
    # row texture of crop fields: stripes across the row direction, per field
    fid = np.zeros((H, W), np.int32)
    if L.fields:
        rasterize(list(zip(_scale_many([f for f, _, _ in L.fields], sx, sy), range(1, len(L.fields) + 1))),
                  out=fid, transform=Affine.identity())
    angs = np.array([0.0] + [a for _, a, _ in L.fields], np.float32)
    per = np.array([1.0] + [p for _, _, p in L.fields], np.float32) * s
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    phase = (xx * np.cos(angs)[fid] + yy * np.sin(angs)[fid]) / np.maximum(per[fid], 1e-3)
    # rows finer than ~2 px average out: fade their contrast as a real sensor would
    fade = np.clip((per[fid] - 2.0) / 4.0, 0.0, 1.0)
    stripes = np.sin(2 * np.pi * phase) * fade
    del xx, yy, phase, fade
    # texture
    names = list(_MATERIALS)
    fine_a = np.array([_TEX[n][0] for n in names], np.float32)
    mid_a = np.array([_TEX[n][1] for n in names], np.float32)
    row_a = np.array([_TEX[n][2] for n in names], np.float32)
    fine = rng.standard_normal((H, W), dtype=np.float32)
    sig = max(0.5, 1.2 * s)
    fine = cv2.GaussianBlur(fine, (0, 0), sig)
    fine /= float(fine.std()) or 1.0
    mid = _smooth_noise(rng, H, W, 10 * s)
    bright = 1.0 + fine_a[mat] * fine + mid_a[mat] * mid + row_a[mat] * stripes + 0.04 * low
    del fine, mid, stripes
    # shadows: casters shifted away from the sun, darkening what is not itself a caster
    shadow = np.zeros((H, W), np.uint8)
    sun = np.array([0.35, 0.5])
    cast = []
    for hfac in sorted({h for _, h in L.shadow_casters}):
        d = 10 * hfac
        cast += [(g, 1) for g in _scale_many([g for g, h in L.shadow_casters if h == hfac], sx, sy,
                                             sun[0] * d * sx, sun[1] * d * sy)]
    if cast:
        rasterize(cast, out=shadow, transform=Affine.identity())
    casters = np.isin(mat, [MAT["roof_grey"], MAT["roof_red"], MAT["roof_dark"], MAT["tree"], MAT["structure"]])
    bright = np.where((shadow > 0) & ~casters, bright * 0.55, bright).astype(np.float32)
    # per-object brightness (painted in the same order as the materials, so the top object wins)
    if L.tints:
        tint = np.zeros((H, W), np.uint16)
        geoms = _scale_many([g for g, _ in L.tints], sx, sy)
        rasterize(list(zip(geoms, [int(round(t * 1000)) for _, t in L.tints])), out=tint, transform=Affine.identity())
        has = tint > 0
        # (a tree group inside a field takes the field's tint too: a small, harmless blur of the rule)
        bright[has] *= tint[has].astype(np.float32) / 1000.0
    vig = _smooth_noise(rng, H, W, 60 * s)
    return mat, bright, vig


def _band_radiance(band: str, mat, bright, vig, illum: float, haze: float = 1.0) -> np.ndarray:
    """Radiance of one band on the R grid in counts before noise: (H, W) float32. ``illum`` scales the
    sunlight, ``haze`` the atmospheric path radiance (short wavelengths) of the scene."""
    bits = BIT_DEPTH["A"] if band.startswith("A") else 11
    refl = band_reflectance(band).astype(np.float32)
    lo, hi = BAND_RANGES[band]
    centre = (lo + hi) / 2
    veg = np.array([_VEG.get(n, 0.0) for n in _MATERIALS], np.float32)
    # vigour: more NIR and less red where plants grow well
    vsign = 1.0 if centre > 700 else (-0.6 if 600 < centre < 700 else -0.2)
    gain = _GAIN[bits] * illum
    # counts = dark + path + gain * (refl[mat] * bright + vig_lut[mat] * vigour), done in place
    lut = np.zeros(256, np.float32)
    lut[: refl.size] = gain * refl
    vlut = np.zeros(256, np.float32)
    vlut[: refl.size] = gain * veg * refl * vsign
    out = cv2.LUT(mat, lut)
    out *= bright
    v = cv2.LUT(mat, vlut)
    v *= vig
    out += v
    out += np.float32(_DARK[bits] + haze * _path_radiance(band, bits))
    return out


def _group_shape(group: str, H: int, W: int) -> tuple[int, int]:
    if group in ("R", "P"):
        return H, W
    if group == "M":
        return max(2, round(H / M_RATIO)), max(2, round(W / M_RATIO))
    return max(MIN_A_PX, round(H / A_RATIO)), max(MIN_A_PX, round(W / A_RATIO))


#: Optics PSF: a Gaussian of this sigma in R pixels (the scene is never sharper than ~1 px).
PSF_SIGMA = 0.6


def _psf_taps(sigma: float, d: float) -> tuple[np.ndarray, int]:
    """1-D taps of the PSF sampled off-centre by ``d`` px: ``(k, o)`` with
    ``out[x] = sum_t k[t] * src[x + o + t]`` = the PSF-blurred signal at ``x - d``."""
    reach = 4.0 * sigma + 1.0
    m = np.arange(math.floor(-d - reach), math.ceil(-d + reach) + 1)
    k = np.exp(-0.5 * ((m + d) / sigma) ** 2)
    return (k / k.sum()).astype(np.float32), int(m[0])


def _optics(radiance: np.ndarray, dx: float, dy: float, sigma: float = PSF_SIGMA) -> np.ndarray:
    """The radiance seen through the PSF by a sensor offset by (dx, dy) R pixels: (H, W) float32.

    The scene is the R-grid samples convolved with the Gaussian PSF; a group offset by (dx, dy)
    samples that continuous field at (x - dx, y - dy). Sampling the PSF off-centre does the blur and
    the exact sub-pixel shift in one separable filter (``cv2.warpAffine`` would quantise the shift to
    1/32 px and its cubic kernel moves fine detail by a few hundredths of a pixel more: the truth
    file would then be off by up to ~0.05 px). Borders reflect, as ``cv2.BORDER_REFLECT``.
    """
    kx, ox = _psf_taps(sigma, dx)
    ky, oy = _psf_taps(sigma, dy)
    pad_x = max(-ox, ox + kx.size - 1, 0)
    pad_y = max(-oy, oy + ky.size - 1, 0)
    H, W = radiance.shape
    src = cv2.copyMakeBorder(radiance, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT)
    # anchor (0, 0): out[y, x] = sum_ij ky[i] kx[j] src[y + i, x + j]
    out = cv2.sepFilter2D(src, cv2.CV_32F, kx, ky, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
    return out[pad_y + oy:pad_y + oy + H, pad_x + ox:pad_x + ox + W]


def _sense(radiance: np.ndarray, group: str, offset: tuple[float, float], rng: np.random.Generator,
           out_shape: tuple[int, int]) -> np.ndarray:
    """One band as the group's sensor records it: PSF + shift, area-average, PSF, noise -> uint16."""
    H, W = radiance.shape
    # a feature at (x, y) moves to (x+dx, y+dy)
    img = _optics(radiance, *offset)
    h, w = out_shape
    if (h, w) != (H, W):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        img = cv2.GaussianBlur(img, (0, 0), 0.5)
    bits = BIT_DEPTH[group]
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * _NOISE[bits]
    return np.clip(np.rint(img), 0, 2 ** bits - 1).astype(np.uint16)


# --------------------------------------------------------------------------------------------- offsets


def draw_offsets(rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Offsets of P, M, A against R in full-size R pixels, drawn like the real ECC fits.

    Two-sided normals with different spreads left and right of the median reproduce the skewed
    90 % ranges of dstl-format.md (M: median -0.65, 5 %..95 % = -6.6..+2.8; A: median (-12.8, -6.2),
    -51..+17).
    """

    def skew(median, lo, hi, lim):
        z = rng.standard_normal()
        v = median + (z * (median - lo) / 1.645 if z < 0 else z * (hi - median) / 1.645)
        return float(np.clip(v, lim[0], lim[1]))

    p = (float(np.clip(rng.normal(0, 0.35), -1.5, 1.5)), float(np.clip(rng.normal(0, 0.35), -1.5, 1.5)))
    m = (skew(-0.65, -6.6, 2.8, (-11, 8)), skew(-0.65, -6.6, 2.8, (-11, 8)))
    a = (skew(-12.8, -51, 17, (-80, 40)), skew(-6.2, -51, 17, (-80, 40)))
    return {"P": p, "M": m, "A": a}


# --------------------------------------------------------------------------------------------- scenes


@dataclass
class GeneratedScene:
    """One generated scene in memory.

    ``bands``: group -> uint16 (bands, h, w) counts (R: 3 bands on the R grid; P: 1 band, same size;
    M: 8 bands ~1/4; A: 8 bands ~1/25). ``xmax``, ``ymin``: the grid_sizes.csv extent (and
    ``grid_sizes``: the same values as written, strings). ``polygons``: class id (1..10) -> valid
    MultiPolygon in DSTL grid units. ``layers``: layer file name -> polygons in grid units (scored and
    unscored layers). ``offsets``: group -> (dx, dy) in R pixels of this size (the sign of ``sattag.ingest.align``).
    ``materials``: (H, W) uint8 material map on the R grid (index into ``MATERIAL_NAMES``).
    """

    scene_id: str
    bands: dict[str, np.ndarray]
    xmax: float
    ymin: float
    grid_sizes: tuple[str, str]
    polygons: dict[int, MultiPolygon]
    layers: dict[str, list]
    offsets: dict[str, tuple[float, float]]
    materials: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the R grid."""
        return self.bands["R"].shape[1:]

    @property
    def transform(self) -> Affine:
        """R pixel (col, row) -> grid units."""
        h, w = self.shape
        return dstl_transform(self.xmax, self.ymin, h, w)

    def masks(self) -> np.ndarray:
        """Class masks on the R grid: uint8 (10, H, W), index i = class id i+1."""
        h, w = self.shape
        out = np.zeros((10, h, w), np.uint8)
        for cid, mp in self.polygons.items():
            if not mp.is_empty:
                out[cid - 1] = rasterize([(mp, 1)], out_shape=(h, w), transform=self.transform, dtype=np.uint8)
        return out


MATERIAL_NAMES: tuple[str, ...] = tuple(_MATERIALS)


def _fmt_extent(rng: np.random.Generator, v: float) -> tuple[str, float]:
    """Write an extent value like the real grid_sizes.csv: mostly short, some with 11-14 digits."""
    if rng.random() < 0.7:
        txt = f"{v:.6f}".rstrip("0")
    else:
        txt = f"{v:.{int(rng.integers(11, 15))}g}"
    return txt, float(txt)


def scene_seed(seed: int, scene_id: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), scene_int(scene_id)])


def generate_scene(scene_id: str = "6120_2_2", size: int | None = None, seed: int = 0,
                   offsets: dict[str, tuple[float, float]] | None = None) -> GeneratedScene:
    """Generate one scene in memory (arrays + polygons); the same (scene_id, size, seed) gives the same
    scene, and the land is the same at every ``size``.

    ``size``: nominal width in px of the R/P grid (None: full size, ~3391-3403). Real widths vary per
    scene by a few px, and so do generated ones (by the same share at smaller sizes). ``offsets``:
    group -> (dx, dy) in R pixels *of this size*, forcing the shift of P, M or A (missing groups are
    drawn like the real ones and scaled by size / full width).
    """
    ss = scene_seed(seed, scene_id)
    r_geom, r_tex, r_noise, r_meta = (np.random.default_rng(s) for s in ss.spawn(4))
    Wf = int(r_meta.integers(FULL_WIDTHS[0], FULL_WIDTHS[1] + 1))
    Hf = int(r_meta.integers(FULL_HEIGHTS[0], FULL_HEIGHTS[1] + 1))
    if size is None:
        W, H = Wf, Hf
    else:
        if size < 2 * MIN_A_PX:
            raise ValueError(f"size must be at least {2 * MIN_A_PX} px, got {size}")
        W = max(2 * MIN_A_PX, round(size * Wf / NOMINAL_FULL_WIDTH))
        H = max(2 * MIN_A_PX, round(W * Hf / Wf))
    xs, xmax = _fmt_extent(r_meta, r_meta.uniform(0.0090045, 0.0091881))
    ys, ymin = _fmt_extent(r_meta, r_meta.uniform(-0.009045, -0.009031))
    drawn = draw_offsets(r_meta)
    scale = W / Wf
    offs = {g: (round(d[0] * scale, 4), round(d[1] * scale, 4)) for g, d in drawn.items()}
    if offsets:
        offs.update({g: (float(v[0]), float(v[1])) for g, v in offsets.items()})
    illum = float(r_meta.uniform(0.85, 1.15))
    haze = float(r_meta.uniform(0.6, 1.6))

    lay = _layout(r_geom, float(Wf), float(Hf))
    # ... and the raster sees them through the grid formula: x_px = x * W'/Xmax, W' = W*W/(W+1)
    mat, bright, vig = _render(lay, r_tex, H, W, (W * W / (W + 1)) / Wf, (H * H / (H + 1)) / Hf)

    bands: dict[str, np.ndarray] = {}
    noise_rngs = dict(zip(("R", "P", "M", "A"), (np.random.default_rng(s) for s in np.random.SeedSequence(r_noise.integers(2**32)).spawn(4))))
    for group, names in GROUP_BANDS.items():
        shp = _group_shape(group, H, W)
        off = (0.0, 0.0) if group == "R" else offs[group]
        bands[group] = np.stack([_sense(_band_radiance(b, mat, bright, vig, illum, haze), group, off, noise_rngs[group], shp)
                                 for b in names])

    # polygons: fpx -> R px of this size -> grid units, through the grid_sizes formula
    # fpx 0..Wf is grid 0..Xmax whatever the size, so a seed gives the same polygons at every size
    to_grid = Affine.scale(xmax / Wf, ymin / Hf)
    # the grid formula puts x = Xmax at W' = W*W/(W+1) px, a pixel short of the raster's edge: the
    # real labels stay within 0..Xmax, Ymin..0, so cut there
    extent = box(0.0, ymin, xmax, 0.0)
    layers = {}
    for name, geoms in lay.layers.items():
        arr = np.array(_scale_many([p for g in geoms for p in _polys_of(g)], to_grid.a, to_grid.e), dtype=object)
        if len(arr):
            out = ~shapely.within(arr, extent)
            arr[out] = shapely.intersection(arr[out], extent)
        layers[name] = [p for g in arr for p in _polys_of(g) if p.area > 0]
    polygons = {}
    for cid, names in CLASS_LAYERS.items():
        polygons[cid] = _as_multipolygon(_fast_union([g for n in names for g in layers.get(n, [])]))
    return GeneratedScene(scene_id, bands, xmax, ymin, (xs, ys), polygons, layers, offs, mat)


# --------------------------------------------------------------------------------------------- writing


def _write_tif(path: Path, arr: np.ndarray, georef: tuple[float, float, float]) -> None:
    """Write a uint16 (bands, h, w) GeoTIFF atomically, with a plausible UTM georeference."""
    x0, y0, px = georef
    count, h, w = arr.shape
    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp, "w", driver="GTiff", height=h, width=w, count=count, dtype="uint16",
            crs="EPSG:32631", transform=Affine(px, 0, x0, 0, -px, y0),
            compress="deflate", predictor=2, zlevel=1,
        ) as dst:
            dst.write(arr)
            dst.update_tags(TIFFTAG_IMAGEDESCRIPTION=",".join(str(i) for i in range(1, count + 1)))


def write_scene(out: str | Path, scene: GeneratedScene, with_labels: bool = False) -> None:
    """Write one scene's four GeoTIFFs (and, with ``with_labels``, its GeoJSON layers) under ``out``."""
    out = Path(out)
    sid = scene.scene_id
    h, w = scene.shape
    # a plausible UTM 31N position per grid square; the pixel size follows the generated size
    g, r, c = (int(v) for v in sid.split("_"))
    px = 0.31 * NOMINAL_FULL_WIDTH / w
    x0 = 440000.0 + (g - 6000) * 120.0 + c * 1050.0
    y0 = 5450000.0 - r * 1040.0
    names = {"R": out / "three_band" / f"{sid}.tif", "P": out / "sixteen_band" / f"{sid}_P.tif",
             "M": out / "sixteen_band" / f"{sid}_M.tif", "A": out / "sixteen_band" / f"{sid}_A.tif"}
    for grp, path in names.items():
        arr = scene.bands[grp]
        gpx = px * w / arr.shape[2]
        _write_tif(path, arr, (x0, y0, gpx))
    if with_labels:
        _write_geojson(out / "train_geojson_v3" / sid, scene)


def _write_geojson(folder: Path, scene: GeneratedScene) -> None:
    """One GeoJSON per non-empty label layer plus the ``Grid_`` outline file."""
    oid = 0
    for layer, geoms in sorted(scene.layers.items()):
        if not geoms:
            continue
        feats = []
        for gm in geoms:
            oid += 1
            feats.append({"type": "Feature", "geometry": mapping(gm),
                          "properties": {"OBJECTID": oid, "IMAGE_ID": scene.scene_id, "LABEL": layer,
                                         "Area": gm.area}})
        _dump_json(folder / f"{layer}.geojson", {"type": "FeatureCollection", "features": feats})
    outline = box(0, scene.ymin, scene.xmax, 0)
    _dump_json(folder / f"Grid_{scene.scene_id}.geojson", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(outline), "properties": {"IMAGE_ID": scene.scene_id}}]})


def _dump_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, separators=(",", ":")))


_TRAILING_ZEROS = re.compile(r"\.(\d*?)0+(?=[ ,)])")
_MINUS_ZERO = re.compile(r"(?<![\d.])-0(?=[ ,)])")


def _wkt(mp: MultiPolygon) -> str:
    """WKT with plain decimals (9 places, ~0.003 px; no exponents), trailing zeros dropped."""
    if mp.is_empty:
        return "MULTIPOLYGON EMPTY"
    # snap to the written precision first, so that what is read back is still valid
    snapped = _as_multipolygon(shapely.set_precision(mp, 1e-9))
    txt = shapely.to_wkt(snapped, rounding_precision=9, trim=False)
    txt = _TRAILING_ZEROS.sub(lambda m: "." + m.group(1) if m.group(1) else "", txt)
    return _MINUS_ZERO.sub("0", txt)


@dataclass(frozen=True)
class SceneRecord:
    """What the dataset tables need from one written scene (see :func:`write_generated_scene`)."""

    scene_id: str
    grid_sizes: tuple[str, str]
    offsets: dict[str, tuple[float, float]]
    wkt: tuple[str, ...]  # 10 MultipolygonWKT strings for a training scene, else empty


def write_generated_scene(out: str | Path, scene_id: str, size: int | None = None, seed: int = 0,
                          offsets: dict[str, tuple[float, float]] | None = None,
                          with_labels: bool = False) -> SceneRecord:
    """Generate one scene and write its GeoTIFFs (and GeoJSON layers when ``with_labels``) under ``out``.

    Independent of every other scene, so an engine may map it over scenes in parallel and hand the
    records to :func:`write_dataset_tables`.
    """
    sc = generate_scene(scene_id, size=size, seed=seed, offsets=offsets)
    write_scene(out, sc, with_labels=with_labels)
    wkt = tuple(_wkt(sc.polygons[cid]) for cid in range(1, 11)) if with_labels else ()
    return SceneRecord(scene_id, sc.grid_sizes, dict(sc.offsets), wkt)


def write_dataset_tables(out: str | Path, records: list[SceneRecord], train: list[str], seed: int = 0) -> None:
    """Write grid_sizes.csv, train_wkt_v4.csv, sample_submission.csv and generator_truth.csv."""
    out = Path(out)
    train_set = set(train)
    rng = np.random.default_rng([seed, 104729])
    # grid_sizes.csv rows are not sorted in the real file
    order = rng.permutation(len(records))
    write_csv(out / "grid_sizes.csv", ["", "Xmax", "Ymin"],
              [(records[i].scene_id, *records[i].grid_sizes) for i in order])
    write_csv(out / "train_wkt_v4.csv", ["ImageId", "ClassType", "MultipolygonWKT"],
              [(r.scene_id, cid, w) for r in records if r.scene_id in train_set
               for cid, w in enumerate(r.wkt, start=1)])
    # test set: every non-training scene plus a few training ones (4 of 25 in the real data)
    n_overlap = min(len(train), round(4 * len(train) / 25))
    test = [r.scene_id for r in records if r.scene_id not in train_set] + list(train[:n_overlap])
    test = [test[k] for k in rng.permutation(len(test))]
    write_csv(out / "sample_submission.csv", ["ImageId", "ClassType", "MultipolygonWKT"],
              [(sid, cid, PLACEHOLDER_WKT) for sid in test for cid in range(1, 11)])
    write_csv(out / "generator_truth.csv", ["scene", "group", "dx", "dy"],
              [(r.scene_id, g, repr(float(r.offsets[g][0])), repr(float(r.offsets[g][1])))
               for r in records for g in ("P", "M", "A")])


def generate_dataset(out: str | Path, n_scenes: int = 450, n_train: int = 25, size: int | None = None,
                     seed: int = 0, offsets: dict[str, tuple[float, float]] | None = None,
                     progress: Callable[[int], None] | None = None) -> Path:
    """Write a DSTL-format dataset under ``out`` and return ``out``.

    ``n_scenes`` ImageIds from the 450 real ones, the first ``n_train`` of them training scenes (with
    polygons in ``train_wkt_v4.csv`` and ``train_geojson_v3/``). ``size``: nominal width in px of the
    R/P files (None = full size ~3391-3403; M is ~1/4, A ~1/25, at least 8 px); real widths vary by a
    few px per scene and so do generated ones. ``offsets``: group -> (dx, dy) in R px of the generated
    size, forced for every scene (else drawn per scene like the real ones, scaled to the size). Also
    writes ``grid_sizes.csv``, ``sample_submission.csv`` and ``generator_truth.csv``. ``progress`` is
    called with 1 after each scene. Same arguments, same bytes. Serial; for parallel runs map
    :func:`write_generated_scene` over :func:`dataset_scene_ids` and finish with
    :func:`write_dataset_tables`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids, train = dataset_scene_ids(n_scenes, n_train, seed)
    train_set = set(train)
    records = []
    for sid in ids:
        records.append(write_generated_scene(out, sid, size=size, seed=seed, offsets=offsets,
                                             with_labels=sid in train_set))
        if progress is not None:
            progress(1)
    write_dataset_tables(out, records, train, seed)
    return out

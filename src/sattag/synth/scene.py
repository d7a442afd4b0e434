"""One generated scene: :class:`ScenePlan` draws the scene's size, extent and offsets, lays out the
land and renders any window of it through each group's sensor; :func:`generate_scene` puts the
windows together in memory."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import MultiPolygon, box

from sattag.dstl import BIT_DEPTH, CLASS_LAYERS, GROUP_BANDS, dstl_transform
from sattag.synth.dress import dress
from sattag.synth.layout import make_layout
from sattag.synth.render import Renderer, band_radiance_r, supersampling
from sattag.synth.sensor import (DARK, FULL_HEIGHTS, FULL_WIDTHS, MIN_A_PX, NOISE, NOMINAL_FULL_WIDTH, apply_sep,
                                 block_normal, draw_offsets, group_shape, kernels, lowpass_op, sensor_op)
from sattag.synth.shapes import as_multipolygon, fast_union, polys_of, scale_many
from sattag.synth.spectra import Conditions, draw_conditions


def scene_int(scene_id: str) -> int:
    """A stable integer for an ImageId ``GGGG_r_c`` (used to derive per-scene seeds)."""
    g, r, c = scene_id.split("_")
    return int(g) * 100 + int(r) * 10 + int(c)


@dataclass
class GeneratedScene:
    """One generated scene in memory.

    ``bands``: group -> uint16 (bands, h, w) counts (R: 3 bands on the R grid; P: 1 band, same size;
    M: 8 bands ~1/4; A: 8 bands ~1/25). ``xmax``, ``ymin``: the grid_sizes.csv extent (and
    ``grid_sizes``: the same values as written, strings). ``polygons``: class id (1..10) -> valid
    MultiPolygon in DSTL grid units. ``layers``: layer file name -> polygons in grid units (scored and
    unscored layers). ``offsets``: group -> (dx, dy) in R pixels of this size (the sign of ``sattag.ingest.align``).
    ``materials``: (H, W) uint8 material map on the R grid (index into ``MATERIAL_NAMES``; the material
    at each pixel's centre). ``conditions``: the scene's season, sun and atmosphere.
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
    conditions: Conditions = field(default_factory=Conditions)

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


def _fmt_extent(rng: np.random.Generator, v: float) -> tuple[str, float]:
    """Write an extent value like the real grid_sizes.csv: mostly short, some with 11-14 digits."""
    if rng.random() < 0.7:
        txt = f"{v:.6f}".rstrip("0")
    else:
        txt = f"{v:.{int(rng.integers(11, 15))}g}"
    return txt, float(txt)


def scene_seed(seed: int, scene_id: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), scene_int(scene_id)])


#: Default window (R px a side) of the windowed renderer: a scene is rendered and written this much at a
#: time (plus halos), so its memory does not grow with its size; the output does not depend on it.
TILE = 1024


def _grid_size(r_meta: np.random.Generator, size: int | None) -> tuple[int, int, int, int]:
    """(Wf, Hf, W, H): the scene's full-size R grid drawn from ``r_meta`` (its first two draws) and the
    R grid at ``size`` (None: full size)."""
    Wf = int(r_meta.integers(FULL_WIDTHS[0], FULL_WIDTHS[1] + 1))
    Hf = int(r_meta.integers(FULL_HEIGHTS[0], FULL_HEIGHTS[1] + 1))
    if size is None:
        return Wf, Hf, Wf, Hf
    if size < 2 * MIN_A_PX:
        raise ValueError(f"size must be at least {2 * MIN_A_PX} px, got {size}")
    W = max(2 * MIN_A_PX, round(size * Wf / NOMINAL_FULL_WIDTH))
    return Wf, Hf, W, max(2 * MIN_A_PX, round(W * Hf / Wf))


class ScenePlan:
    """Everything about one scene but its pixels: size, extent, offsets, conditions, the laid-out and
    dressed land (vector, cheap at any size), the renderer and each group's sensor operators.
    :meth:`render_tile` makes the pixels of any window; every random field is a function of position,
    so a scene's pixels are the same whatever the windows.
    """

    @staticmethod
    def group_shapes(scene_id: str = "6120_2_2", size: int | None = None, seed: int = 0) -> dict[str, tuple[int, int]]:
        """The (h, w) of each band group's file of the scene that ``ScenePlan(scene_id, size, seed)``
        would write, without building its layout (cheap at any size: for a check before writing)."""
        r_meta = np.random.default_rng(scene_seed(seed, scene_id).spawn(6)[3])
        _, _, W, H = _grid_size(r_meta, size)
        return {g: group_shape(g, H, W) for g in GROUP_BANDS}

    def __init__(self, scene_id: str = "6120_2_2", size: int | None = None, seed: int = 0,
                 offsets: dict[str, tuple[float, float]] | None = None):
        ss = scene_seed(seed, scene_id)
        r_geom, r_tex, r_noise, r_meta, r_cond, r_dress = (np.random.default_rng(s) for s in ss.spawn(6))
        Wf, Hf, W, H = _grid_size(r_meta, size)
        xs, xmax = _fmt_extent(r_meta, r_meta.uniform(0.0090045, 0.0091881))
        ys, ymin = _fmt_extent(r_meta, r_meta.uniform(-0.009045, -0.009031))
        drawn = draw_offsets(r_meta)
        scale = W / Wf
        offs = {g: (round(d[0] * scale, 4), round(d[1] * scale, 4)) for g, d in drawn.items()}
        if offsets:
            offs.update({g: (float(v[0]), float(v[1])) for g, v in offsets.items()})
        self.cond = cond = draw_conditions(r_cond)
        self.scene_id, self.W, self.H, self.Wf, self.Hf = scene_id, W, H, Wf, Hf
        self.xmax, self.ymin, self.grid_sizes, self.offsets = xmax, ymin, (xs, ys), offs

        self.layout = lay = dress(make_layout(r_geom, float(Wf), float(Hf)), cond, r_dress)
        # ... and the raster sees them through the grid formula: x_px = x * W'/Xmax, W' = W*W/(W+1)
        self.sub = sub = supersampling(Wf, W)
        self.renderer = Renderer(lay, cond, r_tex, H, W, (W * W / (W + 1)) / Wf, (H * H / (H + 1)) / Hf, sub)
        # the compiled loops, loaded now when a window of this scene will use them (a fixed cost, as
        # the plan's, not one that comes with the first window)
        kernels(min(H, TILE) * min(W, TILE) * sub * sub)
        self.noise_key = int(r_noise.integers(2**63))
        self.shapes = {g: group_shape(g, H, W) for g in GROUP_BANDS}
        self.sensor = {}
        for g in GROUP_BANDS:
            h, w = self.shapes[g]
            dx, dy = (0.0, 0.0) if g == "R" else offs[g]
            self.sensor[g] = (sensor_op(H, h, dy), sensor_op(W, w, dx))
        hm, wm = self.shapes["M"]
        self.lowpass = (lowpass_op(H, hm), lowpass_op(W, wm))

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the R grid."""
        return self.H, self.W

    def tiles(self, tile: int = TILE) -> list[tuple[int, int, int, int]]:
        """Windows (y0, y1, x0, x1) of the R grid, ``tile`` px a side, row by row."""
        tile = max(16, int(tile))
        return [(y, min(self.H, y + tile), x, min(self.W, x + tile))
                for y in range(0, self.H, tile) for x in range(0, self.W, tile)]

    def group_window(self, group: str, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
        """The part of ``group``'s grid that R window (y0, y1, x0, x1) makes: the windows of a tiling
        of the R grid tile each group's grid."""
        h, w = self.shapes[group]
        return y0 * h // self.H, y1 * h // self.H, x0 * w // self.W, x1 * w // self.W

    def render_tile(self, y0: int, y1: int, x0: int, x1: int) -> dict[str, tuple[tuple[int, int, int, int], np.ndarray]]:
        """Each group's counts in its part of R window (y0, y1, x0, x1): group -> (window on its grid,
        uint16 (bands, h, w))."""
        cond, H, W = self.cond, self.H, self.W
        wins = {g: self.group_window(g, y0, y1, x0, x1) for g in GROUP_BANDS}
        ly, lx = self.lowpass
        # the R pixels every group's outputs read (the sensor's and the pan-sharpening's taps)
        ya, yb, xa, xb = H, 0, W, 0
        for g, (gy0, gy1, gx0, gx1) in wins.items():
            if gy1 <= gy0 or gx1 <= gx0:
                continue
            ty, tx = self.sensor[g]
            sy, sx = ty.span(gy0, gy1), tx.span(gx0, gx1)
            if g == "R":
                a, b = ly.span(*sy)
                sy = (min(sy[0], a), max(sy[1], b))
                a, b = lx.span(*sx)
                sx = (min(sx[0], a), max(sx[1], b))
            ya, yb, xa, xb = min(ya, sy[0]), max(yb, sy[1]), min(xa, sx[0]), max(xb, sx[1])
        out: dict[str, tuple[tuple[int, int, int, int], np.ndarray]] = {}
        if yb <= ya or xb <= xa:
            return {g: (win, np.zeros((len(GROUP_BANDS[g]), win[1] - win[0], win[3] - win[2]), np.uint16))
                    for g, win in wins.items()}
        land = self.renderer.land(ya, yb, xa, xb)
        origin = (ya, xa)

        def radiance(band: str) -> np.ndarray:
            return band_radiance_r(band, land)

        pan = radiance("P")
        for gi, (g, names) in enumerate(GROUP_BANDS.items()):
            gy0, gy1, gx0, gx1 = wins[g]
            if gy1 <= gy0 or gx1 <= gx0:
                out[g] = (wins[g], np.zeros((len(names), gy1 - gy0, gx1 - gx0), np.uint16))
                continue
            ty, tx = self.sensor[g]
            bands = []
            if g == "R":  # the 3-band file is pan-sharpened (as :func:`pansharpen`)
                dark = np.float32(DARK[BIT_DEPTH["R"]])
                (ry0, ry1), (rx0, rx1) = ty.span(gy0, gy1), tx.span(gx0, gx1)
                p = pan - dark
                lowp = apply_sep(p, origin, ly, (ry0, ry1), lx, (rx0, rx1))
                ratio = p[ry0 - ya:ry1 - ya, rx0 - xa:rx1 - xa] / np.maximum(lowp, np.float32(1.0))
                np.clip(ratio, 0.0, 4.0, out=ratio)
                del p, lowp
                for k, b in enumerate(names):
                    c = apply_sep(radiance(b) - dark, origin, ly, (ry0, ry1), lx, (rx0, rx1))
                    c *= ratio
                    c += dark
                    bands.append(self._sense(c, (ry0, rx0), g, gi, k, wins[g]))
            else:
                for k, b in enumerate(names):
                    bands.append(self._sense(pan if b == "P" else radiance(b), origin, g, gi, k, wins[g]))
            out[g] = (wins[g], np.stack(bands))
        return out

    def _sense(self, radiance: np.ndarray, origin: tuple[int, int], group: str, gi: int, k: int,
               win: tuple[int, int, int, int]) -> np.ndarray:
        """Band ``k`` of ``group`` in its window ``win``: PSF + shift (+ area average and blur), noise,
        quantisation (as :func:`~sattag.synth.sensor.sense`)."""
        gy0, gy1, gx0, gx1 = win
        ty, tx = self.sensor[group]
        img = apply_sep(radiance, origin, ty, (gy0, gy1), tx, (gx0, gx1))
        bits = BIT_DEPTH[group]
        img += block_normal((self.noise_key, gi, k), gy0, gy1, gx0, gx1) * np.float32(NOISE[bits] * self.cond.noise)
        return np.clip(np.rint(img), 0, 2 ** bits - 1).astype(np.uint16)

    def materials(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The material map on R window (y0, y1, x0, x1)."""
        return self.renderer.materials(y0, y1, x0, x1)

    def labels(self) -> tuple[dict[str, list], dict[int, MultiPolygon]]:
        """(layers, polygons) in grid units: layer name -> polygons, class id -> MultiPolygon."""
        # polygons: fpx -> R px of this size -> grid units, through the grid_sizes formula
        # fpx 0..Wf is grid 0..Xmax whatever the size, so a seed gives the same polygons at every size
        to_grid = Affine.scale(self.xmax / self.Wf, self.ymin / self.Hf)
        # the grid formula puts x = Xmax at W' = W*W/(W+1) px, a pixel short of the raster's edge: the
        # real labels stay within 0..Xmax, Ymin..0, so cut there
        extent = box(0.0, self.ymin, self.xmax, 0.0)
        layers = {}
        for name, geoms in self.layout.layers.items():
            arr = np.array(scale_many([p for g in geoms for p in polys_of(g)], to_grid.a, to_grid.e), dtype=object)
            if len(arr):
                out = ~shapely.within(arr, extent)
                arr[out] = shapely.intersection(arr[out], extent)
            layers[name] = [p for g in arr for p in polys_of(g) if p.area > 0]
        polygons = {}
        for cid, names in CLASS_LAYERS.items():
            polygons[cid] = as_multipolygon(fast_union([g for n in names for g in layers.get(n, [])]))
        return layers, polygons


def generate_scene(scene_id: str = "6120_2_2", size: int | None = None, seed: int = 0,
                   offsets: dict[str, tuple[float, float]] | None = None, tile: int = TILE) -> GeneratedScene:
    """Generate one scene in memory (arrays + polygons); the same (scene_id, size, seed) gives the same
    scene, and the land is the same at every ``size``.

    ``size``: nominal width in px of the R/P grid (None: full size, ~3391-3403). Real widths vary per
    scene by a few px, and so do generated ones (by the same share at smaller sizes). ``offsets``:
    group -> (dx, dy) in R pixels *of this size*, forcing the shift of P, M or A (missing groups are
    drawn like the real ones and scaled by size / full width). ``tile``: the window the pixels are
    rendered in (R px a side; the result does not depend on it). For scenes too large for memory,
    :func:`sattag.synth.write.write_generated_scene` writes them window by window.
    """
    plan = ScenePlan(scene_id, size, seed, offsets)
    H, W = plan.shape
    bands = {g: np.zeros((len(names), *plan.shapes[g]), np.uint16) for g, names in GROUP_BANDS.items()}
    mat = np.zeros((H, W), np.uint8)
    for y0, y1, x0, x1 in plan.tiles(tile):
        for g, ((gy0, gy1, gx0, gx1), arr) in plan.render_tile(y0, y1, x0, x1).items():
            bands[g][:, gy0:gy1, gx0:gx1] = arr
        mat[y0:y1, x0:x1] = plan.materials(y0, y1, x0, x1)
    layers, polygons = plan.labels()
    return GeneratedScene(scene_id, bands, plan.xmax, plan.ymin, plan.grid_sizes, polygons, layers,
                          plan.offsets, mat, plan.cond)

"""One generated scene in memory: :func:`generate_scene` draws the scene's size, extent and
offsets, lays out the land, renders it and records it through each group's sensor."""
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
from sattag.synth.render import band_radiance, render, supersampling, to_r_grid
from sattag.synth.sensor import (DARK, FULL_HEIGHTS, FULL_WIDTHS, MIN_A_PX, NOMINAL_FULL_WIDTH, draw_offsets,
                                 group_shape, pansharpen, sense)
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
    r_geom, r_tex, r_noise, r_meta, r_cond, r_dress = (np.random.default_rng(s) for s in ss.spawn(6))
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
    cond = draw_conditions(r_cond)

    lay = dress(make_layout(r_geom, float(Wf), float(Hf)), cond, r_dress)
    # ... and the raster sees them through the grid formula: x_px = x * W'/Xmax, W' = W*W/(W+1)
    sub = supersampling(Wf, W)
    land, mat = render(lay, cond, r_tex, H, W, (W * W / (W + 1)) / Wf, (H * H / (H + 1)) / Hf, sub)

    bands: dict[str, np.ndarray] = {}
    noise_rngs = dict(zip(("R", "P", "M", "A"), (np.random.default_rng(s) for s in np.random.SeedSequence(r_noise.integers(2**32)).spawn(4))))
    for group, names in GROUP_BANDS.items():
        shp = group_shape(group, H, W)
        off = (0.0, 0.0) if group == "R" else offs[group]
        radiance = [to_r_grid(band_radiance(b, land), sub) for b in names]
        if group == "R":  # the 3-band file is pan-sharpened
            pan = to_r_grid(band_radiance("P", land), sub)
            radiance = pansharpen(radiance, pan, group_shape("M", H, W), DARK[BIT_DEPTH["R"]])
            del pan
        bands[group] = np.stack([sense(r, group, off, noise_rngs[group], shp, noise=cond.noise) for r in radiance])
        del radiance

    # polygons: fpx -> R px of this size -> grid units, through the grid_sizes formula
    # fpx 0..Wf is grid 0..Xmax whatever the size, so a seed gives the same polygons at every size
    to_grid = Affine.scale(xmax / Wf, ymin / Hf)
    # the grid formula puts x = Xmax at W' = W*W/(W+1) px, a pixel short of the raster's edge: the
    # real labels stay within 0..Xmax, Ymin..0, so cut there
    extent = box(0.0, ymin, xmax, 0.0)
    layers = {}
    for name, geoms in lay.layers.items():
        arr = np.array(scale_many([p for g in geoms for p in polys_of(g)], to_grid.a, to_grid.e), dtype=object)
        if len(arr):
            out = ~shapely.within(arr, extent)
            arr[out] = shapely.intersection(arr[out], extent)
        layers[name] = [p for g in arr for p in polys_of(g) if p.area > 0]
    polygons = {}
    for cid, names in CLASS_LAYERS.items():
        polygons[cid] = as_multipolygon(fast_union([g for n in names for g in layers.get(n, [])]))
    return GeneratedScene(scene_id, bands, xmax, ymin, (xs, ys), polygons, layers, offs, mat, cond)

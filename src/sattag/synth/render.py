"""Radiance on the R grid: the layout's painter's list rasterized into material maps, texture,
shadows, and per band the counts before the sensor.

The land is drawn on a **fine grid** (``ss`` x ``ss`` sub-pixels per R pixel; ``ss`` = 2 when an R
pixel spans 1.5 full-size pixels or more), each band's radiance is computed there and averaged over
each R pixel: objects and edges smaller than a pixel (wheel marks, footpaths, the grass between a
track's ruts, a bush, a car's edge) mix with what lies around them, as on a real sensor.

Per fine pixel: a primary material, a secondary one and its share (sub-pixel mixtures), a brightness
(the object's tint x texture), a shadow share and the plant-vigour field. Per band the counts are::

    dark + gain * band_gain * illum * (T * reflectance * light + path)

with ``T`` the atmosphere's two-way transmittance, ``path`` its path radiance as an apparent
reflectance, and ``light`` 1 in the sun and the (bluish) skylight share in a shadow.

A :class:`Renderer` renders any window of a scene alike: shapes are burnt per window, the random
fields are functions of position (coarse lattices drawn once for the whole grid, white noise drawn
per block from seeds of the block's place), shadows come from a halo as long as the longest one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize

from sattag.dstl import BIT_DEPTH
from sattag.synth.layout import Layout
from sattag.synth.sensor import DARK, GAIN, Taps, apply_sep, block_normal, cubic_op, kernels
from sattag.synth.shapes import scale_many
from sattag.synth.spectra import (MAT, MATERIAL_NAMES, TEX, VEG, Conditions, atmosphere, band_average, band_centre,
                                  material_curves)


#: Texture amplitudes per material (fine grain, ~3 m patches, crop rows, spread of the secondary share).
_TEX_A = tuple(np.array([TEX.get(m, (0.02, 0.0, 0.0, 0.0))[i] for m in MATERIAL_NAMES], np.float32) for i in range(4))


def smooth_noise(rng: np.random.Generator, H: int, W: int, scale_px: float) -> np.ndarray:
    """Gaussian-ish noise with features ~``scale_px`` pixels, std ~1: (H, W) float32."""
    gh = max(2, int(math.ceil(H / max(scale_px, 1.0))) + 2)
    gw = max(2, int(math.ceil(W / max(scale_px, 1.0))) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    sd = float(big.std()) or 1.0
    return big / sd


def supersampling(full_width: float, width: int) -> int:
    """Sub-pixels per R pixel and axis: 2 when an R pixel spans >= 1.5 full-size pixels, else 1."""
    return 2 if full_width / width >= 1.5 else 1


@dataclass
class Land:
    """The rendered land on the fine grid (``ss`` x the R grid), what :func:`band_radiance` reads."""

    mat: np.ndarray      # uint8 primary material
    mat2: np.ndarray     # uint8 secondary material
    frac: np.ndarray     # float32 share of the secondary material
    bright: np.ndarray   # float32 brightness (tint x texture)
    shadow: np.ndarray   # float32 share in shadow
    vig: np.ndarray      # float32 plant vigour
    ss: int
    cond: Conditions
    curves: np.ndarray   # (materials, anchors) reflectance under ``cond``


def gdal_cache_bytes() -> int | None:
    """GDAL's block cache limit now (bytes), None when rasterio cannot tell."""
    try:
        from rasterio._env import get_gdal_config  # rasterio's own (private) accessor

        return int(get_gdal_config("GDAL_CACHEMAX"))
    except Exception:  # noqa: BLE001 - callers then do without it
        return None


def set_gdal_cache_bytes(n: int) -> None:
    """Set GDAL's block cache limit (bytes) outside any Env (for putting it back; see ``gdal_cache_bytes``)."""
    try:
        from rasterio._env import set_gdal_config

        set_gdal_config("GDAL_CACHEMAX", int(n))
    except Exception:  # noqa: BLE001
        pass


def burn_shapes(shapes, out: np.ndarray, transform: Affine) -> np.ndarray:
    """``rasterio.features.rasterize(shapes, out=out, transform=transform)`` in one pass over the shapes.

    GDAL rasterizes in chunks of rows that fit its block cache (``GDAL_CACHEMAX``) and goes over every
    shape once per chunk: under the tiny cache :func:`~sattag.synth.write.write_plan` writes with, a
    chunk is one row and burning a scene's shapes takes ~10x longer. So while the cache is smaller
    than ``out``, it is raised for the call (and put back after it). The pixels are the same.
    """
    need = out.nbytes + (1 << 20)
    have = gdal_cache_bytes()
    if have is not None and have >= need:
        rasterize(shapes, out=out, transform=transform)
    else:
        with rasterio.Env(GDAL_CACHEMAX=max(need, 64 << 20)):
            rasterize(shapes, out=out, transform=transform)
    return out


def _paint_index(L: Layout, sx: float, sy: float, shape: tuple[int, int]) -> np.ndarray:
    """int32 map of the painter's list: 1 + index of the top object at each pixel, 0 for none."""
    return _Burner([p.geom for p in L.paint], sx, sy).burn(0, shape[0], 0, shape[1], np.int32)


class _Burner:
    """Geometries (fpx) scaled once to a grid of ``sx``, ``sy`` px per fpx, burnt into any window of it
    (values 1 + index, later ones on top); only those whose bounds reach the window are handed over.

    Polygons and multipolygons are kept as one flat array of their rings' coordinates and handed to
    rasterio as the GeoJSON it would make of them itself (a multipolygon as its polygons, one after
    the other, as rasterio splits it): the same shapes, the same pixels, without shapely's slow
    ``__geo_interface__`` per shape and window. Any other geometry goes to rasterio as it is.
    """

    def __init__(self, geoms, sx: float, sy: float, values=None):
        geoms = list(geoms)
        vals = list(range(1, len(geoms) + 1)) if values is None else list(values)
        arr = np.empty(len(geoms), dtype=object)
        arr[:] = geoms
        keep = np.flatnonzero(~shapely.is_empty(arr)) if len(arr) else np.zeros(0, np.int64)
        arr = arr[keep]
        self.values = np.array([vals[k] for k in keep], dtype=np.int64)
        n = len(arr)
        mul, add = np.array([sx, sy]), np.array([0.0, 0.0])  # as :func:`scale_many`
        # polygons and multipolygons whose every part has an exterior: flat rings
        types = shapely.get_type_id(arr) if n else np.zeros(0, np.int64)
        flat = (types == 3) | (types == 6)
        parts, pidx = shapely.get_parts(arr[flat], return_index=True)
        rings, ridx = shapely.get_rings(parts, return_index=True)
        n_rings = np.bincount(ridx, minlength=len(parts))
        bad = np.unique(pidx[n_rings == 0])  # an empty part: rasterio's own checks decide
        if len(bad):
            flat[np.flatnonzero(flat)[bad]] = False
            parts, pidx = shapely.get_parts(arr[flat], return_index=True)
            rings, ridx = shapely.get_rings(parts, return_index=True)
            n_rings = np.bincount(ridx, minlength=len(parts))
        xy, cidx = shapely.get_coordinates(rings, return_index=True)
        self.xy = xy * mul + add
        self.ring_off = np.concatenate([[0], np.cumsum(np.bincount(cidx, minlength=len(rings)))])
        self.part_off = np.concatenate([[0], np.cumsum(n_rings)])
        shape_parts = np.zeros(n, np.int64)
        shape_parts[flat] = np.bincount(pidx, minlength=int(flat.sum()))
        self.shape_off = np.concatenate([[0], np.cumsum(shape_parts)])
        first_c = self.ring_off[self.part_off[self.shape_off]]  # each shape's first coordinate (and the end)
        self.n_coords = np.diff(first_c)
        self.flat = flat.tolist()
        self._offs = None
        # the rest as scaled geometries
        self.other = {int(k): g for k, g in zip(np.flatnonzero(~flat), scale_many(list(arr[~flat]), sx, sy))}
        self.bounds = np.zeros((n, 4))
        if flat.any():
            first = self.ring_off[self.part_off[self.shape_off[:-1][flat]]]
            self.bounds[flat, :2] = np.minimum.reduceat(self.xy, first, axis=0)
            self.bounds[flat, 2:] = np.maximum.reduceat(self.xy, first, axis=0)
        if self.other:
            ks = np.array(list(self.other))
            self.bounds[ks] = shapely.bounds(np.array(list(self.other.values()), dtype=object))

    def shapes(self, sel: np.ndarray) -> list:
        """(GeoJSON-like geometry, value) of shapes ``sel`` in order, for :func:`rasterio.features.rasterize`."""
        xy, flat, other = self.xy, self.flat, self.other
        if self._offs is None:  # Python ints index faster in the loop below
            self._offs = (self.ring_off.tolist(), self.part_off.tolist(), self.shape_off.tolist())
        ro, po, so = self._offs
        vals = self.values[sel].tolist()
        sel = sel.tolist()
        # the coordinates as Python lists: from the first selected shape's to the last one's in one go
        # when most of them are selected, else ring by ring
        c0, c1 = ro[po[so[sel[0]]]], ro[po[so[sel[-1] + 1]]]
        bulk = 2 * int(self.n_coords[sel].sum()) >= c1 - c0
        pts = xy[c0:c1].tolist() if bulk else None
        out = []
        for k, v in zip(sel, vals):
            if not flat[k]:
                out.append((other[k], v))
                continue
            for p in range(so[k], so[k + 1]):
                if bulk:
                    rings = [pts[ro[r] - c0:ro[r + 1] - c0] for r in range(po[p], po[p + 1])]
                else:
                    rings = [xy[ro[r]:ro[r + 1]].tolist() for r in range(po[p], po[p + 1])]
                out.append(({"type": "Polygon", "coordinates": rings}, v))
        return out

    def burn(self, y0: int, y1: int, x0: int, x1: int, dtype=np.uint8) -> np.ndarray:
        out = np.zeros((y1 - y0, x1 - x0), dtype)
        b = self.bounds
        sel = np.flatnonzero((b[:, 0] <= x1 + 1) & (b[:, 2] >= x0 - 1) & (b[:, 1] <= y1 + 1) & (b[:, 3] >= y0 - 1))
        if len(sel):
            burn_shapes(self.shapes(sel), out, Affine.translation(x0, y0))
        return out


class _Smooth:
    """:func:`smooth_noise` as a function of position: the coarse lattice drawn once for the whole
    grid, bicubic (``cv2.resize``'s) per window, divided by the std of the whole field (computed
    exactly from the lattice and the interpolation weights)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, scale_px: float):
        gh = max(2, int(math.ceil(h / max(scale_px, 1.0))) + 2)
        gw = max(2, int(math.ceil(w / max(scale_px, 1.0))) + 2)
        self.lat = rng.standard_normal((gh, gw)).astype(np.float32)
        my, mx = cubic_op(h, gh), cubic_op(w, gw)
        lat = self.lat.astype(np.float64)
        mean = float(np.asarray(my.sum(axis=0)).ravel() @ lat @ np.asarray(mx.sum(axis=0)).ravel()) / (h * w)
        gy, gx = (my.T @ my).toarray(), (mx.T @ mx).toarray()
        sq = float(np.sum((lat.T @ (gy @ lat)) * gx)) / (h * w)
        self.sd = np.float32(math.sqrt(max(sq - mean * mean, 0.0)) or 1.0)
        self.ty, self.tx = Taps(my), Taps(mx)

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        out = apply_sep(self.lat, (0, 0), self.ty, (y0, y1), self.tx, (x0, x1))
        out /= self.sd
        return out


class _Grain:
    """White noise blurred by a Gaussian of ``sigma`` px, std 1, as a function of position: the noise
    is drawn per block (:func:`~sattag.synth.sensor.block_normal`) and each block blurred from itself
    and a halo of its neighbours, an array of the same shape every time."""

    def __init__(self, key: tuple[int, ...], sigma: float):
        self.key, self.sigma = key, sigma
        self.ksize = int(round(sigma * 8 + 1)) | 1
        self.r = self.ksize // 2
        self.block = max(256, 2 * self.r)
        k = cv2.getGaussianKernel(self.ksize, sigma).ravel()
        self.sd = np.float32(float((k ** 2).sum()))  # std of the blurred unit noise

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        B, r = self.block, self.r
        by0, by1 = y0 // B, (y1 - 1) // B + 1
        bx0, bx1 = x0 // B, (x1 - 1) // B + 1
        white = block_normal(self.key, by0 * B - r, by1 * B + r, bx0 * B - r, bx1 * B + r, B)
        out = np.empty(((by1 - by0) * B, (bx1 - bx0) * B), np.float32)
        for i in range(by1 - by0):
            for j in range(bx1 - bx0):
                sub = np.ascontiguousarray(white[i * B:(i + 1) * B + 2 * r, j * B:(j + 1) * B + 2 * r])
                blur = cv2.GaussianBlur(sub, (self.ksize, self.ksize), self.sigma, borderType=cv2.BORDER_REFLECT_101)
                out[i * B:(i + 1) * B, j * B:(j + 1) * B] = blur[r:r + B, r:r + B]
        out = out[y0 - by0 * B:y1 - by0 * B, x0 - bx0 * B:x1 - bx0 * B]
        out /= self.sd
        return out


class Renderer:
    """The land of one scene, rendered window by window: :meth:`land` for any window of the R grid
    gives the same values there as for the whole scene (random fields are functions of position,
    shapes are burnt per window, shadows from a halo as long as the longest shadow)."""

    def __init__(self, L: Layout, cond: Conditions, rng: np.random.Generator, H: int, W: int, sx: float,
                 sy: float, ss: int = 1):
        self.L, self.cond, self.H, self.W, self.ss = L, cond, H, W, ss
        h, w = H * ss, W * ss
        self.fx, self.fy = fx, fy = sx * ss, sy * ss
        self.s = s = (fx + fy) / 2  # fine px per fpx
        self.mat_of = np.array([MAT["soil"]] + [MAT[p.mat] for p in L.paint], np.uint8)
        self.mat2_of = np.array([MAT["grass_dry"]] + [MAT[p.mat2] for p in L.paint], np.uint8)
        self.frac_of = np.array([0.0] + [p.frac for p in L.paint], np.float32)
        self.tint_of = np.array([1.0] + [p.tint for p in L.paint], np.float32)
        self.grain_of = np.array([0.1] + [p.grain for p in L.paint], np.float32)
        self.vigour_of = np.array([0.0] + [p.vigour for p in L.paint], np.float32)
        self.paint = _Burner([p.geom for p in L.paint], fx, fy)
        self.paint_r = _Burner([p.geom for p in L.paint], sx, sy) if ss > 1 else self.paint
        self.fields = _Burner([f for f, _, _ in L.fields], fx, fy)
        self.angs = np.array([0.0] + [a for _, a, _ in L.fields], np.float32)
        self.per = np.array([1.0] + [p for _, _, p in L.fields], np.float32) * s
        # random fields: lattices from ``rng``, white noise from keys drawn from it
        self.back = _Smooth(rng, h, w, 250 * s)
        self.mid = _Smooth(rng, h, w, 10 * s)
        self.low = _Smooth(rng, h, w, 400 * s)
        self.patches = _Smooth(rng, h, w, 15 * s)
        self.vig = _Smooth(rng, h, w, 60 * s)
        key = int(rng.integers(2**63))
        self.fine = _Grain((key, 1), max(0.5, 1.2 * s))
        self.grain = _Grain((key, 2), max(0.5, 1.2 * s))
        self.shadows = _Shadows(L, cond, fx, fy, (h, w))
        self.curves = material_curves(cond)

    def materials(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The material map on a window of the R grid: uint8, each pixel's material at its centre."""
        ss = self.ss
        idx = self.paint_r.burn(y0, y1, x0, x1, np.int32)
        mat = self.mat_of[idx]
        off = ss // 2
        back = self.back.window(y0 * ss, y1 * ss, x0 * ss, x1 * ss)[off::ss, off::ss] > 0.0
        mat[(idx == 0) & ~back] = MAT["grass"]
        return mat

    def stripes(self, fy0: int, fy1: int, fx0: int, fx1: int) -> np.ndarray:
        """Row texture of crop fields on a window of the fine grid: stripes across each field's row
        direction, 0 outside fields (where their contrast is faded to 0 anyway)."""
        ss = self.ss
        h, w = fy1 - fy0, fx1 - fx0
        fid = self.fields.burn(fy0, fy1, fx0, fx1, np.int32).ravel()
        at = np.flatnonzero(fid)
        out = np.zeros(h * w, np.float32)
        if len(at):
            fid = fid[at]
            yy = (at // w + fy0).astype(np.float32)
            xx = (at % w + fx0).astype(np.float32)
            per = self.per[fid]
            phase = (xx * np.cos(self.angs)[fid] + yy * np.sin(self.angs)[fid]) / np.maximum(per, 1e-3)
            del xx, yy
            # rows finer than ~2 px average out: fade their contrast as a real sensor would
            fade = np.clip((per - 2.0 * ss) / (4.0 * ss), 0.0, 1.0)
            out[at] = np.sin(2 * np.pi * phase) * fade
        return out.reshape(h, w)

    def land(self, y0: int, y1: int, x0: int, x1: int) -> Land:
        """The fine-grid :class:`Land` under R pixels y0..y1-1 x x0..x1-1."""
        ss, cond = self.ss, self.cond
        fy0, fy1, fx0, fx1 = y0 * ss, y1 * ss, x0 * ss, x1 * ss
        h, w = fy1 - fy0, fx1 - fx0
        fine_a, mid_a, row_a, mix_a = _TEX_A
        k = kernels(h * w)
        back = self.back.window(fy0, fy1, fx0, fx1) > 0.0
        idx = self.paint.burn(fy0, fy1, fx0, fx1, np.int32)
        # texture: fine grain, ~3 m patches, crop rows, ~120 m brightness drift
        stripes = self.stripes(fy0, fy1, fx0, fx1)
        fine = self.fine.window(fy0, fy1, fx0, fx1)
        mid = self.mid.window(fy0, fy1, fx0, fx1)
        low = self.low.window(fy0, fy1, fx0, fx1)
        if k is not None:
            mat, mat2, bright = np.empty((h, w), np.uint8), np.empty((h, w), np.uint8), np.empty((h, w), np.float32)
            k.land_bright(idx, back, stripes, fine, mid, low, self.mat_of, self.mat2_of, self.tint_of, fine_a, mid_a,
                          row_a, np.uint8(MAT["grass"]), mat, mat2, bright)
        else:
            mat = self.mat_of[idx]
            mat[(idx == 0) & ~back] = MAT["grass"]
            mat2 = self.mat2_of[idx]
            bright = 1.0 + fine_a[mat] * fine + mid_a[mat] * mid + row_a[mat] * stripes + 0.04 * low
            bright *= self.tint_of[idx]
        del back, stripes, fine, mid, low
        # patchy mixtures: the secondary material's share varies within an object, in ~5 m patches and
        # from pixel to pixel (tufts, stones, single plants)
        grain = self.grain.window(fy0, fy1, fx0, fx1)
        patches = self.patches.window(fy0, fy1, fx0, fx1)
        vig = self.vig.window(fy0, fy1, fx0, fx1)
        if k is not None:
            frac = np.empty((h, w), np.float32)
            k.land_frac(idx, mat, grain, patches, vig, self.frac_of, self.grain_of, self.vigour_of, mix_a,
                        np.float32(cond.dry), frac)
        else:
            frac = self.frac_of[idx]
            frac[idx == 0] = np.float32(cond.dry)
            patches += 0.6 * grain
            frac += mix_a[mat] * patches
            grain *= self.grain_of[idx]
            frac += grain
            np.clip(frac, 0.0, 1.0, out=frac)
            vig += self.vigour_of[idx]
        del idx, grain, patches
        shadow = self.shadows.window(fy0, fy1, fx0, fx1)
        return Land(mat, mat2, frac, bright, shadow, vig, ss, cond, self.curves)


def render(L: Layout, cond: Conditions, rng: np.random.Generator, H: int, W: int, sx: float, sy: float,
           ss: int = 1) -> tuple[Land, np.ndarray]:
    """Rasterize the land for an R grid of (H, W) px; fpx -> R px is x_px = sx * x_fpx, y_px = sy * y_fpx.

    Returns the fine-grid :class:`Land` and the material map on the R grid (uint8 (H, W), each R
    pixel's material at its centre: the pixels the labels cover). The whole scene at once: a
    :class:`Renderer` renders any window of it alike.
    """
    r = Renderer(L, cond, rng, H, W, sx, sy, ss)
    return r.land(0, H, 0, W), r.materials(0, H, 0, W)


def _mask(geoms: list, fx: float, fy: float, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask of fpx geometries on a grid of ``fx``, ``fy`` px per fpx."""
    out = np.zeros(shape, np.uint8)
    shapes = [(g, 1) for g in scale_many(geoms, fx, fy)]
    if shapes:
        burn_shapes(shapes, out, Affine.identity())
    return out


def _or_shifted(dst: np.ndarray, src: np.ndarray, dx: float, dy: float) -> None:
    """``dst |= src`` moved by (dx, dy) px (rounded to whole pixels)."""
    h, w = src.shape
    dx, dy = int(round(dx)), int(round(dy))
    if abs(dx) >= w or abs(dy) >= h:
        return
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    dst[yd, xd] |= src[ys, xs]


def _sweep(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``mask`` swept along the segment from (0, 0) to (dx, dy) px: the union of its copies moved by
    every whole-pixel step of the segment (doubling: log2(length) passes)."""
    n = max(1, int(math.ceil(max(abs(dx), abs(dy)))))
    ux, uy = dx / n, dy / n
    acc = mask.copy()
    done = 1  # acc = union of the copies moved by 0 .. done-1 steps
    while done <= n:
        k = min(done, n + 1 - done)
        _or_shifted(acc, acc.copy(), k * ux, k * uy)
        done += k
    return acc


class _Shadows:
    """Share of each fine pixel in shadow, for any window of the fine grid.

    Cast shadows: casters' footprints swept away from the sun by height / tan(elevation), darkening
    what is not itself a caster. Crowns (trees, hedges, bushes) also shade their own side turned
    away from the sun (a crown's lit part is the crown moved towards the sun by ~half its radius).
    Footprints are rasterized per height level, per crown size, over the window and a halo as long
    as the longest move (cut at the scene's edge, as the whole scene is), and moved on the grid.
    """

    def __init__(self, L: Layout, cond: Conditions, fx: float, fy: float, shape: tuple[int, int]):
        self.shape = shape
        casters = [(g, hgt, crown) for g, hgt, crown in L.casters if not g.is_empty]
        self.levels, self.crowns = [], []
        if not casters:
            self.halo = 0
            return
        sun = np.array([math.cos(cond.sun_azimuth), math.sin(cond.sun_azimuth)])
        reach = 1.0 / math.tan(math.radians(cond.sun_elevation))
        levels = np.round(np.array([hgt for _, hgt, _ in casters]) / 5.0) * 5.0
        moves = [0.0]
        for lev in np.unique(levels):
            dx, dy = -sun[0] * lev * reach * fx, -sun[1] * lev * reach * fy
            self.levels.append((_Burner([g for (g, _, _), lv in zip(casters, levels) if lv == lev], fx, fy), dx, dy))
            moves.append(max(abs(dx), abs(dy)))
        crowns = [g for g, _, crown in casters if crown]
        if crowns:
            radius = np.sqrt(shapely.area(np.array(crowns, dtype=object)) / math.pi)
            rbin = np.round(np.minimum(radius, 40.0) / 2.0) * 2.0
            for rb in np.unique(rbin):
                dx, dy = sun[0] * 0.5 * rb * fx, sun[1] * 0.5 * rb * fy
                self.crowns.append((_Burner([g for g, r in zip(crowns, rbin) if r == rb], fx, fy), dx, dy))
                moves.append(max(abs(dx), abs(dy)))
        self.halo = int(math.ceil(max(moves))) + 2

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if not self.levels:
            return np.zeros((y1 - y0, x1 - x0), np.float32)
        h, w = self.shape
        ey0, ey1 = max(0, y0 - self.halo), min(h, y1 + self.halo)
        ex0, ex1 = max(0, x0 - self.halo), min(w, x1 + self.halo)
        win = (ey0, ey1, ex0, ex1)
        shape = (ey1 - ey0, ex1 - ex0)
        shadow = np.zeros(shape, np.uint8)
        own = np.zeros(shape, np.uint8)
        for burner, dx, dy in self.levels:
            m = burner.burn(*win)
            own |= m
            shadow |= _sweep(m, dx, dy)
        out = ((shadow > 0) & (own == 0)).astype(np.float32)
        del shadow, own
        if self.crowns:
            crown_px = np.zeros(shape, np.uint8)
            lit = np.zeros(shape, np.uint8)
            for burner, dx, dy in self.crowns:
                m = burner.burn(*win)
                crown_px |= m
                _or_shifted(lit, m, dx, dy)
            out[(crown_px > 0) & (lit == 0)] = 0.8
        return np.ascontiguousarray(out[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0])


def _shadows(L: Layout, cond: Conditions, fx: float, fy: float, shape: tuple[int, int]) -> np.ndarray:
    """Share of each fine pixel of the whole grid in shadow (see :class:`_Shadows`)."""
    return _Shadows(L, cond, fx, fy, shape).window(0, shape[0], 0, shape[1])


def _band_terms(band: str, land: Land) -> tuple[np.ndarray, np.ndarray, np.float32, np.float32]:
    """(lut, vlut, shade - 1, dark + path) of ``band`` for :func:`band_radiance`: counts per material
    (lut), their change per unit of plant vigour (vlut), the light a shadow takes away and the offset."""
    c = land.cond
    bits = BIT_DEPTH["A"] if band.startswith("A") else 11
    refl = band_average(land.curves, band).astype(np.float32)
    centre = band_centre(band)
    veg = np.array([VEG.get(m, 0.0) for m in MATERIAL_NAMES], np.float32)
    # vigour: more NIR and less red where plants grow well, and less SWIR (more leaf water)
    vsign = -0.4 if centre > 1100 else (1.0 if centre > 700 else (-0.6 if 600 < centre < 700 else -0.2))
    trans, path, shade = atmosphere(band, c)
    gain = GAIN[bits] * c.illum * c.band_gain.get(band, 1.0)
    lut = np.zeros(256, np.float32)
    lut[: refl.size] = gain * trans * refl
    vlut = np.zeros(256, np.float32)
    vlut[: refl.size] = gain * trans * veg * refl * vsign
    return lut, vlut, np.float32(shade - 1.0), np.float32(DARK[bits] + gain * path)


def band_radiance(band: str, land: Land) -> np.ndarray:
    """Radiance of one band on the fine grid in counts before the sensor: (h, w) float32."""
    lut, vlut, shade1, base = _band_terms(band, land)
    out = cv2.LUT(land.mat, lut)
    other = cv2.LUT(land.mat2, lut)
    other -= out
    other *= land.frac
    out += other
    out *= land.bright
    v = cv2.LUT(land.mat, vlut)
    v *= land.vig
    out += v
    # in a shadow only skylight: light = 1 - shadow * (1 - shade)
    light = land.shadow * shade1
    light += 1.0
    out *= light
    out += base
    return out


def band_radiance_r(band: str, land: Land) -> np.ndarray:
    """``to_r_grid(band_radiance(band, land), land.ss)``: one band's radiance on the R grid, in one
    pass (:mod:`sattag.synth._kernels`) where that pays, without the fine-grid image; the same values."""
    ss = land.ss
    h, w = land.mat.shape
    k = kernels(land.mat.size)
    if k is None:
        return to_r_grid(band_radiance(band, land), ss)
    lut, vlut, shade1, base = _band_terms(band, land)
    out = np.empty((h // ss, w // ss), np.float32)
    k.radiance_r(land.mat, land.mat2, land.frac, land.bright, land.vig, land.shadow, lut, vlut, shade1, base, ss,
                 np.float32(1.0 / (ss * ss)), out)
    return out


def to_r_grid(img: np.ndarray, ss: int) -> np.ndarray:
    """Average each R pixel's ``ss`` x ``ss`` sub-pixels."""
    if ss == 1:
        return img
    h, w = img.shape
    img = img[:h - h % ss, :w - w % ss]
    # a fixed order of sums: the same value for a pixel whatever window it is computed in
    out = img[0::ss, 0::ss].copy()
    for i in range(ss):
        for j in range(ss):
            if i or j:
                out += img[i::ss, j::ss]
    out *= np.float32(1.0 / (ss * ss))
    return out

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize

from sattag.dstl import BIT_DEPTH
from sattag.synth.layout import Layout
from sattag.synth.sensor import DARK, GAIN
from sattag.synth.shapes import scale_many
from sattag.synth.spectra import (MAT, MATERIAL_NAMES, TEX, VEG, Conditions, atmosphere, band_average, band_centre,
                                  material_curves)


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


def _paint_index(L: Layout, sx: float, sy: float, shape: tuple[int, int]) -> np.ndarray:
    """int32 map of the painter's list: 1 + index of the top object at each pixel, 0 for none."""
    idx = np.zeros(shape, np.int32)
    shapes = [(g, k + 1) for k, g in enumerate(scale_many([p.geom for p in L.paint], sx, sy)) if not g.is_empty]
    if shapes:
        rasterize(shapes, out=idx, transform=Affine.identity())
    return idx


def render(L: Layout, cond: Conditions, rng: np.random.Generator, H: int, W: int, sx: float, sy: float,
           ss: int = 1) -> tuple[Land, np.ndarray]:
    """Rasterize the land for an R grid of (H, W) px; fpx -> R px is x_px = sx * x_fpx, y_px = sy * y_fpx.

    Returns the fine-grid :class:`Land` and the material map on the R grid (uint8 (H, W), each R
    pixel's material at its centre: the pixels the labels cover).
    """
    h, w = H * ss, W * ss
    fx, fy = sx * ss, sy * ss
    s = (fx + fy) / 2  # fine px per fpx
    mat_of = np.array([MAT["soil"]] + [MAT[p.mat] for p in L.paint], np.uint8)
    mat2_of = np.array([MAT["grass_dry"]] + [MAT[p.mat2] for p in L.paint], np.uint8)
    frac_of = np.array([0.0] + [p.frac for p in L.paint], np.float32)
    tint_of = np.array([1.0] + [p.tint for p in L.paint], np.float32)
    grain_of = np.array([0.1] + [p.grain for p in L.paint], np.float32)
    vigour_of = np.array([0.0] + [p.vigour for p in L.paint], np.float32)

    # background: a mosaic of bare soil and grass (some dry) where nothing is painted
    back = smooth_noise(rng, h, w, 250 * s) > 0.0
    idx = _paint_index(L, fx, fy, (h, w))
    none = idx == 0
    mat = mat_of[idx]
    mat[none & ~back] = MAT["grass"]
    mat2 = mat2_of[idx]
    frac = frac_of[idx]
    frac[none] = np.float32(cond.dry)
    tint = tint_of[idx]
    grain_a = grain_of[idx]
    vigour = vigour_of[idx]
    del idx

    # the material map on the R grid (labels are burnt at pixel centres)
    idx_r = _paint_index(L, sx, sy, (H, W)) if ss > 1 else None
    if idx_r is None:
        mat_r = mat.copy()
    else:
        mat_r = mat_of[idx_r]
        off = ss // 2
        mat_r[(idx_r == 0) & ~back[off::ss, off::ss][:H, :W]] = MAT["grass"]
        del idx_r
    del back

    # row texture of crop fields: stripes across the row direction, per field
    fid = np.zeros((h, w), np.int32)
    if L.fields:
        rasterize(list(zip(scale_many([f for f, _, _ in L.fields], fx, fy), range(1, len(L.fields) + 1))),
                  out=fid, transform=Affine.identity())
    angs = np.array([0.0] + [a for _, a, _ in L.fields], np.float32)
    per = np.array([1.0] + [p for _, _, p in L.fields], np.float32) * s
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * np.cos(angs)[fid] + yy * np.sin(angs)[fid]) / np.maximum(per[fid], 1e-3)
    # rows finer than ~2 px average out: fade their contrast as a real sensor would
    fade = np.clip((per[fid] - 2.0 * ss) / (4.0 * ss), 0.0, 1.0)
    stripes = np.sin(2 * np.pi * phase) * fade
    del xx, yy, phase, fade, fid

    # texture: fine grain, ~3 m patches, crop rows, ~120 m brightness drift
    fine_a = np.array([TEX.get(m, (0.02, 0.0, 0.0, 0.0))[0] for m in MATERIAL_NAMES], np.float32)
    mid_a = np.array([TEX.get(m, (0.02, 0.0, 0.0, 0.0))[1] for m in MATERIAL_NAMES], np.float32)
    row_a = np.array([TEX.get(m, (0.02, 0.0, 0.0, 0.0))[2] for m in MATERIAL_NAMES], np.float32)
    mix_a = np.array([TEX.get(m, (0.02, 0.0, 0.0, 0.0))[3] for m in MATERIAL_NAMES], np.float32)
    fine = rng.standard_normal((h, w), dtype=np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), max(0.5, 1.2 * s))
    fine /= float(fine.std()) or 1.0
    mid = smooth_noise(rng, h, w, 10 * s)
    low = smooth_noise(rng, h, w, 400 * s)
    bright = 1.0 + fine_a[mat] * fine + mid_a[mat] * mid + row_a[mat] * stripes + 0.04 * low
    bright *= tint
    del mid, low, stripes, tint
    # patchy mixtures: the secondary material's share varies within an object, in ~5 m patches and
    # from pixel to pixel (tufts, stones, single plants)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), max(0.5, 1.2 * s))
    grain /= float(grain.std()) or 1.0
    patches = smooth_noise(rng, h, w, 15 * s)
    patches += 0.6 * grain
    frac += mix_a[mat] * patches
    grain *= grain_a
    frac += grain
    np.clip(frac, 0.0, 1.0, out=frac)
    del patches, grain, grain_a, fine

    shadow = _shadows(L, cond, fx, fy, (h, w))
    vig = smooth_noise(rng, h, w, 60 * s)
    vig += vigour
    del vigour
    land = Land(mat, mat2, frac, bright.astype(np.float32), shadow, vig, ss, cond, material_curves(cond))
    return land, mat_r


def _mask(geoms: list, fx: float, fy: float, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask of fpx geometries on a grid of ``fx``, ``fy`` px per fpx."""
    out = np.zeros(shape, np.uint8)
    shapes = [(g, 1) for g in scale_many(geoms, fx, fy)]
    if shapes:
        rasterize(shapes, out=out, transform=Affine.identity())
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


def _shadows(L: Layout, cond: Conditions, fx: float, fy: float, shape: tuple[int, int]) -> np.ndarray:
    """Share of each fine pixel in shadow.

    Cast shadows: casters' footprints swept away from the sun by height / tan(elevation), darkening
    what is not itself a caster. Crowns (trees, hedges, bushes) also shade their own side turned
    away from the sun (a crown's lit part is the crown moved towards the sun by ~half its radius).
    Footprints are rasterized once (per height level, per crown size) and moved on the grid.
    """
    if not L.casters:
        return np.zeros(shape, np.float32)
    casters = [(g, hgt, crown) for g, hgt, crown in L.casters if not g.is_empty]
    sun = np.array([math.cos(cond.sun_azimuth), math.sin(cond.sun_azimuth)])
    reach = 1.0 / math.tan(math.radians(cond.sun_elevation))
    levels = np.round(np.array([hgt for _, hgt, _ in casters]) / 5.0) * 5.0
    shadow = np.zeros(shape, np.uint8)
    own = np.zeros(shape, np.uint8)
    for lev in np.unique(levels):
        m = _mask([g for (g, _, _), lv in zip(casters, levels) if lv == lev], fx, fy, shape)
        own |= m
        shadow |= _sweep(m, -sun[0] * lev * reach * fx, -sun[1] * lev * reach * fy)
    out = ((shadow > 0) & (own == 0)).astype(np.float32)
    del shadow, own
    crowns = [g for g, _, crown in casters if crown]
    if crowns:
        radius = np.sqrt(shapely.area(np.array(crowns, dtype=object)) / math.pi)
        rbin = np.round(np.minimum(radius, 40.0) / 2.0) * 2.0
        crown_px = np.zeros(shape, np.uint8)
        lit = np.zeros(shape, np.uint8)
        for rb in np.unique(rbin):
            m = _mask([g for g, r in zip(crowns, rbin) if r == rb], fx, fy, shape)
            crown_px |= m
            _or_shifted(lit, m, sun[0] * 0.5 * rb * fx, sun[1] * 0.5 * rb * fy)
        out[(crown_px > 0) & (lit == 0)] = 0.8
    return out


def band_radiance(band: str, land: Land) -> np.ndarray:
    """Radiance of one band on the fine grid in counts before the sensor: (h, w) float32."""
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
    light = land.shadow * np.float32(shade - 1.0)
    light += 1.0
    out *= light
    out += np.float32(DARK[bits] + gain * path)
    return out


def to_r_grid(img: np.ndarray, ss: int) -> np.ndarray:
    """Average each R pixel's ``ss`` x ``ss`` sub-pixels."""
    if ss == 1:
        return img
    h, w = img.shape
    return cv2.resize(img, (w // ss, h // ss), interpolation=cv2.INTER_AREA)

"""Radiance on the R grid: the material map rasterized from the layout, texture, shadows, and per
band the counts before the sensor (reflectance x illumination + path radiance + dark level)."""
from __future__ import annotations

import math

import cv2
import numpy as np
from affine import Affine
from rasterio.features import rasterize

from sattag.dstl import BAND_RANGES, BIT_DEPTH
from sattag.synth.layout import Layout
from sattag.synth.sensor import DARK, GAIN
from sattag.synth.shapes import scale_many
from sattag.synth.spectra import MAT, MATERIALS, TEX, VEG, band_reflectance, path_radiance


def smooth_noise(rng: np.random.Generator, H: int, W: int, scale_px: float) -> np.ndarray:
    """Gaussian-ish noise with features ~``scale_px`` pixels, std ~1: (H, W) float32."""
    gh = max(2, int(math.ceil(H / max(scale_px, 1.0))) + 2)
    gw = max(2, int(math.ceil(W / max(scale_px, 1.0))) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    sd = float(big.std()) or 1.0
    return big / sd


def render(L: Layout, rng: np.random.Generator, H: int, W: int, sx: float, sy: float):
    """Rasterize materials and texture on the R grid (H, W) of the generated size; fpx -> px is
    x_px = sx * x_fpx, y_px = sy * y_fpx.

    Returns (materials uint8 (H, W), brightness float32 (H, W), vigour float32 (H, W)).
    """
    s = (sx + sy) / 2
    low = smooth_noise(rng, H, W, 400 * s)
    mat = np.where(smooth_noise(rng, H, W, 250 * s) > 0.0, MAT["soil"], MAT["grass"]).astype(np.uint8)
    paint = [(g, m) for g, m in L.paint if not g.is_empty]
    shapes = list(zip(scale_many([g for g, _ in paint], sx, sy), [MAT[m] for _, m in paint]))
    if shapes:
        rasterize(shapes, out=mat, transform=Affine.identity())
    # row texture of crop fields: stripes across the row direction, per field
    fid = np.zeros((H, W), np.int32)
    if L.fields:
        rasterize(list(zip(scale_many([f for f, _, _ in L.fields], sx, sy), range(1, len(L.fields) + 1))),
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
    names = list(MATERIALS)
    fine_a = np.array([TEX[n][0] for n in names], np.float32)
    mid_a = np.array([TEX[n][1] for n in names], np.float32)
    row_a = np.array([TEX[n][2] for n in names], np.float32)
    fine = rng.standard_normal((H, W), dtype=np.float32)
    sig = max(0.5, 1.2 * s)
    fine = cv2.GaussianBlur(fine, (0, 0), sig)
    fine /= float(fine.std()) or 1.0
    mid = smooth_noise(rng, H, W, 10 * s)
    bright = 1.0 + fine_a[mat] * fine + mid_a[mat] * mid + row_a[mat] * stripes + 0.04 * low
    del fine, mid, stripes
    # shadows: casters shifted away from the sun, darkening what is not itself a caster
    shadow = np.zeros((H, W), np.uint8)
    sun = np.array([0.35, 0.5])
    cast = []
    for hfac in sorted({h for _, h in L.shadow_casters}):
        d = 10 * hfac
        cast += [(g, 1) for g in scale_many([g for g, h in L.shadow_casters if h == hfac], sx, sy,
                                             sun[0] * d * sx, sun[1] * d * sy)]
    if cast:
        rasterize(cast, out=shadow, transform=Affine.identity())
    casters = np.isin(mat, [MAT["roof_grey"], MAT["roof_red"], MAT["roof_dark"], MAT["tree"], MAT["structure"]])
    bright = np.where((shadow > 0) & ~casters, bright * 0.55, bright).astype(np.float32)
    # per-object brightness (painted in the same order as the materials, so the top object wins)
    if L.tints:
        tint = np.zeros((H, W), np.uint16)
        geoms = scale_many([g for g, _ in L.tints], sx, sy)
        rasterize(list(zip(geoms, [int(round(t * 1000)) for _, t in L.tints])), out=tint, transform=Affine.identity())
        has = tint > 0
        # (a tree group inside a field takes the field's tint too: a small, harmless blur of the rule)
        bright[has] *= tint[has].astype(np.float32) / 1000.0
    vig = smooth_noise(rng, H, W, 60 * s)
    return mat, bright, vig


def band_radiance(band: str, mat, bright, vig, illum: float, haze: float = 1.0) -> np.ndarray:
    """Radiance of one band on the R grid in counts before noise: (H, W) float32. ``illum`` scales the
    sunlight, ``haze`` the atmospheric path radiance (short wavelengths) of the scene."""
    bits = BIT_DEPTH["A"] if band.startswith("A") else 11
    refl = band_reflectance(band).astype(np.float32)
    lo, hi = BAND_RANGES[band]
    centre = (lo + hi) / 2
    veg = np.array([VEG.get(n, 0.0) for n in MATERIALS], np.float32)
    # vigour: more NIR and less red where plants grow well
    vsign = 1.0 if centre > 700 else (-0.6 if 600 < centre < 700 else -0.2)
    gain = GAIN[bits] * illum
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
    out += np.float32(DARK[bits] + haze * path_radiance(band, bits))
    return out

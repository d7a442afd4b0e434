"""The sensor: group grid sizes, the optics PSF with an exact sub-pixel shift, area averaging to
the group's grid, noise and quantisation to the group's bit depth, and misalignments between
groups drawn like the real ones.

Offset convention (the same as ``sattag.ingest.align``): group g has offset (dx, dy) in R pixels when
a feature at R pixel (x, y) appears in g's image, resampled onto the R grid without correction, at
(x+dx, y+dy).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from sattag.dstl import BIT_DEPTH

# Full-size geometry of the real images (RGB/P pixels).
FULL_WIDTHS = (3391, 3403)  # inclusive range of RGB widths
FULL_HEIGHTS = (3345, 3349)
NOMINAL_FULL_WIDTH = 3396
M_RATIO = 4.0
A_RATIO = 25.0
MIN_A_PX = 8

# Counts = dark + gain * reflectance * illumination (+ path radiance for short wavelengths).
GAIN = {11: 2200.0, 14: 15500.0}
DARK = {11: 60.0, 14: 250.0}
NOISE = {11: 2.5, 14: 18.0}


def group_shape(group: str, H: int, W: int) -> tuple[int, int]:
    """(h, w) of a group's grid for an R grid of H x W: P the same, M ~1/4, A ~1/25 (at least 8 px)."""
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


def optics(radiance: np.ndarray, dx: float, dy: float, sigma: float = PSF_SIGMA) -> np.ndarray:
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


def sense(radiance: np.ndarray, group: str, offset: tuple[float, float], rng: np.random.Generator,
          out_shape: tuple[int, int], noise: float = 1.0) -> np.ndarray:
    """One band as the group's sensor records it: PSF + shift, area-average, PSF, noise (``noise`` x
    the group's level) -> uint16."""
    H, W = radiance.shape
    # a feature at (x, y) moves to (x+dx, y+dy)
    img = optics(radiance, *offset)
    h, w = out_shape
    if (h, w) != (H, W):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        img = cv2.GaussianBlur(img, (0, 0), 0.5)
    bits = BIT_DEPTH[group]
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(NOISE[bits] * noise)
    return np.clip(np.rint(img), 0, 2 ** bits - 1).astype(np.uint16)


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


def pansharpen(colour: list[np.ndarray], pan: np.ndarray, ms_shape: tuple[int, int], dark: float) -> list[np.ndarray]:
    """The 3-band product as it is made: colour recorded at the multispectral resolution (``ms_shape``,
    ~4x coarser), brought back to the pan grid and given the pan band's detail (ratio sharpening).

    So a car, a shed or a footpath has its own brightness in the RGB file but only a blurred share of
    its own colour, as in the real pan-sharpened images. Radiances in counts, ``dark`` their dark level.
    """
    H, W = pan.shape
    h, w = ms_shape

    def low(img: np.ndarray) -> np.ndarray:
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)

    p = pan - np.float32(dark)
    ratio = p / np.maximum(low(p), np.float32(1.0))
    np.clip(ratio, 0.0, 4.0, out=ratio)
    out = []
    for img in colour:
        c = low(img - np.float32(dark))
        c *= ratio
        c += np.float32(dark)
        out.append(c)
    return out

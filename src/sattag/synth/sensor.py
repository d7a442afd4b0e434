"""The sensor: group grid sizes, the optics PSF with an exact sub-pixel shift, area averaging to
the group's grid, noise and quantisation to the group's bit depth, and misalignments between
groups drawn like the real ones.

Offset convention (the same as ``sattag.ingest.align``): group g has offset (dx, dy) in R pixels when
a feature at R pixel (x, y) appears in g's image, resampled onto the R grid without correction, at
(x+dx, y+dy).
"""
from __future__ import annotations

import math
import sys

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


# ---- the sensor as separable linear operators, for rendering a scene window by window
#
# Every step between the R-grid radiance and a group's counts is linear and separable (PSF with the
# offset, area averaging, the blur on the group's grid; the pan-sharpening's low-pass), so per axis it
# is one sparse matrix: output pixel j = sum_t w[j, t] * input[idx[j, t]], with the image's borders
# folded into ``idx``. Applied to a window, each output pixel sums the same inputs in the same order
# whatever the window: a scene comes out the same whatever its tiling.


class Taps:
    """A 1-D linear operator in fixed-width form: ``out[j] = sum_t w[j, t] * src[idx[j, t]]``."""

    def __init__(self, m):
        m = m.tocsr()
        m.sum_duplicates()  # sorts each row's columns
        m.eliminate_zeros()
        n = m.shape[0]
        counts = np.diff(m.indptr)
        k = max(1, int(counts.max()) if n else 1)
        first = np.where(counts > 0, m.indices[np.minimum(m.indptr[:-1], max(m.nnz - 1, 0))], 0) if m.nnz else np.zeros(n, np.int64)
        last = np.where(counts > 0, m.indices[np.maximum(m.indptr[1:] - 1, 0)], 0) if m.nnz else np.zeros(n, np.int64)
        row = np.repeat(np.arange(n), counts)
        pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
        self.idx = np.repeat(first.astype(np.int64)[:, None], k, 1)  # padding: weight 0 on a real input
        self.idx[row, pos] = m.indices
        self.w = np.zeros((n, k), np.float32)
        self.w[row, pos] = m.data
        self.lo = first.astype(np.int64)
        self.hi = last.astype(np.int64) + 1
        self.n_src = m.shape[1]

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Input range [lo, hi) read by outputs a..b-1."""
        if b <= a:
            return 0, 0
        return int(self.lo[a:b].min()), int(self.hi[a:b].max())


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    """``cv2.BORDER_REFLECT`` (fedcba|abcdef|fedcba) of indices, any distance out."""
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def _reflect101(i: np.ndarray, n: int) -> np.ndarray:
    """``cv2.BORDER_REFLECT_101`` (fedcb|abcdef|edcba) of indices, any distance out."""
    if n == 1:
        return np.zeros_like(i)
    i = np.mod(i, 2 * n - 2)
    return np.where(i >= n, 2 * n - 2 - i, i)


def _op(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, shape: tuple[int, int]):
    from scipy import sparse

    return sparse.csr_matrix((w.ravel(), (rows.ravel(), cols.ravel())), shape=shape)


def psf_op(n: int, d: float, sigma: float = PSF_SIGMA):
    """The PSF sampled off-centre by ``d`` px on a line of ``n`` px, borders reflected (as :func:`optics`)."""
    k, o = _psf_taps(sigma, d)
    x = np.arange(n)[:, None]
    cols = _reflect(x + o + np.arange(k.size)[None, :], n)
    return _op(np.broadcast_to(x, cols.shape), cols, np.broadcast_to(k.astype(np.float64), cols.shape), (n, n))


def area_op(n_dst: int, n_src: int):
    """Area averaging of ``n_src`` px onto ``n_dst`` (``cv2.INTER_AREA``: each output pixel the mean
    of the input it covers, partly covered pixels by their share)."""
    scale = n_src / n_dst
    rows, cols, ws = [], [], []
    for j in range(n_dst):
        a, b = j * scale, (j + 1) * scale
        i = np.arange(int(math.floor(a)), min(n_src, int(math.ceil(b))))
        ov = np.minimum(i + 1, b) - np.maximum(i, a)
        keep = ov > 1e-9
        rows.append(np.full(keep.sum(), j))
        cols.append(i[keep])
        ws.append(ov[keep] / ov[keep].sum())
    return _op(np.concatenate(rows), np.concatenate(cols), np.concatenate(ws), (n_dst, n_src))


def cubic_op(n_dst: int, n_src: int):
    """Bicubic resampling of ``n_src`` px to ``n_dst`` as ``cv2.resize(..., INTER_CUBIC)`` (A = -0.75,
    pixel centres aligned, borders replicated)."""
    A = -0.75
    x = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
    sx = np.floor(x)
    f = x - sx
    c0 = ((A * (f + 1) - 5 * A) * (f + 1) + 8 * A) * (f + 1) - 4 * A
    c1 = ((A + 2) * f - (A + 3)) * f * f + 1
    c2 = ((A + 2) * (1 - f) - (A + 3)) * (1 - f) * (1 - f) + 1
    c3 = 1.0 - c0 - c1 - c2
    cols = np.clip(sx[:, None].astype(np.int64) + np.arange(-1, 3)[None, :], 0, n_src - 1)
    w = np.stack([c0, c1, c2, c3], 1)
    return _op(np.broadcast_to(np.arange(n_dst)[:, None], cols.shape), cols, w, (n_dst, n_src))


def blur_op(n: int, sigma: float):
    """``cv2.GaussianBlur`` (float images: 4 sigma either side) along one axis, borders ``REFLECT_101``."""
    ksize = int(round(sigma * 8 + 1)) | 1
    k = cv2.getGaussianKernel(ksize, sigma).ravel()
    x = np.arange(n)[:, None]
    cols = _reflect101(x + np.arange(ksize)[None, :] - ksize // 2, n)
    return _op(np.broadcast_to(x, cols.shape), cols, np.broadcast_to(k, cols.shape), (n, n))


def sensor_op(n_r: int, n_g: int, d: float) -> Taps:
    """One axis of a group's sensor, R-grid radiance -> the group's grid: PSF with the offset ``d`` (R px),
    and for a coarser group area averaging and the 0.5 px blur on its grid (as :func:`sense`)."""
    m = psf_op(n_r, d)
    if n_g != n_r:
        m = blur_op(n_g, 0.5) @ (area_op(n_g, n_r) @ m)
    return Taps(m)


def lowpass_op(n_r: int, n_m: int) -> Taps:
    """One axis of the pan-sharpening's low-pass: area averaging to the M grid, bicubic back."""
    return Taps(cubic_op(n_r, n_m) @ area_op(n_m, n_r))


#: Values a call works on from which the compiled loops (:mod:`sattag.synth._kernels`) are used even
#: while numba is not loaded yet (importing it takes ~0.4 s): below, numpy, unless numba is loaded.
FAST_MIN = 1 << 19


def kernels(n: int):
    """:mod:`sattag.synth._kernels` for a call on ``n`` values, or None for the numpy code (the same
    values either way)."""
    if n < FAST_MIN and "numba" not in sys.modules:
        return None
    try:
        from sattag.synth import _kernels
    except ImportError:  # numba missing: numpy does it alike
        return None
    return _kernels


def apply_sep(src: np.ndarray, origin: tuple[int, int], ty: Taps, y: tuple[int, int], tx: Taps,
              x: tuple[int, int]) -> np.ndarray:
    """Outputs ``y[0]..y[1]-1`` x ``x[0]..x[1]-1`` of the separable operator (``ty`` rows, ``tx`` columns)
    applied to ``src``, a window of its input whose (row, col) origin is ``origin`` and that holds every
    input the outputs read. Columns first, then rows, taps in a fixed order: float32, the same values
    for an output pixel whatever the window."""
    oy, ox = origin
    ylo, yhi = ty.span(*y)
    iy = ty.idx[y[0]:y[1]] - ylo
    wy = ty.w[y[0]:y[1]]
    ix = tx.idx[x[0]:x[1]] - ox
    wx = tx.w[x[0]:x[1]]
    # gathers of whole rows (contiguous) are far faster than of columns: work on the transpose
    cols = np.ascontiguousarray(src[ylo - oy:yhi - oy].T)  # (input columns, rows)
    k = kernels(cols.size)
    if k is not None:
        dt = np.result_type(cols.dtype, wx.dtype)
        tmp = np.empty((ix.shape[0], cols.shape[1]), dt)
        k.weighted_rows(cols, ix, wx, tmp)
        del cols
        tmp = np.ascontiguousarray(tmp.T)
        out = np.empty((iy.shape[0], tmp.shape[1]), dt)
        k.weighted_rows(tmp, iy, wy, out)
        return out
    tmp = _weighted_rows(cols, ix, wx)
    del cols
    return _weighted_rows(np.ascontiguousarray(tmp.T), iy, wy)  # tmp.T: (rows, output columns)


def _weighted_rows(src: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """numpy's ``sum_t w[:, t] * src[idx[:, t]]``, taps in order (what ``_kernels.weighted_rows``
    computes in one compiled pass, for windows too small to pay for numba)."""
    out = src[idx[:, 0]]
    out *= w[:, 0, None]
    for t in range(1, idx.shape[1]):
        g = src[idx[:, t]]
        g *= w[:, t, None]
        out += g
    return out


def block_normal(key: tuple[int, ...], y0: int, y1: int, x0: int, x1: int, block: int = 256) -> np.ndarray:
    """Standard normal float32 noise over rows y0..y1-1, columns x0..x1-1 of an unbounded grid, drawn
    per ``block`` x ``block`` block from a seed of (``key``, block row, block column): the same value at
    a pixel whatever window asks for it. Block indices may be -1 (a halo beyond the image)."""
    out = np.empty((y1 - y0, x1 - x0), np.float32)
    for by in range(y0 // block, (y1 - 1) // block + 1):
        for bx in range(x0 // block, (x1 - 1) // block + 1):
            rng = np.random.default_rng([*key, by + 2, bx + 2])
            b = rng.standard_normal((block, block), dtype=np.float32)
            ya, yb = max(y0, by * block), min(y1, (by + 1) * block)
            xa, xb = max(x0, bx * block), min(x1, (bx + 1) * block)
            out[ya - y0:yb - y0, xa - x0:xb - x0] = b[ya - by * block:yb - by * block, xa - bx * block:xb - bx * block]
    return out

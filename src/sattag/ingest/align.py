"""Finding the (dx, dy) of a band group against the reference grid.

Sign: group g has offset (dx, dy), in reference pixels, when a feature at reference
pixel (x, y) appears in g's image, resampled onto the reference grid without correction, at
(x + dx, y + dy).

Method. The comparison happens on the group's *own* pixel grid, so no full-size image is warped
before the offset is known (each group is then resampled once, with the offset folded in):

1. a *partner* image on the reference grid is rendered onto the group's grid as the group's sensor
   would see it if it were offset by a trial (dx, dy): a separable footprint average of a Lanczos-3
   interpolant (exact sub-pixel shift, then the group pixel's area), over a central window of at
   most 512 group pixels and only the reference pixels that window can reach;
2. the partner is the least-squares mix of candidate bands (e.g. R, G, B) that best predicts the
   target band(s) -- sensors see different spectra, the mix shows the same structures with the same
   contrast -- fitted at (0, 0) and again after the coarse stage;
3. coarse: phase correlation (Hann window) between the target and the partner -- at the group's
   resolution A's ~50 reference px are ~2 of its pixels, well inside the window;
4. fine: ``cv2.findTransformECC`` (MOTION_TRANSLATION) gives the residual in group pixels; the partner
   is re-rendered at the updated offset and ECC repeated until the update is < 0.005 reference px
   (0.05 when step 5 follows), so ECC's own interpolation only ever handles a small residual;
5. polish, for coarse groups (pixel >= ``IngestConfig.polish_min_scale`` reference px: A): Gauss-Newton on the
   model itself, ``target ~ model_d + b + ux * d/dx + uy * d/dy + l * Laplacian``, model and shift in
   one linear system per step. The model is piecewise linear in the partner bands: k-means classes of
   spectral shape, each with its own gain on brightness, plus the global mix, built on a 4-px grid
   (:func:`spectral_class_features`). Why: ECC warps the target with OpenCV's fixed-point bilinear
   tables (1/32 of a group pixel: 0.8 R px for A); SWIR is not a linear mix of VNIR across materials,
   and the part a global mix cannot follow, darkened on one side of every building by its shadow,
   pulled A by ~0.04 R px; the Laplacian term absorbs a sharper or softer target PSF. Measured on 18
   full-size generated scenes: A within 0.05 R px (was up to 0.12). Group pixels whose footprint,
   shifted, leaves the reference image, and the group's two edge rows and columns, are left out.

A fit that raises in OpenCV, has ECC correlation < ``min_correlation`` or |offset| > ``max_shift_px``
raises :class:`AlignmentError` naming scene and group: never silently used (the engine records the
scene in failures.csv and goes on; ``IngestConfig(align=False)`` skips alignment altogether).
A group image under ``MIN_ALIGN_PX`` on a side (A of a generated scene under ~1000 px) is not fitted:
``build_stack`` leaves it unaligned and records correlation NaN (an empty cell in offsets.csv).

Across a large scene (:func:`offset_spread`): one shift per group is right only when the offset is
the same everywhere. For a group image of at least ``grid_min_px`` (``build_stack``) per side the
fit is repeated on a 3x3 grid of windows (one centred in each cell of a 3x3 split, so they never
overlap); the largest distance of a window's offset from the centre's is the group's *spread*
(``spread_px`` in offsets.csv), and an :class:`AlignmentWarning` names scene, group and spread when
it exceeds ``warn_px`` (0.2 px). The stack still applies the centre's shift.

Windows. A fit reads only its window of the target and the reference pixels that window can reach
(:func:`fit_region`: the window's footprint plus 1.5 ``max_shift_px`` and the kernels). The fits run
on a :class:`FitImages` source, which hands out those parts: :class:`ArrayImages` cuts them from
whole arrays (:func:`estimate_offset`, :func:`offset_spread`), the stack builder renders them window
by window from the band files (``sattag.ingest.stack``), so a scene of any size is aligned in
bounded memory. Both give the same result for the same pixels.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import cv2
import numba
import numpy as np

from sattag.config import IngestConfig
from sattag.errors import AlignmentError

#: A group image smaller than this (either side) holds too little structure for a sub-pixel fit.
MIN_ALIGN_PX = 40

__all__ = ["MIN_ALIGN_PX", "AlignmentWarning", "GroupGeometry", "render_on_group_grid", "estimate_offset",
           "central_window", "grid_windows", "offset_spread", "spectral_class_features", "FitImages",
           "ArrayImages", "fit_region", "fit_offset", "spread_from"]


class AlignmentWarning(UserWarning):
    """Alignment went through, but the result deserves a look: the offset differs across the scene
    by more than one shift per group can remove (:func:`offset_spread`)."""


@dataclass(frozen=True)
class GroupGeometry:
    """Where a group's pixels lie on the reference grid, in reference pixels (axis-aligned).

    The group pixel (col, row) covers reference corner coordinates
    ``[ox + col*sx, ox + (col+1)*sx) x [oy + row*sy, oy + (row+1)*sy)``. DSTL: ``ox = oy = 0``,
    ``sx = W_ref / w``, ``sy = H_ref / h`` (every file covers the same footprint).
    """

    ox: float
    oy: float
    sx: float
    sy: float

    def resample_axes(self, dx: float = 0.0, dy: float = 0.0) -> tuple[tuple[float, float], tuple[float, float]]:
        """Per-axis ``(a, b)`` for :func:`resample_axis_aligned`: reference pixel j samples group
        centre index ``a*j + b``, with the offset (dx, dy) removed."""
        ax = (1.0 / self.sx, (0.5 + dx - self.ox) / self.sx - 0.5)
        ay = (1.0 / self.sy, (0.5 + dy - self.oy) / self.sy - 0.5)
        return ax, ay


def central_window(h: int, w: int, size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """``(row0, col0, height, width)`` of a central window at most ``size`` square (or at most
    ``size = (height, width)``)."""
    sh, sw = (size, size) if isinstance(size, (int, np.integer)) else size
    hh, ww = min(h, int(sh)), min(w, int(sw))
    return (h - hh) // 2, (w - ww) // 2, hh, ww


def grid_windows(h: int, w: int, size: int | tuple[int, int], n: int = 3) -> list[tuple[int, int, int, int]]:
    """``(row0, col0, height, width)`` of ``n`` x ``n`` windows across an ``h`` x ``w`` image, row by
    row: each at most ``size`` square, centred in its cell of an ``n`` x ``n`` split of the image (so
    windows never overlap). Windows with a side under :data:`MIN_ALIGN_PX` are left out, as
    :func:`estimate_offset` refuses them; for odd ``n`` the middle cell's window is (to a pixel) the
    :func:`central_window`."""
    rows = [round(i * h / n) for i in range(n + 1)]
    cols = [round(i * w / n) for i in range(n + 1)]
    out = []
    for i in range(n):
        for j in range(n):
            ch, cw = rows[i + 1] - rows[i], cols[j + 1] - cols[j]
            r0, c0, hh, ww = central_window(ch, cw, size)
            if min(hh, ww) >= MIN_ALIGN_PX:
                out.append((rows[i] + r0, cols[j] + c0, hh, ww))
    return out


def _lanczos3(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    px = np.pi * x
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 3.0 * np.sin(px) * np.sin(px / 3.0) / (px * px)
    out[x < 1e-8] = 1.0
    out[x >= 3.0] = 0.0
    return out


def footprint_weights(n_out: int, n_src: int, start: float, step: float,
                      sub_per_px: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Taps ``(index (n_out, T) int32, weight (n_out, T) float32)`` averaging a Lanczos-3 interpolant
    of a 1-D signal of ``n_src`` samples over the footprints ``[start + p*step, start + (p+1)*step)``
    (corner coordinates, sample i centred at i + 0.5), p = 0..n_out-1. Indices past the ends reflect.

    The footprint integral is a midpoint rule with ``sub_per_px`` points per source sample: exact
    enough that the render's own error stays far below the 0.1 px alignment target.
    """
    n_sub = max(1, int(math.ceil(abs(step) * sub_per_px)))
    p = np.arange(n_out, dtype=np.float64)[:, None]
    x = start + (p + (np.arange(n_sub)[None, :] + 0.5) / n_sub) * step  # (n_out, n_sub)
    base = np.floor(x - 0.5).astype(np.int64)  # sample left of x
    taps = np.arange(-2, 4)  # Lanczos-3: 6 samples around x
    i = base[..., None] + taps  # (n_out, n_sub, 6)
    k = _lanczos3(x[..., None] - (i + 0.5))
    k /= k.sum(axis=-1, keepdims=True)
    first = np.floor(start + np.arange(n_out) * step - 0.5).astype(np.int64) - 2
    n_t = int(math.ceil(abs(step))) + 8
    rel = (i - first[:, None, None]).reshape(n_out, -1)
    flat = (np.arange(n_out)[:, None] * n_t + rel).ravel()
    w = np.bincount(flat, weights=(k.reshape(n_out, -1) / n_sub).ravel(), minlength=n_out * n_t)
    w = w.reshape(n_out, n_t)
    idx = first[:, None] + np.arange(n_t)[None, :]
    # half-sample reflection at the ends (as cv2.BORDER_REFLECT), then clip for safety
    idx = np.where(idx < 0, -idx - 1, idx)
    idx = np.where(idx >= n_src, 2 * n_src - idx - 1, idx)
    idx = np.clip(idx, 0, n_src - 1)
    return idx.astype(np.int32), w.astype(np.float32)


def render_on_group_grid(partner: np.ndarray | list[np.ndarray], geom: GroupGeometry, dx: float,
                         dy: float, window: tuple[int, int, int, int]) -> np.ndarray:
    """The reference-grid image ``partner`` (H, W) -- or several, a list or (k, H, W) -- as group
    pixels ``window`` would record it if the group were offset by (dx, dy): float32 (h, w) (or
    (k, h, w)).

    Group pixel p sees the partner averaged over ``[ox + p*sx - dx, ox + (p+1)*sx - dx)`` (per axis):
    a separable footprint average of a Lanczos-3 interpolant (two 1-D passes over only the rows and
    columns the window needs; cheap even at full size).
    """
    from sattag.ingest.resample import resample_last_axis, resample_middle_axis

    flat = isinstance(partner, np.ndarray) and partner.ndim == 2
    bands = [partner] if flat else list(partner)
    r0, c0, h, w = window
    H, W = bands[0].shape
    ix, wx = footprint_weights(w, W, geom.ox + c0 * geom.sx - dx, geom.sx)
    iy, wy = footprint_weights(h, H, geom.oy + r0 * geom.sy - dy, geom.sy)
    lo, hi = int(iy.min()), int(iy.max()) + 1
    iy = (iy - lo).astype(np.int32)
    out = np.empty((len(bands), h, w), np.float32)
    # Column pass first (reduces H rows to h, runs over contiguous columns), then the row pass on
    # the few remaining rows: for A's 25x footprints ~20x fewer operations than the other order.
    tmp = np.empty((1, h, W), np.float32)
    for k, band in enumerate(bands):
        rows = band[lo:hi]  # a view, strided when the caller cropped columns: no copy
        if rows.dtype != np.float32:
            rows = rows.astype(np.float32)
        resample_middle_axis(rows[None], iy, wy, tmp)
        resample_last_axis(tmp, ix, wx, out[k:k + 1])
    return out[0] if flat else out


@numba.njit(parallel=True, cache=True)
def _combine(bands, coef, out):  # pragma: no cover - compiled
    # out = sum_i coef[i] * bands[i], one pass over memory (bands: (k, rows, W) float32)
    k, nr, nc = bands.shape
    for r in numba.prange(nr):
        for c in range(nc):
            out[r, c] = 0.0
        for i in range(k):
            ci = coef[i]
            if ci != 0.0:
                for c in range(nc):
                    out[r, c] += ci * bands[i, r, c]


def _lstsq_mix(rend: np.ndarray, target: np.ndarray, max_px: int = 200_000) -> np.ndarray:
    """Coefficients c (k,) minimising ||sum c_i rend_i + c0 - target|| (normal equations on at most
    ``max_px`` regularly subsampled pixels; k is small)."""
    k = rend.shape[0]
    step = max(1, int(math.ceil(rend[0].size / max_px)))
    x = rend.reshape(k, -1)[:, ::step].astype(np.float64)
    y = target.reshape(-1)[::step].astype(np.float64)
    x = np.concatenate([x, np.ones((1, x.shape[1]))])
    ata, aty = _normal_equations(x, y)
    ata[np.diag_indices(k)] += 1e-9 * np.trace(ata) / (k + 1)  # nearly collinear bands
    return np.linalg.solve(ata, aty)[:k]


def _normal_equations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x @ x.T`` and ``x @ y`` for x (k, n), y (n,) float64, summed in one fixed order.

    Not through BLAS: a multi-threaded BLAS sums in an order that depends on its thread count, so the
    offsets (and, by one count, some stack values) differed between a run in-process and one on Dask
    workers (which run BLAS on one thread). einsum's own loop gives the same bits either way."""
    return np.einsum("in,jn->ij", x, x), np.einsum("in,n->i", x, y)


def _weighted(coef: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``sum_i coef[i] * images[i]`` for images (k, ...), in einsum's fixed order, not through BLAS
    (:func:`_normal_equations` says why), in the dtype of ``coef`` and ``images``."""
    return np.einsum("k,k...->...", coef, images)


def _mix(bands: list[np.ndarray], coef: np.ndarray) -> np.ndarray:
    out = np.empty(bands[0].shape, np.float32)
    # Views of one stack with equal strides: combine in one numba pass without copying.
    stacked = _as_stack_view(bands)
    if stacked is not None:
        _combine(stacked, coef.astype(np.float32), out)
    else:
        out[...] = 0.0
        for b, c in zip(bands, coef):
            out += np.float32(c) * b
    return out


def _as_stack_view(bands: list[np.ndarray]) -> np.ndarray | None:
    """(k, H, W) array viewing the given bands when they are evenly spaced planes of one array."""
    if len(bands) == 1:
        return bands[0][None]
    ptrs = [b.__array_interface__["data"][0] for b in bands]
    d = ptrs[1] - ptrs[0]
    if d <= 0 or any(ptrs[i + 1] - ptrs[i] != d for i in range(len(ptrs) - 1)):
        return None
    b0 = bands[0]
    if not b0.flags.c_contiguous or any(b.shape != b0.shape or b.strides != b0.strides for b in bands):
        return None
    return np.lib.stride_tricks.as_strided(b0, (len(bands),) + b0.shape, (d,) + b0.strides,
                                           writeable=False)


def _standardise(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32, copy=False)
    sd = float(img.std())
    return (img - float(img.mean())) / (sd if sd > 0 else 1.0)




@numba.njit(cache=True)
def _kmeans(x, centres, iterations):  # pragma: no cover - compiled
    # Lloyd's iterations on the rows of x (n, d) from the given centres (k, d), in place.
    n, d = x.shape
    k = centres.shape[0]
    for _ in range(iterations):
        sums = np.zeros((k, d))
        counts = np.zeros(k)
        for i in range(n):
            best, bd = 0, np.inf
            for c in range(k):
                dist = 0.0
                for j in range(d):
                    t = x[i, j] - centres[c, j]
                    dist += t * t
                if dist < bd:
                    best, bd = c, dist
            counts[best] += 1
            for j in range(d):
                sums[best, j] += x[i, j]
        for c in range(k):
            if counts[c] > 0:
                for j in range(d):
                    centres[c, j] = sums[c, j] / counts[c]


@numba.njit(parallel=True, cache=True)
def _class_features(bands, centres, out):  # pragma: no cover - compiled
    # Per cell: brightness S = sum of bands and spectral shape bands / S; the nearest centre c
    # gets out[2c] = S and out[2c + 1] = 1 (others 0); out[2k + i] = band i (the linear part).
    nb, nr, nc = bands.shape
    k = centres.shape[0]
    for r in numba.prange(nr):
        for col in range(nc):
            tot = 0.0
            for i in range(nb):
                tot += bands[i, r, col]
            inv = 1.0 / tot if tot > 1e-12 else 0.0
            best, bd = 0, np.inf
            for c in range(k):
                dist = 0.0
                for i in range(nb):
                    t = bands[i, r, col] * inv - centres[c, i]
                    dist += t * t
                if dist < bd:
                    best, bd = c, dist
            for c in range(k):
                out[2 * c, r, col] = tot if c == best else 0.0
                out[2 * c + 1, r, col] = 1.0 if c == best else 0.0
            for i in range(nb):
                out[2 * k + i, r, col] = bands[i, r, col]


def spectral_class_features(bands: np.ndarray, k: int = IngestConfig.polish_classes, seed: int = 0,
                            sample: int = 20_000, iterations: int = 15) -> np.ndarray:
    """Features of a piecewise-linear spectral model: ``bands`` (n, H, W) float32 ->
    (2k + n, H, W) float32: per spectral class c (k-means on brightness-normalised spectra, k-means++
    start from a fixed seed, so deterministic) the brightness inside the class and the class
    indicator, then the bands themselves.

    Why: another sensor's band is not a linear mix of these across materials (SWIR is not a mix of
    VNIR), but within one material it nearly is (the same surface, brighter or darker); a least-squares
    fit over these features follows the target far closer than one global mix.
    """
    n = bands.shape[0]
    flat = bands.reshape(n, -1)
    step = max(1, flat.shape[1] // sample)
    x = flat[:, ::step].T.astype(np.float64)
    tot = x.sum(axis=1)
    lit = tot > 1e-12
    x = x[lit] / tot[lit, None]
    k = max(1, min(k, len(x)))
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):  # k-means++: far-apart starting centres
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(len(x))])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    _kmeans(x, centres, iterations)
    out = np.empty((2 * k + n,) + bands.shape[1:], np.float32)
    _class_features(np.ascontiguousarray(bands, np.float32), centres, out)
    return out


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares c (k,) of ``c @ x ~ y`` for x (k, n) float64, by the normal equations with a
    whisper of ridge (class indicators and bands can be nearly collinear)."""
    ata, aty = _normal_equations(x, y)
    ata[np.diag_indices_from(ata)] += 1e-10 * np.trace(ata) / len(ata)
    return np.linalg.solve(ata, aty)


def _polish(feats: np.ndarray, target: np.ndarray, geom: GroupGeometry, cell: float,
            window: tuple[int, int, int, int], dx: float, dy: float, valid: np.ndarray,
            iterations: int = 8, step_px: float = 0.05, tol_px: float = 0.002) -> tuple[float, float]:
    """Gauss-Newton refinement of (dx, dy) (reference px): ``target`` (h, w) ~ the least-squares
    fit of the rendered ``feats`` (n, H', W'), on a grid of ``cell`` reference px whose geometry
    is ``geom``) + b + shift derivatives + Laplacian, over the ``valid`` (h, w) bool pixels.
    Derivatives are central differences of the render (``step_px``), so they carry exactly the
    model's footprint and interpolation."""
    y = target[valid].astype(np.float64)
    ones = np.ones(y.size)
    start = (dx, dy)

    def render(src, ddx=0.0, ddy=0.0):
        return render_on_group_grid(src, geom, (dx + ddx) / cell, (dy + ddy) / cell, window)

    coef = None
    for _ in range(iterations):
        rend = render(feats)
        x = np.concatenate([rend[:, valid].astype(np.float64), ones[None]])
        if coef is None:  # the first model: a plain fit at ECC's offset
            coef = _lstsq(x, y)
        mix = _weighted(coef[:-1].astype(np.float32), feats)
        r0 = _weighted(coef[:-1], rend.astype(np.float64))
        gx = (render(mix, step_px) - render(mix, -step_px))[valid] / (2 * step_px)
        gy = (render(mix, 0.0, step_px) - render(mix, 0.0, -step_px))[valid] / (2 * step_px)
        lap = cv2.Laplacian(r0, cv2.CV_64F, borderType=cv2.BORDER_REFLECT)[valid]
        # One linear system for the model and the shift together: fitted apart, the model would
        # soak up part of the shift and each step fall ~20 % short.
        sol = _lstsq(np.concatenate([x, np.stack([gx, gy, lap])]), y)
        coef = sol[:-3]
        ux, uy = sol[-3], sol[-2]
        step = math.hypot(ux, uy)
        if not math.isfinite(step) or step > 2.0 * max(geom.sx, geom.sy) * cell:
            break  # not a polish: keep what we have
        dx, dy = dx + ux, dy + uy
        if step < tol_px:
            break
    if math.hypot(dx - start[0], dy - start[1]) > 0.5 * min(geom.sx, geom.sy) * cell:
        return start  # half a group pixel from ECC is no polish: the model does not hold here
    return dx, dy


class FitImages(Protocol):
    """What a fit reads: parts of the candidate bands on the reference grid and of the target.

    ``ref_shape``: (H, W) of the reference grid; ``target_shape``: (h, w) of the target's image;
    ``n_partner``: how many candidate bands. ``partner(region)``: the candidate bands over reference
    rows ``[y0, y1)`` and columns ``[x0, x1)`` (``region = (y0, y1, x0, x1)``), a list of (y1 - y0,
    x1 - x0) float32 arrays; ``target(window)``: the target over ``window = (row0, col0, height,
    width)`` of its image, (height, width) float32.
    """

    ref_shape: tuple[int, int]
    target_shape: tuple[int, int]
    n_partner: int

    def partner(self, region: tuple[int, int, int, int]) -> list[np.ndarray]: ...

    def target(self, window: tuple[int, int, int, int]) -> np.ndarray: ...


class ArrayImages:
    """A :class:`FitImages` over whole arrays: ``partner`` (H, W), a list of them or (k, H, W) on the
    reference grid, ``target`` (h, w). Parts are views."""

    def __init__(self, partner: np.ndarray | list[np.ndarray], target: np.ndarray):
        self._cands = list(partner) if isinstance(partner, (list, tuple)) or partner.ndim == 3 else [partner]
        self._target = target
        self.ref_shape = tuple(self._cands[0].shape)
        self.target_shape = tuple(target.shape)
        self.n_partner = len(self._cands)

    def partner(self, region: tuple[int, int, int, int]) -> list[np.ndarray]:
        y0, y1, x0, x1 = region
        return [c[y0:y1, x0:x1] for c in self._cands]

    def target(self, window: tuple[int, int, int, int]) -> np.ndarray:
        r0, c0, h, w = window
        return self._target[r0:r0 + h, c0:c0 + w]


class _MixedImages:
    """``images`` with its candidate bands replaced by one mix of them (``coef``), made per part."""

    def __init__(self, images: FitImages, coef: np.ndarray):
        self._images, self._coef = images, coef
        self.ref_shape, self.target_shape, self.n_partner = images.ref_shape, images.target_shape, 1

    def partner(self, region: tuple[int, int, int, int]) -> list[np.ndarray]:
        return [_mix(self._images.partner(region), self._coef)]

    def target(self, window: tuple[int, int, int, int]) -> np.ndarray:
        return self._images.target(window)


def fit_region(window: tuple[int, int, int, int], geom: GroupGeometry, ref_shape: tuple[int, int],
               max_shift_px: float) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the reference pixels a fit on the group-image ``window`` can reach (its
    footprint, plus 1.5 ``max_shift_px`` for the coarse stage's trial shifts and the kernels' reach),
    clipped to the reference grid ``ref_shape``: all a fit reads of the candidate bands."""
    r0, c0, wh, ww = window
    H, W = ref_shape
    reach = max_shift_px * 1.5 + 8 * geom.sy + 4
    y0 = max(0, int(math.floor(geom.oy + r0 * geom.sy - reach)))
    y1 = min(H, int(math.ceil(geom.oy + (r0 + wh) * geom.sy + reach)))
    reach_x = max_shift_px * 1.5 + 8 * geom.sx + 4
    x0 = max(0, int(math.floor(geom.ox + c0 * geom.sx - reach_x)))
    x1 = min(W, int(math.ceil(geom.ox + (c0 + ww) * geom.sx + reach_x)))
    return y0, y1, x0, x1


def estimate_offset(partner: np.ndarray | list[np.ndarray], target: np.ndarray, geom: GroupGeometry,
                    config: IngestConfig | None = None, *, scene: str | None = None,
                    group: str = "?", window_px: int = 512,
                    window: tuple[int, int, int, int] | None = None) -> tuple[float, float, float]:
    """Offset (dx, dy) in reference pixels of ``target`` (the group's own image, (h, w) float32,
    a band or band mean on the group's grid) against ``partner``: (H, W) on the reference grid, or
    candidate bands (a list of (H, W)) of which the best linear mix is used (fitted at the coarse
    offset).

    Returns ``(dx, dy, correlation)``; the fit uses a central window of at most ``window_px`` group
    pixels, or ``window`` (``(row0, col0, height, width)`` of the target) when given. The polish
    (step 5 of the module docstring) runs when the group's pixel spans at least
    ``config.polish_min_scale`` reference pixels and there are several candidate bands. Raises
    :class:`AlignmentError` on a failed or implausible fit (see module docstring).
    (:func:`fit_offset` on :class:`ArrayImages`.)
    """
    h, w = target.shape
    window = central_window(h, w, window_px) if window is None else window
    return fit_offset(ArrayImages(partner, target), geom, config, scene=scene, group=group, window=window)


def fit_offset(images: FitImages, geom: GroupGeometry, config: IngestConfig | None = None, *,
               scene: str | None = None, group: str = "?",
               window: tuple[int, int, int, int]) -> tuple[float, float, float]:
    """:func:`estimate_offset` on a :class:`FitImages` source: reads the target over ``window`` and
    the candidate bands over :func:`fit_region` of it, nothing else."""
    config = config or IngestConfig()
    h, w = images.target_shape
    window = tuple(int(v) for v in window)
    r0, c0, wh, ww = window
    if min(wh, ww) < MIN_ALIGN_PX:
        raise AlignmentError(f"group {group} image of {h}x{w} px is too small to align "
                             f"(< {MIN_ALIGN_PX} px)", scene=scene)
    target = images.target(window)
    tgt = _standardise(target)
    # Only the reference pixels the window can reach (window +- max shift + kernel) are used, so
    # mixes and renders of a central window of a full-size P stay small.
    region = fit_region(window, geom, images.ref_shape, config.max_shift_px)
    cands = images.partner(region)
    geom = GroupGeometry(geom.ox - region[2], geom.oy - region[0], geom.sx, geom.sy)

    def fail(why: str) -> AlignmentError:
        return AlignmentError(f"alignment of group {group} failed: {why}", scene=scene)

    def fit(dx: float, dy: float, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Partner mix for trial offset: (mix on the reference grid, its render on the window)."""
        if len(cands) == 1:
            return cands[0], render_on_group_grid(cands[0], geom, dx, dy, window)
        rend = render_on_group_grid(cands, geom, dx, dy, window)
        coef = _lstsq_mix(rend, tgt)
        return _mix(cands, coef), _weighted(coef.astype(np.float32), rend)

    # Coarse: phase correlation at the group's resolution. cv2.phaseCorrelate(a, b) returns the
    # shift s with b(p) ~ a(p - s); target(p) = render_0(p - d/s), so d = s * scale.
    mix, rend = fit(0.0, 0.0, tgt)
    hann = cv2.createHanningWindow((ww, wh), cv2.CV_32F)
    # A copy: when the size needs no DFT padding, OpenCV applies the window to its input in place.
    (px, py), _resp = cv2.phaseCorrelate(_standardise(rend), tgt.copy(), hann)
    dx, dy = px * geom.sx, py * geom.sy
    if not (math.isfinite(dx) and math.isfinite(dy)) or math.hypot(dx, dy) > config.max_shift_px * 1.5:
        raise fail(f"coarse shift ({dx:.1f}, {dy:.1f}) px beyond max_shift_px={config.max_shift_px}")
    mix, rend = fit(dx, dy, tgt)  # refit (and re-render) now that the images overlap

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, config.ecc_iterations, config.ecc_epsilon)
    # ECC smooths both images with this Gaussian; tiny images (A: ~136 px) keep their detail.
    gauss = 5 if min(wh, ww) >= 256 else 1
    corr = float("nan")
    polish = min(geom.sx, geom.sy) >= config.polish_min_scale and len(cands) > 1
    # With a polish to follow, ECC need only come within its own noise (A: a few 0.01 px).
    ecc_tol = 0.05 if polish else 0.005
    for it in range(6):
        ref = _standardise(rend if it == 0 else render_on_group_grid(mix, geom, dx, dy, window))
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            # ECC finds t with target(p + t) ~ render_d(p); then the true offset is d + t * scale.
            corr, warp = cv2.findTransformECC(ref, tgt, warp, cv2.MOTION_TRANSLATION, criteria, None, gauss)
        except cv2.error as e:
            raise fail(f"ECC did not converge ({str(e).strip().splitlines()[-1]})") from e
        ux, uy = float(warp[0, 2]) * geom.sx, float(warp[1, 2]) * geom.sy
        dx, dy = dx + ux, dy + uy
        if not (math.isfinite(dx) and math.isfinite(dy)) or math.hypot(dx, dy) > config.max_shift_px:
            break
        if math.hypot(ux, uy) < ecc_tol:
            break
    if not (math.isfinite(dx) and math.isfinite(dy)) or math.hypot(dx, dy) > config.max_shift_px:
        raise fail(f"offset ({dx:.1f}, {dy:.1f}) px beyond max_shift_px={config.max_shift_px}")
    if not corr >= config.min_correlation:
        raise fail(f"correlation {corr:.3f} below min_correlation={config.min_correlation}")
    if polish:
        # Group pixels whose shifted footprint (+ the kernel) reaches past the reference image see
        # what the partner cannot show (its reflected border): out of the polish.
        H, W = cands[0].shape
        cols = geom.ox + (c0 + np.arange(ww)) * geom.sx - dx
        rows = geom.oy + (r0 + np.arange(wh)) * geom.sy - dy
        valid = (((rows >= 3) & (rows + geom.sy <= H - 3))[:, None]
                 & ((cols >= 3) & (cols + geom.sx <= W - 3))[None, :])
        # and the group's own edge pixels: its PSF met the image border there
        valid[:2] = valid[-2:] = False
        valid[:, :2] = valid[:, -2:] = False
        if valid.sum() >= 0.25 * valid.size:
            cell = config.polish_cell_px
            hc, wc = H // cell, W // cell
            small = np.stack([cv2.resize(np.ascontiguousarray(c[:hc * cell, :wc * cell]), (wc, hc),
                                         interpolation=cv2.INTER_AREA) for c in cands])
            feats = spectral_class_features(small, config.polish_classes)
            geom_c = GroupGeometry(geom.ox / cell, geom.oy / cell, geom.sx / cell, geom.sy / cell)
            dx, dy = _polish(feats, target, geom_c, cell, window, dx, dy, valid)
    return dx, dy, float(corr)


def offset_spread(partner: np.ndarray | list[np.ndarray], target: np.ndarray, geom: GroupGeometry,
                  centre: tuple[float, float], config: IngestConfig | None = None, *,
                  scene: str | None = None, group: str = "?", window_px: int = 512, n: int = 3,
                  warn_px: float = 0.2) -> tuple[float, list[tuple[tuple[int, int, int, int], float, float]]]:
    """How far the offset of ``target`` moves across the image: :func:`estimate_offset` (same
    arguments) on each window of :func:`grid_windows` (``n`` x ``n``, at most ``window_px``) but the
    middle one, against ``centre``, the (dx, dy) of the central window.

    Candidate bands are mixed once, by the least-squares mix on the central window at ``centre``,
    and every window fits against that one image: the mix stands for the sensors' spectral responses,
    which do not change across a scene, and one band renders several times faster than all of them
    (DSTL P, 11 candidates, 512-px windows on a full-size generated scene: 1.3-2.6 s for the grid
    instead of 5.5 s, spread 0.01-0.03 px instead of 0.01-0.02 px where the offset is uniform).
    Groups that get the polish (pixel >= ``config.polish_min_scale``: SWIR, which no single mix
    follows across materials) keep their bands.

    Returns ``(spread, fits)``: ``spread`` the largest distance (reference px) of a window's offset
    from ``centre`` (NaN when no window could be fitted), ``fits`` ``(window, dx, dy)`` per fitted
    window. A window whose fit is refused (:class:`AlignmentError`: too little structure, e.g. open
    water) is left out: the spread is a check, the centre's fit is what the stack uses. Warns
    (:class:`AlignmentWarning`) naming scene, group, spread and the window furthest off when the
    spread exceeds ``warn_px``. (:func:`spread_from` on :class:`ArrayImages`.)
    """
    return spread_from(ArrayImages(partner, target), geom, centre, config, scene=scene, group=group,
                       window_px=window_px, n=n, warn_px=warn_px)


def spread_from(images: FitImages, geom: GroupGeometry, centre: tuple[float, float],
                config: IngestConfig | None = None, *, scene: str | None = None, group: str = "?",
                window_px: int | tuple[int, int] = 512, n: int = 3,
                warn_px: float = 0.2) -> tuple[float, list[tuple[tuple[int, int, int, int], float, float]]]:
    """:func:`offset_spread` on a :class:`FitImages` source: each window's fit reads only its own
    parts (``window_px``: at most that square, or ``(height, width)``)."""
    config = config or IngestConfig()
    h, w = images.target_shape
    middle = central_window(h, w, window_px)
    if images.n_partner > 1 and min(geom.sx, geom.sy) < config.polish_min_scale:
        # One mix for every window (see offset_spread), fitted on the central window at the
        # centre's offset: one band to render per window instead of all (P of a DSTL scene: 11).
        region = fit_region(middle, geom, images.ref_shape, config.max_shift_px)
        geom_r = GroupGeometry(geom.ox - region[2], geom.oy - region[0], geom.sx, geom.sy)
        rend = render_on_group_grid(images.partner(region), geom_r, centre[0], centre[1], middle)
        images = _MixedImages(images, _lstsq_mix(rend, _standardise(images.target(middle))))
        del rend
    fits = []
    for win in grid_windows(h, w, window_px, n):
        r0, c0, wh, ww = win
        if abs(r0 - middle[0]) <= 1 and abs(c0 - middle[1]) <= 1 and (wh, ww) == middle[2:]:
            continue  # the central window: that fit is ``centre``
        try:
            dx, dy, _ = fit_offset(images, geom, config, scene=scene, group=group, window=win)
        except AlignmentError:
            continue
        fits.append((win, dx, dy))
    if not fits:
        return float("nan"), fits
    far = [math.hypot(dx - centre[0], dy - centre[1]) for _, dx, dy in fits]
    k = int(np.argmax(far))
    spread = float(far[k])
    if spread > warn_px:
        (r0, c0, wh, ww), dx, dy = fits[k]
        warnings.warn(
            f"{'scene ' + str(scene) + ': ' if scene is not None else ''}group {group}: the offset varies "
            f"across the scene by up to {spread:.2f} px (> {warn_px:g} px): ({dx:+.2f}, {dy:+.2f}) px in the "
            f"window at rows {r0}-{r0 + wh}, columns {c0}-{c0 + ww} of the group's image, "
            f"({centre[0]:+.2f}, {centre[1]:+.2f}) px at the centre; one shift per group, the centre's, "
            f"leaves the rest of the scene up to {spread:.2f} px misaligned",
            AlignmentWarning, stacklevel=3)
    return spread, fits

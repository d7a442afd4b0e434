"""Compiled (numba) loops for the renderer's per-pixel arithmetic, the same float32 operations in the same
order as the numpy code they stand for (:func:`sattag.synth.sensor.apply_sep`,
:func:`sattag.synth.render.band_radiance` + :func:`~sattag.synth.render.to_r_grid`): the same values,
bit for bit, in one pass instead of a pass (and a temporary array) per operation.

Products and sums are rounded to float32 one at a time, as numpy does them: no fast-math, so no fused
multiply-add and no reordering (numba asks LLVM for neither unless told to).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def weighted_rows(src, idx, w, out):
    """``out[i, :] = sum_t w[i, t] * src[idx[i, t], :]``, taps in order: one pass of
    :func:`~sattag.synth.sensor.apply_sep`, the row pass on a window, the column pass on its
    transpose (``src`` = input columns x rows)."""
    n, k = idx.shape
    m = src.shape[1]
    for i in range(n):
        o = out[i]
        a = src[idx[i, 0]]
        wt = w[i, 0]
        for j in range(m):
            o[j] = a[j] * wt
        for t in range(1, k):
            a = src[idx[i, t]]
            wt = w[i, t]
            for j in range(m):
                o[j] += a[j] * wt


@numba.njit(cache=True, nogil=True)
def _fine_row(mat, mat2, frac, bright, vig, shadow, lut, vlut, shade1, base, out):
    """One row of a band's radiance on the fine grid (see :func:`radiance_r`) into ``out``."""
    one = np.float32(1.0)
    for x in range(out.shape[0]):
        m = mat[x]
        v = lut[m]
        d = lut[mat2[x]] - v
        d *= frac[x]
        v += d
        v *= bright[x]
        g = vlut[m] * vig[x]
        v += g
        light = shadow[x] * shade1
        light += one
        v *= light
        v += base
        out[x] = v


@numba.njit(cache=True, nogil=True)
def radiance_r(mat, mat2, frac, bright, vig, shadow, lut, vlut, shade1, base, ss, inv, out):
    """One band's radiance on the R grid from the fine-grid land: per fine pixel
    ``((lut[m] + (lut[m2] - lut[m]) * frac) * bright + vlut[m] * vig) * (shadow * shade1 + 1) + base``,
    each R pixel the sum of its ``ss`` x ``ss`` sub-pixels (row by row, from the top left) times ``inv``."""
    h, w = out.shape
    if ss == 1:
        for y in range(h):
            _fine_row(mat[y], mat2[y], frac[y], bright[y], vig[y], shadow[y], lut, vlut, shade1, base, out[y])
        return
    rows = np.empty((ss, w * ss), np.float32)
    for y in range(h):
        for i in range(ss):
            fy = y * ss + i
            _fine_row(mat[fy], mat2[fy], frac[fy], bright[fy], vig[fy], shadow[fy], lut, vlut, shade1, base, rows[i])
        o = out[y]
        if ss == 2:
            r0, r1 = rows[0], rows[1]
            for x in range(w):
                acc = r0[2 * x]
                acc += r0[2 * x + 1]
                acc += r1[2 * x]
                acc += r1[2 * x + 1]
                acc *= inv
                o[x] = acc
            continue
        for x in range(w):
            acc = rows[0, x * ss]
            for i in range(ss):
                for j in range(ss):
                    if i or j:
                        acc += rows[i, x * ss + j]
            acc *= inv
            o[x] = acc


@numba.njit(cache=True, nogil=True)
def land_bright(idx, back, stripes, fine, mid, low, mat_of, mat2_of, tint_of, fine_a, mid_a, row_a, grass, mat, mat2,
                bright):
    """Materials and brightness of :meth:`sattag.synth.render.Renderer.land` from the painter's index
    ``idx`` (0: nothing painted: soil, or grass where ``back`` is not set) and the texture fields."""
    one = np.float32(1.0)
    c04 = np.float32(0.04)
    h, w = idx.shape
    for y in range(h):
        for x in range(w):
            k = idx[y, x]
            m = mat_of[k]
            if k == 0 and not back[y, x]:
                m = grass
            mat[y, x] = m
            mat2[y, x] = mat2_of[k]
            b = one + fine_a[m] * fine[y, x]
            b += mid_a[m] * mid[y, x]
            b += row_a[m] * stripes[y, x]
            b += c04 * low[y, x]
            b *= tint_of[k]
            bright[y, x] = b


@numba.njit(cache=True, nogil=True)
def land_frac(idx, mat, grain, patches, vig, frac_of, grain_of, vigour_of, mix_a, dry, frac):
    """The secondary material's share (``frac``) of :meth:`sattag.synth.render.Renderer.land`, and each
    object's own vigour added to ``vig`` in place."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    c06 = np.float32(0.6)
    h, w = idx.shape
    for y in range(h):
        for x in range(w):
            k = idx[y, x]
            f = frac_of[k]
            if k == 0:
                f = dry
            g = grain[y, x]
            p = patches[y, x] + c06 * g
            f += mix_a[mat[y, x]] * p
            f += g * grain_of[k]
            frac[y, x] = min(max(f, zero), one)
            vig[y, x] += vigour_of[k]

"""Per-class statistics of a stack under its class masks: band histograms, and their file.

:func:`scene_histograms` counts (C, B, bins) of one scene add up over scenes with ``+``, so the
engine computes them scene by scene on workers and sums; :func:`band_histograms` is the all-pixel
reference (B, bins). :func:`write_histograms` / :func:`read_histograms` are the writer and reader of
``RunFolder.histograms`` (``histograms.npz``). Drawing them is ``sattag.viz.histogram_figure``'s job.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numba
import numpy as np

from sattag._files import atomic_path
from sattag.classes import DSTL_CLASSES, ClassTable

__all__ = ["band_histograms", "histogram_edges", "read_histograms", "scene_histograms", "write_histograms"]


def histogram_edges(bins: int = 256, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Bin edges (bins + 1,) that :func:`scene_histograms` uses."""
    return np.linspace(value_range[0], value_range[1], bins + 1)


def _bin_index(band: np.ndarray, bins: int, value_range: tuple[float, float]) -> np.ndarray:
    """Bin of each pixel (flat, int32); non-finite pixels go to the overflow bin ``bins``."""
    lo, hi = value_range
    x = band.ravel()
    idx = ((x - lo) * (bins / (hi - lo))).astype(np.float32)
    bad = ~np.isfinite(idx)
    any_bad = bool(bad.any())
    if any_bad:
        idx[bad] = 0  # NaN has no integer value; these pixels go to the overflow bin below
    np.clip(idx, 0, bins - 1, out=idx)
    out = idx.astype(np.int32)
    if any_bad:
        out[bad] = bins
    return out


@numba.njit(cache=True, nogil=True)
def _histogram_kernel(data, masks, bins, lo, scale, out):  # pragma: no cover - compiled
    """Add each pixel's bin of every band to ``out[c, b]`` for each class c whose mask is set there.

    One pass over the scene, row by row: the classes at a pixel are packed into a 64-bit set first,
    so each band's row is then read once, contiguously, whatever the number of classes.
    """
    n_bands, h, w = data.shape
    n_cls = masks.shape[0]
    sets = np.zeros(w, dtype=np.uint64)
    one = np.uint64(1)
    for r in range(h):
        any_set = False
        for col in range(w):
            m = np.uint64(0)
            for c in range(n_cls):
                if masks[c, r, col]:
                    m |= one << np.uint64(c)
            sets[col] = m
            if m:
                any_set = True
        if not any_set:
            continue
        for b in range(n_bands):
            for col in range(w):
                m = sets[col]
                if m == 0:
                    continue
                v = data[b, r, col]
                if not np.isfinite(v):
                    continue
                x = (v - lo) * scale
                i = int(x) if x > 0 else 0
                if i > bins - 1:
                    i = bins - 1
                c = 0
                while m:
                    if m & one:
                        out[c, b, i] += 1
                    m >>= one
                    c += 1


def scene_histograms(stack_data: np.ndarray, masks: np.ndarray, bins: int = 256,
                     value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Per-class histograms of every band of one scene: int64 counts (C, B, bins).

    ``stack_data`` float (B, H, W), ``masks`` uint8/bool (C, H, W) on the same grid. ``bins`` equal
    bins over ``value_range``; values outside it fall into the first/last bin; non-finite values are
    not counted. Counts of several scenes add up with ``+`` (same ``bins`` and ``value_range``), so
    the engine can compute them scene by scene on workers and sum. One compiled pass over the scene
    (~1 s for a full DSTL scene of 20 bands); releases the GIL.
    """
    stack_data = np.asarray(stack_data)
    masks = np.asarray(masks)
    if stack_data.ndim != 3 or masks.ndim != 3 or stack_data.shape[1:] != masks.shape[1:]:
        raise ValueError(f"stack {stack_data.shape} and masks {masks.shape} are not (B|C, H, W) on one grid")
    n_cls, n_bands = masks.shape[0], stack_data.shape[0]
    out = np.zeros((n_cls, n_bands, bins), dtype=np.int64)
    lo, hi = value_range
    if n_cls <= 64:
        if stack_data.dtype not in (np.float32, np.float64):
            stack_data = stack_data.astype(np.float32)
        ftype = stack_data.dtype.type
        _histogram_kernel(stack_data, masks.view(np.uint8) if masks.dtype == bool else masks, bins,
                          ftype(lo), ftype(bins / (hi - lo)), out)
        return out
    # More classes than a 64-bit set holds: numpy, one class at a time.
    where = [np.flatnonzero(masks[c]) for c in range(n_cls)]
    for b in range(n_bands):
        idx = _bin_index(stack_data[b], bins, value_range)
        for c in range(n_cls):
            if where[c].size:
                out[c, b] = np.bincount(idx[where[c]], minlength=bins + 1)[:bins]
    return out


def band_histograms(stack_data: np.ndarray, bins: int = 256,
                    value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Histograms of every band over all pixels: int64 counts (B, bins), the all-pixel reference
    beside the per-class counts; add up over scenes with ``+`` like :func:`scene_histograms`."""
    everywhere = np.ones((1, *np.shape(stack_data)[1:]), dtype=np.uint8)
    return scene_histograms(stack_data, everywhere, bins, value_range)[0]


# -------------------------------------------------------------------------------------------- file


def write_histograms(path: str | Path, hist: np.ndarray, bands: Sequence[str], classes: ClassTable = DSTL_CLASSES,
                     background: np.ndarray | None = None,
                     value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Save summed histograms (``RunFolder.histograms``, ``.npz``) with what is needed to draw them:
    ``hist`` (C, B, bins), optional ``background`` (B, bins), band names, class table, value range."""
    path = Path(path)
    arrays = {"hist": np.asarray(hist, dtype=np.int64), "bands": np.asarray(list(bands), dtype=str),
              "value_range": np.asarray(value_range, dtype=np.float64),
              "classes": np.asarray(json.dumps(classes.to_records()))}
    if background is not None:
        arrays["background"] = np.asarray(background, dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the name
            np.savez_compressed(f, **arrays)
    return path


def read_histograms(path: str | Path) -> dict:
    """Read :func:`write_histograms`' file: {hist, background (or None), bands, classes, value_range}."""
    with np.load(Path(path)) as z:
        return {"hist": z["hist"], "background": z["background"] if "background" in z.files else None,
                "bands": tuple(str(b) for b in z["bands"]),
                "classes": ClassTable.from_records(json.loads(str(z["classes"]))),
                "value_range": tuple(float(v) for v in z["value_range"])}

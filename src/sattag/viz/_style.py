"""Shared figure helpers: a headless Figure, brightening stretches, downsampling, atomic PNG writes.

Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot): nothing global is touched,
so the functions are safe on Dask workers and in threads, and a notebook still shows the returned
Figure. Writing goes through the Agg canvas.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sattag._files import atomic_path

#: Panel titles of DSTL bands: name and wavelength range (``dstl-format.md``).
DSTL_BAND_LABELS: dict[str, str] = {
    "R": "R (RGB file)", "G": "G (RGB file)", "B": "B (RGB file)", "P": "P pan 450-800 nm",
    "M1": "M1 coastal 400-450", "M2": "M2 blue 450-510", "M3": "M3 green 510-580",
    "M4": "M4 yellow 585-625", "M5": "M5 red 630-690", "M6": "M6 red edge 705-745",
    "M7": "M7 NIR1 770-895", "M8": "M8 NIR2 860-1040",
    "A1": "A1 SWIR 1195-1225", "A2": "A2 SWIR 1550-1590", "A3": "A3 SWIR 1640-1680",
    "A4": "A4 SWIR 1710-1750", "A5": "A5 SWIR 2145-2185", "A6": "A6 SWIR 2185-2225",
    "A7": "A7 SWIR 2235-2285", "A8": "A8 SWIR 2295-2365",
}

#: Font sizes and colours used by every figure, so they read alike.
TITLE_SIZE = 13
PANEL_TITLE_SIZE = 9
TEXT_COLOUR = "#1b1b1b"


def new_figure(width_in: float, height_in: float) -> Figure:
    """A white, constrained-layout Figure with an Agg canvas attached."""
    fig = Figure(figsize=(width_in, height_in), layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def band_label(name: str) -> str:
    """Panel title of a band: its DSTL wavelength label when known, else its name."""
    return DSTL_BAND_LABELS.get(name, name)


def grid_shape(n: int, ncols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a panel grid for ``n`` panels; about 5 wide unless ``ncols`` says otherwise."""
    if ncols is None:
        ncols = min(n, 5) if n > 4 else n
    ncols = max(1, ncols)
    return max(1, math.ceil(n / ncols)), ncols


def stride_for(shape: tuple[int, ...], max_px: int | None) -> int:
    """Integer step so that the longer of the last two axes of ``shape`` is at most ``max_px``."""
    if not max_px:
        return 1
    return max(1, math.ceil(max(shape[-2:]) / max_px))


def subsample(img: np.ndarray, max_px: int | None) -> np.ndarray:
    """Every n-th pixel of the last two axes so the image is at most ``max_px`` on its longer side
    (a view: cheap even on a full 20-band stack)."""
    s = stride_for(img.shape, max_px)
    return img[..., ::s, ::s]


def block_max(mask: np.ndarray, max_px: int | None) -> np.ndarray:
    """Shrink a (..., H, W) mask by taking the max of each block, so small objects stay visible."""
    s = stride_for(mask.shape, max_px)
    if s == 1:
        return mask
    h, w = mask.shape[-2:]
    hh, ww = math.ceil(h / s) * s, math.ceil(w / s) * s
    pad = [(0, 0)] * (mask.ndim - 2) + [(0, hh - h), (0, ww - w)]
    m = np.pad(mask, pad) if (hh, ww) != (h, w) else mask
    return m.reshape(*m.shape[:-2], hh // s, s, ww // s, s).max(axis=(-3, -1))


def stretch(img: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """Percentile stretch of one band (H, W) to [0, 1]: ``lo``/``hi`` percentiles go to 0 and 1.

    Satellite counts sit in a narrow part of [0, 1]; stretching brightens them to a readable image.
    Non-finite pixels are ignored and shown as 0.
    """
    img = np.asarray(img, dtype=np.float32)
    finite = np.isfinite(img)
    if not finite.any():
        return np.zeros(img.shape, dtype=np.float32)
    a, b = np.percentile(img[finite], [lo, hi])
    if b <= a:
        b = a + 1e-6
    out = (img - a) / (b - a)
    out[~finite] = 0.0
    return np.clip(out, 0.0, 1.0, out=out)


def stretch_rgb(rgb: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """(3, H, W) -> (H, W, 3) in [0, 1], each channel stretched on its own (a rough colour balance)."""
    return np.stack([stretch(c, lo, hi) for c in rgb], axis=-1)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100, palette: bool | int = True) -> Path:
    """Write ``fig`` as PNG to ``path`` (temporary name, then rename).

    ``palette``: store adaptive colours (256, or as many as an int says) instead of full RGB:
    satellite images in a figure make full-colour PNGs of ~1 MB; the palette version is 2-4 times
    smaller and looks the same. ``False`` keeps full RGB.
    """
    path = Path(path)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        if not palette:
            fig.savefig(tmp, dpi=dpi, format="png", facecolor=fig.get_facecolor())
        else:
            from PIL import Image

            buf = io.BytesIO()
            fig.savefig(buf, dpi=dpi, format="png", facecolor=fig.get_facecolor())
            buf.seek(0)
            with Image.open(buf) as img:
                n = 256 if palette is True else max(2, min(256, int(palette)))
                q = img.convert("RGB").quantize(n, method=Image.Quantize.MEDIANCUT)
                q.save(tmp, format="PNG", optimize=True)
    return path

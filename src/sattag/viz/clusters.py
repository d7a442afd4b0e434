"""Cluster figures: the brightened R band, the clusters in random grey levels, and the clusters coloured
by their most probable (predicted) class, for the full scene and a zoomed crop.

Every function returns a ``matplotlib.figure.Figure`` (Agg, nothing global touched); the ``write_*``
functions also save it as PNG (atomically).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from sattag.classes import NO_CLASS_COLOUR, ClassTable
from sattag.viz._style import PANEL_TITLE_SIZE, TITLE_SIZE, new_figure, save_figure, stretch, stride_for

Crop = tuple[int, int, int, int]  # row0, col0, row1, col1 (exclusive)


def grey_levels(n_clusters: int, seed: int = 0) -> np.ndarray:
    """float32 (K,) random grey levels in [0.1, 0.95], one per cluster (neighbours rarely look alike)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.95, n_clusters).astype(np.float32)


def class_palette(classes: ClassTable) -> np.ndarray:
    """float32 (C + 1, 3) RGB: the class colours, then ``NO_CLASS_COLOUR`` last (index -1)."""
    return np.array([to_rgb(c.colour) for c in classes] + [to_rgb(NO_CLASS_COLOUR)], np.float32)


def most_probable_class(probabilities: np.ndarray, flags: np.ndarray | None = None) -> np.ndarray:
    """int (K,): column of the most probable class of each cluster, -1 for none.

    With ``flags`` (bool (K, C), after thresholds and rules) only predicted classes count and a cluster
    with none is -1; without, the arg-max of the probabilities is taken.
    """
    if flags is None:
        return probabilities.argmax(axis=1) if probabilities.size else np.zeros(0, np.int64)
    p = np.where(flags, probabilities, -1.0)
    best = p.argmax(axis=1) if p.size else np.zeros(flags.shape[0], np.int64)
    return np.where(flags.any(axis=1), best, -1)


def busiest_crop(cluster_ids: np.ndarray, size: int = 400) -> Crop:
    """A ``size`` x ``size`` window where the clusters are smallest (most cluster ids per area):
    where the detail is."""
    h, w = cluster_ids.shape
    size = min(size, h, w)
    s = max(1, size // 8)
    sub = cluster_ids[::s, ::s]
    # boundaries between sampled pixels, counted per window-sized block
    edges = np.zeros(sub.shape, np.int32)
    edges[:, 1:] += sub[:, 1:] != sub[:, :-1]
    edges[1:, :] += sub[1:, :] != sub[:-1, :]
    n = max(1, size // s)
    cs = np.pad(edges.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    if cs.shape[0] - 1 < n or cs.shape[1] - 1 < n:
        return (0, 0, size, size)
    win = cs[n:, n:] - cs[:-n, n:] - cs[n:, :-n] + cs[:-n, :-n]
    r, c = np.unravel_index(int(np.argmax(win)), win.shape)
    r0, c0 = min(r * s, h - size), min(c * s, w - size)
    return (int(r0), int(c0), int(r0 + size), int(c0 + size))


def cluster_figure(red: np.ndarray, cluster_ids: np.ndarray, probabilities: np.ndarray,
                   flags: np.ndarray | None, classes: ClassTable, crop: Crop | None = None, title: str = "",
                   max_px: int = 1000, seed: int = 0) -> Figure:
    """Two rows of three panels (full scene, then ``crop``): brightened R band, clusters in random
    grey levels, clusters coloured by most probable predicted class (``NO_CLASS_COLOUR`` for none).

    Parameters
    ----------
    red:
        (H, W) R band in [0, 1] (stretched here for display).
    cluster_ids:
        int (H, W) cluster ids 0..K-1.
    probabilities, flags:
        (K, C) per-cluster probabilities and (optional) predicted flags.
    crop:
        ``row0, col0, row1, col1``; default :func:`busiest_crop`.
    max_px:
        the full-scene panels are subsampled to at most this many pixels on the longer side.
    """
    if crop is None:
        crop = busiest_crop(cluster_ids)
    r0, c0, r1, c1 = crop
    greys = grey_levels(probabilities.shape[0], seed)
    palette = class_palette(classes)
    best = most_probable_class(probabilities, flags)

    s = stride_for(cluster_ids.shape, max_px)
    views = [("full scene" + (f" (every {s}th px)" if s > 1 else ""), red[::s, ::s], cluster_ids[::s, ::s],
              s, 0, 0),
             (f"crop rows {r0}-{r1}, cols {c0}-{c1}", red[r0:r1, c0:c1], cluster_ids[r0:r1, c0:c1],
              1, r0, c0)]
    h, w = cluster_ids.shape
    aspect = h / max(w, 1)
    fig = new_figure(15, 10 * aspect + 1.2)
    axes = fig.subplots(2, 3)
    for row, (name, band, ids, step, rr, cc) in enumerate(views):
        panels = [(stretch(band), "gray", "R band (brightened)"),
                  (greys[ids], "gray", f"clusters ({probabilities.shape[0]} in scene)"),
                  (palette[best[ids]], None, "most probable class")]
        for ax, (img, cmap, what) in zip(axes[row], panels):
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{what} - {name}", fontsize=PANEL_TITLE_SIZE)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.add_patch(Rectangle((c0 / step, r0 / step), (c1 - c0) / step, (r1 - r0) / step,
                                       fill=False, edgecolor="#ff00ff", linewidth=1.2))
    handles = [Patch(facecolor=c.colour, edgecolor="#555555", label=c.name) for c in classes]
    handles.append(Patch(facecolor=NO_CLASS_COLOUR, edgecolor="#555555", label="no class"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


def write_cluster_figure(path: str | Path, red: np.ndarray, cluster_ids: np.ndarray,
                         probabilities: np.ndarray, flags: np.ndarray | None, classes: ClassTable,
                         crop: Crop | None = None, title: str = "", dpi: int = 100) -> tuple[Figure, Path]:
    """:func:`cluster_figure`, saved as PNG at ``path``; returns (figure, path)."""
    fig = cluster_figure(red, cluster_ids, probabilities, flags, classes, crop=crop, title=title)
    return fig, save_figure(fig, path, dpi=dpi)


def write_cluster_figures(out_dir: str | Path, scene_id: str, stack, result, classes: ClassTable,
                          crop: Crop | None = None, bands: Sequence[str] | None = None) -> list[Path]:
    """The cluster figure of one scene from its ``Stack`` and ``PredictResult``, written to
    ``out_dir/<scene_id>_clusters.png``; returns the written paths."""
    names = tuple(bands or getattr(stack, "bands", ()) or ())
    data = stack.data if hasattr(stack, "data") else stack
    red = data[names.index("R")] if "R" in names else data[0]
    _, path = write_cluster_figure(Path(out_dir) / f"{scene_id}_clusters.png", red, result.cluster_ids,
                                   result.probabilities, result.flags, classes, crop=crop,
                                   title=f"{scene_id}: spectral clusters and predicted classes")
    return [path]

"""Exploration figures: scene thumbnails, every band of a scene, class masks, polygons over RGB, and
per-class histograms of every band.

Each ``*_figure`` function returns a ``matplotlib.figure.Figure`` (shown inline in a notebook);
:func:`write_explore_figures` writes them as PNGs. This module only draws: what it draws is computed
by the stages that own the data, scene by scene on the engine's workers --
``sattag.ingest.scene_thumbnail`` (a small view of a stack) and ``sattag.labels.scene_histograms``
(per-class counts (C, B, bins), summed over scenes with ``+``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch, Rectangle
from matplotlib.path import Path as MplPath
from scipy.ndimage import binary_dilation

from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.ingest import display_bands
from sattag.labels import geometry_to_pixel, histogram_edges, polygonal_parts, rasterize_classes
from sattag.scene import Grid
from sattag.viz._style import (
    PANEL_TITLE_SIZE,
    TITLE_SIZE,
    band_label,
    block_max,
    grid_shape,
    new_figure,
    save_figure,
    stretch,
    stretch_rgb,
    subsample,
)

# --------------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------------


def _title(scene_id: str, what: str) -> str:
    return f"Scene {scene_id}: {what}" if scene_id else what[:1].upper() + what[1:]


def rgb_image(stack_data: np.ndarray, bands: Sequence[str], max_px: int | None = None,
              window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A brightened colour image (h, w, 3) float32 in [0, 1] of a stack (B, H, W).

    Uses the bands named R, G, B when present (else M5, M3, M2; else the first band in grey),
    percentile-stretched per channel. ``window`` = (col0, row0, width, height) crops first;
    ``max_px`` subsamples so the longer side is at most that many pixels.
    """
    idx, _ = display_bands(bands)
    img = stack_data[idx]
    if window is not None:
        c0, r0, w, h = window
        img = img[:, r0:r0 + h, c0:c0 + w]
    img = subsample(img, max_px)
    return stretch_rgb(img)


def thumbnails_figure(thumbnails: Mapping[str, np.ndarray], ncols: int | None = None,
                      title: str = "Training scenes") -> Figure:
    """All scenes side by side, each brightened on its own.

    ``thumbnails`` is {scene_id: (3, h, w) red, green, blue band values (``sattag.ingest.scene_thumbnail``)
    or (h, w) one band}.
    """
    n = max(1, len(thumbnails))
    rows, cols = grid_shape(n, ncols)
    fig = new_figure(2.6 * cols, 2.8 * rows + 0.5)
    fig.suptitle(f"{title} ({len(thumbnails)})", fontsize=TITLE_SIZE, fontweight="bold")
    axes = fig.subplots(rows, cols, squeeze=False)
    items = list(thumbnails.items())
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(items):
            sid, img = items[k]
            img = stretch(img) if np.ndim(img) == 2 else stretch_rgb(img)
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="antialiased")
            ax.set_title(sid, fontsize=PANEL_TITLE_SIZE + 1)
    return fig


def bands_figure(stack_data: np.ndarray, bands: Sequence[str], scene_id: str = "",
                 max_px: int = 256, ncols: int = 5) -> Figure:
    """Every band of one scene (B, H, W) as a small grey panel, each stretched on its own.

    Panel titles name the band and, for DSTL bands, its wavelength range (nm); misalignment between
    band groups and the coarse resolution of the SWIR (A) bands show at a glance.
    """
    small = subsample(stack_data, max_px)
    rows, cols = grid_shape(len(bands), ncols)
    h, w = small.shape[-2:]
    fig = new_figure(2.4 * cols, 2.4 * rows * h / w + 0.6)
    fig.suptitle(_title(scene_id, f"all {len(bands)} bands (each stretched 2-98 %)"),
                 fontsize=TITLE_SIZE, fontweight="bold")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(bands):
            ax.imshow(stretch(small[k]), cmap="gray", vmin=0, vmax=1, interpolation="antialiased")
            ax.set_title(band_label(bands[k]), fontsize=PANEL_TITLE_SIZE)
    return fig


def masks_figure(masks: np.ndarray, classes: ClassTable = DSTL_CLASSES, scene_id: str = "",
                 max_px: int = 320, ncols: int = 5) -> Figure:
    """The class masks (C, H, W) of one scene, one panel per class in the class's colour.

    Masks are shrunk with a block maximum so that vehicles a few pixels wide stay visible; titles give
    each class's share of the scene.
    """
    small = block_max(np.asarray(masks), max_px)
    share = np.asarray(masks).reshape(len(classes), -1).mean(axis=1) * 100
    rows, cols = grid_shape(len(classes), ncols)
    h, w = small.shape[-2:]
    fig = new_figure(2.5 * cols, 2.5 * rows * h / w + 0.8)
    fig.suptitle(_title(scene_id, "class masks"),
                 fontsize=TITLE_SIZE, fontweight="bold")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(classes):
            ax.set_axis_off()
            continue
        c = classes.classes[k]
        cmap = ListedColormap(["#f2f2f2", c.colour])
        panel, note = small[k], ""
        if 0 < panel.mean() < 0.002:
            # A few vehicles are single dots at this scale: grow them so they can be seen.
            panel = binary_dilation(panel > 0, iterations=2).astype(np.uint8)
            note = " (dots enlarged)"
        ax.imshow(panel, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_edgecolor("#bbbbbb")
        ax.set_title(f"{c.id} {c.name}\n{_share(share[k])}{note}", fontsize=PANEL_TITLE_SIZE, color=c.colour
                     if _luminance(c.colour) < 0.75 else "#444444")
    return fig


def _share(pct: float) -> str:
    """A share of the scene in words that never rounds a present class to 0 %."""
    if pct == 0:
        return "none"
    if pct < 0.01:
        return f"{pct:.1g} %"
    return f"{pct:.2f} %"


def _luminance(colour: str) -> float:
    r, g, b = to_rgb(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b


# --------------------------------------------------------------------------------------------------
# polygons over RGB
# --------------------------------------------------------------------------------------------------


def choose_window(masks: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The (col0, row0, width, height) square of side ``size`` px (clipped to the scene) that shows
    the most classes, ties broken by labelled area: a crop where the labels are worth looking at."""
    c, h, w = masks.shape
    size = min(size, h, w)
    step = max(1, size // 4)
    # Per class, labelled pixels in each step x step cell; windows are 4 x 4 cells (or what fits).
    cells = block_sum(masks, step)  # (C, ch, cw)
    k = max(1, size // step)
    best, best_score = (0, 0), (-1, -1.0)
    for i in range(max(1, cells.shape[1] - k + 1)):
        for j in range(max(1, cells.shape[2] - k + 1)):
            win = cells[:, i:i + k, j:j + k].reshape(c, -1).sum(axis=1)
            present = win > 0
            # Rare classes count as much as common ones: the score is the classes seen, then the
            # smallest shares' balance (sum of log-counts) rather than raw area, which crops would win.
            score = (int(present.sum()), float(np.log1p(win).sum()))
            if score > best_score:
                best, best_score = (i, j), score
    r0 = min(best[0] * step, h - size)
    c0 = min(best[1] * step, w - size)
    return int(c0), int(r0), int(size), int(size)


def block_sum(masks: np.ndarray, step: int) -> np.ndarray:
    """Sum of each step x step block of (C, H, W) masks (edge blocks cut off): (C, H//step, W//step)."""
    c, h, w = masks.shape
    hh, ww = (h // step) * step, (w // step) * step
    m = masks[:, :hh, :ww]
    return m.reshape(c, hh // step, step, ww // step, step).sum(axis=(2, 4), dtype=np.int64)


def _polygon_path(poly) -> MplPath:
    """A matplotlib path of a polygon with its holes (even-odd filling keeps holes empty)."""
    rings = [np.asarray(poly.exterior.coords)] + [np.asarray(r.coords) for r in poly.interiors]
    return MplPath.make_compound_path(*[MplPath(r, closed=True) for r in rings])


def overlay_figure(
    stack_data: np.ndarray,
    bands: Sequence[str],
    polygons: Mapping[int, object],
    grid: Grid,
    classes: ClassTable = DSTL_CLASSES,
    window: tuple[int, int, int, int] | None = None,
    masks: np.ndarray | None = None,
    scene_id: str = "",
    crop_px: int = 480,
) -> Figure:
    """A zoomed RGB crop with the label polygons drawn in class colours, beside the whole scene.

    ``polygons``: {class_id: geometry} in the grid's scene coordinates. ``window`` = (col0, row0,
    width, height) in pixels; when None, the ``crop_px`` square showing the most classes is chosen
    from ``masks`` (rasterized from the polygons when not given).
    """
    from shapely import clip_by_rect

    if window is None:
        if masks is None:
            masks = rasterize_classes(polygons, grid, classes)
        window = choose_window(masks, crop_px)
    c0, r0, w, h = window
    fig = new_figure(13.5, 6.6)
    fig.suptitle(_title(scene_id, f"labels over {display_bands(bands)[1]}"),
                 fontsize=TITLE_SIZE, fontweight="bold")
    ax_all, ax_zoom = fig.subplots(1, 2, width_ratios=[1, 1.45])

    ax_all.imshow(rgb_image(stack_data, bands, max_px=600), extent=(0, grid.width, grid.height, 0),
                  interpolation="antialiased")
    ax_all.add_patch(Rectangle((c0, r0), w, h, fill=False, edgecolor="#ffff00", linewidth=2.2))
    ax_all.set_title("whole scene (yellow box: zoom)", fontsize=PANEL_TITLE_SIZE + 1)
    ax_all.set_axis_off()

    ax_zoom.imshow(rgb_image(stack_data, bands, window=window), extent=(c0, c0 + w, r0 + h, r0),
                   interpolation="nearest")
    handles = []
    for c in classes:
        geom = polygons.get(c.id)
        if geom is None or geom.is_empty:
            continue
        # To pixel space, then clip to the window so a scene's tens of thousands of tree polygons
        # don't all become matplotlib patches.
        clipped = clip_by_rect(geometry_to_pixel(geom, grid), c0, r0, c0 + w, r0 + h)
        parts = polygonal_parts(clipped)
        if not parts:
            continue
        patches = [PathPatch(_polygon_path(p)) for p in parts]
        rgb = to_rgb(c.colour)
        ax_zoom.add_collection(PatchCollection(patches, facecolor=(*rgb, 0.35), edgecolor=(*rgb, 1.0),
                                               linewidth=1.8, match_original=False))
        handles.append(Patch(facecolor=rgb, edgecolor="black", linewidth=0.5, label=f"{c.id} {c.name}"))
    ax_zoom.set_xlim(c0, c0 + w)
    ax_zoom.set_ylim(r0 + h, r0)
    ax_zoom.set_title(f"zoom: columns {c0}-{c0 + w}, rows {r0}-{r0 + h}", fontsize=PANEL_TITLE_SIZE + 1)
    ax_zoom.tick_params(labelsize=7)
    if handles:
        ax_zoom.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                       frameon=False, title="classes in view", title_fontsize=9)
    else:
        ax_zoom.text(0.5, 0.5, "no labels in this window", transform=ax_zoom.transAxes, ha="center",
                     color="white", fontsize=12, fontweight="bold")
    return fig


# --------------------------------------------------------------------------------------------------
# histograms
# --------------------------------------------------------------------------------------------------


def histogram_figure(
    hist: np.ndarray,
    bands: Sequence[str],
    classes: ClassTable = DSTL_CLASSES,
    background: np.ndarray | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    show_bands: Sequence[str] | None = None,
    ncols: int = 5,
    title: str = "Band values per class, all training scenes",
    rare_px: int = 5000,
) -> Figure:
    """Per-class histograms of each band, normalised per class (each curve sums to 1).

    ``hist``: counts (C, B, bins) from ``sattag.labels.scene_histograms`` (summed over scenes). ``background``:
    optional (B, bins) all-pixel counts drawn as a grey area. ``show_bands``: the bands to draw (default
    all). Each panel's x axis is zoomed to where the values lie (0.5-99.5 % of all counts), since
    scaled sensor counts fill only part of [0, 1]. Classes with fewer than ``rare_px`` pixels (per
    band) are drawn dashed and do not set the y scale: their few pixels make spiky curves that would
    flatten everyone else's. The legend gives each class's pixel count.
    """
    hist = np.asarray(hist)
    bands = list(bands)
    show = list(show_bands) if show_bands is not None else bands
    if hist.ndim != 3 or hist.shape[:2] != (len(classes), len(bands)):
        raise ValueError(f"hist of shape {hist.shape} does not fit {len(classes)} classes x {len(bands)} bands")
    if background is not None and np.shape(background) != hist.shape[1:]:
        raise ValueError(f"background of shape {np.shape(background)} does not fit hist bands x bins {hist.shape[1:]}")
    edges = histogram_edges(hist.shape[2], value_range)
    centres = (edges[:-1] + edges[1:]) / 2
    rows, cols = grid_shape(len(show), ncols)
    fig = new_figure(3.0 * cols, 2.3 * rows + 1.2)
    fig.suptitle(title, fontsize=TITLE_SIZE, fontweight="bold")
    axes = fig.subplots(rows, cols, squeeze=False)
    totals = hist.sum(axis=2, keepdims=True).astype(np.float64)
    norm = np.divide(hist, totals, out=np.zeros(hist.shape, dtype=np.float64), where=totals > 0)
    npx = totals[:, 0, 0] if hist.shape[1] else np.zeros(len(classes))
    present = [k for k in range(len(classes)) if npx[k] > 0]
    common = [k for k in present if npx[k] >= rare_px] or present
    for k, ax in enumerate(axes.flat):
        if k >= len(show):
            ax.set_axis_off()
            continue
        b = bands.index(show[k])
        everything = hist[:, b].sum(axis=0) + (background[b] if background is not None else 0)
        bg_top = 0.0
        if background is not None and background[b].sum() > 0:
            bg = background[b] / background[b].sum()
            bg_top = float(bg.max())
            ax.fill_between(centres, bg, color="#d0d0d0", linewidth=0, step="mid")
        for c in present:
            rare = c not in common
            ax.plot(centres, norm[c, b], color=classes.classes[c].colour, drawstyle="steps-mid",
                    linewidth=0.9 if rare else 1.4, linestyle=(0, (2, 1.5)) if rare else "-",
                    zorder=2 if rare else 3)
        top = max([float(norm[c, b].max()) for c in common] + [bg_top])
        # A square-root y axis: one class's narrow peak (water in NIR) would flatten the rest otherwise.
        ax.set_yscale("function", functions=(_sqrt, np.square))
        if top > 0:
            ax.set_ylim(0, top * 1.08)
        cum = np.cumsum(everything)
        if cum[-1] > 0:
            lo = centres[np.searchsorted(cum, 0.005 * cum[-1])]
            hi = centres[min(len(centres) - 1, np.searchsorted(cum, 0.995 * cum[-1]))]
            pad = (edges[1] - edges[0]) * 2
            ax.set_xlim(max(value_range[0], lo - pad), min(value_range[1], hi + pad))
        ax.set_title(band_label(show[k]), fontsize=PANEL_TITLE_SIZE)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
        if k % cols == 0:
            ax.set_ylabel("share of class (sqrt)", fontsize=7)
        ax.grid(alpha=0.3, linewidth=0.5)
    handles = [Line2D([], [], color=classes.classes[c].colour, linewidth=2.5,
                      linestyle="-" if c in common else (0, (2, 1.5)),
                      label=f"{classes.classes[c].id} {classes.classes[c].name} ({_count(npx[c])} px)")
               for c in present]
    if background is not None:
        handles.append(Patch(color="#d0d0d0", label="all pixels"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(handles)), fontsize=9,
                   frameon=False)
    return fig


def _sqrt(x):
    return np.sqrt(np.maximum(x, 0))


def _count(n: float) -> str:
    """1234 -> '1.2k', 5_600_000 -> '5.6M'."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


def write_explore_figures(
    out_dir: str | Path,
    *,
    classes: ClassTable = DSTL_CLASSES,
    thumbnails: Mapping[str, np.ndarray] | None = None,
    stack_data: np.ndarray | None = None,
    bands: Sequence[str] | None = None,
    scene_id: str = "",
    masks: np.ndarray | None = None,
    polygons: Mapping[int, object] | None = None,
    grid: Grid | None = None,
    hist: np.ndarray | None = None,
    background: np.ndarray | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    window: tuple[int, int, int, int] | None = None,
    hist_bands: Sequence[str] | None = None,
    dpi: int = 100,
    palette: bool | int = True,
    title: str | None = None,
) -> dict[str, Path]:
    """Write every exploration figure whose inputs are given, as PNGs under ``out_dir``.

    - ``thumbnails`` -> ``thumbnails.png``
    - ``stack_data`` + ``bands`` -> ``bands_<scene_id>.png``
    - ``masks`` -> ``masks_<scene_id>.png``
    - ``stack_data`` + ``bands`` + ``polygons`` + ``grid`` -> ``overlay_<scene_id>.png``
    - ``hist`` + ``bands`` -> ``histograms.png`` (``background`` adds the all-pixel curve;
      ``hist_bands`` picks the bands drawn, default all)

    ``dpi`` and ``palette`` go to :func:`sattag.viz.save_figure`. ``title``: what the scene's figures
    call it (default ``scene_id``, which also names the files). Returns {kind: path}. Each file is
    written to a temporary name, then renamed.
    """
    out_dir = Path(out_dir)
    suffix = f"_{scene_id}" if scene_id else ""
    name = scene_id if title is None else title
    written: dict[str, Path] = {}

    def _write(kind: str, name: str, fig: Figure) -> None:
        written[kind] = save_figure(fig, out_dir / name, dpi=dpi, palette=palette)
        fig.clear()

    if thumbnails:
        _write("thumbnails", "thumbnails.png", thumbnails_figure(thumbnails))
    if stack_data is not None and bands is not None:
        _write("bands", f"bands{suffix}.png", bands_figure(stack_data, bands, name))
    if masks is not None:
        _write("masks", f"masks{suffix}.png", masks_figure(masks, classes, name))
    if stack_data is not None and bands is not None and polygons is not None and grid is not None:
        _write("overlay", f"overlay{suffix}.png",
               overlay_figure(stack_data, bands, polygons, grid, classes, window=window, masks=masks,
                              scene_id=name))
    if hist is not None and bands is not None:
        _write("histograms", "histograms.png",
               histogram_figure(hist, bands, classes, background=background, value_range=value_range,
                                show_bands=hist_bands))
    return written

"""Class polygons -> uint8 class masks on a stack's grid, and masks to/from Cloud Optimized GeoTIFF.

Whole scenes (:func:`rasterize_classes`, :func:`write_masks`, :func:`read_masks`) or window by window
(:func:`grid_windows`, :func:`rasterize_windows`, :func:`write_masks_windows`,
:func:`read_masks_window`), which give the same pixels and the same file with memory that follows
the window, not the scene.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from sattag._files import write_cog, write_cog_windows
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.errors import LabelError
from sattag.labels.readers import LabelWarning, labels_bounds
from sattag.labels.transform import bounds_overlap, grid_bounds
from sattag.scene import Grid, sampled_row_bands


def check_overlap(polygons: Mapping[int, object], grid: Grid, source: str | Path | None = None,
                  scene_id: str | None = None) -> bool:
    """Whether the labels' extent overlaps the raster; warns (:class:`LabelWarning`) naming file and
    scene when there are labels and none of them can land on the raster. Empty labels count as fine."""
    lb = labels_bounds(polygons)
    if lb is None:
        return True
    if bounds_overlap(lb, grid_bounds(grid)):
        return True
    where = ": ".join(str(w) for w in (source, f"scene {scene_id}" if scene_id else None) if w)
    warnings.warn(
        f"{where + ': ' if where else ''}labels (extent {tuple(round(v, 6) for v in lb)}) do not overlap "
        f"the raster (extent {tuple(round(v, 6) for v in grid_bounds(grid))}): wrong CRS or wrong scene?",
        LabelWarning, stacklevel=2)
    return False


def grid_windows(height: int, width: int, tile_px: int) -> Iterator[tuple[int, int, int, int]]:
    """The windows that tile a ``height`` x ``width`` grid: ``(r0, r1, c0, c1)`` (pixels, ends
    exclusive), ``tile_px`` x ``tile_px`` (smaller at the bottom and right edges), row by row."""
    tile_px = int(tile_px)
    if tile_px < 1:
        raise ValueError(f"grid_windows: tile_px must be >= 1, got {tile_px}")
    for r0 in range(0, height, tile_px):
        for c0 in range(0, width, tile_px):
            yield r0, min(height, r0 + tile_px), c0, min(width, c0 + tile_px)


def _check_classes(polygons: Mapping[int, object], classes: ClassTable, source, scene_id) -> None:
    unknown = set(polygons) - set(classes.ids)
    if unknown:
        raise LabelError(f"labels have class ids {sorted(unknown)} that are not in the class table",
                         source, scene_id)


def rasterize_classes(
    polygons: Mapping[int, object],
    grid: Grid,
    classes: ClassTable = DSTL_CLASSES,
    *,
    all_touched: bool = False,
    source: str | Path | None = None,
    scene_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Burn each class's polygons into its own mask: uint8 (C, H, W), 1 inside, 0 outside.

    ``polygons``: ``{class_id: shapely geometry}`` in the grid's scene coordinates (as the readers
    return them); a class missing from the dict, or empty, gives an all-zero mask. Index ``i`` of the
    result is ``classes.classes[i]``; classes may overlap; holes stay holes. A pixel is inside when
    its centre is (``all_touched=False``, GDAL's rule). ``source``/``scene_id`` only name the labels in
    the warning given when they miss the raster altogether. ``progress(1)`` is called per class.
    """
    masks = np.zeros((len(classes), grid.height, grid.width), dtype=np.uint8)
    check_overlap(polygons, grid, source, scene_id)
    _check_classes(polygons, classes, source, scene_id)
    for i, cid in enumerate(classes.ids):
        geom = polygons.get(cid)
        if geom is not None and not geom.is_empty:
            # Burn into the mask's own memory (a C-contiguous (H, W) slice): no copy per class.
            rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, out=masks[i],
                      fill=0, all_touched=all_touched, dtype=np.uint8)
        if progress is not None:
            progress(1)
    return masks


def rasterize_windows(
    polygons: Mapping[int, object],
    grid: Grid,
    classes: ClassTable = DSTL_CLASSES,
    tile_px: int = 2048,
    *,
    all_touched: bool = False,
    source: str | Path | None = None,
    scene_id: str | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """:func:`rasterize_classes` window by window: yields ``(row0, col0, masks)``, ``masks`` uint8
    (C, h, w) of the window at ``row0, col0`` of the grid (windows of :func:`grid_windows`), the same
    pixels the whole-scene masks have there. Memory: one window's masks (C x tile_px^2 bytes).

    Each window burns, per class, only the polygons whose bounding box reaches it (plus a pixel), with
    the window's own transform: GDAL's scan-line fill then does per window what it does for the whole
    scene (a part away from the window adds no crossing inside it), without going over every polygon
    of the scene in every window. Polygons only (what the label sources give): a line is refused
    (:class:`LabelError`), as GDAL's line drawing would differ by a pixel from the whole scene's. The
    overlap warning and the label checks happen at the call, before the first window.
    """
    check_overlap(polygons, grid, source, scene_id)
    _check_classes(polygons, classes, source, scene_id)
    # Per class: its polygons and their bounds, to pick the ones near each window.
    prepared: list[tuple[np.ndarray, np.ndarray] | None] = []
    for cid in classes.ids:
        geom = polygons.get(cid)
        if geom is None or geom.is_empty:
            prepared.append(None)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            # A line's pixels depend on where GDAL starts drawing it: a window's would not be the scene's.
            raise LabelError(f"class {cid}: window-by-window masks burn polygons only, not a {geom.geom_type}",
                             source, scene_id)
        parts = shapely.get_parts(geom)
        prepared.append((parts, shapely.bounds(parts)))
    return _rasterize_windows(prepared, grid, len(classes), tile_px, all_touched)


def _rasterize_windows(prepared, grid: Grid, n_classes: int, tile_px: int, all_touched: bool):
    t = grid.transform
    for r0, r1, c0, c1 in grid_windows(grid.height, grid.width, tile_px):
        h, w = r1 - r0, c1 - c0
        out = np.zeros((n_classes, h, w), dtype=np.uint8)
        # The window's extent in scene coordinates, a pixel wider on every side (all_touched burns
        # pixels a polygon's edge only grazes), whatever the transform's orientation.
        xs, ys = zip(*(t @ (c, r) for c in (c0 - 1, c1 + 1) for r in (r0 - 1, r1 + 1)))
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        wt = window_transform(Window(c0, r0, w, h), t)
        for i, prep in enumerate(prepared):
            if prep is None:
                continue
            parts, b = prep
            near = (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
            if not near.any():
                continue
            rasterize([(shapely.multipolygons(parts[near]), 1)], out_shape=(h, w), transform=wt, out=out[i], fill=0,
                      all_touched=all_touched, dtype=np.uint8)
        yield r0, c0, out


def write_masks(path: str | Path, masks: np.ndarray, grid: Grid, classes: ClassTable = DSTL_CLASSES, *,
                overview_resampling: str = "nearest") -> Path:
    """Write masks uint8 (C, H, W) as a Cloud Optimized GeoTIFF (one band per class): 512-px tiles,
    DEFLATE, internal overviews (:func:`sattag._files.write_cog`), so a viewer opens a full scene at
    any zoom at once.

    The class table travels in the file's tags (``sattag_classes``, JSON) and band descriptions, the
    grid in its transform and CRS. Overviews are resampled with ``overview_resampling`` (nearest:
    every overview pixel is 0 or 1, as in the masks). Written to a temporary name, then renamed.
    """
    path = Path(path)
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != len(classes) or masks.shape[1:] != grid.shape:
        raise LabelError(f"masks of shape {masks.shape} do not fit {len(classes)} classes on a {grid.shape} grid",
                         path)
    return write_cog(path, masks.astype(np.uint8, copy=False), transform=grid.transform,
                     crs=CRS.from_user_input(grid.crs) if grid.crs else None,
                     descriptions=[c.name for c in classes],
                     tags={"sattag_classes": json.dumps(classes.to_records())}, compress="deflate",
                     overview_resampling=overview_resampling)


def write_masks_windows(path: str | Path, pieces: Iterable[tuple[int, int, np.ndarray]], grid: Grid,
                        classes: ClassTable = DSTL_CLASSES, *, overview_resampling: str = "nearest") -> Path:
    """The file :func:`write_masks` writes (same tags, band descriptions, tiles, overviews), built from
    pieces ``(row0, col0, masks)``, ``masks`` uint8 (C, h, w) placed at ``row0, col0`` of the grid
    (what :func:`rasterize_windows` yields), so that the scene's masks are never whole in memory
    (:func:`sattag._files.write_cog_windows`). Pixels no piece covers are 0. Written to a temporary
    name, then renamed."""
    path = Path(path)
    n = len(classes)

    def checked():
        for row0, col0, masks in pieces:
            masks = np.asarray(masks)
            if masks.ndim != 3 or masks.shape[0] != n:
                raise LabelError(f"a masks window of shape {masks.shape} does not fit {n} classes", path)
            yield row0, col0, masks.astype(np.uint8, copy=False)

    return write_cog_windows(path, checked(), count=n, height=grid.height, width=grid.width, dtype="uint8",
                             transform=grid.transform, crs=CRS.from_user_input(grid.crs) if grid.crs else None,
                             descriptions=[c.name for c in classes],
                             tags={"sattag_classes": json.dumps(classes.to_records())}, compress="deflate",
                             overview_resampling=overview_resampling)


def read_masks_window(path: str | Path, rows: tuple[int, int], cols: tuple[int, int],
                      classes: Iterable[int] | None = None) -> np.ndarray:
    """A window of a masks file (:func:`write_masks`): uint8 (C, r1 - r0, c1 - c0) for ``rows = (r0, r1)``,
    ``cols = (c0, c1)`` (pixels, ends exclusive), reading only the file's tiles under it. ``classes``:
    the layers to read (0-based indices in class-table order), default all."""
    path = Path(path)
    (r0, r1), (c0, c1) = rows, cols
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                indexes = [int(i) + 1 for i in classes] if classes is not None else list(range(1, src.count + 1))
                return src.read(indexes, window=Window(c0, r0, c1 - c0, r1 - r0))
    except rasterio.errors.RasterioIOError as e:
        raise LabelError(f"cannot read mask file ({e})", path) from e


def read_masks_sample(path: str | Path, step: int) -> np.ndarray:
    """Every ``step``-th row and column of a masks file (:func:`write_masks`), starting at 0: uint8
    (C, ceil(H / step), ceil(W / step)), equal to ``read_masks(path)[0][:, ::step, ::step]`` but read a
    band of rows at a time, so memory follows the sample, not the scene."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                H, W = src.height, src.width
                out = np.empty((src.count, -(-H // step), -(-W // step)), np.uint8)
                for r0, r1, s0, s1 in sampled_row_bands(H, step):
                    out[:, s0:s1] = src.read(window=Window(0, r0, W, r1 - r0))[:, ::step, ::step]
    except rasterio.errors.RasterioIOError as e:
        raise LabelError(f"cannot read mask file ({e})", path) from e
    return out


def read_masks(path: str | Path) -> tuple[np.ndarray, Grid, ClassTable]:
    """Read masks written by :func:`write_masks`: (uint8 (C, H, W), grid, class table)."""
    return _read_masks(Path(path), with_data=True)


def read_masks_metadata(path: str | Path) -> tuple[Grid, ClassTable]:
    """The grid and class table of a masks file (:func:`write_masks`) without reading its pixels."""
    return _read_masks(Path(path), with_data=False)[1:]


def _read_masks(path: Path, with_data: bool) -> tuple[np.ndarray | None, Grid, ClassTable]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                masks = src.read() if with_data else None
                tags = src.tags()
                crs = src.crs.to_string() if src.crs else None
                grid = Grid(src.height, src.width, src.transform, crs)
    except rasterio.errors.RasterioIOError as e:
        raise LabelError(f"cannot read mask file ({e})", path) from e
    if "sattag_classes" not in tags:
        raise LabelError("not a sattag mask file (no sattag_classes tag)", path)
    classes = ClassTable.from_records(json.loads(tags["sattag_classes"]))
    return masks, grid, classes

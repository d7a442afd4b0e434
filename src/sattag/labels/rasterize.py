"""Class polygons -> uint8 class masks on a stack's grid, and masks to/from Cloud Optimized GeoTIFF."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize

from sattag._files import write_cog
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.errors import LabelError
from sattag.labels.readers import LabelWarning, labels_bounds
from sattag.labels.transform import bounds_overlap, grid_bounds
from sattag.scene import Grid


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
    unknown = set(polygons) - set(classes.ids)
    if unknown:
        raise LabelError(f"labels have class ids {sorted(unknown)} that are not in the class table",
                         source, scene_id)
    for i, cid in enumerate(classes.ids):
        geom = polygons.get(cid)
        if geom is not None and not geom.is_empty:
            # Burn into the mask's own memory (a C-contiguous (H, W) slice): no copy per class.
            rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, out=masks[i],
                      fill=0, all_touched=all_touched, dtype=np.uint8)
        if progress is not None:
            progress(1)
    return masks


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


def read_masks(path: str | Path) -> tuple[np.ndarray, Grid, ClassTable]:
    """Read masks written by :func:`write_masks`: (uint8 (C, H, W), grid, class table)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                masks = src.read()
                tags = src.tags()
                crs = src.crs.to_string() if src.crs else None
                grid = Grid(src.height, src.width, src.transform, crs)
    except rasterio.errors.RasterioIOError as e:
        raise LabelError(f"cannot read mask file ({e})", path) from e
    if "sattag_classes" not in tags:
        raise LabelError("not a sattag mask file (no sattag_classes tag)", path)
    classes = ClassTable.from_records(json.loads(tags["sattag_classes"]))
    return masks, grid, classes

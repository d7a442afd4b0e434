"""A scene's clusters in the run folder (writers and readers): ``clusters/<scene>.tif`` and ``.parquet``.

``clusters/<scene>.tif``: the cluster-id image, int32, one band on the scene's grid (transform, CRS),
value ``k`` = row ``k`` of the table; a Cloud Optimized GeoTIFF (512-px tiles, DEFLATE,
internal overviews of nearest-resampled ids: a viewer opens it at any zoom at once).

``clusters/<scene>.parquet``: the cluster table (:meth:`sattag.segment.ClusterTable.to_frame`), one row
per cluster: ``cluster`` (int32, 0..K-1), ``size`` (int64, pixels), ``row0``, ``col0``, ``row1``,
``col1`` (int32, bounding box, row1/col1 exclusive), ``mean_<band>`` (float32, mean value of each band
in stack order; ``mean_0``, ``mean_1``, ... when the band names are not known).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sattag._files import atomic_path, write_cog
from sattag.errors import InputError
from sattag.scene import Grid
from sattag.segment.cluster import ClusterTable

__all__ = ["CLUSTER_TABLE_COLUMNS", "read_cluster_ids", "read_cluster_table", "write_cluster_ids",
           "write_cluster_table"]

#: Columns of the cluster table before the ``mean_<band>`` columns, and their dtypes.
CLUSTER_TABLE_COLUMNS = {"cluster": "int32", "size": "int64", "row0": "int32", "col0": "int32",
                         "row1": "int32", "col1": "int32"}


def write_cluster_ids(path: str | Path, cluster_ids: np.ndarray, grid: Grid, *,
                      overview_resampling: str = "nearest") -> Path:
    """Write the cluster-id image (int32, 1 band) atomically as a Cloud Optimized GeoTIFF on ``grid``
    (:func:`sattag._files.write_cog`: 512-px tiles, DEFLATE with the horizontal predictor, internal
    overviews resampled with ``overview_resampling``; nearest keeps every overview pixel an id)."""
    if cluster_ids.shape != grid.shape:
        raise ValueError(f"write_cluster_ids: cluster ids of shape {cluster_ids.shape} do not fit "
                         f"the {grid.shape} grid")
    return write_cog(path, cluster_ids.astype(np.int32, copy=False), transform=grid.transform, crs=grid.crs,
                     compress="deflate", predictor=True, overview_resampling=overview_resampling)


def read_cluster_ids(path: str | Path) -> tuple[np.ndarray, Grid]:
    """Read a cluster-id image: (int32 (H, W), its grid). Raises :class:`InputError` naming the file
    when it cannot be read or is not one int32 band."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.count != 1 or src.dtypes[0] != "int32":
                    raise InputError(f"not a cluster-id image ({src.count} band(s) of {src.dtypes[0]}, "
                                     "not one int32 band)", path)
                ids = src.read(1)
                grid = Grid(src.height, src.width, src.transform, src.crs.to_string() if src.crs else None)
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"cannot read cluster-id image ({e})", path) from e
    return ids, grid


def write_cluster_table(path: str | Path, table: ClusterTable, bands: tuple[str, ...] | None = None) -> Path:
    """Write the cluster table (the module docstring's columns) atomically as parquet."""
    df = table.to_frame(bands)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_cluster_table(path: str | Path) -> pd.DataFrame:
    """Read a cluster table: the module docstring's columns with their dtypes. Raises
    :class:`InputError` naming the file when it cannot be read or lacks a column."""
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types; the message says what
        raise InputError(f"cannot read cluster table ({e})", path) from e
    means = [c for c in df.columns if str(c).startswith("mean_")]
    missing = [c for c in CLUSTER_TABLE_COLUMNS if c not in df.columns] + ([] if means else ["mean_<band>"])
    if missing:
        raise InputError(f"no column {', '.join(map(repr, missing))} in the cluster table", path)
    return df[list(CLUSTER_TABLE_COLUMNS) + means].astype({**CLUSTER_TABLE_COLUMNS, **{c: "float32" for c in means}})

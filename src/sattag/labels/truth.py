"""A scene's truth polygons in the run folder (``truth_polygons/<scene>.parquet``): writer and reader.

The labels stage reads the label source once per scene, clips it to the scene and keeps it here, so
that scoring, the report and the figures read one small file instead of the label source again.
GeoParquet (one row per class: ``class_id``, ``class``, ``geometry``), with the scene's CRS (none for
DSTL grid units).
"""
from __future__ import annotations

from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon

from sattag._files import atomic_path
from sattag.classes import ClassTable
from sattag.errors import LabelError
from sattag.labels.readers import polygonal_parts


def write_truth_polygons(path: str | Path, polygons: dict[int, object], classes: ClassTable,
                         crs: str | None = None) -> Path:
    """Write ``{class_id: (Multi)Polygon}`` (every class of ``classes``; missing = empty) atomically."""
    import geopandas as gpd

    path = Path(path)
    geoms = [polygons.get(cid) or MultiPolygon() for cid in classes.ids]
    frame = gpd.GeoDataFrame({"class_id": list(classes.ids), "class": list(classes.names)},
                             geometry=geoms, crs=crs)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def read_truth_polygons(path: str | Path, classes: ClassTable) -> dict[int, MultiPolygon]:
    """Read what :func:`write_truth_polygons` wrote: ``{class_id: MultiPolygon}`` for every class."""
    import geopandas as gpd

    path = Path(path)
    try:
        frame = gpd.read_parquet(path)
    except Exception as e:  # pyarrow/geopandas raise many types; the message says what
        raise LabelError(f"cannot read truth polygons ({e})", path) from e
    if "class_id" not in frame.columns:
        raise LabelError("not a sattag truth polygons file (no class_id column)", path)
    out = {cid: MultiPolygon() for cid in classes.ids}
    for cid, geom in zip(frame["class_id"].astype(int), frame.geometry.values):
        if cid not in out:
            raise LabelError(f"class {cid} is not in the class table (ids {list(classes.ids)})", path)
        if geom is not None and not shapely.is_empty(geom):
            out[cid] = MultiPolygon(polygonal_parts(geom))
    return out

"""Write polygons: GeoJSON per scene, the DSTL submission CSV, one GeoParquet over all scenes; and read
the GeoJSON and GeoParquet back (the submission CSV is read by ``sattag.evaluate.read_submission_csv``).

Every file is written to a temporary name and renamed (``sattag._files.atomic_path``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import shapely

from sattag._files import atomic_path
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.errors import InputError
from sattag.vectorize.polygons import as_multipolygon
from sattag.wkt_csv import read_wkt_rows, write_wkt_csv

__all__ = ["read_geojson_polygons", "read_geoparquet", "write_geojson", "write_submission_csv", "write_geoparquet",
           "wkt_precision"]


def _crs_name(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    auth = c.to_authority()
    return f"urn:ogc:def:crs:{auth[0]}::{auth[1]}" if auth else c.to_wkt()


def write_geojson(path: str | Path, scene_id: str, polygons: Mapping[int, object], classes: ClassTable,
                  crs=None) -> Path:
    """One FeatureCollection for one scene: a MultiPolygon feature per non-empty class.

    ``polygons``: ``{class_id: geometry}`` in scene coordinates. Properties: ``scene``, ``class_id``,
    ``class_name``. ``crs`` (EPSG/WKT string or None for DSTL grid units) is written as a GeoJSON-2008
    ``crs`` member, which GDAL reads; shells run counter-clockwise (RFC 7946).
    """
    # GEOS writes each geometry's GeoJSON text itself: parsing it back into Python dicts only to dump
    # them again took 10x longer than the rest of a scene's files (millions of coordinates). One
    # class's text at a time goes to the file.
    fc: dict = {"type": "FeatureCollection", "name": scene_id}
    name = _crs_name(crs)
    if name is not None:
        fc["crs"] = {"type": "name", "properties": {"name": name}}
    head = json.dumps(fc, separators=(",", ":"))[:-1]
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(head + ',"features":[')
            first = True
            for cls in classes:
                geom = as_multipolygon(polygons.get(cls.id))
                if geom.is_empty:
                    continue
                geom = shapely.orient_polygons(geom, exterior_cw=False)
                props = json.dumps({"scene": scene_id, "class_id": cls.id, "class_name": cls.name},
                                   separators=(",", ":"))
                f.write(("" if first else ",") + f'{{"type":"Feature","properties":{props},"geometry":')
                f.write(shapely.to_geojson(geom))
                f.write("}")
                first = False
            f.write("]}")
    return Path(path)


def read_geojson_polygons(path: str | Path, classes: ClassTable) -> dict[int, object]:
    """Read back a scene's polygons written by :func:`write_geojson`: ``{class_id: MultiPolygon}``
    for every class of ``classes`` (empty where the file has no feature of that class)."""
    try:
        with open(path) as f:
            fc = json.load(f)
        found = {int(feat["properties"]["class_id"]): as_multipolygon(shapely.from_geojson(json.dumps(feat["geometry"])))
                 for feat in fc["features"]}
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.GEOSException) as e:
        raise InputError(f"not a sattag polygons file: {e}", path) from e
    return {cls.id: found.get(cls.id, shapely.MultiPolygon()) for cls in classes}


def wkt_precision(geoms: Iterable, resolution: float = 1e-6) -> int:
    """Decimal places for WKT so that coordinates keep ``resolution`` of the data's extent.

    DSTL grid units (extent ~0.009, a pixel ~2.7e-6) get 9 decimals: ~1/300 of a pixel.
    """
    arr = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    if not len(arr):
        return 6
    b = shapely.bounds(arr)
    extent = float(np.nanmax(np.abs(b)))
    if not math.isfinite(extent) or extent == 0:
        return 6
    return max(0, int(math.ceil(-math.log10(extent * resolution))))


def write_submission_csv(path: str | Path, polygons: Mapping[tuple[str, int], object],
                         sample_submission: str | Path | None = None,
                         scene_ids: Iterable[str] | None = None, classes: ClassTable = DSTL_CLASSES,
                         precision: int | None = None, strict: bool = False) -> Path:
    """The DSTL submission CSV: ``ImageId,ClassType,MultipolygonWKT`` (:mod:`sattag.wkt_csv`), every
    scene x class row.

    ``polygons``: ``{(scene_id, class_id): geometry}`` in DSTL grid units. Rows: those of
    ``sample_submission`` in its order when given; else ``scene_ids`` (default: the scenes in
    ``polygons``, sorted) x ``classes``. Missing or empty geometries are ``MULTIPOLYGON EMPTY``.
    ``precision``: decimal places of the WKT (None: :func:`wkt_precision`, 9 for DSTL grid units).
    The rows define the file: polygons of other scenes (e.g. training scenes predicted for scoring,
    which DSTL's sample submission does not list) are left out, or raise :class:`InputError` when
    ``strict``.
    """
    if sample_submission is not None:
        rows = [(r.scene, r.class_type) for r in read_wkt_rows(sample_submission, error=InputError)]
    else:
        ids = sorted({s for s, _ in polygons}) if scene_ids is None else list(scene_ids)
        rows = [(s, c) for s in ids for c in classes.ids]
    listed = set(rows)
    extra = sorted({k for k in polygons if k not in listed and not as_multipolygon(polygons[k]).is_empty})
    if extra and strict:
        raise InputError(f"polygons for rows the submission does not list, e.g. scene {extra[0][0]} "
                         f"class {extra[0][1]} ({len(extra)} in all)", sample_submission or path,
                         extra[0][0])
    geoms = np.array([as_multipolygon(polygons.get(k)) for k in rows], dtype=object)
    if precision is None:
        precision = wkt_precision(geoms)
    wkts = shapely.to_wkt(geoms, rounding_precision=precision, trim=True) if len(geoms) else []
    return write_wkt_csv(path, ((s, c, t) for (s, c), t in zip(rows, wkts)))


def write_geoparquet(path: str | Path, records, crs=None, classes: ClassTable = DSTL_CLASSES) -> Path:
    """One GeoParquet dataset over all scenes: columns ``scene, class_id, class_name, geometry``.

    ``records``: ``{(scene_id, class_id): geometry}``, or an iterable of ``(scene_id, class_id,
    geometry)`` tuples or of dicts with keys ``scene``, ``class_id``, ``geometry``. Empty geometries
    are left out. ``crs``: the scene coordinates' CRS (EPSG/WKT string), or None for DSTL grid
    units (GeoParquet metadata then says ``"crs": null``: an engineering, unknown CRS, not CRS84).
    """
    import geopandas as gpd

    if isinstance(records, Mapping):
        items = [(s, c, g) for (s, c), g in records.items()]
    else:
        items = [(r["scene"], r["class_id"], r["geometry"]) if isinstance(r, Mapping) else tuple(r)
                 for r in records]
    rows = []
    for s, c, g in items:
        g = as_multipolygon(g)
        if g.is_empty:
            continue
        try:
            name = classes.by_id(int(c)).name
        except KeyError:
            raise InputError(f"class id {c} is not in the class table", path, str(s)) from None
        rows.append((str(s), int(c), name, g))
    gdf = gpd.GeoDataFrame(
        {"scene": [r[0] for r in rows], "class_id": np.array([r[1] for r in rows], np.int32),
         "class_name": [r[2] for r in rows]},
        geometry=[r[3] for r in rows], crs=crs)
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp, index=False, schema_version="1.0.0", write_covering_bbox=False)
    return Path(path)


def read_geoparquet(path: str | Path):
    """Read the GeoParquet of :func:`write_geoparquet`: a GeoDataFrame of ``scene`` (str), ``class_id``
    (int32), ``class_name`` (str) and ``geometry`` (MultiPolygon), with the CRS written (None for DSTL
    grid units). Raises :class:`InputError` naming the file when it cannot be read or lacks a column."""
    import geopandas as gpd

    try:
        gdf = gpd.read_parquet(path)
    except Exception as e:  # pyarrow/geopandas raise many types; the message says what
        raise InputError(f"cannot read polygons GeoParquet ({e})", path) from e
    missing = [c for c in ("scene", "class_id", "class_name") if c not in gdf.columns]
    if missing:
        raise InputError(f"no column {', '.join(map(repr, missing))} in the polygons GeoParquet", path)
    return gdf.astype({"scene": "str", "class_id": "int32", "class_name": "str"})

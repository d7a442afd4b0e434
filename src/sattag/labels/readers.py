"""Readers of vector labels: DSTL's WKT CSV and GeoJSON folders, and a user's own OGR vector files.

Every reader returns polygons per class id, ``{class_id: shapely (Multi)Polygon}``, in the scene's own
coordinates (DSTL grid units, or the CRS the caller asks for). Invalid geometries are repaired with
``shapely.make_valid`` (polygonal parts kept) and counted in a :class:`LabelReport`; empty ones are
skipped. Problems a user should see but that do not stop a run are :class:`LabelWarning` warnings;
faults that make the labels unusable are :class:`sattag.errors.LabelError`.
"""
from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.dstl import LAYER_CLASS
from sattag.errors import LabelError
from sattag.wkt_csv import read_wkt_rows

log = logging.getLogger("sattag.labels")

#: Name of DSTL's polygon CSV and GeoJSON folder inside a DSTL data folder.
WKT_CSV = "train_wkt_v4.csv"
GEOJSON_DIR = "train_geojson_v3"

#: DSTL GeoJSON layer file stem -> ClassType (``sattag.dstl``). Other layers are not scored.
DSTL_LAYERS: dict[str, int] = LAYER_CLASS


class LabelWarning(UserWarning):
    """Labels that are usable but probably not what the user meant (empty file, outside the raster)."""


@dataclass
class LabelReport:
    """What a reader met on its way: pass one to a reader to have it filled in.

    ``n_features``: geometries read; ``n_repaired``: invalid ones repaired by ``make_valid``;
    ``n_empty``: empty or null ones skipped (including repairs that left nothing polygonal);
    ``skipped_layers``: GeoJSON files not scored (unknown layer names, ``Grid*`` outlines).
    """

    files: list[Path] = field(default_factory=list)
    n_features: int = 0
    n_repaired: int = 0
    n_empty: int = 0
    skipped_layers: list[str] = field(default_factory=list)

    def merge(self, other: "LabelReport") -> "LabelReport":
        """Add ``other``'s counts to this report (in place) and return it."""
        self.files += other.files
        self.n_features += other.n_features
        self.n_repaired += other.n_repaired
        self.n_empty += other.n_empty
        self.skipped_layers += other.skipped_layers
        return self


# --------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------

def polygonal_parts(geom) -> list[Polygon]:
    """The non-empty polygons inside ``geom`` (Polygon, MultiPolygon or GeometryCollection)."""
    if geom is None or geom.is_empty:
        return []
    parts = shapely.get_parts(geom)
    out: list[Polygon] = []
    for p in parts:
        if isinstance(p, Polygon):
            if not p.is_empty:
                out.append(p)
        elif isinstance(p, MultiPolygon) or p.geom_type == "GeometryCollection":
            out.extend(polygonal_parts(p))
    return out


def _clean(geom, report: LabelReport) -> list[Polygon]:
    """Repair ``geom`` if invalid, keep its polygonal parts; count repairs and empties in ``report``."""
    report.n_features += 1
    if geom is None or geom.is_empty:
        report.n_empty += 1
        return []
    if not geom.is_valid:
        report.n_repaired += 1
        geom = shapely.make_valid(geom)
    parts = polygonal_parts(geom)
    if not parts:
        report.n_empty += 1
    return parts


def _merge(parts: list[Polygon], overlapping: bool) -> MultiPolygon:
    """One MultiPolygon from polygon parts; union them when they may overlap (so it stays valid)."""
    if not parts:
        return MultiPolygon()
    if overlapping and len(parts) > 1:
        merged = shapely.union_all(np.asarray(parts, dtype=object))
        return MultiPolygon(polygonal_parts(merged))
    return MultiPolygon(parts)


def _class_id(value, classes: ClassTable, path: Path, scene: str | None = None) -> int:
    """A class id from a class value: an id of ``classes`` or a class name (case-insensitive)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise LabelError("a feature has no class value", path, scene)
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
        cid = int(value)
        if cid in classes.ids:
            return cid
        raise LabelError(f"class {cid} is not in the class table (ids {list(classes.ids)})", path, scene)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return _class_id(int(text), classes, path, scene)
    for c in classes:
        if c.name.casefold() == text.casefold():
            return c.id
    raise LabelError(f"class {text!r} is not in the class table (names {list(classes.names)})", path, scene)


# --------------------------------------------------------------------------------------------------
# DSTL WKT CSV
# --------------------------------------------------------------------------------------------------

def read_wkt_csv(
    path: str | Path,
    classes: ClassTable = DSTL_CLASSES,
    scene_ids: Iterable[str] | None = None,
    report: LabelReport | None = None,
) -> dict[str, dict[int, MultiPolygon]]:
    """Read DSTL's ``train_wkt_v4.csv``: ``{ImageId: {ClassType: MultiPolygon}}`` in grid units.

    The format is :mod:`sattag.wkt_csv`'s; the policy here is the labels' own: an invalid polygon is
    repaired (counted in ``report``) and a class given in two rows is merged. ``scene_ids``: parse
    only these scenes' rows (the real file is ~140 MB of WKT, so one scene should not pay for all of
    them). Every class of ``classes`` appears for every scene read, empty when the CSV has no row for
    it. Raises :class:`LabelError` naming file, row and scene for a WKT that does not parse, a bad
    header, or a ClassType not in ``classes``.
    """
    path = Path(path)
    report = report if report is not None else LabelReport()
    report.files.append(path)
    out: dict[str, dict[int, MultiPolygon]] = {}
    for row in read_wkt_rows(path, error=LabelError, class_ids=classes.ids, scene_ids=scene_ids):
        try:
            geom = shapely.from_wkt(row.wkt)
        except Exception as e:  # shapely raises GEOSException with the parser's message
            raise LabelError(f"{row.where}: WKT does not parse ({e})", path, row.scene) from e
        per_scene = out.setdefault(row.scene, {})
        cid = row.class_type
        repaired_before = report.n_repaired
        parts = _clean(geom, report)
        # A valid WKT multipolygon can be taken as it is; pieces of a repair may share edges,
        # and a class given in two rows may overlap: those are unioned to stay valid.
        if cid in per_scene and not per_scene[cid].is_empty:
            parts = list(per_scene[cid].geoms) + parts
            per_scene[cid] = _merge(parts, overlapping=True)
        else:
            per_scene[cid] = _merge(parts, overlapping=report.n_repaired > repaired_before)
    for per_scene in out.values():
        for cid in classes.ids:
            per_scene.setdefault(cid, MultiPolygon())
    if report.n_repaired:
        log.info("%s: repaired %d invalid geometries", path, report.n_repaired)
    return out


# --------------------------------------------------------------------------------------------------
# DSTL GeoJSON folder
# --------------------------------------------------------------------------------------------------

def _read_geojson_features(path: Path, scene: str | None) -> list:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise LabelError(f"cannot read GeoJSON: {e.strerror}", path, scene) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabelError(f"not valid JSON ({e})", path, scene) from e
    if not isinstance(data, dict):
        raise LabelError("GeoJSON is not an object", path, scene)
    if data.get("type") == "FeatureCollection":
        feats = data.get("features") or []
    elif data.get("type") == "Feature":
        feats = [data]
    else:
        raise LabelError(f"GeoJSON type {data.get('type')!r} is not a FeatureCollection", path, scene)
    geoms = []
    for i, feat in enumerate(feats):
        g = feat.get("geometry") if isinstance(feat, dict) else None
        if g is None:
            geoms.append(None)
            continue
        try:
            geoms.append(shape(g))
        except Exception as e:
            raise LabelError(f"feature {i}: geometry does not parse ({e})", path, scene) from e
    return geoms


def read_geojson_folder(
    folder: str | Path,
    classes: ClassTable = DSTL_CLASSES,
    report: LabelReport | None = None,
    scene_id: str | None = None,
) -> dict[int, MultiPolygon]:
    """Read one scene's DSTL ``train_geojson_v3/<ImageId>/`` folder: ``{ClassType: MultiPolygon}``.

    The class of a layer comes from its file name (``DSTL_LAYERS``); ``Grid*`` outlines and layers
    that are not scored are skipped (listed in ``report.skipped_layers``). A layer file with no
    features gives a :class:`LabelWarning` naming it. Polygons of several layers of one class are
    unioned, so each class is one valid MultiPolygon; every class of ``classes`` is present.
    """
    folder = Path(folder)
    scene = scene_id or folder.name
    if not folder.is_dir():
        raise LabelError("GeoJSON label folder not found", folder, scene)
    report = report if report is not None else LabelReport()
    parts: dict[int, list[Polygon]] = {cid: [] for cid in classes.ids}
    n_layers: dict[int, int] = {cid: 0 for cid in classes.ids}
    for path in sorted(p for p in folder.glob("*.geojson") if not p.name.startswith(".")):
        stem = path.stem.upper()
        cid = DSTL_LAYERS.get(stem)
        if stem.startswith("GRID") or cid is None or cid not in parts:
            report.skipped_layers.append(path.name)
            continue
        report.files.append(path)
        geoms = _read_geojson_features(path, scene)
        if not geoms:
            warnings.warn(f"{path}: scene {scene}: GeoJSON layer has no features", LabelWarning, stacklevel=2)
            continue
        n_layers[cid] += 1
        for g in geoms:
            parts[cid].extend(_clean(g, report))
    if report.n_repaired:
        log.info("%s: repaired %d invalid geometries", folder, report.n_repaired)
    # Features within and across layers may overlap (a group of trees inside a woodland): union them.
    return {cid: _merge(p, overlapping=True) for cid, p in parts.items()}


# --------------------------------------------------------------------------------------------------
# A user's own vector file (any OGR format)
# --------------------------------------------------------------------------------------------------

def read_vector_labels(
    path: str | Path,
    class_column: str,
    crs: str | None,
    classes: ClassTable = DSTL_CLASSES,
    layer: str | int | None = None,
    report: LabelReport | None = None,
    scene_id: str | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> dict[int, MultiPolygon]:
    """Read a user's labels (GeoJSON, GeoPackage, Shapefile, GeoParquet, any OGR format), reprojected.

    ``class_column``: the column holding each feature's class, as a class id or a class name of
    ``classes``. ``crs``: the raster's CRS (anything pyproj accepts: ``"EPSG:32631"``, WKT); the labels
    are reprojected onto it. ``crs=None`` means the raster has no CRS (DSTL grid units): the labels
    are then taken as they are and must not claim a CRS either. Raises :class:`LabelError` (naming the
    file) for an unreadable file, a missing class column, an unknown class value, or a file without a
    CRS when one is needed; warns (:class:`LabelWarning`) for a file with no features.

    ``bounds``: (minx, miny, maxx, maxy) in ``crs`` (e.g. ``labels.grid_bounds(stack.grid)``): read
    only the features that intersect it, so one label file covering many scenes is not read whole
    for each scene (GDAL filters by bounding box; the file's own CRS is taken care of). A file with
    features but none inside ``bounds`` gives a :class:`LabelWarning` naming file and scene.
    """
    import geopandas as gpd

    path = Path(path)
    report = report if report is not None else LabelReport()
    report.files.append(path)
    if not path.exists():
        raise LabelError("label file not found", path, scene_id)
    parquet = path.suffix.lower() in (".parquet", ".geoparquet")
    kwargs = {"layer": layer} if layer is not None and not parquet else {}
    try:
        if parquet:
            gdf = gpd.read_parquet(path)
        elif bounds is not None and crs is not None:
            import pyogrio

            if pyogrio.read_info(path, **kwargs).get("crs") is None:
                raise LabelError(f"labels have no CRS, so they cannot be put onto the raster's CRS {crs}",
                                 path, scene_id)
            # A box in the raster's CRS; geopandas reprojects it into the file's CRS for GDAL's filter.
            box_geom = gpd.GeoSeries([shapely.box(*bounds)], crs=crs)
            gdf = gpd.read_file(path, engine="pyogrio", bbox=box_geom, **kwargs)
            if len(gdf) == 0 and len(gpd.read_file(path, engine="pyogrio", rows=1, **kwargs)):
                return _none_on_raster(path, scene_id, bounds, crs, classes)
        else:
            gdf = gpd.read_file(path, engine="pyogrio", **kwargs)
    except LabelError:
        raise
    except Exception as e:  # pyogrio/GDAL/pyarrow raise many types; the message is what matters
        raise LabelError(f"cannot read vector labels ({e})", path, scene_id) from e
    out: dict[int, list[Polygon]] = {cid: [] for cid in classes.ids}
    if len(gdf) == 0:
        warnings.warn(f"{path}: label file has no features", LabelWarning, stacklevel=2)
        return {cid: MultiPolygon() for cid in classes.ids}
    if class_column not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise LabelError(f"no class column {class_column!r} (columns: {cols})", path, scene_id)
    if crs is not None:
        if gdf.crs is None:
            raise LabelError(f"labels have no CRS, so they cannot be put onto the raster's CRS {crs}",
                             path, scene_id)
        gdf = gdf.to_crs(crs)
    elif gdf.crs is not None:
        raise LabelError(f"labels are in CRS {gdf.crs.to_string()} but the raster has none "
                         "(DSTL grid units): there is no way to put one onto the other", path, scene_id)
    if bounds is not None:
        # Box filter (also for GeoParquet and DSTL grid units, which GDAL's filter did not see); boxes,
        # not exact intersection, so invalid geometries (repaired below) cannot trip GEOS here.
        b = gdf.geometry.bounds.to_numpy()
        keep = (b[:, 0] <= bounds[2]) & (b[:, 2] >= bounds[0]) & (b[:, 1] <= bounds[3]) & (b[:, 3] >= bounds[1])
        gdf = gdf[keep]
        if len(gdf) == 0:
            return _none_on_raster(path, scene_id, bounds, crs, classes)
    # Resolve each distinct class value once (names or ids), then group geometries.
    values = gdf[class_column].tolist()
    ids = {}
    for v in values:
        key = v if not (isinstance(v, float) and np.isnan(v)) else None
        if key not in ids:
            ids[key] = _class_id(v, classes, path, scene_id)
    for v, geom in zip(values, gdf.geometry.values):
        key = v if not (isinstance(v, float) and np.isnan(v)) else None
        out[ids[key]].extend(_clean(geom, report))
    if report.n_repaired:
        log.info("%s: repaired %d invalid geometries", path, report.n_repaired)
    return {cid: _merge(p, overlapping=True) for cid, p in out.items()}


def _none_on_raster(path: Path, scene_id, bounds, crs, classes: ClassTable) -> dict[int, MultiPolygon]:
    warnings.warn(f"{path}: scene {scene_id}: no label feature lies on the raster (extent "
                  f"{tuple(round(v, 6) for v in bounds)} in {crs or 'scene units'}): wrong CRS or wrong scene?",
                  LabelWarning, stacklevel=3)
    return {cid: MultiPolygon() for cid in classes.ids}


# --------------------------------------------------------------------------------------------------
# A DSTL scene's labels
# --------------------------------------------------------------------------------------------------

def scene_labels(
    data_dir: str | Path,
    scene_id: str,
    classes: ClassTable = DSTL_CLASSES,
    report: LabelReport | None = None,
) -> dict[int, MultiPolygon] | None:
    """The labels of DSTL scene ``scene_id`` under ``data_dir``, or None when it has none.

    ``train_wkt_v4.csv`` is preferred (it is what the competition scored); the GeoJSON folder
    ``train_geojson_v3/<scene_id>/`` is the fallback.
    """
    data_dir = Path(data_dir)
    csv_path = data_dir / WKT_CSV
    if csv_path.is_file():
        found = read_wkt_csv(csv_path, classes, scene_ids=[scene_id], report=report)
        if scene_id in found:
            return found[scene_id]
    folder = data_dir / GEOJSON_DIR / scene_id
    if folder.is_dir():
        return read_geojson_folder(folder, classes, report=report, scene_id=scene_id)
    return None


def labelled_scene_ids(data_dir: str | Path) -> list[str]:
    """Ids of the DSTL scenes under ``data_dir`` that have labels (WKT CSV rows or a GeoJSON folder)."""
    data_dir = Path(data_dir)
    ids: set[str] = set()
    csv_path = data_dir / WKT_CSV
    if csv_path.is_file():
        ids.update(row.scene for row in read_wkt_rows(csv_path, error=LabelError))
    gj = data_dir / GEOJSON_DIR
    if gj.is_dir():
        ids.update(p.name for p in gj.iterdir() if p.is_dir())
    return sorted(ids)


def labels_bounds(polygons: Mapping[int, object]) -> tuple[float, float, float, float] | None:
    """(minx, miny, maxx, maxy) of all non-empty polygons, None when all are empty."""
    geoms = [g for g in polygons.values() if g is not None and not g.is_empty]
    if not geoms:
        return None
    b = np.array([g.bounds for g in geoms])
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

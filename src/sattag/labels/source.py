"""The label source of a run: where truth comes from, resolved once and used by every stage.

A run's truth is either a DSTL data folder (``train_wkt_v4.csv``, or ``train_geojson_v3/``) or a
user's vector file with a class column. The CLI resolves it once (:meth:`LabelSource.resolve`), the
run folder records it (``run.json``), and the stages that need truth -- class masks, sampling,
scoring, the report, ``sattag score`` -- all read it through :meth:`LabelSource.scene_polygons`.

Coverage: a scene is *labelled* when the source has labels for it: a DSTL scene with rows in the
WKT CSV (or a GeoJSON folder), or a scene of a user's rasters on which at least one label feature
lies. A scene the labels do not cover is not a training scene and is not scored (its pixels are
not "no class": nobody looked), unless ``absent_is_truth`` says so: then such a scene is labelled,
with every class empty.

Truth is clipped to the scene's extent, so a polygon that runs beyond the scene's edge counts only
the part on the scene (scoring would otherwise count the rest as missed).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shapely
from shapely.geometry import MultiPolygon

from sattag.classes import ClassTable
from sattag.errors import LabelError
from sattag.labels.readers import (
    GEOJSON_DIR,
    WKT_CSV,
    LabelWarning,
    polygonal_parts,
    read_vector_labels,
    scene_labels,
)
from sattag.labels.transform import grid_bounds
from sattag.scene import Grid

#: Truth polygons of one scene: ``{class_id: MultiPolygon}`` in the scene's own coordinates.
Polygons = dict[int, MultiPolygon]


@dataclass(frozen=True)
class LabelSource:
    """Where a run's truth comes from.

    ``kind``: ``"dstl"`` (``path`` is a DSTL data folder), ``"vector"`` (``path`` is an OGR vector
    file or GeoParquet, ``class_column`` names its class column) or ``"none"`` (no truth).
    ``absent_is_truth``: a scene the labels do not cover has none of the classes (and is labelled).
    Paths are absolute, so the source means the same on every Dask worker.
    """

    kind: Literal["dstl", "vector", "none"]
    path: Path | None = None
    class_column: str | None = None
    absent_is_truth: bool = False

    @classmethod
    def resolve(cls, data_dir: str | Path | None, labels: str | Path | None = None,
                class_column: str | None = None, absent_is_truth: bool = False) -> "LabelSource":
        """The label source of a run over ``data_dir``.

        ``labels`` (a vector file, with ``class_column``) wins over the data folder; else a DSTL folder
        with ``train_wkt_v4.csv`` or ``train_geojson_v3/`` is the source; else there is no truth.
        ``labels`` may also be a DSTL folder. Raises :class:`LabelError` naming the file for a label
        file that does not exist, a vector file without ``class_column``, or a ``class_column`` that
        the file does not have.
        """
        if labels is not None:
            path = Path(labels).expanduser().resolve()
            if path.is_dir():
                if not _is_dstl_folder(path):
                    raise LabelError(f"not a DSTL labels folder (no {WKT_CSV} or {GEOJSON_DIR}/)", path)
                return cls("dstl", path, None, absent_is_truth)
            if not path.exists():
                raise LabelError("label file not found", path)
            if not class_column:
                raise LabelError("a vector label file needs --class-column (the column holding the class)", path)
            _check_class_column(path, class_column)
            return cls("vector", path, class_column, absent_is_truth)
        if data_dir is not None and _is_dstl_folder(Path(data_dir)):
            return cls("dstl", Path(data_dir).expanduser().resolve(), None, absent_is_truth)
        return cls("none")

    @property
    def exists(self) -> bool:
        """Whether the run has any truth at all."""
        return self.kind != "none"

    def describe(self) -> str:
        """One line for people: ``"DSTL folder /data"`` or ``"labels.gpkg (column 'class')"``."""
        if self.kind == "dstl":
            return f"DSTL folder {self.path}"
        if self.kind == "vector":
            return f"{self.path} (class column {self.class_column!r})"
        return "no labels"

    def scene_polygons(self, scene_id: str, grid: Grid, classes: ClassTable) -> Polygons | None:
        """The truth of one scene, clipped to ``grid``'s extent; None when the labels do not cover it.

        ``grid``: the scene's reference grid (its stack's grid); polygons come back in its
        coordinates (DSTL grid units, or the rasters' CRS, reprojected from the label file's).
        """
        bounds = grid_bounds(grid)
        if self.kind == "none":
            polygons = None
        elif self.kind == "dstl":
            polygons = scene_labels(self.path, scene_id, classes)
        else:
            with warnings.catch_warnings():
                # "no feature on this raster" is coverage here, reported once per run by the engine.
                warnings.simplefilter("ignore", LabelWarning)
                polygons = read_vector_labels(self.path, self.class_column, grid.crs, classes,
                                              scene_id=scene_id, bounds=bounds)
        if polygons is not None:
            polygons = clip_to_bounds(polygons, bounds)
            # A vector file covers the scenes its features lie on; DSTL lists its labelled scenes.
            if self.kind == "vector" and all(g.is_empty for g in polygons.values()):
                polygons = None
        if polygons is None and self.absent_is_truth:
            return {cid: MultiPolygon() for cid in classes.ids}
        return polygons

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``run.json``)."""
        return {"kind": self.kind, "path": str(self.path) if self.path else None,
                "class_column": self.class_column, "absent_is_truth": self.absent_is_truth}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelSource":
        """The inverse of :meth:`to_dict`."""
        return cls(d["kind"], Path(d["path"]) if d.get("path") else None, d.get("class_column"),
                   bool(d.get("absent_is_truth", False)))


def clip_to_bounds(polygons: Polygons, bounds: tuple[float, float, float, float]) -> Polygons:
    """Each class's polygons cut to the box ``bounds`` = (minx, miny, maxx, maxy); valid MultiPolygons."""
    box = shapely.box(*bounds)
    out: Polygons = {}
    for cid, geom in polygons.items():
        if geom is None or geom.is_empty:
            out[cid] = MultiPolygon()
        elif box.contains(geom):
            out[cid] = geom if isinstance(geom, MultiPolygon) else MultiPolygon(polygonal_parts(geom))
        else:
            out[cid] = MultiPolygon(polygonal_parts(shapely.intersection(geom, box)))
    return out


def _is_dstl_folder(path: Path) -> bool:
    return (path / WKT_CSV).is_file() or (path / GEOJSON_DIR).is_dir()


def _check_class_column(path: Path, class_column: str) -> None:
    """Fail early, naming the file, when the label file has no column ``class_column``."""
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        import pyarrow.parquet as pq

        try:
            columns = pq.read_schema(path).names
        except Exception as e:  # pyarrow raises several types; the message says what
            raise LabelError(f"cannot read vector labels ({e})", path) from e
    else:
        import pyogrio

        try:
            columns = list(pyogrio.read_info(path)["fields"])
        except Exception as e:  # pyogrio/GDAL: DataSourceError and friends
            raise LabelError(f"cannot read vector labels ({e})", path) from e
    if class_column not in columns:
        raise LabelError(f"no class column {class_column!r} (columns: {list(columns)})", path)

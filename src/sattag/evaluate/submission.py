"""Read DSTL WKT CSVs (submissions and ``train_wkt_v4.csv``) strictly, and score one against another.

The format (header, ClassType, row numbers) is :mod:`sattag.wkt_csv`'s; the strict policy is this
module's: one row per scene and class, every WKT a (multi)polygon that parses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd
import shapely

from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.errors import InputError
from sattag.evaluate.jaccard import dstl_jaccard
from sattag.wkt_csv import read_wkt_rows

__all__ = ["read_submission_csv", "score_files"]


def _read_rows(path: Path, classes: ClassTable):
    """(geometries by key, first row number by scene), read strictly (the format: :mod:`sattag.wkt_csv`)."""
    out: dict[tuple[str, int], object] = {}
    first_row: dict[str, int] = {}
    for row in read_wkt_rows(path, error=InputError, class_ids=classes.ids, strict=True):
        scene, cid = row.scene, row.class_type
        if (scene, cid) in out:
            raise InputError(f"{row.where}: second row for class {cid}", path, scene)
        try:
            geom = shapely.from_wkt(row.wkt)
        except shapely.errors.GEOSException as e:
            raise InputError(f"{row.where}: unparsable WKT for class {cid}: {e}", path, scene) from None
        if geom is None or (not geom.is_empty and geom.geom_type not in ("Polygon", "MultiPolygon")):
            kind = "no geometry" if geom is None else geom.geom_type
            raise InputError(f"{row.where}: class {cid} holds {kind}, not a (multi)polygon", path, scene)
        out[(scene, cid)] = geom
        first_row.setdefault(scene, row.row)
    return out, first_row


def read_submission_csv(path: str | Path, classes: ClassTable = DSTL_CLASSES,
                        complete: bool = True) -> dict[tuple[str, int], object]:
    """Read a DSTL WKT CSV (``ImageId,ClassType,MultipolygonWKT``) to ``{(scene, class_id): geom}``.

    Geometries are as written (possibly invalid; scoring makes them valid). ``complete``: every
    scene in the file must have one row per class. Raises :class:`InputError` naming the file, the
    row (data row n is file line n+1) and the scene for a bad header, a bad ClassType, a duplicate,
    an unparsable WKT or (``complete``) a missing row.
    """
    path = Path(path)
    geoms, first_row = _read_rows(path, classes)
    if complete:
        for scene, n in first_row.items():
            lacking = [c for c in classes.ids if (scene, c) not in geoms]
            if lacking:
                raise InputError(f"row for class {lacking[0]} missing (scene first seen at row {n}; "
                                 f"classes lacking: {lacking})", path, scene)
    return geoms


def score_files(submission_csv: str | Path, truth_wkt_csv: str | Path, classes: ClassTable = DSTL_CLASSES,
                scene_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """DSTL Jaccard of a submission CSV against a truth WKT CSV (e.g. ``train_wkt_v4.csv``).

    Scored scenes: ``scene_ids``, or every scene of the submission. Each must have all its rows in
    the submission and be in the truth, else :class:`InputError` (file, row, scene). Returns the
    table of :func:`sattag.evaluate.jaccard.dstl_jaccard`.
    """
    submission_csv = Path(submission_csv)
    pred, first_row = _read_rows(submission_csv, classes)
    truth = read_submission_csv(truth_wkt_csv, classes)
    truth_scenes = {s for s, _ in truth}
    scenes = list(first_row) if scene_ids is None else list(dict.fromkeys(scene_ids))
    for s in scenes:
        if s not in first_row:
            raise InputError(f"no rows for scene {s} to score", submission_csv, s)
        lacking = [c for c in classes.ids if (s, c) not in pred]
        if lacking:
            raise InputError(f"row for class {lacking[0]} missing (scene first seen at row "
                             f"{first_row[s]}; classes lacking: {lacking})", submission_csv, s)
        if s not in truth_scenes:
            raise InputError(f"row {first_row[s]} (line {first_row[s] + 1}): scene is not in the truth "
                             f"file {truth_wkt_csv}", submission_csv, s)
    return dstl_jaccard(pred, truth, classes, scene_ids=scenes)

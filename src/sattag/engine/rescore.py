"""Scoring a finished run folder against truth, outside a whole run (``sattag score``)."""
from __future__ import annotations

from pathlib import Path

from sattag.classes import ClassTable
from sattag.engine.contracts import Predicted
from sattag.engine.records import read_run_json, recorded_classes
from sattag.errors import InputError
from sattag.labels.source import LabelSource
from sattag.runfolder import RunFolder


def run_classes(run: RunFolder) -> ClassTable:
    """The class table a run recorded in ``run.json`` (DSTL's when the run has none, or predates that record)."""
    return recorded_classes(read_run_json(run.run_json) if run.run_json.is_file() else {})


def load_predictions(run: RunFolder, classes: ClassTable) -> dict:
    """Polygons of every predicted scene (from ``polygons/*.geojson``): ``{(scene, class_id): geometry}``."""
    from sattag.vectorize import read_geojson_polygons

    folder = run.root / "polygons"
    # Hidden names are atomic_path's temporaries of an interrupted run, not predictions.
    files = sorted(p for p in folder.glob("*.geojson") if not p.name.startswith(".")) if folder.is_dir() else []
    polygons = {}
    for path in files:
        for cid, geom in read_geojson_polygons(path, classes).items():
            polygons[(path.stem, cid)] = geom
    return polygons


def score_run(run_dir: str | Path, source: LabelSource | None = None, classes: ClassTable | None = None):
    """Score the predictions in ``run_dir``; writes ``scores.csv`` and returns its table.

    ``source``: the truth to score against (a DSTL folder or a vector file + class column); None uses
    the run's own truth (``truth_polygons/``, ``truth_masks/``, written when the run read its label
    source). Truth is clipped to each predicted scene. Scenes the models trained on (their card) are
    scored *in-sample*, the others *held-out*. ``classes``: default the run's own (``run.json``).
    A run folder holding only a ``submission.csv`` (made elsewhere) is scored from that file against
    a DSTL folder's ``train_wkt_v4.csv``.
    """
    from sattag.engine.run import score_tables, trained_on
    from sattag.evaluate import pixel_counts, polygon_counts, write_scores
    from sattag.labels import rasterize_classes, read_masks, read_truth_polygons

    run = RunFolder(Path(run_dir).expanduser().resolve())
    classes = classes or run_classes(run)
    polygons = load_predictions(run, classes)
    if not polygons:
        if run.submission_csv.exists() and source is not None and source.kind == "dstl":
            from sattag.evaluate import score_files
            from sattag.wkt_csv import read_wkt_rows

            table = score_files(run.submission_csv, source.path / "train_wkt_v4.csv", classes)
            scenes = len({row.scene for row in read_wkt_rows(run.submission_csv)})
            write_scores(run.scores_csv, table.assign(split="unknown", kind="polygon", scenes=scenes))
            return table
        raise InputError("no predictions to score (no polygons/*.geojson"
                         + (", no submission.csv)" if not run.submission_csv.exists() else ")"), run.root)
    truth, pixel, polygon = {}, {}, {}
    for sid in sorted({s for s, _ in polygons}):
        masks_path = run.masks(sid)
        if source is None:
            if not run.truth_polygons(sid).exists():
                continue
            truth[sid] = read_truth_polygons(run.truth_polygons(sid), classes)
            truth_masks = read_masks(run.truth_masks(sid))[0] if run.truth_masks(sid).exists() else None
            pred_masks = read_masks(masks_path)[0] if masks_path.exists() and truth_masks is not None else None
        else:
            if not masks_path.exists():
                continue
            pred_masks, grid, _ = read_masks(masks_path)
            found = source.scene_polygons(sid, grid, classes)
            if found is None:
                continue
            truth[sid] = found
            truth_masks = rasterize_classes(found, grid, classes, source=source.path, scene_id=sid)
        if pred_masks is not None and truth_masks is not None:
            pixel[sid] = pixel_counts(pred_masks, truth_masks)
        polygon[sid] = polygon_counts({c: g for (s, c), g in polygons.items() if s == sid}, truth[sid], classes)
    if not truth:
        raise InputError("none of the predicted scenes has truth labels",
                         source.path if source is not None else run.root)
    table = score_tables(Predicted(polygons=polygons, pixel=pixel, polygon=polygon), trained_on(run), classes)
    write_scores(run.scores_csv, table)
    return table

"""Scoring a finished run folder against truth, outside a whole run (``sattag score``)."""
from __future__ import annotations

from pathlib import Path

from sattag.classes import ClassTable
from sattag.errors import InputError
from sattag.runfolder import RunFolder


def load_predictions(run: RunFolder, classes: ClassTable) -> dict:
    """Polygons of every predicted scene (from ``polygons/*.geojson``) and pixel counts where truth masks exist."""
    from sattag.evaluate import pixel_counts
    from sattag.labels import read_masks
    from sattag.vectorize import read_geojson_polygons

    folder = run.root / "polygons"
    # Hidden names are atomic_path's temporaries of an interrupted run, not predictions.
    files = sorted(p for p in folder.glob("*.geojson") if not p.name.startswith(".")) if folder.is_dir() else []
    polygons, pixel = {}, {}
    for path in files:
        sid = path.stem
        for cid, geom in read_geojson_polygons(path, classes).items():
            polygons[(sid, cid)] = geom
        if run.masks(sid).exists() and run.masks_true(sid).exists():
            pixel[sid] = pixel_counts(read_masks(run.masks(sid))[0], read_masks(run.masks_true(sid))[0])
    return {"polygons": polygons, "pixel": pixel}


def score_run(run_dir: str | Path, truth_dir: str | Path, classes: ClassTable):
    """Score the predictions in ``run_dir`` against the labels in ``truth_dir``; writes ``scores.csv``.

    Uses the run's per-scene GeoJSON polygons; a run folder holding only a ``submission.csv`` (a
    DSTL submission made elsewhere) is scored from that file.
    """
    from sattag.engine.run import Session, score

    run = RunFolder(Path(run_dir))
    predicted = load_predictions(run, classes)
    if not predicted["polygons"]:
        if run.submission_csv.exists():
            from sattag.evaluate import score_files

            table = score_files(run.submission_csv, Path(truth_dir) / "train_wkt_v4.csv", classes)
            from sattag._files import atomic_path

            with atomic_path(run.scores_csv) as tmp:
                table.to_csv(tmp, index=False)
            return table
        raise InputError("no predictions to score (no polygons/*.geojson, no submission.csv)", run.root)
    session = Session(data_dir=Path(truth_dir), run=run, classes=classes)
    table = score(session, predicted)
    if table is None:
        raise InputError("none of the predicted scenes has truth labels", truth_dir)
    return table

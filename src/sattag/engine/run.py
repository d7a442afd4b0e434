"""Whole runs: the stages composed over scenes, on Dask, resumable and fault-isolated.

Every stage function takes a :class:`Session` (where to run, what to report to) and returns
nothing big: outputs live in the run folder. A stage that finds a scene's outputs complete skips
the work, so the same command started again after an interruption redoes only unfinished scenes.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sattag import __version__
from sattag._files import atomic_path, sweep_temporaries, write_csv, write_text
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.config import Config
from sattag.errors import SattagError
from sattag.engine.cluster import open_client
from sattag.engine.progress import NULL_PROGRESS, Progress
from sattag.engine.scenes import Failure, StageResult, Timing, map_scenes, peak_rss_mib
from sattag.engine import tasks
from sattag.runfolder import RunFolder
from sattag.scene import Scene

HISTOGRAM_BINS = 256


@dataclass
class Session:
    """Where a run executes and what it has recorded so far.

    ``client``: a dask.distributed Client, or None to run every task here, one after another.
    """

    data_dir: Path
    run: RunFolder
    config: Config = field(default_factory=Config)
    classes: ClassTable = DSTL_CLASSES
    client: object | None = None
    progress: Progress = NULL_PROGRESS
    labels_file: Path | None = None
    class_column: str | None = None
    failures: list[Failure] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)

    def record(self, result: StageResult) -> StageResult:
        """Keep a stage's failures and timings, and write them out so far (atomically)."""
        self.failures.extend(result.failures)
        self.timings.extend(result.timings)
        self.write_records()
        return result

    def failed(self, scene_id: str) -> bool:
        return any(f.scene == scene_id for f in self.failures)

    def write_records(self) -> None:
        write_csv(self.run.failures_csv, ["scene", "stage", "error"],
                  [(f.scene, f.stage, f.error) for f in self.failures])
        write_csv(self.run.timings_csv, ["stage", "scene", "seconds", "peak_mib"],
                  [(t.stage, t.scene, f"{t.seconds:.3f}", f"{t.peak_mib:.0f}") for t in self.timings])

    def timed(self, stage: str):
        """Context manager recording a client-side step (training, scoring, report) in timings."""
        return _client_timing(self, stage)


@contextlib.contextmanager
def _client_timing(session: Session, stage: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    session.timings.append(Timing(stage, "*", time.perf_counter() - t0, peak_rss_mib()))
    session.write_records()


@contextlib.contextmanager
def open_session(data_dir: str | Path, out: str | Path, config: Config | None = None,
                 classes: ClassTable = DSTL_CLASSES, progress: Progress = NULL_PROGRESS,
                 local: bool = False, labels_file: str | Path | None = None,
                 class_column: str | None = None) -> Iterator[Session]:
    """Open a run: its folder, and a Dask client (``local=True``: no Dask, tasks run in-process)."""
    config = config or Config()
    run = RunFolder(Path(out))
    run.root.mkdir(parents=True, exist_ok=True)
    # A run killed mid-write leaves hidden temporaries; its finished files are whole, so only these go.
    sweep_temporaries(run.root)
    common = dict(data_dir=Path(data_dir), run=run, config=config, classes=classes, progress=progress,
                  labels_file=Path(labels_file) if labels_file else None, class_column=class_column)
    if local:
        yield Session(client=None, **common)
        return
    with open_client(config.engine) as client:
        yield Session(client=client, **common)


def select_scenes(data_dir: str | Path, scene_ids: Sequence[str] | None = None) -> list[Scene]:
    """The scenes of a data folder (DSTL layout or a user's ``scenes.csv``), optionally a subset."""
    from sattag.ingest import discover_scenes

    return discover_scenes(Path(data_dir), list(scene_ids) if scene_ids else None)


def _ok(session: Session, scenes: Sequence[Scene]) -> list[Scene]:
    return [s for s in scenes if not session.failed(s.id)]


# --------------------------------------------------------------------------------------- stages
def ingest(session: Session, scenes: Sequence[Scene]) -> StageResult:
    """Aligned stacks for every scene, plus ``offsets.csv``."""
    res = session.record(map_scenes(session.client, "ingest", tasks.ingest_task, scenes,
                                    str(session.run.root), session.config, progress=session.progress))
    rows = [r for sid in sorted(res.results) for r in res.results[sid]]
    write_csv(session.run.offsets_csv, ["scene", "group", "dx", "dy", "correlation"],
              [(s, g, f"{dx:.3f}", f"{dy:.3f}", f"{c:.4f}") for s, g, dx, dy, c in rows])
    return res


def explore(session: Session, scenes: Sequence[Scene], figure_scene: str | None = None) -> dict:
    """Class masks of the labelled scenes, per-class histograms summed over them, and the figures.

    Returns ``{"train_ids": [...], "counts": {scene: (C,2)}, "histograms": (C,B,bins)}``.
    """
    from sattag.viz.explore import write_explore_figures, write_histograms

    scenes = _ok(session, scenes)
    res = session.record(map_scenes(
        session.client, "labels", tasks.labels_task, scenes, str(session.data_dir), str(session.run.root),
        session.classes, HISTOGRAM_BINS, str(session.labels_file) if session.labels_file else None,
        session.class_column, progress=session.progress))
    labelled = {sid: r for sid, r in res.results.items() if r is not None}
    train_ids = sorted(labelled)
    out = {"train_ids": train_ids, "counts": {s: labelled[s]["counts"] for s in train_ids}, "histograms": None}
    if not train_ids:
        return out
    # Partial histograms add up: the same sum whatever worker computed each scene.
    hist = sum(labelled[s]["histograms"] for s in train_ids)
    bands = labelled[train_ids[0]]["bands"]
    out["histograms"] = hist
    background = sum(labelled[s]["background"] for s in train_ids)
    write_histograms(session.run.histograms, hist, bands, session.classes, background=background)
    with session.timed("explore"):
        write_explore_figures(session.run.figures / "explore", classes=session.classes,
                              thumbnails={s: labelled[s]["thumbnail"] for s in train_ids},
                              hist=hist, bands=bands, background=background)
    first = figure_scene if figure_scene in labelled else train_ids[0]
    scene = next(s for s in scenes if s.id == first)
    session.record(map_scenes(session.client, "figures", tasks.explore_figures_task, [scene],
                              str(session.run.root), str(session.data_dir), session.classes,
                              str(session.labels_file) if session.labels_file else None, session.class_column,
                              progress=session.progress))
    return out


def train(session: Session, scenes: Sequence[Scene], explored: dict) -> "object | None":
    """Balanced samples from the labelled scenes, one model per class, ``models/`` and ``auc.csv``.

    Skips training when ``models/card.json`` is already there (a resumed run).
    """
    from sattag.ingest import read_stack_metadata
    from sattag.learn import allocate_quotas, auc_table, concat_samples, train_models

    models_dir = session.run.models
    if (models_dir / "card.json").exists():
        return None
    train_ids = [s for s in explored["train_ids"] if not session.failed(s)]
    if not train_ids:
        raise SattagError("no labelled scene to train on", session.data_dir)
    quotas = allocate_quotas({s: explored["counts"][s] for s in train_ids}, session.config.sample)
    train_scenes = [s for s in scenes if s.id in quotas]
    res = session.record(map_scenes(session.client, "sample", tasks.sample_task, train_scenes,
                                    str(session.run.root), session.config.sample.seed, per_scene=quotas,
                                    progress=session.progress))
    samples = concat_samples([res.results[s] for s in sorted(res.results)])
    bands = read_stack_metadata(session.run.stack(train_ids[0])).bands
    with session.timed("train"):
        bar = session.progress.stage("train", len(session.classes))
        model_set = train_models(samples, bands, session.classes, session.config, client=session.client,
                                 progress=lambda n=1: bar.advance(n))
        bar.close()
        model_set.save(models_dir)
        with atomic_path(session.run.auc_csv) as tmp:
            auc_table(model_set).to_csv(tmp, index=False)
    return model_set


def predict(session: Session, scenes: Sequence[Scene], figure_scenes: int = 2) -> dict:
    """Clusters, probabilities, masks and polygons of every scene; the submission CSV and GeoParquet.

    Returns ``{"polygons": {(scene, class_id): geometry}, "pixel": {scene: counts}}``.
    """
    import shapely

    from sattag.vectorize import write_geoparquet, write_submission_csv

    models_dir = session.run.models
    if not (models_dir / "card.json").exists():
        raise SattagError("no trained models (card.json missing): run `sattag train` first", models_dir)
    scenes = _ok(session, scenes)
    with_figures = {s.id for s in scenes[:figure_scenes]}
    res = session.record(map_scenes(
        session.client, "predict", tasks.predict_task, scenes, str(session.run.root), session.config,
        session.classes, per_scene={s.id: s.id in with_figures for s in scenes}, progress=session.progress))
    polygons = {(sid, cid): shapely.from_wkb(wkb)
                for sid in sorted(res.results) for cid, wkb in res.results[sid]["polygons"].items()}
    pixel = {sid: r["pixel"] for sid, r in res.results.items() if r["pixel"] is not None}
    with session.timed("write"):
        sample = session.data_dir / "sample_submission.csv"
        if sample.exists():
            # The DSTL submission holds the rows of sample_submission.csv (the test scenes) in its
            # order; the writer leaves other scenes (training-only) out: they are in the GeoJSON
            # and GeoParquet.
            write_submission_csv(session.run.submission_csv, polygons, sample_submission=sample,
                                 classes=session.classes)
        else:
            write_submission_csv(session.run.submission_csv, polygons, scene_ids=sorted(res.results),
                                 classes=session.classes)
        crs = _scene_crs(session, sorted(res.results))
        write_geoparquet(session.run.polygons_parquet, polygons, crs=crs, classes=session.classes)
    return {"polygons": polygons, "pixel": pixel}


def _scene_crs(session: Session, scene_ids: Sequence[str]) -> str | None:
    from sattag.ingest import read_stack_metadata

    for sid in scene_ids:
        return read_stack_metadata(session.run.stack(sid)).grid.crs
    return None


def score(session: Session, predicted: dict) -> "object | None":
    """DSTL Jaccard (polygons) and pixel Jaccard of the scenes that have truth; ``scores.csv``."""
    import pandas as pd

    from sattag.evaluate import dstl_jaccard, score_table
    from sattag.labels import scene_labels

    truth = {}
    for (sid, _cid) in predicted["polygons"]:
        if any(k[0] == sid for k in truth):
            continue
        labels = scene_labels(session.data_dir, sid, session.classes)
        if labels is not None:
            for cid in session.classes.ids:
                truth[(sid, cid)] = labels.get(cid)
    if not truth:
        return None
    with session.timed("score"):
        scored = {sid for sid, _ in truth}
        pred = {k: v for k, v in predicted["polygons"].items() if k[0] in scored}
        poly = dstl_jaccard(pred, truth, session.classes).assign(kind="polygon")
        tables = [poly]
        if predicted["pixel"]:
            # Pixel counts add up over scenes, then the ratio: the same rule as the DSTL metric.
            inter = sum(np.asarray(c[0], np.int64) for c in predicted["pixel"].values())
            union = sum(np.asarray(c[1], np.int64) for c in predicted["pixel"].values())
            tables.append(score_table(session.classes, inter, union).assign(kind="pixel"))
        table = pd.concat(tables, ignore_index=True)
        with atomic_path(session.run.scores_csv) as tmp:
            table.to_csv(tmp, index=False)
    return table


def report(session: Session) -> Path:
    """``report.html``: one self-contained page of the run."""
    from sattag.viz.report import write_report

    with session.timed("report"):
        return write_report(session.run.root, session.classes)


def write_run_json(session: Session, scenes: Sequence[Scene], started: str) -> None:
    """The run describes itself: configuration, versions, scenes, start and end."""
    write_text(session.run.run_json, json.dumps({
        "config": session.config.to_dict(),
        "versions": versions(),
        "scenes": [s.id for s in scenes],
        "data": str(session.data_dir),
        "started": started,
        "finished": now(),
    }, indent=2, default=str))


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of sattag and the libraries whose behaviour shapes a run's results."""
    import importlib.metadata as md

    out = {"sattag": __version__, "python": platform.python_version()}
    for name in ("numpy", "rasterio", "shapely", "geopandas", "opencv-python-headless", "numba", "xgboost",
                 "dask", "distributed"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    try:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    except Exception:
        pass
    return out


def run_all(session: Session, scenes: Sequence[Scene]) -> dict:
    """ingest -> explore -> train -> predict (+ vectorize) -> score (when truth exists) -> report."""
    started = now()
    write_run_json(session, scenes, started)
    ingest(session, scenes)
    explored = explore(session, scenes)
    if explored["train_ids"] or (session.run.models / "card.json").exists():
        train(session, scenes, explored)
    predicted = predict(session, scenes)
    scores = score(session, predicted)
    write_run_json(session, scenes, started)
    report(session)
    return {"explored": explored, "predicted": predicted, "scores": scores}

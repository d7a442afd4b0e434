"""The ordered table of a run's stages: the names ``timings.csv``, ``failures.csv``, the progress
bars and the README use, what each does, and whether it runs per scene, per tile or per part of a
scene (Dask tasks on the workers) or once on the client.

A stage name that is not in :data:`STAGES` is refused where a stage is run or timed
(:func:`stage_named`), so the table cannot drift from the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Stage:
    """One stage: ``name`` (as recorded), ``per`` ("scene": one task per scene on the workers;
    "tile": one task per tile, or part, of a scene too large to predict, or stack, whole; "part":
    one task per part of such a scene's assembly (a table, an image, a class's polygons); "run":
    once, on the client) and ``what`` it does, in a few words."""

    name: str
    per: Literal["scene", "tile", "part", "run"]
    what: str


#: Every stage, in the order a ``sattag run`` goes through them (some run only at one model level,
#: with threshold tuning, or with held-out scenes).
STAGES: tuple[Stage, ...] = (
    Stage("ingest", "scene", "read the band files, to float, resample, align, cache the stack; offsets"),
    Stage("ingest offsets", "scene", "a scene too large to stack whole: its offsets fitted and bit depths checked"),
    Stage("ingest parts", "tile", "one strip of rows of such a scene's stack, rendered and written to a file of its own"),
    Stage("ingest join", "scene", "such a scene's stack: a VRT over its parts; reference bit depth, band percentiles"),
    Stage("labels", "scene", "truth of a labelled scene: clipped polygons, class masks, histograms, thumbnail"),
    Stage("explore", "run", "exploration figures: thumbnails, per-class histograms"),
    Stage("figures", "scene", "one scene's band images and mask overlays"),
    Stage("cluster rows", "scene", "cluster a training scene, each cluster's object features and class shares"),
    Stage("cluster rows held-out", "scene", "the same for a held-out scene (held-out AUC only)"),
    Stage("sample", "scene", "a training scene's share of the balanced pixel samples (pixel models)"),
    Stage("train (for thresholds)", "run", "per fold, models without the fold's scenes, to choose thresholds"),
    Stage("sample validation", "scene", "a validation scene's pixel sample (pixel models' thresholds)"),
    Stage("tune thresholds", "run", "each class's threshold for the best Jaccard over all folds' validation scenes"),
    Stage("train", "run", "one model per class on all training scenes"),
    Stage("train pairs", "run", "one pairwise model per configured pair of classes"),
    Stage("sample held-out", "scene", "a held-out scene's pixel sample (pixel models' held-out AUC)"),
    Stage("held-out AUC", "run", "each model's AUC on the held-out scenes"),
    Stage("predict", "scene", "cluster, predict, pairwise models and rules, masks, polygons"),
    Stage("spread", "scene", "a scene too large to predict whole: its bands' spread, from a strided read"),
    Stage("predict tiles", "tile", "cluster, features, predict and rules on one tile (with its halo)"),
    Stage("stitch", "run", "join clusters cut by tile edges, one decision per joined cluster"),
    Stage("paint tiles", "tile", "a tile's masks, cluster ids and polygons with the joined decisions"),
    Stage("join seams", "part", "a dense class's seam pieces unioned, one band of tile rows per task, before its polygons"),
    Stage("assemble parts", "part", "a tiled scene's masks, cluster image, tables, each class's polygons "
                                    "(seams unioned): side by side"),
    Stage("assemble", "scene", "a tiled scene's GeoJSON from its classes' polygons, its scores gathered"),
    Stage("write", "run", "submission CSV and GeoParquet over all scenes"),
    Stage("score", "run", "Jaccard per class, held-out apart from in-sample"),
    Stage("report", "run", "report.html"),
)

_BY_NAME = {s.name: s for s in STAGES}


def stage_named(name: str) -> Stage:
    """The stage called ``name``; ``ValueError`` naming the known stages when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no stage {name!r}; the stages are: {', '.join(_BY_NAME)}") from None


def stage_priority(name: str) -> int:
    """The Dask priority of the stage ``name``'s tasks: higher for earlier stages of :data:`STAGES`.

    Stages chained per scene run side by side; a worker with several tasks ready runs the earlier
    stage's first, so that a short task (a scene's labels) that a later one waits on never queues
    behind a long one (another scene's predict) and leaves a worker idle."""
    return len(STAGES) - STAGES.index(stage_named(name))

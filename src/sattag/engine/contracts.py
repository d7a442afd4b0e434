"""What the engine hands to its tasks and what its stages give back, as typed dataclasses.

A task runs on a worker with one :class:`RunContext` (the run folder, its configuration, class table
and label source: everything a run decides once) instead of a list of positional arguments, and
returns one small result (pixel counts, histograms, cluster rows, polygons as WKB), never a scene's
pixels: those stay in the run folder. The stage functions of :mod:`sattag.engine.run` gather the
results of all scenes into :class:`Explored` and :class:`Predicted`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from sattag.classes import ClassTable
from sattag.config import Config
from sattag.labels.source import LabelSource
from sattag.runfolder import RunFolder


@dataclass(frozen=True)
class RunContext:
    """One run's fixed facts, sent with every task: where its files go (``run``), how it runs
    (``config``), what it tags (``classes``) and where its truth comes from (``labels``; a source
    that does not exist when the data has no labels). Every field pickles small: paths, not pixels."""

    run: RunFolder
    config: Config
    classes: ClassTable
    labels: LabelSource


# ------------------------------------------------------------------------------------- per scene
@dataclass(frozen=True)
class SceneTruth:
    """A labelled scene's truth, summarised by the ``labels`` task (its masks and polygons are in the
    run folder).

    ``counts`` int64 (C, 2): pixels inside / outside each class (class-table order); ``histograms``
    int64 (C, B, bins): per-class band histograms; ``background`` int64 (B, bins): the histograms of
    all the scene's pixels; ``thumbnail`` float32 (3, h, w): its display bands, subsampled
    (:func:`sattag.ingest.scene_thumbnail`); ``bands``: the stack's band names.
    """

    counts: np.ndarray
    histograms: np.ndarray
    background: np.ndarray
    thumbnail: np.ndarray
    bands: tuple[str, ...]


@dataclass(frozen=True)
class ClusterRows:
    """A labelled scene's clusters as rows of object-level models (the ``cluster rows`` task).

    ``rows`` float32 (K, F): the object features of its K clusters. The task writes them to the run
    folder (``object_rows/<scene>.npy``) and returns that path here; the engine then holds them
    memory-mapped (:func:`sattag.features.objects.read_object_rows`), so that only the rows a model
    draws are read (a full-size scene's rows under 3 lights weigh ~260 MB). ``shares`` float32 (K, C):
    the share of each cluster inside each class (class-table order); ``sizes`` int64 (K,): pixels;
    ``centres`` float32 (K, 2): the centre (row, col) of each cluster's bounding box, scene px (a
    single training scene is split in strips by them to tune thresholds on). A training scene's
    clusters come once as recorded and then once per other light (``[model] relit_copies``): K is
    then that many times the number of clusters, the copies one after the other.
    """

    rows: Any
    shares: np.ndarray
    sizes: np.ndarray
    centres: np.ndarray

    def take(self, keep: np.ndarray) -> "ClusterRows":
        """The clusters ``keep`` (a boolean (K,) or an index array) of these rows, read into memory."""
        return ClusterRows(rows=self.rows[keep], shares=self.shares[keep], sizes=self.sizes[keep],
                           centres=self.centres[keep])

    def recorded(self, lights: int) -> "ClusterRows":
        """A training scene's clusters as recorded: the first of the ``lights`` copies (1 + ``[model]
        relit_copies``) of its rows, read into memory."""
        n = len(self.sizes)
        if n % lights:
            raise ValueError(f"{n} cluster rows are not {lights} copies of a scene's clusters")
        return self.take(np.arange(n // lights))


def join_cluster_rows(parts: Sequence[ClusterRows]) -> ClusterRows:
    """Several scenes' :class:`ClusterRows` as one, in the order given; the rows are not copied
    (:class:`sattag.learn.sample.TakenRows` of each part's rows)."""
    from sattag.learn.sample import TakenRows

    return ClusterRows(rows=TakenRows.all_of([p.rows for p in parts]), shares=np.concatenate([p.shares for p in parts]),
                       sizes=np.concatenate([p.sizes for p in parts]), centres=np.concatenate([p.centres for p in parts]))


@dataclass(frozen=True)
class ScenePrediction:
    """What the ``predict`` task returns of a scene (masks and polygons are written in the run folder).

    ``polygons``: class id -> (Multi)Polygon as WKB bytes (small to send, exact); ``pixel``: the
    scene's per-class pixel intersections and unions with its truth masks, two int64 (C,) arrays;
    ``polygon``: the same for its polygons and truth polygons, areas as two float64 (C,) arrays
    (the overlay runs on the worker: :func:`sattag.evaluate.polygon_counts`). Both None when the
    scene has no truth.
    """

    polygons: dict[int, bytes]
    pixel: tuple[np.ndarray, np.ndarray] | None = None
    polygon: tuple[np.ndarray, np.ndarray] | None = None


# ---------------------------------------------------------------------------------------- per run
@dataclass
class Explored:
    """The ``explore`` stage over all scenes: which are ``labelled`` (the label source covers them)
    and which ``unlabelled`` (scene ids, sorted), each labelled scene's pixel ``counts`` (C, 2), and
    the per-class band ``histograms`` (C, B, bins) summed over the labelled scenes (None without any)."""

    labelled: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    histograms: np.ndarray | None = None


@dataclass
class Predicted:
    """The ``predict`` stage over all scenes: ``polygons`` (scene id, class id) -> shapely geometry;
    for the scenes with truth, ``pixel`` and ``polygon`` scene id -> (intersections, unions) per
    class, pixel counts and polygon areas (:class:`ScenePrediction`)."""

    polygons: dict[tuple[str, int], Any] = field(default_factory=dict)
    pixel: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    polygon: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class RunResult:
    """A whole run (:func:`sattag.engine.run.run_all`): its exploration, predictions and score table
    (a pandas DataFrame, or None when no predicted scene has truth)."""

    explored: Explored
    predicted: Predicted
    scores: Any = None

"""Every default of the pipeline, written once, as frozen dataclasses.

A run's configuration is a :class:`Config`; a TOML file given with ``--config FILE`` overrides any
field by section, e.g.::

    [model]
    n_trees = 200
    [cluster]
    tolerance = 0.05

The run folder keeps the configuration it used (``run.json``), so a run describes itself.

Validation. :func:`config_from_dict` (TOML files, ``run.json``, model cards) and
:meth:`Config.replace` check every field against its type hint (``typing.get_type_hints``, read
generically: ``Literal`` values, int, float, bool, str, ``X | None``, ``dict[K, V]``,
``tuple[T, ...]`` and nested dataclasses such as the rules) and against the range declared once in
the field's metadata (``field(metadata=within("(0, 1]"))``); a fault is a one-line
:class:`~sattag.errors.ConfigError` naming the file, the section and the field, e.g.
``run.toml: [model] distributed: must be one of 'classes', 'rows', got 'cols'``.

Rules name classes (``OverlapRule("Vehicle Large", "Standing water")``). Whether the classes a rule
names exist depends on the class table, so that is checked when the table is known, by
:func:`rules_for` / :func:`thresholds_for` (or :func:`check_classes`, to fail before any work).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sattag.dstl import BIT_DEPTH
from sattag.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from sattag.classes import ClassTable, ObjectClass

#: Band order of a DSTL stack: the RGB file, then P, M and A.
DSTL_BANDS: tuple[str, ...] = (
    ("R", "G", "B", "P") + tuple(f"M{i}" for i in range(1, 9)) + tuple(f"A{i}" for i in range(1, 9))
)


# ------------------------------------------------------------------------------------ ranges
@dataclass(frozen=True)
class Interval:
    """A range of numbers, e.g. ``Interval.parse("(0, 1]")``; ``inf`` for an open end."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    @classmethod
    def parse(cls, spec: str) -> "Interval":
        m = re.fullmatch(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*", spec)
        if m is None:
            raise ValueError(f"not an interval like '(0, 1]': {spec!r}")
        return cls(float(m.group(2)), float(m.group(3)), m.group(1) == "(", m.group(4) == ")")

    def __contains__(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def __str__(self) -> str:
        def num(v: float) -> str:
            return f"{v:g}"

        if math.isinf(self.hi):
            return f"{'>' if self.lo_open else '>='} {num(self.lo)}"
        return (f"in {'(' if self.lo_open else '['}{num(self.lo)}, {num(self.hi)}"
                f"{')' if self.hi_open else ']'}")


def within(spec: str, **meta: Any) -> dict[str, Any]:
    """Field metadata declaring the allowed range of a number (of each value, for a dict field)."""
    return {"range": Interval.parse(spec), **meta}


#: Metadata of a rule field that names a class of the class table.
_CLASS_NAME = {"what": "a class name"}


@dataclass(frozen=True)
class IngestConfig:
    """Reading, float conversion, resampling and alignment of band files.

    ``bit_depths`` per DSTL band group: a band is divided by ``2**bits - 1`` to reach [0, 1].
    Shifts and limits are in pixels of the reference (finest) grid.
    """

    bit_depths: dict[str, int] = field(default_factory=lambda: dict(BIT_DEPTH),
                                       metadata=within("[1, 32]"))
    # GDAL's warp resampling names (rasterio.enums.Resampling).
    resampling: Literal["nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss",
                        "max", "min", "med", "q1", "q3", "sum", "rms"] = "cubic_spline"
    align: bool = True
    # The real A files sit up to ~51 R px off; leave headroom but refuse absurd fits.
    max_shift_px: float = field(default=80.0, metadata=within("[0, inf)"))
    # An ECC correlation below this means the fit did not find the same structures.
    min_correlation: float = field(default=0.5, metadata=within("[-1, 1]"))
    # Offsets across a scene: a group image at least this many of its own pixels a side (three 512-px
    # fit windows side by side) also has its offset fitted on a 3x3 grid of windows; the largest
    # distance from the centre's offset is offsets.csv's spread_px. inf: never. Full-size DSTL: only P.
    grid_min_px: float = field(default=1536, metadata=within("[0, inf]"))
    # A spread above this (reference px) gives an AlignmentWarning naming scene, group and spread.
    spread_warn_px: float = field(default=0.2, metadata=within("[0, inf)"))
    ecc_iterations: int = field(default=200, metadata=within("[1, inf)"))
    ecc_epsilon: float = field(default=1e-6, metadata=within("(0, inf)"))
    # Values above 2**bits - 1 by more than this share of pixels mean the bit depth is wrong.
    max_out_of_range_share: float = field(default=0.001, metadata=within("[0, 1]"))
    # The alignment's polish (a Gauss-Newton fit after ECC) runs for groups whose pixel spans at least
    # polish_min_scale reference px: there ECC's 1/32-pixel warp tables are > 0.1 reference px and a
    # linear band mix is off by several hundredths of a pixel (A: ~25 px); P and M fit to ~0.02 px
    # without it and would pay ~0.4 s each for nothing. inf turns it off.
    polish_min_scale: float = field(default=8.0, metadata=within("[1, inf]"))
    # Spectral classes of the polish model, and the grid it is built on (reference px per cell).
    polish_classes: int = field(default=8, metadata=within("[1, 64]"))
    polish_cell_px: int = field(default=4, metadata=within("[1, 64]"))
    # Threads GDAL may use to (de)compress and warp, per process (a worker holds one core by default).
    gdal_threads: int = field(default=2, metadata=within("[1, 256]"))
    # The stack is built and written in windows of tile_px x tile_px reference px (rounded down to
    # the file's 512-px blocks from 512 up, so each window writes whole blocks): memory follows the
    # window, not the scene (~130 bytes a window pixel with 20 bands: the float32 bands, GDAL's cache
    # of uint16 blocks, the groups' source windows). 2048: ~0.5 GiB, and a full-size DSTL scene
    # (~3400 px) is 4 windows; smaller windows cost time (a fixed cost per window and group; stripped
    # band files are decoded once per column of windows). Under 64 px the halos each window reads
    # around itself would outweigh it.
    tile_px: int = field(default=2048, metadata=within("[64, inf)"))
    # A group's offset is fitted on a central window of at most this many reference px a side (and
    # at most 512 of the group's own px, never under 40), reading only that window plus 1.5
    # max_shift_px around it: the fit's memory (4 bytes a reference px per candidate band, 8 for A)
    # does not grow with the scene (2048: ~0.3 GiB at most). M and P keep their 512 px; A gets 82 of
    # its 136 px on a full-size DSTL scene: on 4 full-size generated scenes A came out 0.05-0.14 px
    # off (mean 0.095), fitted on all 136 px 0.05-0.14 (mean 0.116).
    align_window_px: int = field(default=2048, metadata=within("[64, inf)"))


@dataclass(frozen=True)
class SampleConfig:
    """Balanced pixel samples per class: ``n_in`` inside, ``n_out`` outside, split for validation."""

    n_in: int = field(default=200_000, metadata=within("[1, inf)"))
    n_out: int = field(default=200_000, metadata=within("[1, inf)"))
    validation_fraction: float = field(default=0.1, metadata=within("[0, 1)"))
    seed: int = field(default=0, metadata=within("[0, inf)"))


@dataclass(frozen=True)
class FeaturesConfig:
    """What the models see of each pixel (``sattag.features``).

    ``set``: ``"spectra"`` (the band values alone, the seed's models) or ``"context"`` (bands, spectral
    indices where the bands exist, and local statistics over windows of ``scales`` pixels).
    """

    set: Literal["spectra", "context"] = "context"
    scales: tuple[int, ...] = field(default=(5, 15, 45), metadata=within("[1, 1001]"))


@dataclass(frozen=True)
class ClassPair:
    """Two classes, by name, that one-vs-all models confuse: a pairwise model is trained on the
    pixels of ``first`` against those of ``second`` and decides between them wherever both
    one-vs-all models fire. ``reason`` says why, in words; it is written into reports."""

    first: str = field(metadata=_CLASS_NAME)
    second: str = field(metadata=_CLASS_NAME)
    reason: str = ""

    def describe(self) -> str:
        """Short, for messages: ``'Road' vs 'Track'``."""
        return f"{self.first!r} vs {self.second!r}"


#: DSTL's pairs: those the seed names as one-vs-one remedies, and buildings against other structures
#: (the pair a pixel's spectrum tells apart least on generated scenes).
DSTL_PAIRS: tuple[ClassPair, ...] = (
    ClassPair("Road", "Track", "a paved road and a dirt track look alike from above"),
    ClassPair("Vehicle Large", "Vehicle Small", "the same materials; size and context tell them apart"),
    ClassPair("Waterway", "Standing water", "the same water; shape and context tell them apart"),
    ClassPair("Buildings", "Misc. manmade structures", "the same roofing materials"),
)


#: Histogram bins of the models when ``[model] max_bin`` is not set (see :class:`ModelConfig`).
PIXEL_MAX_BIN = 256
CLUSTER_MAX_BIN = 64


@dataclass(frozen=True)
class ModelConfig:
    """One-vs-all XGBoost models, one per class, and pairwise models for the ``pairs``.

    ``pairs`` name classes; the DSTL default is used only with a class table that has every class it
    names (like the rules of ``[predict]``); set ``pairs = []`` for none.
    """

    n_trees: int = field(default=100, metadata=within("[1, inf)"))
    max_depth: int = field(default=15, metadata=within("[1, inf)"))
    learning_rate: float = field(default=0.3, metadata=within("(0, 1]"))
    tree_method: Literal["hist", "approx", "exact", "auto"] = "hist"
    device: str = "cpu"
    seed: int = field(default=0, metadata=within("[0, inf)"))
    # On a Dask cluster: "classes" trains each class whole on one worker, classes spread over the
    # workers (the same models for any number of workers); "rows" trains each class across all
    # workers with xgboost.dask, for samples too large for one worker's memory.
    distributed: Literal["classes", "rows"] = "classes"
    pairs: tuple[ClassPair, ...] = DSTL_PAIRS
    # What a model learns from and predicts: "pixel" (balanced pixel samples; a cluster's probability
    # is the mean over its pixels) or "cluster" (one row per spectral cluster: its features' mean and
    # spread, shape and contrast to its neighbours, ``sattag.features.objects``; the target is whether
    # at least half of it lies in the class). "cluster" has the higher mean held-out Jaccard over the
    # quality benchmark's 5 data sets (0.423 against 0.416) and a 3x cheaper run; "pixel" wins 3 of
    # the 5 (README, quality benchmark, NOW table).
    level: Literal["pixel", "cluster"] = "cluster"
    # Cluster models: each training scene's clusters are also rows under this many other lights
    # (illumination, band calibration and haze drawn per scene, ``sattag.learn.relight``), so that
    # the models learn the objects rather than the training scenes' light. 0: none. On the quality
    # benchmark's 6 held-out data sets 2 copies raised the sum of held-out Jaccard from 2.392 to
    # 2.458, the generated data most; 6 copies (with random trees, below) from 2.478 to 2.515, mean of
    # model seeds (README). Costs disk where the object rows are kept and time in ``cluster rows``.
    relit_copies: int = field(default=6, metadata=within("[0, 16]"))
    # Histogram bins per feature (XGBoost's ``max_bin``); unset: by level, 256 (XGBoost's default) for
    # pixel models, 64 for cluster models, whose features are means over many pixels, so coarser
    # bins lose little: 64 trained them 2.5x faster, with held-out Jaccard as good (README).
    max_bin: int | None = field(default=None, metadata=within("[2, inf)"))
    # Randomness in each tree, as in a random forest: every tree learns from ``rows_per_tree`` of the
    # training rows (XGBoost's ``subsample``) and every split chooses among ``features_per_split`` of
    # the columns (``colsample_bynode``). A few training scenes hold few objects, and deep trees that
    # see all of them and every column learn those objects; on the quality benchmark's 6 held-out data
    # sets 0.8 and 0.5 raised the sum of held-out Jaccard from 2.467 to 2.478, mean of model seeds,
    # within the seeds' spread (README). 1.0 and 1.0: the seed's trees.
    rows_per_tree: float = field(default=0.8, metadata=within("(0, 1]"))
    features_per_split: float = field(default=0.5, metadata=within("(0, 1]"))

    def bins(self, level: str) -> int:
        """The histogram bins of models at ``level`` ("pixel" or "cluster")."""
        if self.max_bin is not None:
            return self.max_bin
        return (CLUSTER_MAX_BIN if level == "cluster" else PIXEL_MAX_BIN)


@dataclass(frozen=True)
class ClusterConfig:
    """Spectral clustering of adjacent pixels.

    ``tolerance`` is a share of each band's [0, 1] range (``tolerance_of = "range"``, the seed's rule)
    or of the band's robust spread in the scene (``"spread"``: 1st to 99th percentile), so imagery
    that fills a small part of its bit depth is not clustered far too coarsely; clusters under
    ``min_size`` pixels are merged into the adjacent cluster of closest mean spectrum.
    """

    tolerance: float = field(default=0.03, metadata=within("(0, 1]"))
    min_size: int = field(default=50, metadata=within("[1, inf)"))
    # "spread" measured better on held-out scenes (README, quality benchmark): panchromatic roads
    # 0.14/0.18 -> 0.28/0.31 Jaccard, generated data +0.004, glaciers within 0.006.
    tolerance_of: Literal["range", "spread"] = "spread"
    # How small clusters are merged: "sequential" (the seed's) merges one after another, each merge
    # moving a mean that the next ones compare against, so one changed pixel re-draws clusters far
    # away (16-30 % of a generated scene's pixels, measured); "simultaneous" merges every small
    # cluster of a pass at once by the pass's starting means, so a change stays local and a scene
    # cut into tiles clusters as it does whole, away from the seams. With today's features and
    # object models both tag held-out scenes alike (sum over the 6 quality runs 2.463 simultaneous,
    # 2.458 sequential, README), so the default is the one whose tiles agree with the whole scene.
    merge: Literal["sequential", "simultaneous"] = "simultaneous"


@dataclass(frozen=True)
class OverlapRule:
    """A rule about two classes predicted at the same place (or side by side), by class name.

    When ``target`` and ``other`` are both predicted for a cluster (``scope="cluster"``), or ``other``
    is predicted for a neighbouring cluster (``scope="neighbours"``), ``target`` is dropped from the
    cluster. ``reason`` says why, in words; it is written into reports.
    """

    target: str = field(metadata=_CLASS_NAME)
    other: str = field(metadata=_CLASS_NAME)
    scope: Literal["cluster", "neighbours"] = "cluster"
    reason: str = ""

    def describe(self) -> str:
        """Short, for messages: ``drop 'Trees' where 'Road'`` (``... beside 'Road'`` for neighbours)."""
        return f"drop {self.target!r} {'where' if self.scope == 'cluster' else 'beside'} {self.other!r}"


@dataclass(frozen=True)
class SizeRule:
    """A class (by name) is dropped from clusters smaller than ``min_px`` or larger than ``max_px`` pixels.

    ``scope="group"`` (default) measures the connected group of adjacent clusters that all have the
    class (a field is many clusters at a 3 % tolerance); ``scope="cluster"`` the cluster alone.
    """

    target: str = field(metadata=_CLASS_NAME)
    min_px: int | None = field(default=None, metadata=within("[0, inf)"))
    max_px: int | None = field(default=None, metadata=within("[0, inf)"))
    reason: str = ""
    scope: Literal["group", "cluster"] = "group"

    def describe(self) -> str:
        """Short, for messages: ``drop 'Crops' from groups < 2000 px``."""
        parts = ([f"< {self.min_px} px"] if self.min_px is not None else []) + \
                ([f"> {self.max_px} px"] if self.max_px is not None else [])
        what = "clusters" if self.scope == "cluster" else "groups"
        return f"drop {self.target!r} from {what} {' or '.join(parts) or '(no bound)'}"


#: DSTL's overlap rules, by DSTL class name (``sattag.classes.DSTL_CLASSES``).
DSTL_OVERLAP_RULES: tuple[OverlapRule, ...] = (
    OverlapRule("Vehicle Large", "Standing water", "cluster", "a large vehicle can't sit in standing water"),
    OverlapRule("Vehicle Small", "Standing water", "cluster", "a small vehicle can't sit in standing water"),
    OverlapRule("Vehicle Large", "Waterway", "cluster", "a large vehicle can't sit in a waterway"),
    OverlapRule("Vehicle Small", "Waterway", "cluster", "a small vehicle can't sit in a waterway"),
    OverlapRule("Trees", "Road", "cluster", "a tree on a road is unlikely: the road wins"),
    OverlapRule("Crops", "Buildings", "cluster", "a building is not a crop field"),
    OverlapRule("Standing water", "Waterway", "cluster", "flowing water is a waterway, not standing water"),
)

#: DSTL's size rules; pixel counts at DSTL's ~0.3 m RGB pixel (scale them for other resolutions).
DSTL_SIZE_RULES: tuple[SizeRule, ...] = (
    SizeRule("Crops", min_px=2000, reason="a crop field is larger than a few pixels"),
    SizeRule("Vehicle Small", max_px=1500, reason="a small vehicle is not thousands of pixels"),
    SizeRule("Vehicle Large", max_px=6000, reason="a large vehicle is not tens of thousands of pixels"),
)

#: Every class the DSTL rules name: the default rules apply to a class table that has all of them.
DSTL_RULE_CLASSES: frozenset[str] = frozenset(
    [r.target for r in DSTL_SIZE_RULES] + [n for r in DSTL_OVERLAP_RULES for n in (r.target, r.other)])


@dataclass(frozen=True)
class PredictConfig:
    """Per-cluster prediction: probability thresholds per class and the overlap and size rules.

    ``thresholds`` maps a class name (or a class id: an integer, or an integer-looking TOML key) to
    its threshold, overriding ``threshold``. The rules name classes. The defaults are DSTL's rules
    (:data:`DSTL_OVERLAP_RULES`, :data:`DSTL_SIZE_RULES`): a rule table *equal to* the DSTL one is
    applied only when the class table has every class the DSTL rules name, and is otherwise left
    out, silently (a user's own class table gets no DSTL rule). Any other rule table is the user's:
    each class it names must be in the class table, or :func:`rules_for` raises ``ConfigError``.
    """

    threshold: float = field(default=0.5, metadata=within("[0, 1]"))
    thresholds: dict[int | str, float] = field(default_factory=dict, metadata=within("[0, 1]"))
    # Each class's threshold tuned for the best Jaccard on validation scenes when the models are
    # trained (recorded in their card); ``thresholds`` given here still win.
    tune_thresholds: bool = True
    # A cluster's probability: the mean of the models' probabilities on up to this many of its pixels
    # (spread evenly over it); 0: the models applied once to the cluster's mean features (the seed's
    # way: cheaper, but trees see a mean that no training pixel had, and mixed clusters go astray).
    pixels_per_cluster: int = field(default=16, metadata=within("[0, 10000]"))
    overlap_rules: tuple[OverlapRule, ...] = DSTL_OVERLAP_RULES
    size_rules: tuple[SizeRule, ...] = DSTL_SIZE_RULES
    # A scene wider or taller than this is predicted in tiles of tile_px x tile_px px, each a task
    # of its own (with the context its features need around it); clusters cut by a tile edge are
    # joined again and polygons unioned across seams. Memory per task follows the tile, not the
    # scene. A DSTL scene (~3350 px) fits in one tile and is predicted whole, as before.
    tile_px: int = field(default=4096, metadata=within("[64, inf)"))

    def threshold_for(self, cls: "ObjectClass | int | str") -> float:
        """The threshold of a class: by its name, else its id, else ``threshold``.

        Give the :class:`~sattag.classes.ObjectClass` (both keys are looked up); a bare id or name
        finds only thresholds keyed that way.
        """
        keys = (cls.name, cls.id) if hasattr(cls, "name") else (cls,)
        for k in keys:
            if k in self.thresholds:
                return float(self.thresholds[k])
        return self.threshold


@dataclass(frozen=True)
class VectorizeConfig:
    """Masks to polygons: simplify tolerance and smallest polygon kept, both in pixels."""

    simplify_px: float = field(default=1.0, metadata=within("[0, inf)"))
    min_area_px: float = field(default=4.0, metadata=within("[0, inf)"))
    # Masks wider or taller than this are vectorized in tile_px x tile_px tiles and the seams unioned
    # (bounds the 4 bytes/px working grid; a full DSTL scene, ~3400 px, fits in one tile).
    tile_px: int = field(default=4096, metadata=within("[1, inf)"))


@dataclass(frozen=True)
class SplitConfig:
    """Which labelled scenes train and which are held out to measure quality on unseen scenes.

    ``holdout``: share of the labelled scenes held out; None means ``default_holdout`` when there
    are at least ``min_scenes`` labelled scenes, else none. ``holdout_scenes`` names them instead.
    ``auc_pixels``: pixels in and out of each class drawn from the held-out scenes for their AUC.
    """

    holdout: float | None = field(default=None, metadata=within("[0, 1)"))
    holdout_scenes: tuple[str, ...] = ()
    default_holdout: float = field(default=0.2, metadata=within("(0, 1)"))
    min_scenes: int = field(default=4, metadata=within("[2, inf)"))
    auc_pixels: int = field(default=50_000, metadata=within("[1, inf)"))
    # Thresholds are tuned on the training scenes in folds by scene: a first model set per fold
    # trains without that fold's scenes and predicts them; the folds' counts are added up, so every
    # training scene validates once (at most as many folds as training scenes). 1: a single split,
    # ``validation`` of the training scenes (at least one) left out. The final models then train on
    # all of them. Why folds: one validation scene holds too few objects of a rare class (README).
    tuning_folds: int = field(default=2, metadata=within("[1, inf)"))
    # With one training scene there is no other scene to validate on. True: object-level models tune
    # their thresholds on ``tuning_folds`` strips of it (each strip's clusters validate models trained
    # on the others); False: they stay at 0.5. On by default since the features have the relative
    # brightness: on the real kits, held out, it then raised both glaciers and both roads
    # (0.673 -> 0.733, 0.600 -> 0.623; 0.376 -> 0.377, 0.336 -> 0.339) (README).
    tune_on_strips: bool = True
    validation: float = field(default=0.25, metadata=within("[0, 1)"))
    # Pixels in and out of each class the first (threshold-choosing) models train on: a quarter of
    # the final models' sample costs a quarter of their training time and moves the chosen
    # thresholds by about a grid step.
    tuning_pixels: int = field(default=50_000, metadata=within("[1, inf)"))
    seed: int = 0


@dataclass(frozen=True)
class FiguresConfig:
    """What the exploration figures and the report show."""

    histogram_bins: int = field(default=256, metadata=within("[2, 65536]"))
    # Scenes (the first ones of a run) whose cluster images are drawn; each costs ~1 s.
    cluster_figure_scenes: int = field(default=2, metadata=within("[0, inf)"))


@dataclass(frozen=True)
class EngineConfig:
    """Where the work runs: an embedded LocalCluster (default) or an existing scheduler."""

    scheduler: str | None = None
    workers: int | None = field(default=None, metadata=within("[0, inf)"))  # None: one per core; 0: no Dask
    threads_per_worker: int = field(default=1, metadata=within("[1, inf)"))
    memory_limit: str = "4GiB"
    # Seconds a run waits with unfinished work and no worker connected to the scheduler before it
    # stops (ClusterLostError): long enough for a nanny to restart a killed worker, or for a worker
    # to join a scheduler started just before the run.
    no_workers_timeout: float = field(default=60.0, metadata=within("(0, inf)"))


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    vectorize: VectorizeConfig = field(default_factory=VectorizeConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def replace(self, section: str, **changes: Any) -> "Config":
        """A copy with fields of one section changed, e.g. ``cfg.replace("model", n_trees=10)``.

        The changes are validated like a configuration file's (``ConfigError`` naming the field).
        """
        return dataclasses.replace(self, **{section: _section(self, section, changes, None)})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of every field."""
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------ validation
class _Invalid(Exception):
    """A value that does not fit its field: ``where`` (``"thresholds key 'x'"``) and the fault."""

    def __init__(self, where: str, fault: str):
        super().__init__(where, fault)
        self.where, self.fault = where, fault


def _config_error(fault: str, path: str | Path | None) -> ConfigError:
    return ConfigError(fault if path is not None else f"configuration: {fault}", path)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def _admits(hint: Any, t: type) -> bool:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return t in args


def _check(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    """``value`` checked against type ``hint`` and ``meta`` (range), normalised; raises :class:`_Invalid`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        alts = [a for a in args if a is not type(None)]
        faults = []
        for alt in alts:
            try:
                return _check(value, alt, meta, where)
            except _Invalid as e:
                if len(alts) == 1 or e.where != where:
                    raise
                faults.append(e.fault.removeprefix("must be ").split(", got")[0])
        raise _Invalid(where, f"must be {' or '.join(faults)}, got {_show(value)}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Invalid(where, f"must be one of {', '.join(map(repr, args))}, got {_show(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid(where, f"must be true or false, got {_show(value)}")
    if hint is int or hint is float:
        ok = isinstance(value, numbers.Integral) if hint is int else isinstance(value, numbers.Real)
        if not ok or isinstance(value, bool):
            raise _Invalid(where, f"must be {'an integer' if hint is int else 'a number'}, got {_show(value)}")
        value = hint(value)
        rng = meta.get("range")
        if rng is not None and (math.isnan(value) or value not in rng):
            raise _Invalid(where, f"must be {rng}, got {value:g}")
        return value
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Invalid(where, f"must be {meta.get('what', 'text')} (a string), got {_show(value)}")
    if origin is dict:
        khint, vhint = args
        if not isinstance(value, Mapping):
            raise _Invalid(where, f"must be a table, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and _admits(khint, int) and _INT_TEXT.fullmatch(k):
                k = int(k)  # TOML and JSON keys are text: an integer-looking one is an integer
            k = _check(k, khint, {}, f"{where} key {k!r}")
            out[k] = _check(v, vhint, meta, f"{where}[{k!r}]")
        return out
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise _Invalid(where, f"must be a list, got {_show(value)}")
        return tuple(_check(v, args[0], meta, f"{where} #{i}") for i, v in enumerate(value, start=1))
    if dataclasses.is_dataclass(hint):
        return _check_dataclass(value, hint, where)
    raise TypeError(f"config validation does not know the type {hint!r} (at {where})")


def _check_dataclass(value: Any, cls: type, where: str) -> Any:
    """A dataclass from a table (or a dataclass instance re-checked), every field checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if isinstance(value, cls):
        values = {name: getattr(value, name) for name in fields}
    elif isinstance(value, Mapping):
        values = dict(value)
    else:
        raise _Invalid(where, f"must be a table of {', '.join(fields)}, got {_show(value)}")
    unknown = [str(k) for k in values if k not in fields]
    if unknown:
        raise _Invalid(where, f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise _Invalid(where, f"missing field(s) {', '.join(missing)}")
    hints = _hints(cls)
    sep = " " if where else ""
    checked = {n: _check(v, hints[n], fields[n].metadata, f"{where}{sep}{n}") for n, v in values.items()}
    return cls(**checked)


def _section(cfg: Config, section: str, values: Mapping[str, Any], path: str | Path | None):
    """``cfg``'s section ``section`` with ``values`` checked and applied."""
    current = getattr(cfg, section, None) if section in _hints(Config) else None
    if current is None:
        raise _config_error(f"unknown config section [{section}]; the sections are "
                            f"{', '.join(f.name for f in dataclasses.fields(Config))}", path)
    fields = {f.name: f for f in dataclasses.fields(current)}
    unknown = [str(k) for k in values if k not in fields]
    if unknown:
        raise _config_error(f"unknown field(s) in [{section}]: {', '.join(sorted(unknown))}", path)
    hints = _hints(type(current))
    try:
        checked = {k: _check(v, hints[k], fields[k].metadata, k) for k, v in values.items()}
    except _Invalid as e:
        raise _config_error(f"[{section}] {e.where}: {e.fault}", path) from None
    return dataclasses.replace(current, **checked)


def config_from_dict(data: Mapping[str, Any], path: str | Path | None = None) -> Config:
    """Build a :class:`Config` from nested dicts (a parsed TOML file or ``run.json``).

    Every field is checked against its type and range; a fault is a one-line ``ConfigError`` naming
    ``path`` (or "configuration"), the section and the field.
    """
    if not isinstance(data, Mapping):
        raise _config_error(f"a configuration is a table of sections, got {_show(data)}", path)
    cfg = Config()
    for section, values in data.items():
        if not isinstance(values, Mapping):
            if section in _hints(Config):
                raise _config_error(f"[{section}] must be a table of fields, got {_show(values)}", path)
            raise _config_error(f"unknown config section [{section}]", path)
        cfg = dataclasses.replace(cfg, **{section: _section(cfg, section, values, path)})
    return cfg


def load_config(path: str | Path | None) -> Config:
    """The defaults, overridden by the TOML file at ``path`` when given."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config: {e.strerror}", path) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", path) from e
    return config_from_dict(data, path)


# ------------------------------------------------------------------------- rules against the class table
@dataclass(frozen=True)
class BoundRule:
    """A rule with its class names resolved against a class table.

    ``target_id`` / ``other_id`` are the class ids (``other_id`` is None for a size rule); both are
    None when the rule is not applied (a DSTL default rule on a class table without the DSTL classes).
    """

    rule: OverlapRule | SizeRule
    target_id: int | None
    other_id: int | None = None

    @property
    def skipped(self) -> bool:
        return self.target_id is None


def _is_dstl_table(classes: "ClassTable") -> bool:
    return DSTL_RULE_CLASSES <= set(classes.names)


def rules_for(config: PredictConfig, classes: "ClassTable", path: str | Path | None = None,
              ) -> tuple[BoundRule, ...]:
    """The size rules, then the overlap rules, of ``config``, each in table order, bound to ``classes``.

    A rule table equal to DSTL's default is bound when ``classes`` has every class the DSTL rules
    name, and otherwise comes back with every rule skipped (no error). Any other rule naming a class
    that is not in ``classes`` raises a one-line ``ConfigError`` naming ``path`` (or
    "configuration"), the rule and the class.
    """
    ids = {c.name: c.id for c in classes}
    dstl = _is_dstl_table(classes)
    out: list[BoundRule] = []
    for rules, default in ((config.size_rules, DSTL_SIZE_RULES), (config.overlap_rules, DSTL_OVERLAP_RULES)):
        if tuple(rules) == default and not dstl:
            out.extend(BoundRule(r, None) for r in rules)
            continue
        for r in rules:
            where = f"[predict] rule {r.describe()}"
            r = _checked(r, type(r), where, path)
            target = _class_id(r.target, ids, classes, where, path)
            other = None if isinstance(r, SizeRule) else _class_id(r.other, ids, classes, where, path)
            out.append(BoundRule(r, target, other))
    return tuple(out)


def _checked(entry: Any, cls: type, where: str, path: str | Path | None) -> Any:
    """A rule or pair built in code (not through :func:`config_from_dict`) checked as a file's
    entry would be; a one-line ``ConfigError`` starting with ``where`` when it does not fit."""
    try:
        return _check_dataclass(entry, cls, "")
    except _Invalid as e:
        raise _config_error(f"{where}: {e.where}: {e.fault}", path) from None


def _class_id(name: str, ids: Mapping[str, int], classes: "ClassTable", where: str, path: str | Path | None) -> int:
    """The id of the class called ``name``; a one-line ``ConfigError`` starting with ``where``
    and listing the table's classes when there is none."""
    if name not in ids:
        raise _config_error(f"{where}: class {name!r} is not in the class table ({', '.join(classes.names)})", path)
    return ids[name]


def pairs_for(config: ModelConfig, classes: "ClassTable", path: str | Path | None = None,
              ) -> tuple[tuple[int, int], ...]:
    """The ``(first id, second id)`` of each pair of ``config.pairs`` (:class:`ClassPair`), bound to ``classes``.

    The DSTL default gives ``()`` for a class table without every class it names; any other pair
    naming a class that is not in ``classes``, or a class paired with itself, raises a one-line
    ``ConfigError`` naming ``path`` (or "configuration"), the pair and the class.
    """
    ids = {c.name: c.id for c in classes}
    if tuple(config.pairs) == DSTL_PAIRS and not {n for p in DSTL_PAIRS for n in (p.first, p.second)} <= set(ids):
        return ()
    out: list[tuple[int, int]] = []
    for p in config.pairs:
        where = f"[model] pair {p.describe()}"
        p = _checked(p, ClassPair, where, path)
        first, second = _class_id(p.first, ids, classes, where, path), _class_id(p.second, ids, classes, where, path)
        if first == second:
            raise _config_error(f"{where}: a class cannot be paired with itself", path)
        out.append((first, second))
    return tuple(out)


def thresholds_for(config: PredictConfig, classes: "ClassTable", path: str | Path | None = None) -> "np.ndarray":
    """float32 (C,): the threshold of each class of ``classes``, in table order.

    A key of ``config.thresholds`` that is neither a class name nor a class id of ``classes``, or a
    class given both by name and by id, raises a one-line ``ConfigError``.
    """
    import numpy as np

    names, ids = set(classes.names), set(classes.ids)
    for k in config.thresholds:
        if isinstance(k, str) and k not in names:
            raise _config_error(f"[predict] thresholds: class {k!r} is not in the class table "
                                f"({', '.join(classes.names)})", path)
        if isinstance(k, int) and k not in ids:
            raise _config_error(f"[predict] thresholds: class id {k} is not in the class table "
                                f"(ids {', '.join(map(str, classes.ids))})", path)
    for c in classes:
        if c.name in config.thresholds and c.id in config.thresholds:
            raise _config_error(f"[predict] thresholds: class {c.name!r} is given twice, by name and as id {c.id}",
                                path)
    return np.array([config.threshold_for(c) for c in classes], dtype=np.float32)


def check_classes(config: Config, classes: "ClassTable", path: str | Path | None = None) -> None:
    """Raise ``ConfigError`` when the pairs, prediction rules or thresholds name a class ``classes`` lacks.

    Call it once the configuration and the class table are both known (``path``: the config file),
    so that such a fault stops the run before any scene is processed.
    """
    pairs_for(config.model, classes, path)
    rules_for(config.predict, classes, path)
    thresholds_for(config.predict, classes, path)

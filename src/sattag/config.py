"""Every default of the pipeline, written once, as frozen dataclasses.

A run's configuration is a :class:`Config`; a TOML file given with ``--config FILE`` overrides any
field by section, e.g.::

    [model]
    n_trees = 200
    [cluster]
    tolerance = 0.05

The run folder keeps the configuration it used (``run.json``), so a run describes itself.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sattag.errors import ConfigError

#: Band order of a DSTL stack: the RGB file, then P, M and A.
DSTL_BANDS: tuple[str, ...] = (
    ("R", "G", "B", "P") + tuple(f"M{i}" for i in range(1, 9)) + tuple(f"A{i}" for i in range(1, 9))
)


@dataclass(frozen=True)
class IngestConfig:
    """Reading, float conversion, resampling and alignment of band files.

    ``bit_depths`` per DSTL band group: a band is divided by ``2**bits - 1`` to reach [0, 1].
    Shifts and limits are in pixels of the reference (finest) grid.
    """

    bit_depths: dict[str, int] = field(default_factory=lambda: {"R": 11, "P": 11, "M": 11, "A": 14})
    resampling: str = "cubic_spline"
    align: bool = True
    # The real A files sit up to ~51 R px off; leave headroom but refuse absurd fits.
    max_shift_px: float = 80.0
    # An ECC correlation below this means the fit did not find the same structures.
    min_correlation: float = 0.5
    ecc_iterations: int = 200
    ecc_epsilon: float = 1e-6
    # Values above 2**bits - 1 by more than this share of pixels mean the bit depth is wrong.
    max_out_of_range_share: float = 0.001


@dataclass(frozen=True)
class SampleConfig:
    """Balanced pixel samples per class: ``n_in`` inside, ``n_out`` outside, split for validation."""

    n_in: int = 200_000
    n_out: int = 200_000
    validation_fraction: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """One-vs-all XGBoost models, one per class."""

    n_trees: int = 100
    max_depth: int = 15
    learning_rate: float = 0.3
    tree_method: str = "hist"
    device: str = "cpu"
    seed: int = 0
    # On a Dask cluster: "classes" trains each class whole on one worker, classes spread over the
    # workers (the same models for any number of workers); "rows" trains each class across all
    # workers with xgboost.dask, for samples too large for one worker's memory.
    distributed: Literal["classes", "rows"] = "classes"


@dataclass(frozen=True)
class ClusterConfig:
    """Spectral clustering of adjacent pixels.

    ``tolerance`` is a share of each band's [0, 1] range; clusters under ``min_size`` pixels are merged
    into the adjacent cluster of closest mean spectrum.
    """

    tolerance: float = 0.03
    min_size: int = 50


@dataclass(frozen=True)
class OverlapRule:
    """A rule about two classes predicted at the same place (or side by side).

    When ``target`` and ``other`` are both predicted for a cluster (``scope="cluster"``), or ``other``
    is predicted for a neighbouring cluster (``scope="neighbours"``), ``target`` is dropped from the
    cluster. ``reason`` says why, in words; it is written into reports.
    """

    target: int
    other: int
    scope: Literal["cluster", "neighbours"] = "cluster"
    reason: str = ""


@dataclass(frozen=True)
class SizeRule:
    """A class is dropped from clusters smaller than ``min_px`` or larger than ``max_px`` pixels.

    ``scope="group"`` (default) measures the connected group of adjacent clusters that all have the
    class (a field is many clusters at a 3 % tolerance); ``scope="cluster"`` the cluster alone.
    """

    target: int
    min_px: int | None = None
    max_px: int | None = None
    reason: str = ""
    scope: Literal["group", "cluster"] = "group"


def _default_overlap_rules() -> tuple[OverlapRule, ...]:
    return (
        OverlapRule(9, 8, "cluster", "a large vehicle can't sit in standing water"),
        OverlapRule(10, 8, "cluster", "a small vehicle can't sit in standing water"),
        OverlapRule(9, 7, "cluster", "a large vehicle can't sit in a waterway"),
        OverlapRule(10, 7, "cluster", "a small vehicle can't sit in a waterway"),
        OverlapRule(5, 3, "cluster", "a tree on a road is unlikely: the road wins"),
        OverlapRule(6, 1, "cluster", "a building is not a crop field"),
        OverlapRule(8, 7, "cluster", "flowing water is a waterway, not standing water"),
    )


def _default_size_rules() -> tuple[SizeRule, ...]:
    # Pixel counts at DSTL's ~0.3 m RGB pixel; scale them for other resolutions.
    return (
        SizeRule(6, min_px=2000, reason="a crop field is larger than a few pixels"),
        SizeRule(10, max_px=1500, reason="a small vehicle is not thousands of pixels"),
        SizeRule(9, max_px=6000, reason="a large vehicle is not tens of thousands of pixels"),
    )


@dataclass(frozen=True)
class PredictConfig:
    """Per-cluster prediction: probability thresholds per class id and the overlap rules."""

    threshold: float = 0.5
    thresholds: dict[int, float] = field(default_factory=dict)  # per class id, overrides threshold
    overlap_rules: tuple[OverlapRule, ...] = field(default_factory=_default_overlap_rules)
    size_rules: tuple[SizeRule, ...] = field(default_factory=_default_size_rules)

    def threshold_for(self, class_id: int) -> float:
        return self.thresholds.get(class_id, self.threshold)


@dataclass(frozen=True)
class VectorizeConfig:
    """Masks to polygons: simplify tolerance and smallest polygon kept, both in pixels."""

    simplify_px: float = 1.0
    min_area_px: float = 4.0
    # Masks wider or taller than this are vectorized in tile_px x tile_px tiles and the seams unioned
    # (bounds the 4 bytes/px working grid; a full DSTL scene, ~3400 px, fits in one tile).
    tile_px: int = 4096


@dataclass(frozen=True)
class EngineConfig:
    """Where the work runs: an embedded LocalCluster (default) or an existing scheduler."""

    scheduler: str | None = None
    workers: int | None = None  # None: one per core
    threads_per_worker: int = 1
    memory_limit: str = "4GiB"


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    vectorize: VectorizeConfig = field(default_factory=VectorizeConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def replace(self, section: str, **changes: Any) -> "Config":
        """A copy with fields of one section changed, e.g. ``cfg.replace("model", n_trees=10)``."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of every field."""
        return dataclasses.asdict(self)


_RULE_TYPES = {"overlap_rules": OverlapRule, "size_rules": SizeRule}


def config_from_dict(data: dict[str, Any], path: str | Path | None = None) -> Config:
    """Build a :class:`Config` from nested dicts (a parsed TOML file or ``run.json``)."""
    cfg = Config()
    for section, values in data.items():
        if not hasattr(cfg, section) or not isinstance(values, dict):
            raise ConfigError(f"unknown config section [{section}]", path)
        current = getattr(cfg, section)
        names = {f.name for f in dataclasses.fields(current)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown field(s) in [{section}]: {', '.join(sorted(unknown))}", path)
        values = dict(values)
        for key, rule_type in _RULE_TYPES.items():
            if key in values:
                try:
                    values[key] = tuple(rule_type(**r) for r in values[key])
                except TypeError as e:
                    raise ConfigError(f"bad rule in [{section}].{key}: {e}", path) from e
        if "thresholds" in values:
            values["thresholds"] = {int(k): float(v) for k, v in values["thresholds"].items()}
        try:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(current, **values)})
        except TypeError as e:
            raise ConfigError(f"bad value in [{section}]: {e}", path) from e
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

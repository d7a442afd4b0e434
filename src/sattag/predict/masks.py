"""Class masks from cluster flags, the prediction of a scene's clusters, and its files.

The clusters come from the segment stage (``sattag.segment.cluster_pixels``): the caller (the engine,
a notebook) clusters a stack, then :func:`predict_clusters` predicts on the clusters.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sattag._files import atomic_path
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.config import Config
from sattag.predict.probabilities import ProbabilityModel, cluster_probabilities, paint
from sattag.predict.rules import apply_rules
from sattag.scene import Grid
from sattag.segment import ClusterTable


def class_masks(cluster_ids: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) masks: pixel is 1 in mask ``j`` when its cluster has class ``j`` flagged.

    ``cluster_ids``: int (H, W) cluster ids 0..K-1; ``flags``: bool (K, C).
    """
    flags = np.ascontiguousarray(flags, dtype=np.uint8)
    if flags.ndim != 2:
        raise ValueError(f"class_masks needs flags of shape (K, C), got {flags.shape}")
    return paint(cluster_ids, flags)


@dataclass
class PredictResult:
    """Everything :func:`predict_clusters` found for one scene.

    ``cluster_ids`` int32 (H, W) and ``cluster_table``: the scene's clusters (``sattag.segment``);
    ``probabilities`` float32 (K, C); ``flags`` bool (K, C) after thresholds and rules; ``masks`` uint8
    (C, H, W); ``rule_counts`` one row per rule with the clusters and pixels it changed
    (``sattag.predict.rules.RULE_COLUMNS``).
    """

    cluster_ids: np.ndarray
    cluster_table: ClusterTable
    probabilities: np.ndarray
    flags: np.ndarray
    masks: np.ndarray
    rule_counts: pd.DataFrame


def predict_clusters(cluster_ids: np.ndarray, cluster_table: ClusterTable, models: ProbabilityModel,
                     config: Config, classes: ClassTable,
                     progress: Callable[[int], None] | None = None,
                     features: np.ndarray | None = None) -> PredictResult:
    """Predict each cluster of a scene from its mean spectrum, apply the rules, build class masks.

    Parameters
    ----------
    cluster_ids, cluster_table:
        the scene's clusters, as ``sattag.segment.cluster_pixels`` returns them (mean spectra in the
        models' band order).
    models:
        ``sattag.learn.ModelSet`` (or anything with ``predict_proba``), columns in ``classes`` order.
    config:
        the run's configuration (``config.predict`` is used).
    classes:
        the class table.
    progress:
        called with 1 after each of the 3 steps (probabilities, rules, masks).
    features:
        float32 (K, F) the clusters' mean features in the models' columns
        (``sattag.features.cluster_features``); default: their mean spectra.
    """
    step = progress or (lambda n: None)
    probs = cluster_probabilities(models, cluster_table, features=features)
    if probs.shape[1] != len(classes):
        raise ValueError(f"predict_clusters: the models give {probs.shape[1]} class columns, "
                         f"the class table has {len(classes)} classes")
    step(1)
    flags, counts = apply_rules(probs, cluster_table, config.predict, classes)
    step(1)
    masks = class_masks(cluster_ids, flags)
    step(1)
    return PredictResult(cluster_ids, cluster_table, probs, flags, masks, counts)


# -------------------------------------------------------------------------------------------- files
def _profile(grid: Grid, count: int, dtype: str) -> dict:
    prof = {"driver": "GTiff", "height": grid.height, "width": grid.width, "count": count, "dtype": dtype,
            "transform": grid.transform, "compress": "deflate", "predictor": 2,
            "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER"}
    if grid.crs is not None:
        prof["crs"] = grid.crs
    return prof


def write_cluster_ids(path: str | Path, cluster_ids: np.ndarray, grid: Grid) -> Path:
    """Write the cluster-id image (int32, 1 band) as a compressed GeoTIFF on ``grid``
    (``RunFolder.clusters``)."""
    import rasterio

    if cluster_ids.shape != grid.shape:
        raise ValueError(f"write_cluster_ids: cluster ids of shape {cluster_ids.shape} do not fit "
                         f"the {grid.shape} grid")
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # DSTL grids have no CRS
        with rasterio.open(tmp, "w", **_profile(grid, 1, "int32")) as dst:
            dst.write(cluster_ids.astype(np.int32, copy=False), 1)
    return Path(path)


def write_masks(path: str | Path, masks: np.ndarray, grid: Grid, classes: ClassTable = DSTL_CLASSES) -> Path:
    """Write class masks uint8 (C, H, W) as a compressed C-band GeoTIFF on ``grid`` (band i = class i).

    The one mask file format of sattag: ``sattag.labels.write_masks`` (class table in the tags), so
    predicted and true masks read back alike with ``sattag.labels.read_masks``.
    """
    from sattag.labels import write_masks as _write

    return _write(path, masks, grid, classes)


def probability_frame(table: ClusterTable, probs: np.ndarray, classes: ClassTable,
                      flags: np.ndarray | None = None) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``size``, ``p_<class id>`` per class (and ``flag_<id>``)."""
    df = pd.DataFrame({"cluster": table.ids, "size": table.sizes})
    for j, cid in enumerate(classes.ids):
        df[f"p_{cid}"] = probs[:, j].astype(np.float32)
    if flags is not None:
        for j, cid in enumerate(classes.ids):
            df[f"flag_{cid}"] = flags[:, j].astype(bool)
    return df


def write_probabilities(path: str | Path, table: ClusterTable, probs: np.ndarray, classes: ClassTable,
                        flags: np.ndarray | None = None) -> Path:
    """Write the per-cluster probability table (:func:`probability_frame`) as parquet."""
    df = probability_frame(table, probs, classes, flags)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def write_cluster_table(path: str | Path, table: ClusterTable, bands: tuple[str, ...] | None = None) -> Path:
    """Write the cluster table (id, size, bbox, mean per band) as parquet."""
    df = table.to_frame(bands)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def write_prediction(run, scene_id: str, result: PredictResult, grid: Grid, classes: ClassTable,
                     bands: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Write a scene's prediction into a run folder (``sattag.runfolder.RunFolder``): cluster ids,
    cluster table, probabilities (with flags), masks and the rule record (CSV beside the probabilities).
    Masks are written last, so their presence means the scene's prediction is complete."""
    out = {
        "clusters": write_cluster_ids(run.clusters(scene_id), result.cluster_ids, grid),
        "cluster_table": write_cluster_table(run.cluster_table(scene_id), result.cluster_table, bands),
        "probabilities": write_probabilities(run.probabilities(scene_id), result.cluster_table,
                                             result.probabilities, classes, result.flags),
    }
    rules_csv = run.probabilities(scene_id).with_name(f"{scene_id}_rules.csv")
    with atomic_path(rules_csv) as tmp:
        result.rule_counts.to_csv(tmp, index=False)  # a rule's missing value (no other class, ...) is empty
    out["rules"] = rules_csv
    out["masks"] = write_masks(run.masks(scene_id), result.masks, grid, classes)
    return out

"""Class masks from cluster flags, and the prediction of a scene's clusters.

Its files are written and read by ``sattag.predict.files``.

The clusters come from the segment stage (``sattag.segment.cluster_pixels``): the caller (the engine,
a notebook) clusters a stack, then :func:`predict_clusters` predicts on the clusters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sattag.classes import ClassTable
from sattag.config import PredictConfig
from sattag.predict.probabilities import ProbabilityModel, cluster_probabilities, paint
from sattag.predict.rules import PairDecider, apply_rules
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
                     config: PredictConfig, classes: ClassTable,
                     progress: Callable[[int], None] | None = None,
                     features: np.ndarray | None = None,
                     probabilities: np.ndarray | None = None,
                     pairs: Sequence[tuple[int, int]] = (),
                     decide_pair: PairDecider | None = None) -> PredictResult:
    """Predict each cluster of a scene from its mean spectrum, apply the rules, build class masks.

    Parameters
    ----------
    cluster_ids, cluster_table:
        the scene's clusters, as ``sattag.segment.cluster_pixels`` returns them (mean spectra in the
        models' band order).
    models:
        ``sattag.learn.ModelSet`` (or anything with ``predict_proba``), columns in ``classes`` order.
    config:
        the ``[predict]`` section of the run's configuration (thresholds, rules).
    classes:
        the class table.
    progress:
        called with 1 after each of the 3 steps (probabilities, rules, masks).
    features:
        float32 (K, F) the clusters' mean features in the models' columns
        (``sattag.features.cluster_features``); default: their mean spectra.
    probabilities:
        float32 (K, C) the clusters' class probabilities when already known (e.g. the mean over a
        sample of each cluster's pixels: :func:`sample_cluster_pixels`, then :func:`mean_by_cluster`); then ``models`` and
        ``features`` are not used.
    pairs, decide_pair:
        the pairwise models to apply where both classes of a pair are predicted
        (:func:`sattag.predict.rules.apply_rules`; :func:`pair_decider` builds ``decide_pair``).
    """
    step = progress or (lambda n: None)
    probs = (cluster_probabilities(models, cluster_table, features=features) if probabilities is None
             else np.asarray(probabilities, np.float32))
    if probs.shape[1] != len(classes):
        raise ValueError(f"predict_clusters: the models give {probs.shape[1]} class columns, "
                         f"the class table has {len(classes)} classes")
    step(1)
    flags, counts = apply_rules(probs, cluster_table, config, classes, pairs, decide_pair)
    step(1)
    masks = class_masks(cluster_ids, flags)
    step(1)
    return PredictResult(cluster_ids, cluster_table, probs, flags, masks, counts)


def group_flags(groups: np.ndarray, sizes: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """One decision per group of cluster pieces (a cluster that tiles cut, joined again by
    :func:`sattag.segment.stitch_groups`): bool (M, C), every piece of a group flagged as the group.

    ``groups`` int (M,): each piece's group; ``sizes`` int (M,): its pixels; ``flags`` bool (M, C): what
    its tile decided. A class is flagged for the group when the pieces that flag it hold at least half
    of the group's pixels: the decision the cluster's pixels would mostly have got whole, since each
    piece's probabilities came from its own part of the cluster.
    """
    groups = np.asarray(groups)
    flags = np.asarray(flags, bool)
    if not groups.size:
        return flags.copy()
    _, g = np.unique(groups, return_inverse=True)
    w = np.asarray(sizes, np.float64)
    total = np.bincount(g, weights=w)
    out = np.empty_like(flags)
    for j in range(flags.shape[1]):
        voted = np.bincount(g, weights=w * flags[:, j], minlength=total.size)
        out[:, j] = (2.0 * voted >= total)[g]
    return out

"""Per-cluster class probabilities, and painting per-cluster values back onto pixels."""
from __future__ import annotations

from typing import Protocol

import numpy as np
from numba import njit, prange

from sattag.errors import ModelError
from sattag.segment.cluster import ClusterTable


class ProbabilityModel(Protocol):
    """Anything with ``predict_proba(X float32 (N, B)) -> float32 (N, C)`` (``sattag.learn.ModelSet``)."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def cluster_probabilities(models: ProbabilityModel, table: ClusterTable, batch: int = 1_000_000,
                          features: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities of every cluster, predicted from its mean features (default: mean spectrum).

    Parameters
    ----------
    models:
        a model set with ``predict_proba`` (columns in class-table order).
    table:
        the clusters; ``table.means`` float32 (K, B) is the model input.
    batch:
        clusters per ``predict_proba`` call (bounds memory on scenes with very many clusters).
    features:
        float32 (K, F) each cluster's mean features (``sattag.features.cluster_features``) when the
        models see more than the bands; default ``table.means``.

    Returns
    -------
    float32 (K, C) probabilities in [0, 1].
    """
    means = np.ascontiguousarray(table.means if features is None else features, dtype=np.float32)
    if means.shape[0] != len(table):
        raise ValueError(f"features for {means.shape[0]} clusters, the table has {len(table)}")
    columns = getattr(models, "columns", None)
    if columns is not None and len(columns) != means.shape[1]:
        raise ModelError(f"models expect {len(columns)} features, the clusters have {means.shape[1]}")
    parts = [np.asarray(models.predict_proba(means[i:i + batch]), dtype=np.float32)
             for i in range(0, max(len(means), 1), batch)]
    probs = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), np.float32)
    if probs.ndim != 2 or probs.shape[0] != len(means):
        raise ModelError(f"predict_proba returned shape {probs.shape} for {len(means)} clusters")
    return probs


@njit(parallel=True, cache=True)
def _paint2(cluster_ids, values, out):
    h, w = cluster_ids.shape
    for r in prange(h):
        for c in range(w):
            out[r, c] = values[cluster_ids[r, c]]


@njit(parallel=True, cache=True)
def _paint3(cluster_ids, values, out):
    h, w = cluster_ids.shape
    nc = values.shape[1]
    for r in prange(h):
        for c in range(w):
            lab = cluster_ids[r, c]
            for j in range(nc):
                out[j, r, c] = values[lab, j]


def paint(cluster_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-cluster values painted onto the pixels of each cluster.

    Parameters
    ----------
    cluster_ids:
        int (H, W) cluster ids 0..K-1.
    values:
        (K,) or (K, C) array, one row per cluster (any numeric or bool dtype).

    Returns
    -------
    (H, W) for (K,) values, or (C, H, W) (band-first, like masks) for (K, C) values; same dtype.
    """
    cluster_ids = np.ascontiguousarray(cluster_ids)
    values = np.ascontiguousarray(values)
    if cluster_ids.ndim != 2:
        raise ValueError(f"paint needs cluster_ids of shape (H, W), got {cluster_ids.shape}")
    if values.ndim not in (1, 2):
        raise ValueError(f"paint needs values of shape (K,) or (K, C), got {values.shape}")
    if cluster_ids.size and (cluster_ids.min() < 0 or cluster_ids.max() >= values.shape[0]):
        raise ValueError(f"paint needs cluster ids in 0..{values.shape[0] - 1} (one per cluster value), "
                         f"got {cluster_ids.min()}..{cluster_ids.max()}")
    if values.ndim == 1:
        out = np.empty(cluster_ids.shape, values.dtype)
        _paint2(cluster_ids, values, out)
    else:
        out = np.empty((values.shape[1],) + cluster_ids.shape, values.dtype)
        _paint3(cluster_ids, values, out)
    return out

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


@njit(cache=True)
def _sample_members(ids, k, per_cluster, out_index, out_owner, offsets):  # pragma: no cover - compiled
    counts = np.zeros(k, np.int64)
    for i in range(ids.size):
        counts[ids[i]] += 1
    total = 0
    for c in range(k):
        offsets[c] = total
        total += min(counts[c], per_cluster)
    seen = np.zeros(k, np.int64)
    taken = np.zeros(k, np.int64)
    for i in range(ids.size):
        c = ids[i]
        n = counts[c]
        t = min(n, per_cluster)
        j = taken[c]
        # the j-th of t members evenly spread over the cluster's n pixels in raster order
        if j < t and seen[c] == ((2 * j + 1) * n) // (2 * t):
            out_index[offsets[c] + j] = i
            out_owner[offsets[c] + j] = c
            taken[c] = j + 1
        seen[c] += 1
    return total


def sample_cluster_pixels(cluster_ids: np.ndarray, n_clusters: int, per_cluster: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_cluster`` pixels of every cluster, spread evenly over its pixels in raster order.

    Returns ``(flat_index int64 (n,), owner int32 (n,))``: flat indices into the (H, W) grid and the
    cluster of each. Deterministic (no random draw), one pass over the pixels.
    """
    ids = np.ascontiguousarray(np.asarray(cluster_ids).reshape(-1), dtype=np.int32)
    if per_cluster < 1:
        raise ValueError(f"per_cluster must be >= 1, got {per_cluster}")
    cap = min(ids.size, n_clusters * per_cluster)
    index = np.empty(cap, np.int64)
    owner = np.empty(cap, np.int32)
    n = _sample_members(ids, n_clusters, per_cluster, index, owner, np.empty(n_clusters, np.int64))
    return index[:n], owner[:n]


def mean_by_cluster(values: np.ndarray, owner: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster means of rows of ``values`` (n, C) owned by clusters ``owner`` (n,): float32 (K, C)."""
    values = np.asarray(values, np.float64)
    counts = np.bincount(owner, minlength=n_clusters).astype(np.float64)
    counts[counts == 0] = 1.0
    out = np.empty((n_clusters, values.shape[1]), np.float32)
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(owner, weights=values[:, j], minlength=n_clusters) / counts
    return out


def pair_decider(models, features: np.ndarray, owner: np.ndarray, n_clusters: int):
    """A ``decide_pair`` for :func:`sattag.predict.rules.apply_rules` from rows already at hand.

    ``models``: a ``sattag.learn.ModelSet`` (its ``predict_pair``); ``features`` float32 (n, F): the
    models' input for pixels sampled from the clusters (or each cluster's mean features, one row
    per cluster); ``owner`` int (n,): the cluster of each row. A cluster's probability of ``first``
    against ``second`` is the mean over its rows, as for the one-vs-all probabilities.
    """
    owner = np.asarray(owner)

    def decide(first: int, second: int, clusters: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(np.isin(owner, clusters))
        p = models.predict_pair(first, second, features[rows])
        return mean_by_cluster(p[:, None], owner[rows], n_clusters)[np.asarray(clusters), 0]

    return decide

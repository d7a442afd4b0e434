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


def cluster_probabilities(models: ProbabilityModel, table: ClusterTable, batch: int = 1_000_000) -> np.ndarray:
    """Class probabilities of every cluster, predicted from its mean spectrum.

    Parameters
    ----------
    models:
        a model set with ``predict_proba`` (columns in class-table order).
    table:
        the clusters; ``table.means`` float32 (K, B) is the model input.
    batch:
        clusters per ``predict_proba`` call (bounds memory on scenes with very many clusters).

    Returns
    -------
    float32 (K, C) probabilities in [0, 1].
    """
    means = np.ascontiguousarray(table.means, dtype=np.float32)
    bands = getattr(models, "bands", None)
    if bands is not None and len(bands) != means.shape[1]:
        raise ModelError(f"models expect {len(bands)} bands, the clusters have {means.shape[1]}")
    parts = [np.asarray(models.predict_proba(means[i:i + batch]), dtype=np.float32)
             for i in range(0, max(len(means), 1), batch)]
    probs = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), np.float32)
    if probs.ndim != 2 or probs.shape[0] != len(means):
        raise ModelError(f"predict_proba returned shape {probs.shape} for {len(means)} clusters")
    return probs


@njit(parallel=True, cache=True)
def _paint2(labels, values, out):
    h, w = labels.shape
    for r in prange(h):
        for c in range(w):
            out[r, c] = values[labels[r, c]]


@njit(parallel=True, cache=True)
def _paint3(labels, values, out):
    h, w = labels.shape
    nc = values.shape[1]
    for r in prange(h):
        for c in range(w):
            lab = labels[r, c]
            for j in range(nc):
                out[j, r, c] = values[lab, j]


def paint(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-cluster values painted onto the pixels of each cluster.

    Parameters
    ----------
    labels:
        int (H, W) cluster ids 0..K-1.
    values:
        (K,) or (K, C) array, one row per cluster (any numeric or bool dtype).

    Returns
    -------
    (H, W) for (K,) values, or (C, H, W) (band-first, like masks) for (K, C) values; same dtype.
    """
    labels = np.ascontiguousarray(labels)
    values = np.ascontiguousarray(values)
    if labels.ndim != 2:
        raise ValueError(f"paint needs labels of shape (H, W), got {labels.shape}")
    if values.ndim not in (1, 2):
        raise ValueError(f"paint needs values of shape (K,) or (K, C), got {values.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= values.shape[0]):
        raise ValueError(f"paint needs labels in 0..{values.shape[0] - 1} (one per cluster value), "
                         f"got {labels.min()}..{labels.max()}")
    if values.ndim == 1:
        out = np.empty(labels.shape, values.dtype)
        _paint2(labels, values, out)
    else:
        out = np.empty((values.shape[1],) + labels.shape, values.dtype)
        _paint3(labels, values, out)
    return out

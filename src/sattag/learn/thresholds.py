"""Decision thresholds chosen for the score: each class's threshold maximises its Jaccard on
validation scenes (scenes the models did not train on), estimated from a balanced pixel sample.

A balanced sample (``n_in`` pixels inside the class, ``n_out`` outside) over-represents the class;
weighting each sampled pixel by how many pixels of the validation scenes it stands for
(``N_in / n_in`` inside, ``N_out / n_out`` outside) gives the scenes' true and false positives and
false negatives, hence their Jaccard ``TP / (TP + FP + FN)``, at every threshold at once.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

#: Thresholds tried (probabilities); the ends are left out: 0 or 1 marks everything or nothing.
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def best_threshold(p_in: np.ndarray, p_out: np.ndarray, total_in: float, total_out: float,
                   grid: np.ndarray = GRID, tolerance: float = 0.005) -> tuple[float, float]:
    """The threshold of ``grid`` with the highest estimated Jaccard, and that Jaccard.

    ``p_in`` / ``p_out``: the model's probabilities on sampled pixels inside / outside the class;
    ``total_in`` / ``total_out``: how many pixels inside / outside the class the validation scenes
    have. Of the thresholds within ``tolerance`` of the best Jaccard, the one nearest 0.5 is taken:
    a few validation scenes cannot tell 0.05 from 0.2 apart, and the far ends of the grid are where
    another scene's light or season would hurt most. Returns (0.5, NaN) when a side has no sample.
    """
    p_in, p_out = np.sort(np.asarray(p_in, np.float64)), np.sort(np.asarray(p_out, np.float64))
    if p_in.size == 0 or p_out.size == 0 or total_in <= 0:
        return 0.5, float("nan")
    # Pixels at or above each threshold, by sorted search: O((n + g) log n) for the whole grid.
    tp = (p_in.size - np.searchsorted(p_in, grid, side="left")) * (total_in / p_in.size)
    fp = (p_out.size - np.searchsorted(p_out, grid, side="left")) * (total_out / p_out.size)
    fn = total_in - tp
    jac = tp / np.maximum(tp + fp + fn, 1e-12)
    return _pick(jac, grid, tolerance)


def _pick(jac: np.ndarray, grid: np.ndarray, tolerance: float) -> tuple[float, float]:
    """Of the thresholds within ``tolerance`` of the best Jaccard, the one nearest 0.5."""
    best = np.flatnonzero(jac >= jac.max() - tolerance - 1e-12)
    i = best[np.argmin(np.abs(grid[best] - 0.5))]
    return float(grid[i]), float(jac[i])


def best_cluster_threshold(p: np.ndarray, inside_px: np.ndarray, outside_px: np.ndarray,
                           grid: np.ndarray = GRID, tolerance: float = 0.005) -> tuple[float, float]:
    """:func:`best_threshold` for an object-level model, exactly: clusters are painted whole, so a
    cluster marked at threshold ``t`` brings its ``inside_px`` (pixels in the class) as true
    positives and its ``outside_px`` as false positives; a cluster not marked, its ``inside_px`` as
    false negatives. ``p``, ``inside_px``, ``outside_px``: (K,) per validation cluster.
    Returns (0.5, NaN) when the clusters hold no pixel of the class.
    """
    p = np.asarray(p, np.float64)
    inside_px, outside_px = np.asarray(inside_px, np.float64), np.asarray(outside_px, np.float64)
    total_in = inside_px.sum()
    if p.size == 0 or total_in <= 0:
        return 0.5, float("nan")
    order = np.argsort(p)
    p, inside_px, outside_px = p[order], inside_px[order], outside_px[order]
    # pixels of the clusters at or above each threshold: suffix sums read at the sorted positions
    suffix_in = np.concatenate([np.cumsum(inside_px[::-1])[::-1], [0.0]])
    suffix_out = np.concatenate([np.cumsum(outside_px[::-1])[::-1], [0.0]])
    at = np.searchsorted(p, grid, side="left")
    tp, fp = suffix_in[at], suffix_out[at]
    jac = tp / np.maximum(total_in + fp, 1e-12)  # TP + FP + FN = all class pixels + FP
    return _pick(jac, grid, tolerance)


def tune_cluster_thresholds(model_set, rows: np.ndarray, shares: np.ndarray, sizes: np.ndarray) -> pd.DataFrame:
    """Each class's threshold for the best pixel Jaccard of an object-level model on validation
    scenes' clusters (:func:`best_cluster_threshold`); the table of :func:`tune_thresholds`.

    ``rows`` float32 (K, F) the clusters' object features (``model_set.columns``); ``shares`` (K, C)
    the share of each cluster in each class (classes in ``model_set.classes`` order); ``sizes`` (K,) pixels.
    """
    rows = np.asarray(rows)
    out = []
    probs = model_set.predict_proba(rows) if len(rows) else np.zeros((0, len(model_set.classes)), np.float32)
    sizes = np.asarray(sizes, np.float64)
    for i, cls in enumerate(model_set.classes):
        t, j, j5 = 0.5, float("nan"), float("nan")
        inside = np.asarray(shares[:, i], np.float64) * sizes
        if cls.id in model_set.boosters and inside.sum() > 0:
            t, j = best_cluster_threshold(probs[:, i], inside, sizes - inside)
            _, j5 = best_cluster_threshold(probs[:, i], inside, sizes - inside, np.array([0.5]))
        out.append({"class_id": cls.id, "class": cls.name, "threshold": t, "jaccard": j, "jaccard_at_0.5": j5})
    return pd.DataFrame(out, columns=["class_id", "class", "threshold", "jaccard", "jaccard_at_0.5"])


def tune_thresholds(model_set, samples: Mapping[int, tuple[np.ndarray, np.ndarray]],
                    totals: Mapping[int, tuple[int, int]]) -> pd.DataFrame:
    """Each class's threshold for the best Jaccard on validation scenes.

    ``model_set``: models trained without the validation scenes; ``samples``: class id -> (X (n, F)
    in ``model_set.columns`` order, y (n,) 1 = in the class) drawn from the validation scenes;
    ``totals``: class id -> (pixels in, pixels out of the class) over the validation scenes.
    Returns one row per class: ``class_id``, ``class``, ``threshold``, ``jaccard`` (the validation
    Jaccard it gives, per pixel), ``jaccard_at_0.5``; classes without a model or sample keep 0.5.
    """
    rows = []
    for i, cls in enumerate(model_set.classes):
        X, y = samples.get(cls.id, (None, None))
        t, j, j5 = 0.5, float("nan"), float("nan")
        if X is not None and cls.id in model_set.boosters and 0 < int(y.sum()) < y.size:
            p = model_set.predict_proba(X)[:, i]
            n_in, n_out = totals.get(cls.id, (0, 0))
            t, j = best_threshold(p[y == 1], p[y == 0], n_in, n_out)
            _, j5 = best_threshold(p[y == 1], p[y == 0], n_in, n_out, np.array([0.5]))
        rows.append({"class_id": cls.id, "class": cls.name, "threshold": t, "jaccard": j, "jaccard_at_0.5": j5})
    return pd.DataFrame(rows, columns=["class_id", "class", "threshold", "jaccard", "jaccard_at_0.5"])

"""Decision thresholds chosen for the score: each class's threshold maximises its Jaccard on
validation scenes (scenes the models did not train on), estimated from a balanced pixel sample.

A balanced sample (``n_in`` pixels inside the class, ``n_out`` outside) over-represents the class;
weighting each sampled pixel by how many pixels of the validation scenes it stands for
(``N_in / n_in`` inside, ``N_out / n_out`` outside) gives the scenes' true and false positives and
false negatives, hence their Jaccard ``TP / (TP + FP + FN)``, at every threshold at once.

Validation in folds: one validation scene holds few objects of a rare class (a pond or two), and a
threshold chosen on them is noise (measured: Standing water tuned to 0.07 on one scene's pond, then
worse on the held-out scenes than 0.5). So the training scenes are split into folds by scene, a first
model set per fold is trained without that fold's scenes, and every fold's true and false positives
at each threshold are added up before the best threshold is picked (:func:`pooled_threshold`): each
training scene is a validation scene once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: Thresholds tried (probabilities); the ends are left out: 0 or 1 marks everything or nothing.
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def pixel_threshold_counts(p_in: np.ndarray, p_out: np.ndarray, total_in: float, total_out: float,
                  grid: np.ndarray = GRID) -> tuple[np.ndarray, np.ndarray, float]:
    """Estimated true and false positive pixels of validation scenes at each threshold of ``grid``,
    and their pixels in the class: ``(tp (G,), fp (G,), total_in)``.

    ``p_in`` / ``p_out``: the model's probabilities on sampled pixels inside / outside the class;
    ``total_in`` / ``total_out``: how many pixels inside / outside the class the validation scenes
    have (each sampled pixel stands for ``total / n`` of them). No sample on a side: zeros.
    """
    p_in, p_out = np.sort(np.asarray(p_in, np.float64)), np.sort(np.asarray(p_out, np.float64))
    if p_in.size == 0 or p_out.size == 0 or total_in <= 0:
        return np.zeros(len(grid)), np.zeros(len(grid)), 0.0
    # Pixels at or above each threshold, by sorted search: O((n + g) log n) for the whole grid.
    tp = (p_in.size - np.searchsorted(p_in, grid, side="left")) * (total_in / p_in.size)
    fp = (p_out.size - np.searchsorted(p_out, grid, side="left")) * (total_out / p_out.size)
    return tp, fp, float(total_in)


def cluster_threshold_counts(p: np.ndarray, inside_px: np.ndarray, outside_px: np.ndarray,
                   grid: np.ndarray = GRID) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`pixel_threshold_counts` for an object-level model, exactly: clusters are painted whole, so a
    cluster marked at threshold ``t`` brings its ``inside_px`` (pixels in the class) as true
    positives and its ``outside_px`` as false positives. ``p``, ``inside_px``, ``outside_px``: (K,)
    per validation cluster."""
    p = np.asarray(p, np.float64)
    inside_px, outside_px = np.asarray(inside_px, np.float64), np.asarray(outside_px, np.float64)
    total_in = float(inside_px.sum())
    if p.size == 0 or total_in <= 0:
        return np.zeros(len(grid)), np.zeros(len(grid)), 0.0
    order = np.argsort(p)
    p, inside_px, outside_px = p[order], inside_px[order], outside_px[order]
    # pixels of the clusters at or above each threshold: suffix sums read at the sorted positions
    suffix_in = np.concatenate([np.cumsum(inside_px[::-1])[::-1], [0.0]])
    suffix_out = np.concatenate([np.cumsum(outside_px[::-1])[::-1], [0.0]])
    at = np.searchsorted(p, grid, side="left")
    return suffix_in[at], suffix_out[at], total_in


def pooled_threshold(counts: Sequence[tuple[np.ndarray, np.ndarray, float]], grid: np.ndarray = GRID,
                     tolerance: float = 0.005) -> tuple[float, float]:
    """The threshold of ``grid`` with the highest Jaccard over all the validation sets in ``counts``
    (their :func:`pixel_threshold_counts` / :func:`cluster_threshold_counts` added up), and that Jaccard.

    Of the thresholds within ``tolerance`` of the best Jaccard, the one nearest 0.5 is taken: the
    validation scenes cannot tell 0.05 from 0.2 apart, and the far ends of the grid are where
    another scene's light or season would hurt most. (0.5, NaN) when no set holds a pixel of the class.
    """
    total_in = sum(c[2] for c in counts)
    if total_in <= 0:
        return 0.5, float("nan")
    tp = np.sum([c[0] for c in counts], axis=0)
    fp = np.sum([c[1] for c in counts], axis=0)
    jac = tp / np.maximum(total_in + fp, 1e-12)  # TP + FP + FN = all class pixels + FP
    best = np.flatnonzero(jac >= jac.max() - tolerance - 1e-12)
    i = best[np.argmin(np.abs(grid[best] - 0.5))]
    return float(grid[i]), float(jac[i])


def best_threshold(p_in: np.ndarray, p_out: np.ndarray, total_in: float, total_out: float,
                   grid: np.ndarray = GRID, tolerance: float = 0.005) -> tuple[float, float]:
    """:func:`pooled_threshold` of one validation sample (:func:`pixel_threshold_counts`). Returns (0.5, NaN)
    when a side has no sample."""
    return pooled_threshold([pixel_threshold_counts(p_in, p_out, total_in, total_out, grid)], grid, tolerance)


def best_cluster_threshold(p: np.ndarray, inside_px: np.ndarray, outside_px: np.ndarray,
                           grid: np.ndarray = GRID, tolerance: float = 0.005) -> tuple[float, float]:
    """:func:`pooled_threshold` of one set of validation clusters (:func:`cluster_threshold_counts`). Returns
    (0.5, NaN) when the clusters hold no pixel of the class."""
    return pooled_threshold([cluster_threshold_counts(p, inside_px, outside_px, grid)], grid, tolerance)


_COLUMNS = ["class_id", "class", "threshold", "jaccard", "jaccard_at_0.5"]
_AT_HALF = np.array([0.5])


def _table(classes, counts_of) -> pd.DataFrame:
    """One row per class from ``counts_of(i, cls, grid)``: the list of its folds' counts on ``grid``."""
    out = []
    for i, cls in enumerate(classes):
        t, j = pooled_threshold(counts_of(i, cls, GRID))
        j5 = pooled_threshold(counts_of(i, cls, _AT_HALF), _AT_HALF)[1]
        out.append({"class_id": cls.id, "class": cls.name, "threshold": t, "jaccard": j, "jaccard_at_0.5": j5})
    return pd.DataFrame(out, columns=_COLUMNS)


def tune_cluster_thresholds(folds: Sequence[tuple]) -> pd.DataFrame:
    """Each class's threshold for the best pixel Jaccard of object-level models on validation
    scenes' clusters, over all ``folds`` (:func:`cluster_threshold_counts` added up); the table of
    :func:`tune_thresholds`.

    ``folds``: ``(model_set, rows, shares, sizes)`` per fold: the models trained without the fold's
    scenes; ``rows`` float32 (K, F) the fold's clusters' object features (``model_set.columns``);
    ``shares`` (K, C) the share of each cluster in each class (classes in ``model_set.classes``
    order); ``sizes`` (K,) pixels. A fold whose models lack a class does not count for that class.
    """
    folds = list(folds)
    if not folds:
        raise ValueError("tune_cluster_thresholds: no fold")
    probs = [m.predict_proba(np.asarray(r)) if len(r) else np.zeros((0, len(m.classes)), np.float32)
             for m, r, _, _ in folds]

    def counts_of(i, cls, grid):
        out = []
        for (m, _, shares, sizes), p in zip(folds, probs):
            if cls.id in m.boosters:
                inside = np.asarray(shares[:, i], np.float64) * sizes
                out.append(cluster_threshold_counts(p[:, i], inside, np.asarray(sizes, np.float64) - inside, grid))
        return out

    return _table(folds[0][0].classes, counts_of)


def tune_thresholds(folds: Sequence[tuple]) -> pd.DataFrame:
    """Each class's threshold for the best Jaccard on validation scenes, over all ``folds``
    (:func:`pixel_threshold_counts` added up).

    ``folds``: ``(model_set, samples, totals)`` per fold: ``model_set`` trained without the fold's
    validation scenes; ``samples``: class id -> (X (n, F) in ``model_set.columns`` order, y (n,)
    1 = in the class) drawn from those scenes; ``totals``: class id -> (pixels in, pixels out of the
    class) over them. Returns one row per class: ``class_id``, ``class``, ``threshold``,
    ``jaccard`` (the validation Jaccard it gives, per pixel), ``jaccard_at_0.5``; a class no fold
    has a model and sample for keeps 0.5.
    """
    folds = list(folds)
    if not folds:
        raise ValueError("tune_thresholds: no fold")
    probs = {}
    for f, (m, samples, _) in enumerate(folds):
        for i, cls in enumerate(m.classes):
            X, y = samples.get(cls.id, (None, None))
            if X is not None and cls.id in m.boosters and 0 < int(y.sum()) < y.size:
                probs[f, cls.id] = (m.predict_proba(X)[:, i], y)

    def counts_of(i, cls, grid):
        out = []
        for f, (_, _, totals) in enumerate(folds):
            if (f, cls.id) in probs:
                p, y = probs[f, cls.id]
                n_in, n_out = totals.get(cls.id, (0, 0))
                out.append(pixel_threshold_counts(p[y == 1], p[y == 0], n_in, n_out, grid))
        return out

    return _table(folds[0][0].classes, counts_of)

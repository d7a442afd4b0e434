"""The DSTL Jaccard score (polygons) and pixel Jaccard (masks).

DSTL (``dstl-format.md``): for each class, the areas of intersection and of union between predicted
and true polygons are summed over all scored scenes and divided; the score is the mean of the class
scores.

Empty classes: a class whose union is empty in every scored scene (nothing true, nothing predicted)
has no score (``jaccard`` NaN) and is left out of the mean. So a prediction scored against itself
gives 1.0 and an empty prediction gives 0.0 whatever classes the truth lacks. (When the truth has no
object of a class but the prediction has some, the class scores 0.)

Tables: one row per class (``class_id``, ``class``, ``intersection``, ``union``, ``jaccard``) and a
last row ``class_id`` 0, ``class`` ``"mean"`` holding the mean of the class scores. Intersection and
union are areas in scene units squared (polygons) or pixel counts (masks); tables of several scenes
add up with :func:`combine_scores`.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import shapely

from sattag.classes import ClassTable
from sattag.errors import InputError

__all__ = ["dstl_jaccard", "polygon_counts", "pixel_jaccard", "pixel_counts", "combine_scores", "score_table", "MEAN_ID"]

#: ``class_id`` of the row holding the mean of the class scores.
MEAN_ID = 0


def score_table(classes: ClassTable, intersection: np.ndarray, union: np.ndarray) -> pd.DataFrame:
    """A score table from per-class sums of intersection and union (in ``classes`` order)."""
    inter = np.asarray(intersection, np.float64)
    uni = np.asarray(union, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(uni > 0, inter / np.where(uni > 0, uni, 1), np.nan)
    df = pd.DataFrame({"class_id": list(classes.ids), "class": list(classes.names),
                       "intersection": inter, "union": uni, "jaccard": jac})
    scored = jac[~np.isnan(jac)]
    mean = float(scored.mean()) if len(scored) else np.nan
    mean_row = pd.DataFrame({"class_id": [MEAN_ID], "class": ["mean"], "intersection": [np.nan],
                             "union": [np.nan], "jaccard": [mean]})
    return pd.concat([df, mean_row], ignore_index=True)


def combine_scores(tables: Iterable[pd.DataFrame], classes: ClassTable) -> pd.DataFrame:
    """Add per-scene score tables (same kind: pixel or polygon) into one: sums, then the ratios."""
    inter = np.zeros(len(classes))
    uni = np.zeros(len(classes))
    for t in tables:
        t = t[t["class_id"] != MEAN_ID].set_index("class_id")
        inter += t.reindex(list(classes.ids))["intersection"].fillna(0).to_numpy()
        uni += t.reindex(list(classes.ids))["union"].fillna(0).to_numpy()
    return score_table(classes, inter, uni)


def _clean(geoms: np.ndarray) -> np.ndarray:
    """None -> empty; invalid geometries made valid (a bow-tie keeps its area, not zero)."""
    geoms = np.where(pd.isna(geoms), shapely.MultiPolygon(), geoms)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def dstl_jaccard(pred: Mapping[tuple[str, int], object], truth: Mapping[tuple[str, int], object],
                 classes: ClassTable, scene_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The DSTL polygon Jaccard per class and its mean (see the module docstring for the table).

    ``pred``, ``truth``: ``{(scene_id, class_id): geometry}`` in the same coordinates. Scored scenes:
    ``scene_ids``, or every scene in ``truth``. A missing (scene, class) is empty. A predicted
    scene that is scored but has no truth raises :class:`InputError`.
    """
    truth_scenes = {s for s, _ in truth}
    scenes = sorted(truth_scenes) if scene_ids is None else list(dict.fromkeys(scene_ids))
    missing = [s for s in scenes if s not in truth_scenes]
    if missing:
        raise InputError(f"no truth for scene {missing[0]} ({len(missing)} scene(s) without truth)",
                         scene=missing[0])
    keys = [(s, c) for c in classes.ids for s in scenes]
    inter, uni = _overlay([pred.get(k) for k in keys], [truth.get(k) for k in keys])
    n = len(scenes)
    inter_c = inter.reshape(len(classes), n).sum(axis=1) if n else np.zeros(len(classes))
    uni_c = uni.reshape(len(classes), n).sum(axis=1) if n else np.zeros(len(classes))
    return score_table(classes, inter_c, uni_c)


def polygon_counts(pred: Mapping[int, object], truth: Mapping[int, object],
                   classes: ClassTable) -> tuple[np.ndarray, np.ndarray]:
    """One scene's per-class (intersection, union) areas of predicted and true polygons: two float64
    (C,) arrays in ``classes`` order, in the polygons' units squared.

    ``pred``, ``truth``: class id -> geometry of the scene (a missing class is empty). What
    :func:`dstl_jaccard` sums over scenes; computed where the scene's polygons are (a worker), so
    only 2 C numbers travel, and added up with :func:`score_table` like pixel counts.
    """
    return _overlay([pred.get(c) for c in classes.ids], [truth.get(c) for c in classes.ids])


def _overlay(pred: list, truth: list) -> tuple[np.ndarray, np.ndarray]:
    p = _clean(np.array(pred, dtype=object))
    t = _clean(np.array(truth, dtype=object))
    inter = shapely.area(shapely.intersection(p, t))
    # |A u B| = |A| + |B| - |A n B|: one overlay per pair instead of two.
    return inter, shapely.area(p) + shapely.area(t) - inter


def pixel_counts(pred_masks: np.ndarray, truth_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class (intersection, union) pixel counts of two (C, H, W) masks (nonzero = inside)."""
    pred_masks = np.asarray(pred_masks)
    truth_masks = np.asarray(truth_masks)
    if pred_masks.shape != truth_masks.shape or pred_masks.ndim != 3:
        raise ValueError(f"masks must both be (C, H, W); got {pred_masks.shape} and {truth_masks.shape}")
    c = pred_masks.shape[0]
    p = pred_masks.reshape(c, -1) != 0
    t = truth_masks.reshape(c, -1) != 0
    return (p & t).sum(axis=1), (p | t).sum(axis=1)


def pixel_jaccard(pred_masks: np.ndarray, truth_masks: np.ndarray, classes: ClassTable) -> pd.DataFrame:
    """Pixel Jaccard per class and the mean, for one scene's (C, H, W) masks (index i = classes[i]).

    ``intersection`` and ``union`` are pixel counts, so tables of several scenes add up exactly
    with :func:`combine_scores` (the DSTL way: sums over scenes, then the ratio).
    """
    inter, uni = pixel_counts(pred_masks, truth_masks)
    if len(inter) != len(classes):
        raise ValueError(f"masks have {len(inter)} classes, the class table {len(classes)}")
    return score_table(classes, inter, uni)

"""Clusters cut by a tile edge, joined again: a scene too large for memory is clustered tile by tile,
and a cluster that crossed a seam comes out as two (or more) pieces, one per tile.

The pieces are joined by the rule that grew them: two pieces that touch across a seam join when
their mean spectra are within the tolerance in every band (``|mean_a - mean_b| <= tolerance``, the
test a pixel passes to join a cluster, applied to the pieces' means). Joins are transitive (a
cluster crossing a tile corner, or several seams, becomes one group). Only the pieces on a seam and
their mean spectra are needed: a few thousand rows per tile, never the tiles' pixels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["seam_pairs", "stitch_groups"]


def seam_pairs(side_a: np.ndarray, side_b: np.ndarray) -> np.ndarray:
    """The distinct pairs of cluster ids facing each other across a seam: int64 (n, 2).

    ``side_a``, ``side_b``: int (L,), the ids along the two sides of the seam, pixel by pixel (e.g.
    the last row of a tile and the first row of the tile below it, both in scene-wide ids).
    """
    a = np.asarray(side_a, np.int64).ravel()
    b = np.asarray(side_b, np.int64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"seam sides of {a.size} and {b.size} px do not face each other")
    if not a.size:
        return np.empty((0, 2), np.int64)
    return np.unique(np.column_stack((a, b)), axis=0)


def stitch_groups(pairs: np.ndarray, ids: np.ndarray, means: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Join pieces of clusters across seams: the group of each piece, int64 (M,).

    ``ids`` int (M,): scene-wide ids of the pieces on seams (distinct); ``means`` float (M, B): their
    mean spectra; ``pairs`` int (n, 2): pieces that touch across a seam (:func:`seam_pairs`, ids
    from ``ids``); ``tolerance`` float (B,): per band, in band units
    (:func:`sattag.segment.tolerance_units`). Piece ``ids[i]`` belongs to the group
    ``result[i]``, the smallest id of the pieces it is joined with (itself when it joins none).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = np.asarray(ids, np.int64)
    m = ids.size
    if m == 0:
        return ids.copy()
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    pos = np.searchsorted(sorted_ids, pairs)
    pos = np.minimum(pos, m - 1)
    if not np.array_equal(sorted_ids[pos], pairs):
        raise ValueError("stitch_groups: a seam pair names a piece that is not among the ids")
    ia, ib = order[pos[:, 0]], order[pos[:, 1]]
    means = np.asarray(means, np.float64)
    close = np.all(np.abs(means[ia] - means[ib]) <= np.asarray(tolerance, np.float64)[None, :], axis=1)
    ia, ib = ia[close], ib[close]
    _, label = connected_components(coo_matrix((np.ones(ia.size), (ia, ib)), shape=(m, m)), directed=False)
    smallest = np.full(label.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, label, ids)
    return smallest[label]

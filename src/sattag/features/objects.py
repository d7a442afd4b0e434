"""Object-level features: one row per cluster (its statistics, shape and surroundings), and the
training target of an object-level model (the share of each cluster inside each class mask).

A cluster of :func:`sattag.segment.cluster_pixels` is a candidate object. Besides the mean of every
pixel feature (what :func:`sattag.features.cluster_features` gives), an object model can see how much
the pixels vary inside it, its size and shape (a road is long and thin, a roof compact and
rectangular), and how it differs from what surrounds it (a pond darker than its grass, a roof brighter
than its yard). Columns are named by :func:`object_feature_names`.

Memory: the feature maps come one at a time (a generator, :func:`sattag.features.feature_maps`), so
a whole (F, H, W) cube is never held; what is kept is per cluster (a few float64 (K,) arrays per map).
Every kernel is sequential in raster order, so results do not depend on the number of threads.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from numba import njit

#: Shape columns, in column order (see :func:`object_features` for their definitions).
SHAPE_FEATURES = ("area_px", "perimeter_px", "elongation", "compactness", "bbox_fill")

# The variance of a coordinate over one pixel taken as a unit square: the least spread a cluster has
# across any direction, so a 1-px-wide line has a finite elongation.
_MIN_VARIANCE = 1.0 / 12.0


# --------------------------------------------------------------------------------------------- numba
@njit(cache=True, nogil=True)
def _shape_sums(ids, h, w, k):  # pragma: no cover - compiled
    """One raster pass over cluster ids (H*W,): per-cluster pixel count, perimeter, coordinate sums
    relative to the cluster's first pixel, bounding box and first pixel (flat index, -1 if empty)."""
    area = np.zeros(k, np.int64)
    perim = np.zeros(k, np.int64)
    first = np.full(k, -1, np.int64)
    r0 = np.zeros(k, np.int64)
    c0 = np.zeros(k, np.int64)
    # integer sums are exact; offsets from the first pixel keep them small (no cancellation later)
    sr = np.zeros(k, np.int64)
    sc = np.zeros(k, np.int64)
    srr = np.zeros(k, np.int64)
    scc = np.zeros(k, np.int64)
    src = np.zeros(k, np.int64)
    bbox = np.empty((k, 4), np.int64)
    for r in range(h):
        for c in range(w):
            i = r * w + c
            lab = ids[i]
            if area[lab] == 0:
                first[lab] = i
                r0[lab] = r
                c0[lab] = c
                bbox[lab, 0] = r
                bbox[lab, 1] = c
                bbox[lab, 2] = r
                bbox[lab, 3] = c
            area[lab] += 1
            # each pixel counts its own sides that face another cluster or the image border, so an
            # edge between two clusters counts once for each of them
            e = 0
            if r == 0 or ids[i - w] != lab:
                e += 1
            if r == h - 1 or ids[i + w] != lab:
                e += 1
            if c == 0 or ids[i - 1] != lab:
                e += 1
            if c == w - 1 or ids[i + 1] != lab:
                e += 1
            perim[lab] += e
            dr = r - r0[lab]
            dc = c - c0[lab]
            sr[lab] += dr
            sc[lab] += dc
            srr[lab] += dr * dr
            scc[lab] += dc * dc
            src[lab] += dr * dc
            # rows come in order, so only the last row and the column extremes can change
            bbox[lab, 2] = r
            if c < bbox[lab, 1]:
                bbox[lab, 1] = c
            if c > bbox[lab, 3]:
                bbox[lab, 3] = c
    return area, perim, first, sr, sc, srr, scc, src, bbox


@njit(cache=True, nogil=True)
def _shape_features(area, perim, sr, sc, srr, scc, src, bbox, min_var):  # pragma: no cover - compiled
    """float64 (K, 5): area, perimeter, elongation, compactness, bbox fill (empty clusters: 0, 0, 1, 0, 0)."""
    k = area.shape[0]
    out = np.zeros((k, 5), np.float64)
    for j in range(k):
        n = area[j]
        out[j, 2] = 1.0
        if n == 0:
            continue
        fn = np.float64(n)
        mr = sr[j] / fn
        mc = sc[j] / fn
        vrr = srr[j] / fn - mr * mr
        vcc = scc[j] / fn - mc * mc
        vrc = src[j] / fn - mr * mc
        half_tr = 0.5 * (vrr + vcc)
        half_gap = math.sqrt(0.25 * (vrr - vcc) ** 2 + vrc * vrc)
        lmin = max(half_tr - half_gap, min_var)
        lmax = max(half_tr + half_gap, lmin)  # a single pixel: both at the floor, elongation 1
        p = np.float64(perim[j])
        out[j, 0] = fn
        out[j, 1] = p
        out[j, 2] = math.sqrt(lmax / lmin)
        out[j, 3] = 4.0 * math.pi * fn / (p * p)
        box = np.float64((bbox[j, 2] - bbox[j, 0] + 1) * (bbox[j, 3] - bbox[j, 1] + 1))
        out[j, 4] = fn / box
    return out


@njit(cache=True, nogil=True)
def _moments(ids, fmap, first, area, mean, sd):  # pragma: no cover - compiled
    """Per-cluster mean and population standard deviation of ``fmap`` (H*W,) into float64 (K,)."""
    k = area.shape[0]
    # sums of differences from the cluster's first pixel: a map far from zero with a small spread
    # inside a cluster (a bright band over a uniform roof) keeps its spread, which sum(x^2) - n*mean^2
    # would cancel away
    shift = np.zeros(k, np.float64)
    for j in range(k):
        if first[j] >= 0:
            shift[j] = fmap[first[j]]
    s1 = np.zeros(k, np.float64)
    s2 = np.zeros(k, np.float64)
    for i in range(ids.size):
        lab = ids[i]
        d = np.float64(fmap[i]) - shift[lab]
        s1[lab] += d
        s2[lab] += d * d
    for j in range(k):
        if area[j] == 0:
            mean[j] = 0.0
            sd[j] = 0.0
            continue
        n = np.float64(area[j])
        m = s1[j] / n
        mean[j] = shift[j] + m
        sd[j] = math.sqrt(max(s2[j] / n - m * m, 0.0))


@njit(cache=True, nogil=True)
def _neighbour_means(ptr, nbr, area, means, out):  # pragma: no cover - compiled
    """Area-weighted mean of the neighbours' means: ``means`` float64 (P, K) -> ``out`` (P, K)."""
    n_maps, k = means.shape
    for j in range(k):
        wsum = 0.0
        for t in range(ptr[j], ptr[j + 1]):
            wsum += area[nbr[t]]
        if wsum == 0.0:
            # no (non-empty) neighbour: the cluster is its own surroundings, contrast 0
            for p in range(n_maps):
                out[p, j] = means[p, j]
            continue
        for p in range(n_maps):
            s = 0.0
            for t in range(ptr[j], ptr[j + 1]):
                o = nbr[t]
                s += area[o] * means[p, o]
            out[p, j] = s / wsum


@njit(cache=True, nogil=True)
def _mask_counts(ids, masks, counts):  # pragma: no cover - compiled
    """``counts[k, c]`` += pixels of cluster k with ``masks[c]`` nonzero; ids (H*W,), masks (C, H*W)."""
    for c in range(masks.shape[0]):
        for i in range(ids.size):
            if masks[c, i] != 0:
                counts[ids[i], c] += 1


# ---------------------------------------------------------------------------------------------- API
def object_feature_names(pixel_names: Sequence[str]) -> tuple[str, ...]:
    """Column names of :func:`object_features` for pixel features named ``pixel_names`` (in map order).

    Order: ``mean_<n>``, ``sd_<n>`` for each pixel feature ``n``; the shape features
    :data:`SHAPE_FEATURES`; ``contrast_<n>`` for each ``n``; ``n_neighbours``.
    So ``len(names) == 3 * len(pixel_names) + 6``.

    The neighbours' mean itself is no column: it is ``mean_<n> - contrast_<n>``, and dropping it cut
    the training time of the object models by a quarter with no loss of held-out Jaccard (README,
    quality benchmark).
    """
    pixel_names = tuple(str(n) for n in pixel_names)
    if len(set(pixel_names)) != len(pixel_names):
        dup = sorted({n for n in pixel_names if pixel_names.count(n) > 1})
        raise ValueError(f"pixel feature names must be unique, repeated: {', '.join(dup)}")
    names: list[str] = []
    for n in pixel_names:
        names += [f"mean_{n}", f"sd_{n}"]
    names += SHAPE_FEATURES
    for n in pixel_names:
        names.append(f"contrast_{n}")
    names.append("n_neighbours")
    return tuple(names)


def _flat_ids(cluster_ids: np.ndarray, n_clusters: int) -> np.ndarray:
    """Checked cluster ids as contiguous int32 (H*W,) (no copy for a C-ordered int32 image)."""
    ids = np.asarray(cluster_ids)
    if ids.ndim != 2:
        raise ValueError(f"cluster ids must be an (H, W) image, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"cluster ids must be integers, got dtype {ids.dtype}")
    n_clusters = int(n_clusters)
    if not 0 <= n_clusters < 2**31:
        raise ValueError(f"n_clusters must be in 0..2**31-1, got {n_clusters}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        # the kernels index per-cluster arrays by id without bounds checks
        if lo < 0 or hi >= n_clusters:
            raise ValueError(f"cluster ids must be in 0..{n_clusters - 1}, got {lo}..{hi}")
    return np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)


def _checked_csr(neighbour_ptr, neighbour_ids, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.ascontiguousarray(neighbour_ptr, dtype=np.int64)
    nbr = np.ascontiguousarray(neighbour_ids, dtype=np.int64)
    if ptr.shape != (n_clusters + 1,):
        raise ValueError(f"neighbour_ptr must have shape ({n_clusters + 1},) for {n_clusters} clusters, "
                         f"got {ptr.shape}")
    if nbr.ndim != 1:
        raise ValueError(f"neighbour_ids must be one-dimensional, got shape {nbr.shape}")
    if ptr[0] != 0 or ptr[-1] != nbr.size or np.any(np.diff(ptr) < 0):
        raise ValueError(f"neighbour_ptr must rise from 0 to len(neighbour_ids) = {nbr.size} without "
                         f"falling, got {ptr.tolist() if ptr.size <= 8 else f'{ptr[0]}..{ptr[-1]}'}")
    if nbr.size and (nbr.min() < 0 or nbr.max() >= n_clusters):
        raise ValueError(f"neighbour ids must be in 0..{n_clusters - 1}, got {nbr.min()}..{nbr.max()}")
    return ptr, nbr


def object_features(cluster_ids: np.ndarray, n_clusters: int, feature_maps: Iterable[tuple[str, np.ndarray]],
                    neighbour_ptr: np.ndarray, neighbour_ids: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-cluster features of an object-level model: float32 (K, F) and the F column names.

    Parameters
    ----------
    cluster_ids:
        int (H, W), values ``0..n_clusters-1`` (``sattag.segment.cluster_pixels``); int32 is used as is.
    n_clusters:
        K, the number of clusters (rows of the result).
    feature_maps:
        ``(name, map)`` pairs, each map float (H, W) (float32, or float64), for instance
        ``sattag.features.feature_maps(stack, bands, feature_set)``. Consumed once, one map at a time;
        no reference to a map is kept once its statistics are taken.
    neighbour_ptr, neighbour_ids:
        the cluster adjacency in CSR form (``ClusterTable.neighbour_ptr`` int64 (K+1,),
        ``ClusterTable.neighbour_ids`` int (M,)): the neighbours of cluster k are
        ``neighbour_ids[neighbour_ptr[k]:neighbour_ptr[k+1]]``.

    Returns
    -------
    features:
        float32 (K, F), row k = cluster k, columns named as :func:`object_feature_names` of the map
        names; statistics are accumulated in float64. Per pixel feature ``n`` (units of the map):

        * ``mean_<n>``, ``sd_<n>``: mean and population standard deviation (ddof 0) over the cluster;
        * ``contrast_<n>``: ``mean_<n>`` minus the mean of the adjacent clusters' means weighted by
          their areas (the mean over the pixels of all neighbours); 0 without neighbours.

        Shape (pixels; from the cluster ids alone):

        * ``area_px``: pixel count;
        * ``perimeter_px``: 4-neighbour pixel sides between the cluster and another cluster or the
          image border;
        * ``elongation``: ``sqrt(lambda_max / lambda_min)`` of the covariance of the pixel coordinates,
          eigenvalues floored at 1/12 px^2 (one pixel's own spread), so >= 1: 1 for a square or a
          disk, finite for a 1-px-wide line;
        * ``compactness``: ``4 * pi * area / perimeter**2`` (isoperimetric ratio), in (0, pi/4]: with
          perimeters counted in pixel sides a square is the most compact shape, at pi/4 ~ 0.785;
        * ``bbox_fill``: area / bounding-box area, in (0, 1].

        An empty cluster (an id no pixel has) gets zeros, elongation 1, and no weight as a neighbour.
        ``n_neighbours``: the number of adjacent clusters (CSR row length).
    names:
        the F column names.

    Raises
    ------
    ValueError: cluster ids outside ``0..n_clusters-1`` or not an integer (H, W) image, a map of
    another shape than the cluster ids, repeated map names, or an adjacency inconsistent with K.
    """
    ids = _flat_ids(cluster_ids, n_clusters)
    k = int(n_clusters)
    h, w = np.shape(cluster_ids)
    ptr, nbr = _checked_csr(neighbour_ptr, neighbour_ids, k)
    area, perim, first, sr, sc, srr, scc, src, bbox = _shape_sums(ids, h, w, k)
    shape = _shape_features(area, perim, sr, sc, srr, scc, src, bbox, _MIN_VARIANCE)
    del sr, sc, srr, scc, src, bbox

    map_names: list[str] = []
    means: list[np.ndarray] = []
    sds: list[np.ndarray] = []
    for name, fmap in feature_maps:
        fmap = np.asarray(fmap)
        if fmap.shape != (h, w):
            raise ValueError(f"feature map {name!r} has shape {fmap.shape}, the cluster ids have {(h, w)}")
        if fmap.dtype != np.float32:
            fmap = fmap.astype(np.float64)  # one compiled kernel per float width, none per int type
        mean = np.empty(k, np.float64)
        sd = np.empty(k, np.float64)
        _moments(ids, np.ascontiguousarray(fmap).reshape(-1), first, area, mean, sd)
        map_names.append(str(name))
        means.append(mean)
        sds.append(sd)
        # the generator computes the next map while this name is still bound: drop it first, so at
        # most one map is alive at a time
        del fmap
    names = object_feature_names(map_names)

    p = len(means)
    mean_pk = np.stack(means) if p else np.zeros((0, k), np.float64)
    del means
    nbr_pk = np.empty_like(mean_pk)
    _neighbour_means(ptr, nbr, area.astype(np.float64), mean_pk, nbr_pk)

    out = np.empty((k, len(names)), np.float32)
    col = {n: i for i, n in enumerate(names)}
    for j, n in enumerate(map_names):
        out[:, col[f"mean_{n}"]] = mean_pk[j]
        out[:, col[f"sd_{n}"]] = sds[j]
        out[:, col[f"contrast_{n}"]] = mean_pk[j] - nbr_pk[j]  # from float64, not the rounded columns
    for j, n in enumerate(SHAPE_FEATURES):
        out[:, col[n]] = shape[:, j]
    out[:, col["n_neighbours"]] = np.diff(ptr)
    return out, names


def cluster_class_shares(cluster_ids: np.ndarray, n_clusters: int, masks: np.ndarray) -> np.ndarray:
    """The share of each cluster's pixels inside each class mask: float32 (K, C) in [0, 1].

    The training target of an object-level model (row k = cluster k, column c = class c).

    Parameters
    ----------
    cluster_ids:
        int (H, W), values ``0..n_clusters-1``.
    n_clusters:
        K.
    masks:
        uint8 (or bool) (C, H, W) class masks, nonzero = inside the class (``sattag.labels`` rasters).

    An empty cluster gets 0 for every class.
    """
    ids = _flat_ids(cluster_ids, n_clusters)
    k = int(n_clusters)
    h, w = np.shape(cluster_ids)
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[1:] != (h, w):
        raise ValueError(f"masks must have shape (C, {h}, {w}) like the cluster ids, got {masks.shape}")
    if masks.dtype == np.bool_:
        masks = masks.view(np.uint8)
    elif masks.dtype != np.uint8:
        masks = masks != 0  # any other dtype: nonzero counts, as for uint8
        masks = masks.view(np.uint8)
    masks = np.ascontiguousarray(masks).reshape(masks.shape[0], -1)
    counts = np.zeros((k, masks.shape[0]), np.int64)
    _mask_counts(ids, masks, counts)
    area = np.bincount(ids, minlength=k)[:k]
    return (counts / np.maximum(area, 1)[:, None]).astype(np.float32)


# ------------------------------------------------------------------------------------------ rows file
def write_object_rows(path, parts: Sequence[np.ndarray]) -> int:
    """Write object rows to ``path`` (``.npy``) atomically, the ``parts`` (each float32 (K_i, F), e.g. a
    scene's rows under each light) one after the other, without joining them in memory first.
    Returns the number of rows written. A disk without room for them raises
    :class:`~sattag.errors.DiskSpaceError` before anything is written."""
    from sattag._files import atomic_path, check_free_space

    parts = [np.asarray(p, np.float32) for p in parts]
    widths = {p.shape[1] for p in parts}
    if len(widths) != 1:
        raise ValueError(f"write_object_rows: parts with {sorted(widths)} columns")
    shape = (sum(len(p) for p in parts), widths.pop())
    check_free_space(Path(path).parent, shape[0] * shape[1] * 4, "the object rows")
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        start = 0
        for p in parts:
            out[start:start + len(p)] = p
            start += len(p)
        out.flush()
        del out
    return shape[0]


def read_object_rows(path) -> np.ndarray:
    """The rows :func:`write_object_rows` wrote, memory-mapped read-only: float32 (K, F). Only the rows
    a caller indexes are read from disk, so a process can draw from many scenes' rows without holding
    them. A missing or unreadable file raises :class:`~sattag.errors.SattagError` naming it."""
    from sattag.errors import SattagError

    try:
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SattagError(f"cannot read object rows: {e}", path) from None
    if rows.ndim != 2 or rows.dtype != np.float32:
        raise SattagError(f"object rows must be float32 (K, F), found {rows.dtype} {rows.shape}", path)
    return rows

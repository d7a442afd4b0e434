"""Spectral clustering of adjacent pixels (region growing) and the merge of small clusters.

Algorithm
---------
1. **Quantise** the band-first stack (B, H, W) float32 in [0, 1] once into a pixel-interleaved
   uint16 copy (H*W, B) (value * 65535, rounded; NaN -> 0). It is half the size of the float stack and
   puts the B values of a pixel in one cache line, which is what the growing reads. The quantisation
   step (1/65535 ~ 1.5e-5) is ~2000x finer than the default 3 % tolerance.
2. **Grow** clusters: a sequential scan of the pixels in raster order; the first pixel not yet in a
   cluster seeds a new one, which grows breadth-first (FIFO queue, neighbours in the fixed order up,
   left, right, down) over the 4-neighbourhood. A neighbour joins while, in *every* band,
   ``|pixel - running mean| <= tolerance`` (tolerance as a share of the band's [0, 1] range). The test
   runs in exact integer arithmetic, ``|q * n - S| <= floor(T * n)`` with ``S`` the cluster's sum of
   quantised values, ``n`` its size and ``T = tolerance * 65535``, so it never divides and never
   rounds differently. A neighbour that belongs to an *earlier* cluster is recorded as an adjacency
   (every pair of adjacent clusters a < b is seen when b grows, because a was complete by then).
3. **Merge** clusters under ``min_size`` px: repeated passes over the clusters in id order; each
   small cluster joins the adjacent cluster whose mean spectrum is closest (Euclidean distance over
   bands; ties: the lower id), means and sizes are updated at once (union-find), and passes repeat
   until a pass merges nothing. A small cluster with no neighbour (the scene is one cluster) stays.
   That is ``merge="sequential"``, the seed's: each merge moves a mean the next comparisons use, so
   a change anywhere can re-draw clusters far away. ``merge="simultaneous"`` is local: in each pass
   every small cluster finds its closest neighbour by the means at the start of the pass; a small
   cluster that another one chose stays and takes it in, the others move to their choice, two that
   chose each other join (no chains of small clusters in one pass); means are recomputed and passes
   repeat until none merges. On imagery a change then moves clusters only a few tens of px away, so
   a tile of a larger scene, clustered with a margin, has the whole scene's clusters.
4. **Relabel** the surviving clusters 0..K-1 in order of their first pixel (raster order), and
   compute the table: size, bounding box, exact mean spectrum from the original float32 stack
   (float64 sums), and the cluster adjacency as CSR arrays.

Determinism
-----------
The result is bitwise the same whatever the number of numba threads:

* the growing (2) and merging (3) are single-threaded loops in a fixed order (raster order, id order),
  but for the simultaneous merge's search for each small group's closest neighbour, which runs groups
  in parallel and keeps each group's least (distance, id): the same answer in any order, so they do
  not depend on any scheduling;
* the parallel parts are pure per-element maps (quantising (1) and relabelling (4): each output
  element is written by exactly one iteration from inputs nobody writes) and per-cluster reductions
  in a fixed order: the mean spectra are summed with ``prange`` over *bands*, each band by one thread
  summing its pixels sequentially in raster order (runs of one cluster id along a row first), so
  every float64 sum has the same order of additions with 1 or 16 threads. Sizes and bounding boxes are integer counts and min/max, computed
  sequentially.

Memory: besides the input stack, the uint16 copy (B*H*W*2 bytes, 0.45 GiB for a 20-band DSTL scene),
the cluster-id image and the FIFO queue (4 bytes/px each) and per-cluster arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from sattag.config import ClusterConfig
from sattag.errors import InputError

_QMAX = 65535


@dataclass
class ClusterTable:
    """The clusters of one scene.

    Attributes
    ----------
    ids:
        int32 (K,), ``0..K-1``: the values in the cluster-id image; row ``k`` of every array is cluster ``k``.
    sizes:
        int64 (K,), pixels per cluster.
    means:
        float32 (K, B), mean spectrum (band values in [0, 1], stack band order).
    bbox:
        int32 (K, 4), ``row0, col0, row1, col1`` with row1/col1 exclusive.
    neighbour_ptr, neighbour_ids:
        CSR adjacency (4-neighbourhood): the neighbours of cluster ``k`` are
        ``neighbour_ids[neighbour_ptr[k]:neighbour_ptr[k + 1]]`` (sorted, int32); ``neighbour_ptr`` is
        int64 (K + 1,).
    initial_clusters:
        number of clusters grown before small ones were merged (for reports).
    """

    ids: np.ndarray
    sizes: np.ndarray
    means: np.ndarray
    bbox: np.ndarray
    neighbour_ptr: np.ndarray
    neighbour_ids: np.ndarray
    initial_clusters: int = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def neighbours(self, k: int) -> np.ndarray:
        """Ids of the clusters adjacent to cluster ``k`` (sorted int32)."""
        return self.neighbour_ids[self.neighbour_ptr[k]:self.neighbour_ptr[k + 1]]

    def to_frame(self, bands: tuple[str, ...] | None = None) -> pd.DataFrame:
        """One row per cluster: id, size, bounding box, mean per band (columns ``mean_<band>``)."""
        b = self.means.shape[1]
        names = bands if bands is not None and len(bands) == b else tuple(str(i) for i in range(b))
        df = pd.DataFrame({"cluster": self.ids, "size": self.sizes,
                           "row0": self.bbox[:, 0], "col0": self.bbox[:, 1],
                           "row1": self.bbox[:, 2], "col1": self.bbox[:, 3]})
        means = pd.DataFrame(self.means, columns=[f"mean_{n}" for n in names])
        return pd.concat([df, means], axis=1)


# --------------------------------------------------------------------------------------------- numba
@njit(parallel=True, cache=True)
def _quantise(data):
    """(B, H, W) float32 -> (H*W, B) uint16, value*65535 rounded, clipped to [0, 1], NaN -> 0."""
    nb, h, w = data.shape
    q = np.empty((h * w, nb), np.uint16)
    for r in prange(h):
        base = r * w
        for b in range(nb):
            for c in range(w):
                v = data[b, r, c]
                if v > 0.0:  # False for NaN
                    if v >= 1.0:
                        q[base + c, b] = _QMAX
                    else:
                        q[base + c, b] = np.uint16(v * _QMAX + 0.5)
                else:
                    q[base + c, b] = 0
    return q


@njit(cache=True)
def _grow(q, h, w, tol):
    """Region growing in raster order; see the module docstring.

    Returns cluster_ids (H*W,) int32, k (clusters), means (k, B) float64 in quantised units, sizes (k,)
    int64, edges (e, 2) int32 pairs (earlier, later) of adjacent clusters.
    """
    n_px = h * w
    nb = q.shape[1]
    cluster_ids = np.full(n_px, -1, np.int32)
    queue = np.empty(n_px, np.int32)
    sums = np.zeros(nb, np.int64)
    lim = np.zeros(nb, np.int64)
    cap = 4096
    means = np.empty((cap, nb), np.float32)
    sizes = np.empty(cap, np.int64)
    mark = np.full(cap, -1, np.int32)
    ecap = 16384
    edges = np.empty((ecap, 2), np.int32)
    ne = 0
    k = 0
    for seed in range(n_px):
        if cluster_ids[seed] >= 0:
            continue
        if k == cap:  # grow the per-cluster arrays (amortised doubling)
            cap *= 2
            m2 = np.empty((cap, nb), np.float32)
            m2[:k] = means[:k]
            means = m2
            s2 = np.empty(cap, np.int64)
            s2[:k] = sizes[:k]
            sizes = s2
            k2 = np.full(cap, -1, np.int32)
            k2[:k] = mark[:k]
            mark = k2
        cluster_ids[seed] = k
        for b in range(nb):
            sums[b] = q[seed, b]
        n = 1
        for b in range(nb):
            lim[b] = np.int64(tol[b] * n)
        head = 0
        tail = 1
        queue[0] = seed
        while head < tail:
            p = queue[head]
            head += 1
            r = p // w
            c = p - r * w
            for d in range(4):
                if d == 0:
                    if r == 0:
                        continue
                    nbp = p - w
                elif d == 1:
                    if c == 0:
                        continue
                    nbp = p - 1
                elif d == 2:
                    if c == w - 1:
                        continue
                    nbp = p + 1
                else:
                    if r == h - 1:
                        continue
                    nbp = p + w
                lab = cluster_ids[nbp]
                if lab == k:
                    continue
                if lab >= 0:  # an earlier, finished cluster: record the adjacency once per pair
                    if mark[lab] != k:
                        mark[lab] = k
                        if ne == ecap:
                            ecap *= 2
                            e2 = np.empty((ecap, 2), np.int32)
                            e2[:ne] = edges[:ne]
                            edges = e2
                        edges[ne, 0] = lab
                        edges[ne, 1] = k
                        ne += 1
                    continue
                ok = True
                for b in range(nb):
                    diff = np.int64(q[nbp, b]) * n - sums[b]
                    if diff > lim[b] or -diff > lim[b]:
                        ok = False
                        break
                if ok:
                    cluster_ids[nbp] = k
                    for b in range(nb):
                        sums[b] += q[nbp, b]
                    n += 1
                    for b in range(nb):
                        lim[b] = np.int64(tol[b] * n)
                    queue[tail] = nbp
                    tail += 1
        sizes[k] = n
        for b in range(nb):
            means[k, b] = sums[b] / n
        k += 1
    return cluster_ids, k, means[:k].copy(), sizes[:k].copy(), edges[:ne].copy()


@njit(cache=True)
def _csr(n_nodes, a, b):
    """Symmetric CSR adjacency from undirected edges (a[i], b[i]), self-edges dropped, rows sorted and
    de-duplicated."""
    counts = np.zeros(n_nodes + 1, np.int64)
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            counts[a[i] + 1] += 1
            counts[b[i] + 1] += 1
    for i in range(n_nodes):
        counts[i + 1] += counts[i]
    fill = counts[:-1].copy()
    idx = np.empty(counts[n_nodes], np.int32)
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            idx[fill[a[i]]] = b[i]
            fill[a[i]] += 1
            idx[fill[b[i]]] = a[i]
            fill[b[i]] += 1
    # sort + unique each row, compacting in place. Rows are short (a full DSTL scene has ~7.5 million
    # initial clusters of ~4 neighbours): an insertion sort in place, no array per row (np.sort's
    # copy per row took 2.2 s of a full-size scene's clustering).
    ptr = np.zeros(n_nodes + 1, np.int64)
    out = 0
    for v in range(n_nodes):
        s0, s1 = counts[v], counts[v + 1]
        if s1 - s0 > 32:
            idx[s0:s1].sort()
        else:
            for i in range(s0 + 1, s1):
                x = idx[i]
                j = i - 1
                while j >= s0 and idx[j] > x:
                    idx[j + 1] = idx[j]
                    j -= 1
                idx[j + 1] = x
        last = -1
        for i in range(s0, s1):
            x = idx[i]
            if x != last:
                idx[out] = x
                out += 1
                last = x
        ptr[v + 1] = out
    return ptr, idx[:out].copy()


@njit(cache=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def _sq_distance(means, a, b, nb):
    """Squared Euclidean distance of the mean spectra of clusters ``a`` and ``b`` (float64)."""
    d = 0.0
    for k in range(nb):
        t = np.float64(means[a, k]) - np.float64(means[b, k])
        d += t * t
    return d


@njit(cache=True)
def _group_closest(r, parent, nxt, ptr, idx, means, flat):
    """The adjacent group of closest mean to group ``r`` over all its initial clusters (member chain
    ``nxt``) and the squared distance: the least (distance, id), -1 when it has no neighbour.
    ``flat``: ``parent`` points straight at roots and is only read (safe in parallel); else roots are
    found with path halving."""
    nb = means.shape[1]
    best = -1
    best_d = np.inf
    m = r
    while m != -1:
        for j in range(ptr[m], ptr[m + 1]):
            o = parent[idx[j]] if flat else _find(parent, idx[j])
            if o == r:
                continue
            d = _sq_distance(means, r, o, nb)
            if d < best_d or (d == best_d and o < best):
                best_d = d
                best = o
        m = nxt[m]
    return best, best_d


@njit(cache=True)
def _merge_small(means, sizes, ptr, idx, min_size):
    """Merge clusters under ``min_size`` into the adjacent cluster of closest mean; returns parent."""
    k0 = sizes.shape[0]
    nb = means.shape[1]
    parent = np.arange(k0).astype(np.int32)
    nxt = np.full(k0, -1, np.int32)  # member chains: root -> ... -> last member
    last = np.arange(k0).astype(np.int32)
    changed = True
    while changed:
        changed = False
        for r in range(k0):
            if parent[r] != r or sizes[r] >= min_size:
                continue
            best, _ = _group_closest(r, parent, nxt, ptr, idx, means, False)
            if best < 0:
                continue  # nothing to merge with
            nr = sizes[r]
            nbest = sizes[best]
            tot = nr + nbest
            for b in range(nb):
                means[best, b] = (np.float64(means[best, b]) * nbest + np.float64(means[r, b]) * nr) / tot
            sizes[best] = tot
            parent[r] = best
            nxt[last[best]] = r
            last[best] = last[r]
            changed = True
    return parent


@njit(parallel=True, cache=True)
def _closest_neighbours(small, n_small, parent, nxt, ptr, idx, gmean, best, best_d):
    """For each small group ``small[:n_small]`` (a root), the adjacent group of closest mean and its
    squared distance, over every initial cluster of the group (its member chain ``nxt``). ``parent``
    must point straight at roots (read only here). Groups in parallel; each group's answer is the
    least (distance, id), so it does not depend on the order or the number of threads."""
    for i in prange(n_small):
        r = small[i]
        best[r], best_d[r] = _group_closest(r, parent, nxt, ptr, idx, gmean, True)


@njit(cache=True)
def _merge_small_simultaneous(means, sizes, ptr, idx, min_size):
    """Merge clusters under ``min_size`` into the adjacent cluster of closest mean, every small group
    of a pass at once (see the module docstring, step 3); returns parent (roots: the smallest id of
    each merged group).

    Each pass visits only the groups that are still small (groups only grow: a full DSTL scene starts
    with ~7.5 million initial clusters, nearly all small, and 8 passes later has none), looking for
    their closest neighbours in parallel (:func:`_closest_neighbours`), and updates only the means of
    the groups that merged, from the old groups' means and sizes."""
    k0 = sizes.shape[0]
    nb = means.shape[1]
    parent = np.arange(k0).astype(np.int32)
    nxt = np.full(k0, -1, np.int32)  # member chains: root -> ... -> last member
    last = np.arange(k0).astype(np.int32)
    gsize = sizes.astype(np.int64)
    gmean = means.astype(np.float64)  # (k0, nb): the only array of that size
    best = np.full(k0, -1, np.int32)
    best_d = np.empty(k0, np.float64)
    stamp = np.full(k0, -1, np.int32)  # the pass in which a root was last a small group
    targeted = np.full(k0, -1, np.int32)  # the pass in which a root was last chosen
    opened = np.full(k0, -1, np.int32)  # the pass in which a new root's mean became a sum
    small = np.empty(k0, np.int32)
    n_small = 0
    for a in range(k0):
        if sizes[a] < min_size:
            small[n_small] = a
            n_small += 1
    moved = np.empty(2 * k0, np.int32)
    step = 0
    while n_small > 0:
        for i in range(n_small):
            stamp[small[i]] = step
        # Every small group's closest neighbour, from the means at the start of the pass.
        _closest_neighbours(small, n_small, parent, nxt, ptr, idx, gmean, best, best_d)
        # No chains within a pass: a small cluster that another one chose stays put and takes it
        # in (as the seed's one-by-one merge grows its targets first); the others move, and two
        # that chose each other join. Chains joined strings of unlike small clusters into one
        # mixed cluster in a single pass (thin roads in panchromatic imagery were lost to them).
        for i in range(n_small):
            r = small[i]
            if best[r] >= 0:
                targeted[best[r]] = step
        n_moved = 0
        for i in range(n_small):
            r = small[i]
            t = best[r]
            if t < 0:
                continue
            if targeted[r] == step and not (stamp[t] == step and best[t] == r):
                continue
            x = _find(parent, r)
            y = _find(parent, t)
            if x != y:
                if x < y:
                    parent[y] = x
                else:
                    parent[x] = y
            moved[n_moved] = r
            moved[n_moved + 1] = t
            n_moved += 2
        if n_moved == 0:
            break
        # The merged groups' means: each new root's mean becomes a sum of (mean x size) over the old
        # groups it took in, then a mean again; their member chains are joined. Old groups not
        # merged keep theirs.
        for i in range(n_moved):
            root = _find(parent, moved[i])
            if opened[root] != step:
                opened[root] = step
                for b in range(nb):
                    gmean[root, b] *= gsize[root]
        for i in range(n_moved):
            g = moved[i]
            root = _find(parent, g)
            if root != g and opened[g] != step:  # an old group merged away, counted once
                opened[g] = step
                for b in range(nb):
                    gmean[root, b] += gmean[g, b] * gsize[g]
                gsize[root] += gsize[g]
                nxt[last[root]] = g
                last[root] = last[g]
        for i in range(n_moved):
            root = _find(parent, moved[i])
            if opened[root] == step:
                for b in range(nb):
                    gmean[root, b] /= gsize[root]
                opened[root] = -2  # divided once
        for a in range(k0):  # every id straight to its root, for the parallel search
            parent[a] = _find(parent, a)
        # The next pass's small groups: the roots of this pass's small groups still under min_size.
        kept = 0
        for i in range(n_small):
            root = parent[small[i]]
            if gsize[root] < min_size and stamp[root] != step + 1:
                stamp[root] = step + 1
                small[kept] = root
                kept += 1
        n_small = kept
        step += 1
    return parent


@njit(cache=True)
def _new_ids(parent):
    k0 = parent.shape[0]
    new = np.empty(k0, np.int32)
    k = 0
    for r in range(k0):
        if _find(parent, r) == r:
            new[r] = k
            k += 1
    for r in range(k0):
        new[r] = new[_find(parent, r)]
    return new, k


@njit(parallel=True, cache=True)
def _relabel(cluster_ids, new):
    n = cluster_ids.shape[0]
    for i in prange(n):
        cluster_ids[i] = new[cluster_ids[i]]


@njit(cache=True)
def _size_bbox(cluster_ids, h, w, k):
    sizes = np.zeros(k, np.int64)
    bbox = np.empty((k, 4), np.int32)
    bbox[:, 0] = h
    bbox[:, 1] = w
    bbox[:, 2] = 0
    bbox[:, 3] = 0
    for r in range(h):
        for c in range(w):
            lab = cluster_ids[r * w + c]
            sizes[lab] += 1
            if r < bbox[lab, 0]:
                bbox[lab, 0] = r
            if c < bbox[lab, 1]:
                bbox[lab, 1] = c
            if r + 1 > bbox[lab, 2]:
                bbox[lab, 2] = r + 1
            if c + 1 > bbox[lab, 3]:
                bbox[lab, 3] = c + 1
    return sizes, bbox


@njit(parallel=True, cache=True)
def _band_sums(data, cluster_ids, k):
    """float64 (B, K) per-cluster sums; one band per prange iteration, raster order inside."""
    nb, h, w = data.shape
    sums = np.zeros((nb, k), np.float64)
    for b in prange(nb):
        for r in range(h):
            base = r * w
            # runs of one cluster id along a row are summed in a register first: no store->load chain
            cur = cluster_ids[base]
            acc = 0.0
            for c in range(w):
                lab = cluster_ids[base + c]
                if lab != cur:
                    sums[b, cur] += acc
                    cur = lab
                    acc = 0.0
                acc += data[b, r, c]
            sums[b, cur] += acc
    return sums


# ---------------------------------------------------------------------------------------------- API
def spread_step(height: int, width: int, max_px: int = 1_000_000) -> int:
    """The stride of the regular subsample :func:`band_spread` measures on an (H, W) scene: every
    ``step``-th row and column, so that at most ~``max_px`` pixels are read
    (:func:`sattag.scene.sample_step`)."""
    from sattag.scene import sample_step

    return sample_step(height, width, max_px)


def spread_from_percentiles(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The spread :func:`band_spread` gives, from the bands' 1st and 99th percentiles measured
    elsewhere (a stack records them on the same subsample when it is built): float64 (B,)."""
    return np.maximum(np.asarray(high, np.float64) - np.asarray(low, np.float64), 1.0 / _QMAX)


def band_spread(data: np.ndarray, low: float = 1.0, high: float = 99.0, max_px: int = 1_000_000,
                step: int | None = None) -> np.ndarray:
    """Robust spread of each band: its ``high`` minus its ``low`` percentile, float64 (B,).

    Measured on a regular subsample, every :func:`spread_step`-th row and column (deterministic);
    never below one quantisation step. Imagery that fills a small part of its bit depth (a dark 13-bit
    panchromatic scene) has a small spread, so a tolerance relative to it clusters as finely as on
    bright imagery. ``step=1`` with ``data`` already that subsample (a scene too large to read whole,
    sampled from its file) gives the same spread as the whole scene.
    """
    nb, h, w = data.shape
    step = spread_step(h, w, max_px) if step is None else int(step)
    sub = data[:, ::step, ::step].reshape(nb, -1)
    lo, hi = np.nanpercentile(sub, [low, high], axis=1)
    return spread_from_percentiles(lo, hi)


def tolerance_units(tolerance: float, tolerance_of: str, spread: np.ndarray | None, nb: int) -> np.ndarray:
    """The per-band tolerance in band units ([0, 1] values), float64 (B,): ``tolerance`` times 1
    (``tolerance_of="range"``) or times the band's spread (``"spread"``; ``spread`` from
    :func:`band_spread`)."""
    if tolerance_of == "range":
        return np.full(nb, float(tolerance))
    if tolerance_of == "spread":
        if spread is None or len(spread) != nb:
            raise ValueError(f"tolerance_of='spread' needs the {nb} bands' spread")
        return float(tolerance) * np.asarray(spread, np.float64)
    raise ValueError(f"tolerance_of must be 'range' or 'spread', got {tolerance_of!r}")


def cluster_pixels(data: np.ndarray, tolerance: float = ClusterConfig.tolerance,
                   min_size: int = ClusterConfig.min_size,
                   tolerance_of: str = ClusterConfig.tolerance_of,
                   spread: np.ndarray | None = None,
                   merge: str = ClusterConfig.merge) -> tuple[np.ndarray, ClusterTable]:
    """Group adjacent pixels of similar spectrum into clusters.

    Parameters
    ----------
    data:
        float32 (B, H, W) band stack, values in [0, 1] (values outside are clipped for the growing
        test; NaN counts as 0 there).
    tolerance:
        a 4-neighbour joins a cluster while every band is within ``tolerance`` of the cluster's running
        mean, as a share of the band's [0, 1] range (``tolerance_of="range"``, the seed's rule) or of
        the band's robust spread in this scene (``"spread"``: 1st to 99th percentile,
        :func:`band_spread`).
    spread:
        float (B,), the bands' spread when known already (a tile of a larger scene clusters with
        its scene's spread, so that every tile uses one rule); default: measured on ``data``.
    min_size:
        clusters under this many pixels are merged into the adjacent cluster of closest mean spectrum
        (1 or less: no merging).
    merge:
        ``"sequential"`` (the seed's): one small cluster after another in id order, means updated
        after each merge; ``"simultaneous"``: in passes, every small cluster of a pass by the means
        at the start of the pass, which keeps a change local (module docstring, step 3).

    Returns
    -------
    cluster_ids:
        int32 (H, W), cluster id 0..K-1 of every pixel (ids in raster order of first pixel).
    table:
        :class:`ClusterTable` with sizes, exact mean spectra, bounding boxes and adjacency.

    The result does not depend on the number of numba threads (see the module docstring).
    """
    if merge not in ("simultaneous", "sequential"):
        raise ValueError(f"merge must be 'simultaneous' or 'sequential', got {merge!r}")
    if data.ndim != 3 or min(data.shape) == 0:
        raise InputError(f"cluster_pixels needs a (bands, H, W) stack, got shape {data.shape}")
    if not 0.0 <= tolerance <= 1.0:
        raise InputError(f"cluster tolerance must be in [0, 1], got {tolerance}")
    if data.shape[1] * data.shape[2] >= 2**31 - 1:
        raise InputError(f"scene of {data.shape[1]}x{data.shape[2]} px is too large for int32 cluster ids")
    # No copy for float32, even for a window's view of a larger array (a tile's core within the
    # window its features need): the kernels index (b, r, c) and take any strides.
    data = np.asarray(data, dtype=np.float32)
    nb, h, w = data.shape
    q = _quantise(data)
    if tolerance_of == "spread" and spread is None:
        spread = band_spread(data)
    tolerance_units(tolerance, tolerance_of, spread, nb)  # checks the rule and the spread's length
    scale = np.ones(nb, np.float64) if tolerance_of == "range" else np.asarray(spread, np.float64)
    cluster_ids, k0, qmeans, sizes, edges = _grow(q, h, w, float(tolerance) * _QMAX * scale)
    del q
    ptr0, idx0 = _csr(k0, edges[:, 0], edges[:, 1])
    if min_size > 1 and k0 > 1 and merge == "simultaneous":
        parent = _merge_small_simultaneous(qmeans, sizes, ptr0, idx0, int(min_size))
    elif min_size > 1 and k0 > 1:
        parent = _merge_small(qmeans, sizes, ptr0, idx0, int(min_size))
    else:
        parent = np.arange(k0, dtype=np.int32)
    del qmeans
    new, k = _new_ids(parent)
    _relabel(cluster_ids, new)
    ptr, idx = _csr(k, new[edges[:, 0]], new[edges[:, 1]])
    sizes, bbox = _size_bbox(cluster_ids, h, w, k)
    sums = _band_sums(data, cluster_ids, k)
    means = (sums / sizes[None, :]).T.astype(np.float32)
    table = ClusterTable(ids=np.arange(k, dtype=np.int32), sizes=sizes, means=np.ascontiguousarray(means),
                         bbox=bbox, neighbour_ptr=ptr, neighbour_ids=idx, initial_clusters=int(k0))
    return cluster_ids.reshape(h, w), table

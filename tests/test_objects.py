"""Object-level features: names, shape features on hand-drawn clusters, per-cluster statistics against
numpy, neighbour means on a hand layout, class shares, and the errors on bad input."""
from __future__ import annotations

import math
import re
import weakref

import numpy as np
import pytest

from sattag.features import FeatureSet, cluster_features, feature_maps
from sattag.features.objects import SHAPE_FEATURES, cluster_class_shares, object_feature_names, object_features


def _no_neighbours(k):
    return np.zeros(k + 1, np.int64), np.zeros(0, np.int32)


def _csr(k, pairs):
    """CSR adjacency (ptr int64 (K+1,), ids int32) from undirected pairs."""
    rows = [set() for _ in range(k)]
    for a, b in pairs:
        rows[a].add(b)
        rows[b].add(a)
    ptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    ids = np.array([x for r in rows for x in sorted(r)], np.int32)
    return ptr, ids


def _column(feats, names, name):
    return feats[:, names.index(name)]


def _neighbour_mean(feats, names, n):
    """The area-weighted mean of a cluster's neighbours: its mean less its contrast (no column of its own)."""
    return _column(feats, names, f"mean_{n}").astype(np.float64) - _column(feats, names, f"contrast_{n}")


def test_names_follow_the_pixel_features():
    names = object_feature_names(["R", "NDVI"])
    assert names == ("mean_R", "sd_R", "mean_NDVI", "sd_NDVI",
                     "area_px", "perimeter_px", "elongation", "compactness", "bbox_fill",
                     "contrast_R", "contrast_NDVI", "n_neighbours")
    assert object_feature_names([]) == SHAPE_FEATURES + ("n_neighbours",)
    with pytest.raises(ValueError, match="pixel feature names must be unique, repeated: R$"):
        object_feature_names(["R", "G", "R"])


# ------------------------------------------------------------------------------------------- shape
def _shape_scene():
    """16 x 50 px: background 0, a 2 x 40 line 1, a 9 x 9 square 2, a disk of radius 5 3, a 1 x 10
    line on the border 4, a single pixel 5, a 2-px-wide diagonal staircase 6."""
    ids = np.zeros((16, 50), np.int32)
    ids[1:3, 2:42] = 1
    ids[4:13, 20:29] = 2
    rr, cc = np.mgrid[:16, :50]
    ids[(rr - 9) ** 2 + (cc - 40) ** 2 <= 25] = 3
    ids[15, 0:10] = 4
    ids[14, 20] = 5
    for r in range(4, 14):
        ids[r, r - 2:r] = 6
    return ids


def _numpy_perimeter(ids, k):
    padded = np.pad(ids, 1, constant_values=-1)
    inner = padded[1:-1, 1:-1]
    sides = sum((inner != s).astype(np.int64) for s in
                (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]))
    return np.bincount(ids.ravel(), weights=sides.ravel(), minlength=k)


def test_shape_features_of_hand_drawn_clusters():
    ids = _shape_scene()
    k = 7
    feats, names = object_features(ids, k, iter(()), *_no_neighbours(k))
    area, perim, elong, compact, fill = (_column(feats, names, n) for n in SHAPE_FEATURES)

    np.testing.assert_array_equal(area, np.bincount(ids.ravel(), minlength=k))
    np.testing.assert_array_equal(perim, _numpy_perimeter(ids, k))
    # by hand: the 2 x 40 line, the 9 x 9 square, the pixel; the background: the image border
    # 2 * (16 + 50) and every side of the others (no two of them touch), less the border line's 11 sides
    # on the border, which are neither
    assert (perim[1], perim[2], perim[5]) == (84, 36, 4)
    assert perim[0] == 2 * (16 + 50) + perim[1:].sum() - 2 * 11

    # the long thin line: var along = (40^2 - 1) / 12, across = 1/4
    assert elong[1] > 5
    np.testing.assert_allclose(elong[1], math.sqrt((1599 / 12) / 0.25), rtol=1e-6)
    assert abs(elong[2] - 1) < 0.05 and abs(elong[3] - 1) < 0.05
    # a 1-px line: its across variance is floored at 1/12, so sqrt(((10^2 - 1) / 12) / (1 / 12))
    np.testing.assert_allclose(elong[4], math.sqrt(99), rtol=1e-6)
    assert elong[5] == pytest.approx(1.0)
    # the diagonal staircase needs the cross moment: its row and column variances alone are equal
    r, c = np.nonzero(ids == 6)
    lam = np.linalg.eigvalsh(np.cov(np.stack([r, c]).astype(float), bias=True))
    lam = np.maximum(lam, 1 / 12)
    np.testing.assert_allclose(elong[6], math.sqrt(lam[1] / lam[0]), rtol=1e-5)
    assert elong[6] > 5

    np.testing.assert_allclose(compact, 4 * np.pi * area / perim.astype(np.float64) ** 2, rtol=1e-6)
    np.testing.assert_allclose(compact[2], np.pi / 4, rtol=1e-6)
    assert compact[1] < 0.5 * compact[2] and compact[3] < compact[2]

    bbox_area = []
    for j in range(k):
        rr, cc = np.nonzero(ids == j)
        bbox_area.append((np.ptp(rr) + 1) * (np.ptp(cc) + 1))
    np.testing.assert_allclose(fill, area / np.array(bbox_area), rtol=1e-6)
    assert fill[1] == 1.0 and fill[2] == 1.0 and fill[0] < 0.9 and 0.6 < fill[3] < 0.9


def test_an_empty_cluster_gets_zeros_and_no_weight():
    ids = np.array([[0, 0, 2], [0, 0, 2]], np.int32)  # cluster 1 has no pixel
    ptr, nbr = _csr(3, [(0, 1), (0, 2), (1, 2)])
    m = np.array([[1, 2, 10], [3, 4, 20]], np.float32)
    feats, names = object_features(ids, 3, [("m", m)], ptr, nbr)
    row = dict(zip(names, feats[1]))
    assert row["area_px"] == 0 and row["mean_m"] == 0 and row["elongation"] == 1 and row["compactness"] == 0
    # cluster 0's neighbours: 1 (empty, weight 0) and 2
    assert _neighbour_mean(feats, names, "m")[0] == 15.0


# ----------------------------------------------------------------------------------------- statistics
def test_means_and_sds_equal_numpy_per_cluster():
    rng = np.random.default_rng(5)
    k = 8  # cluster 7 has no pixel
    ids = rng.integers(0, 7, size=(30, 40)).astype(np.int32)
    maps = {"a": rng.random((30, 40), dtype=np.float32),
            "b": rng.normal(size=(30, 40)).astype(np.float32),
            # far from zero with a small spread: sum(x^2) - n * mean^2 would lose the spread
            "far": 1e4 + 1e-3 * rng.random((30, 40))}
    alive = []

    def make(name):
        m = maps[name].copy()
        alive.append(weakref.ref(m))
        return m

    def one_at_a_time():
        for name in maps:
            # the previous map was let go before the next is made
            assert all(ref() is None for ref in alive), "object_features still holds a map"
            yield name, make(name)

    feats, names = object_features(ids, k, one_at_a_time(), *_no_neighbours(k))
    assert feats.shape == (k, len(names)) == (k, 3 * 3 + 6) and feats.dtype == np.float32
    assert len(alive) == 3
    for name, m in maps.items():
        mean = _column(feats, names, f"mean_{name}")
        sd = _column(feats, names, f"sd_{name}")
        want_mean = [m[ids == j].astype(np.float64).mean() for j in range(7)]
        want_sd = [m[ids == j].astype(np.float64).std() for j in range(7)]
        np.testing.assert_allclose(mean[:7], want_mean, rtol=1e-6, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(sd[:7], want_sd, rtol=1e-5, atol=1e-7, err_msg=name)
        assert mean[7] == 0 and sd[7] == 0
    assert _column(feats, names, "sd_far")[:7].min() > 2e-4  # the spread survived (1e-3 / sqrt(12))


def test_neighbour_means_and_contrast_on_a_hand_layout():
    # 4 x 6 px: cluster 0 = columns 0-1 (8 px), 1 = columns 2-4 (12 px), 2 = column 5 (4 px); 0-1-2 in a row
    ids = np.repeat(np.array([[0, 0, 1, 1, 1, 2]], np.int32), 4, axis=0)
    ptr = np.array([0, 1, 3, 4], np.int64)
    nbr = np.array([1, 0, 2, 1], np.int32)
    a = np.array([1.0, 4.0, 7.0], np.float32)[ids]
    b = np.random.default_rng(2).random((4, 6), dtype=np.float32)
    feats, names = object_features(ids, 3, [("a", a), ("b", b)], ptr, nbr)

    # cluster 1 sees 8 px of 1.0 and 4 px of 7.0: (8 + 28) / 12 = 3 (an unweighted mean would be 4)
    np.testing.assert_allclose(_neighbour_mean(feats, names, "a"), [4.0, 3.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(_column(feats, names, "contrast_a"), [-3.0, 1.0, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(_column(feats, names, "sd_a"), [0, 0, 0])
    mb = [b[ids == j].astype(np.float64).mean() for j in range(3)]
    want = [mb[1], (8 * mb[0] + 4 * mb[2]) / 12, mb[1]]
    np.testing.assert_allclose(_neighbour_mean(feats, names, "b"), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_column(feats, names, "contrast_b"), np.subtract(mb, want), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(_column(feats, names, "n_neighbours"), [1, 2, 1])


def test_a_cluster_without_neighbours_is_its_own_surroundings():
    ids = np.zeros((5, 5), np.int32)
    m = np.arange(25, dtype=np.float32).reshape(5, 5)
    feats, names = object_features(ids, 1, [("m", m)], *_no_neighbours(1))
    row = dict(zip(names, feats[0]))
    assert row["mean_m"] == 12.0
    assert row["contrast_m"] == 0 and row["n_neighbours"] == 0
    assert row["perimeter_px"] == 20 and row["bbox_fill"] == 1


def test_on_clusters_of_a_band_stack():
    from sattag.segment import cluster_pixels

    rng = np.random.default_rng(7)
    blocks = rng.random((3, 4, 5), dtype=np.float32)
    stack = np.repeat(np.repeat(blocks, 6, axis=1), 5, axis=2) + 0.002 * rng.random((3, 24, 25), dtype=np.float32)
    ids, table = cluster_pixels(stack, tolerance=0.03, min_size=1)
    k = len(table)
    bands = ("R", "G", "NIR")
    fs = FeatureSet("context", (3,))
    feats, names = object_features(ids, k, feature_maps(stack, bands, fs), table.neighbour_ptr, table.neighbour_ids)
    assert feats.shape == (k, len(names)) and np.isfinite(feats).all()

    means = cluster_features(stack, bands, fs, ids, k)
    got = feats[:, [names.index(f"mean_{n}") for n, _ in feature_maps(stack, bands, fs)]]
    np.testing.assert_allclose(got, means, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(_column(feats, names, "area_px"), table.sizes)
    np.testing.assert_array_equal(_column(feats, names, "n_neighbours"), np.diff(table.neighbour_ptr))
    j = bands.index("NIR")
    want = [np.average(table.means[table.neighbours(c), j], weights=table.sizes[table.neighbours(c)])
            for c in range(k)]
    np.testing.assert_allclose(_neighbour_mean(feats, names, "NIR"), want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- targets
def test_class_shares_equal_numpy():
    rng = np.random.default_rng(3)
    k = 6  # cluster 5 has no pixel
    ids = rng.integers(0, 5, size=(20, 25)).astype(np.int32)
    masks = (rng.random((3, 20, 25)) < [[[0.1]], [[0.5]], [[0.9]]]).astype(np.uint8)
    masks[1][masks[1] == 1] = 255  # nonzero is inside, whatever the value
    got = cluster_class_shares(ids, k, masks)
    assert got.shape == (k, 3) and got.dtype == np.float32
    want = np.array([[(masks[c][ids == j] != 0).mean() for c in range(3)] for j in range(5)])
    np.testing.assert_allclose(got[:5], want, rtol=1e-6)
    np.testing.assert_array_equal(got[5], [0, 0, 0])
    np.testing.assert_array_equal(cluster_class_shares(ids, k, masks != 0), got)


# -------------------------------------------------------------------------------------------- errors
def test_bad_input_is_refused_with_what_was_wrong():
    ids = np.zeros((4, 6), np.int32)
    ids[0, 0] = 2
    m = np.zeros((4, 6), np.float32)
    ptr, nbr = _no_neighbours(3)
    bad = ids.copy()
    bad[3, 5] = -1
    with pytest.raises(ValueError, match=re.escape("cluster ids must be in 0..2, got -1..2")):
        object_features(bad, 3, [("m", m)], ptr, nbr)
    with pytest.raises(ValueError, match=re.escape("cluster ids must be in 0..1, got 0..2")):
        object_features(ids, 2, [("m", m)], *_no_neighbours(2))
    with pytest.raises(ValueError, match=re.escape("feature map 'b' has shape (4, 5), the cluster ids have (4, 6)")):
        object_features(ids, 3, [("a", m), ("b", m[:, :5])], ptr, nbr)
    with pytest.raises(ValueError, match=re.escape("neighbour_ptr must have shape (4,) for 3 clusters, got (3,)")):
        object_features(ids, 3, [("m", m)], ptr[:3], nbr)
    with pytest.raises(ValueError, match=re.escape("neighbour ids must be in 0..2, got 0..3")):
        object_features(ids, 3, [("m", m)], np.array([0, 1, 2, 2]), np.array([3, 0]))
    with pytest.raises(ValueError, match=re.escape("cluster ids must be in 0..2, got -1..2")):
        cluster_class_shares(bad, 3, np.zeros((2, 4, 6), np.uint8))
    with pytest.raises(ValueError, match=re.escape("masks must have shape (C, 4, 6) like the cluster ids, got (2, 6, 4)")):
        cluster_class_shares(ids, 3, np.zeros((2, 6, 4), np.uint8))

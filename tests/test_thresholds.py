"""Thresholds tuned for the Jaccard on validation scenes, and applied by predict."""
from __future__ import annotations

import numpy as np
import pytest

from sattag.classes import ClassTable, ObjectClass
from sattag.config import PredictConfig
from sattag.learn import best_threshold, validation_scenes
from sattag.predict import threshold_flags, with_tuned_thresholds

CLASSES = ClassTable((ObjectClass(1, "Roof", "#c0392b"), ObjectClass(2, "Pond", "#2e86c1")))


def test_a_rare_class_gets_a_higher_threshold():
    rng = np.random.default_rng(0)
    p_in, p_out = rng.beta(5, 2, 2000), rng.beta(2, 5, 2000)
    common, _ = best_threshold(p_in, p_out, 1000, 1000)
    rare, j = best_threshold(p_in, p_out, 100, 100_000)
    assert 0.4 <= common <= 0.6 and rare > 0.75 and 0 < j < 1
    # the estimate is the scenes' Jaccard: every pixel counted with its weight
    t = 0.7
    tp, fp = (p_in >= t).mean() * 100, (p_out >= t).mean() * 100_000
    _, at = best_threshold(p_in, p_out, 100, 100_000, np.array([t]))
    assert at == pytest.approx(tp / (100 + fp))


def test_validation_scenes_come_from_the_training_scenes():
    split = validation_scenes(["a", "b", "c", "d", "e"], 0.25, seed=1)
    assert len(split.held_out) == 1 and set(split.train) | set(split.held_out) == set("abcde")
    assert validation_scenes(["a"], 0.25).held_out == ()


def test_tuned_thresholds_are_applied_unless_the_configuration_fixes_them():
    probs = np.array([[0.6, 0.6], [0.8, 0.3]], np.float32)
    tuned = {1: 0.7, 2: 0.25}
    cfg = with_tuned_thresholds(PredictConfig(), tuned, CLASSES)
    np.testing.assert_array_equal(threshold_flags(probs, cfg, CLASSES), [[False, True], [True, True]])
    fixed = with_tuned_thresholds(PredictConfig(thresholds={1: 0.5}), tuned, CLASSES)  # by id
    np.testing.assert_array_equal(threshold_flags(probs, fixed, CLASSES), [[True, True], [True, True]])
    assert with_tuned_thresholds(PredictConfig(), {}, CLASSES) == PredictConfig()


def test_cluster_threshold_is_the_exact_pixel_jaccard_of_painted_clusters():
    from sattag.learn import best_cluster_threshold
    from sattag.learn.thresholds import GRID

    # Two clusters: a pure one (p 0.9) and a mostly-outside one (p 0.6): above 0.6 only the pure one.
    t, j = best_cluster_threshold([0.9, 0.6], [100, 10], [0, 90])
    assert t == 0.61 and j == pytest.approx(100 / 110)
    # Against painting the clusters at every threshold, on random clusters.
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 300)
    size = rng.integers(1, 500, 300).astype(float)
    inside = np.round(size * np.clip(p + rng.normal(0, 0.3, 300), 0, 1))
    brute = [inside[p >= g].sum() / (inside.sum() + (size - inside)[p >= g].sum()) for g in GRID]
    t, j = best_cluster_threshold(p, inside, size - inside)
    assert j == pytest.approx(max(brute), abs=0.005 + 1e-9)
    assert brute[list(GRID).index(t)] == pytest.approx(j)
    assert best_cluster_threshold(p, np.zeros(300), size) == (0.5, pytest.approx(float("nan"), nan_ok=True))

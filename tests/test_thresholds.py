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


def test_tuning_folds_validate_every_training_scene_once():
    from sattag.learn import tuning_folds

    folds = tuning_folds(["a", "b", "c", "d", "e"], 2, 0.25, seed=0)
    assert len(folds) == 2
    held = [s for f in folds for s in f.held_out]
    assert sorted(held) == list("abcde")  # each scene validates exactly once
    for f in folds:
        assert not set(f.train) & set(f.held_out) and set(f.train) | set(f.held_out) == set("abcde")
    assert len(tuning_folds(["a", "b"], 5, 0.25)) == 2  # no more folds than scenes
    assert tuning_folds(["a"], 2, 0.25) == []
    one = tuning_folds(["a", "b", "c", "d"], 1, 0.25, seed=1)  # 1: the single validation split
    assert len(one) == 1 and one[0] == validation_scenes(["a", "b", "c", "d"], 0.25, seed=1)


def test_pooled_folds_pick_the_threshold_of_all_their_pixels_together():
    """A fold whose few class pixels favour a far threshold does not decide alone: the counts of
    every fold are added before the best threshold is picked."""
    from sattag.learn import cluster_threshold_counts, pooled_threshold
    from sattag.learn.thresholds import GRID

    rng = np.random.default_rng(4)
    folds = []
    for k in range(3):
        p = rng.uniform(0, 1, 400)
        size = rng.integers(1, 300, 400).astype(float)
        inside = np.round(size * np.clip(p + rng.normal(0, 0.35, 400), 0, 1))
        folds.append((p, inside, size - inside))
    t, j = pooled_threshold([cluster_threshold_counts(*f) for f in folds])
    p, inside, outside = (np.concatenate(x) for x in zip(*folds))
    brute = [inside[p >= g].sum() / (inside.sum() + outside[p >= g].sum()) for g in GRID]
    assert brute[list(GRID).index(t)] == pytest.approx(j) and j == pytest.approx(max(brute), abs=0.005 + 1e-9)
    # a tiny fold alone would pull the threshold to the far end of the grid
    tiny = (np.array([0.06, 0.3]), np.array([5.0, 0.0]), np.array([0.0, 50.0]))
    assert pooled_threshold([cluster_threshold_counts(*tiny)])[0] == 0.06
    assert pooled_threshold([cluster_threshold_counts(*f) for f in (*folds, tiny)])[0] == pytest.approx(t, abs=0.03)


def test_scene_strips_cut_across_the_longer_side_into_equal_parts():
    from sattag.learn import scene_strips

    rows, cols = np.meshgrid(np.arange(10), np.arange(40), indexing="ij")  # wider than tall
    centres = np.column_stack([rows.ravel(), cols.ravel()]).astype(np.float32)
    strip = scene_strips(centres, 4)
    assert np.bincount(strip).tolist() == [100, 100, 100, 100]
    for i in range(4):  # each strip is a band of whole columns, left to right
        assert np.ptp(centres[strip == i, 1]) == 9 and centres[strip == i, 0].min() == 0
        assert centres[strip == i, 1].min() == 10 * i
    assert set(scene_strips(centres[:, ::-1], 2)[centres[:, 1] < 20]) == {0}  # tall: top half first
    assert scene_strips(np.zeros((0, 2)), 2).size == 0


@pytest.mark.slow
def test_one_training_scene_tunes_its_thresholds_on_strips_of_itself(small_dstl, tmp_path):
    import json
    import subprocess
    import sys

    import pandas as pd

    labelled = sorted(set(pd.read_csv(small_dstl / "train_wkt_v4.csv")["ImageId"]))
    config = tmp_path / "strips.toml"
    config.write_text("[model]\nn_trees = 10\nmax_depth = 4\n")  # strips by default
    run = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "sattag.cli", "run", str(small_dstl), "--out", str(run),
                          "--workers", "0", "--quiet", "--model", "cluster", "--config", str(config),
                          "--holdout-scenes", ",".join(labelled[1:])],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    card = json.loads((run / "models" / "card.json").read_text())
    assert card["split"]["train"] == [labelled[0]]
    tuned = card["thresholds"]
    assert tuned and all(t["folds"] == 2 and t["validation_scenes"] == 1 for t in tuned)
    assert any(t["threshold"] != 0.5 for t in tuned)


def test_thresholds_are_tuned_on_the_clusters_as_recorded_not_their_relit_copies():
    from sattag.engine.contracts import ClusterRows

    k, lights = 5, 3
    rows = np.arange(k * lights * 2, dtype=np.float32).reshape(k * lights, 2)
    sizes = np.tile(np.arange(1, k + 1), lights)
    scene = ClusterRows(rows=rows, shares=np.zeros((k * lights, 1), np.float32), sizes=sizes,
                        centres=np.zeros((k * lights, 2), np.float32))
    first = scene.recorded(lights)
    assert np.array_equal(first.rows, rows[:k]) and np.array_equal(first.sizes, np.arange(1, k + 1))
    with pytest.raises(ValueError, match="not 4 copies"):
        scene.recorded(4)

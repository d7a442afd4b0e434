"""Object-level (per-cluster) models: rows from clusters, their own card level, the whole run with --model cluster."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from sattag.classes import ClassTable, ObjectClass
from sattag.config import CLUSTER_MAX_BIN, PIXEL_MAX_BIN, Config, ModelConfig
from sattag.errors import ModelError
from sattag.features import FeatureSet, feature_names
from sattag.features.objects import object_feature_names
from sattag.learn import cluster_samples, load_models, train_models
from sattag.learn.models import model_columns

CLASSES = ClassTable((ObjectClass(1, "Road", "#555555"), ObjectClass(2, "Roof", "#c0392b")))
BANDS = ("R", "G", "B")


def test_cluster_samples_mark_clusters_at_least_half_inside():
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    shares = np.array([[0.0, 1.0], [0.49, 0.5], [0.5, 0.0], [1.0, 0.2]], np.float32)
    samples = cluster_samples(rows, shares, CLASSES.ids)
    assert samples[1][1].tolist() == [0, 0, 1, 1] and samples[2][1].tolist() == [1, 1, 0, 0]
    assert np.array_equal(samples[1][0], rows)
    with pytest.raises(ValueError, match=r"shares of shape \(4, 1\) for 4 clusters and 2 classes"):
        cluster_samples(rows, shares[:, :1], CLASSES.ids)


def test_columns_of_each_level():
    fs = FeatureSet("spectra")
    assert model_columns(BANDS, fs, "pixel") == feature_names(BANDS, fs) == BANDS
    assert model_columns(BANDS, fs, "cluster") == object_feature_names(BANDS)
    with pytest.raises(ValueError, match="'pixel' or 'cluster'"):
        model_columns(BANDS, fs, "object")


def _cluster_models():
    rng = np.random.default_rng(0)
    names = object_feature_names(BANDS)
    X = rng.uniform(0, 1, (400, len(names))).astype(np.float32)
    elongation = names.index("elongation")
    X[:, elongation] = rng.uniform(1, 10, 400)
    shares = np.column_stack([X[:, elongation] > 5, X[:, elongation] <= 5]).astype(np.float32)
    config = dataclasses.replace(Config(), model=ModelConfig(n_trees=10, max_depth=3, pairs=()))
    return train_models(cluster_samples(X, shares, CLASSES.ids), BANDS, CLASSES, config,
                        feature_set=FeatureSet("spectra"), level="cluster", n_jobs=1), X


def test_a_cluster_model_learns_from_shape_and_round_trips_with_its_level(tmp_path):
    models, X = _cluster_models()
    assert models.level == "cluster" and models.columns == object_feature_names(BANDS)
    p = models.predict_proba(X)
    long = X[:, models.columns.index("elongation")] > 5
    assert p[long, 0].mean() > 0.9 and p[~long, 0].mean() < 0.1  # long and thin: the road
    models.save(tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["level"] == "cluster" and card["features"]["columns"] == list(object_feature_names(BANDS))
    # Cluster models bin coarser than pixel models, and the booster itself was trained so.
    assert card["max_bin"] == CLUSTER_MAX_BIN != PIXEL_MAX_BIN
    booster = next(iter(models.boosters.values()))
    assert f'"max_bin":"{CLUSTER_MAX_BIN}"' in booster.save_config().replace(" ", "")
    back = load_models(tmp_path, BANDS, CLASSES)
    assert back.level == "cluster" and np.array_equal(back.predict_proba(X), p)
    # A pixel-row input is refused with the shapes named.
    with pytest.raises(ValueError, match=rf"expected \(N, {len(models.columns)}\) features"):
        back.predict_proba(np.zeros((2, len(BANDS)), np.float32))
    card["level"] = "object"
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="unknown level 'object'"):
        load_models(tmp_path, BANDS, CLASSES)


@pytest.mark.slow
def test_run_with_cluster_models(small_dstl, tmp_path):
    run = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "sattag.cli", "run", str(small_dstl), "--out", str(run),
                          "--workers", "0", "--quiet", "--model", "cluster"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    card = json.loads((run / "models" / "card.json").read_text())
    assert card["level"] == "cluster" and card["config"]["model"]["level"] == "cluster"
    assert "elongation" in card["features"]["columns"]
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["config"]["model"]["level"] == "cluster"
    assert (run / "submission.csv").is_file() and (run / "scores.csv").is_file()
    assert len(list((run / "masks").glob("*.tif"))) == 4
    assert not (run / "object_rows").exists()  # the training rows on disk are gone once models are saved


def test_cap_samples_keeps_at_most_n_in_and_n_out_rows_per_class_in_order():
    from sattag.learn import cap_samples

    X = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = (np.arange(50) % 5 == 0).astype(np.uint8)  # 10 in, 40 out
    capped = cap_samples({1: (X, y)}, n_in=4, n_out=7, seed=0)[1]
    assert int(capped[1].sum()) == 4 and int((capped[1] == 0).sum()) == 7
    assert np.all(np.diff(capped[0][:, 0]) > 0)  # original order kept
    assert set(capped[0][:, 0]) <= set(X[:, 0])
    again = cap_samples({1: (X, y)}, n_in=4, n_out=7, seed=0)[1]
    assert np.array_equal(again[0], capped[0])  # the same draw for the same seed
    whole = cap_samples({1: (X, y)}, n_in=10, n_out=40, seed=0)[1]
    assert whole[0] is X  # nothing to drop: the rows themselves


def test_capped_classes_share_one_table_of_rows_and_train_as_on_copies():
    from sattag.learn import cap_samples
    from sattag.learn.sample import TakenRows

    rng = np.random.default_rng(3)
    rows = rng.random((400, 4), dtype=np.float32)
    shares = np.stack([(rows[:, 0] > 0.7), (rows[:, 1] < 0.2)], axis=1).astype(np.float32)
    capped = cap_samples(cluster_samples(rows, shares, CLASSES.ids), n_in=50, n_out=150, seed=1)
    for cid in CLASSES.ids:
        X, y = capped[cid]
        assert isinstance(X, TakenRows) and X.parts[0] is rows  # no copy of the rows per class
        assert X.shape == (len(y), 4) and np.array_equal(np.asarray(X), rows[X.index])
        assert np.array_equal(X[y == 1], rows[X.index[y == 1]])
    copies = {cid: (np.asarray(X), y) for cid, (X, y) in capped.items()}
    config = Config(model=ModelConfig(n_trees=5, max_depth=3))
    cols = [f"c{i}" for i in range(4)]
    shared = train_models(capped, cols, CLASSES, config, feature_set=FeatureSet("spectra"))
    copied = train_models(copies, cols, CLASSES, config, feature_set=FeatureSet("spectra"))
    for cid in CLASSES.ids:
        assert shared.results[cid].auc == copied.results[cid].auc
        assert np.array_equal(shared.predict_proba(rows), copied.predict_proba(rows))


def test_object_rows_file_round_trip_memory_mapped_and_bad_file_named(tmp_path):
    from sattag.errors import SattagError
    from sattag.features.objects import read_object_rows, write_object_rows

    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = -np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "object_rows" / "s1.npy"
    assert write_object_rows(path, [a, b]) == 6
    rows = read_object_rows(path)
    assert isinstance(rows, np.memmap) and np.array_equal(rows, np.concatenate([a, b]))
    assert [p.name for p in path.parent.iterdir()] == ["s1.npy"]  # no temporary left
    with pytest.raises(ValueError, match="columns"):
        write_object_rows(tmp_path / "x.npy", [a, np.zeros((1, 2), np.float32)])
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(SattagError, match=r"bad\.npy.*cannot read object rows|cannot read object rows.*bad\.npy"):
        read_object_rows(tmp_path / "bad.npy")


def test_taken_rows_gather_across_parts_as_the_joined_table():
    from sattag.learn.sample import TakenRows

    parts = [np.arange(10, dtype=np.float32).reshape(5, 2), 100 + np.arange(6, dtype=np.float32).reshape(3, 2)]
    joined = np.concatenate(parts)
    rows = TakenRows.all_of(parts)
    assert rows.shape == (8, 2) and np.array_equal(np.asarray(rows), joined)
    pick = np.array([7, 0, 5, 4])
    some = rows.take(pick)
    assert np.array_equal(np.asarray(some), joined[pick])
    assert np.array_equal(some[np.array([True, False, True, False])], joined[[7, 5]])
    assert np.array_equal(some[:, 1], joined[pick, 1])

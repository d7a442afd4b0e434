"""learn stage: balanced samples, quotas, split, one-vs-all XGBoost, AUC, model files, Dask training."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import DSTL_BANDS, Config, SampleConfig
from sattag.errors import ModelError, SattagError
from sattag.learn import (
    allocate_quotas,
    auc_table,
    check_device,
    class_pixel_counts,
    concat_samples,
    load_models,
    roc_auc,
    sample_counts,
    sample_scene,
    sample_scenes,
    split_train_valid,
    train_models,
)

BANDS = DSTL_BANDS
FAST = Config().replace("sample", n_in=2000, n_out=2000).replace("model", n_trees=8, max_depth=6)


def synthetic_scene(seed: int, h: int = 100, w: int = 200, n_classes: int = 10, noise: float = 0.08):
    """A (20, H, W) float32 stack with rectangular class regions of distinct noisy spectra + masks.

    Class ``c`` fills a random rectangle (>= 700 px) inside its own 40 x 50 cell of a 2 x 5 layout, the
    rest is background. Band 0 holds the class index exactly (i / 16, 0 = background) and band 1 the
    pixel's flat index scaled to [0, 1), so a test can tell from a sampled row which class and which
    pixel it came from.
    """
    rng = np.random.default_rng(seed)
    spectra = np.random.default_rng(1234).uniform(0.1, 0.9, (n_classes + 1, len(BANDS))).astype(np.float32)
    lab = np.zeros((h, w), np.int32)
    for c in range(1, n_classes + 1):
        r0, q0 = 50 * ((c - 1) // 5), 40 * ((c - 1) % 5)
        rh, rw = rng.integers(28, 45), rng.integers(25, 36)
        r, q = r0 + rng.integers(0, 50 - rh + 1), q0 + rng.integers(0, 40 - rw + 1)
        lab[r:r + rh, q:q + rw] = c
    data = spectra[lab].transpose(2, 0, 1) + rng.normal(0, noise, (len(BANDS), h, w)).astype(np.float32)
    data[0] = lab / 16.0
    data[1] = np.arange(h * w, dtype=np.float64).reshape(h, w) / (h * w)
    masks = np.stack([(lab == c).astype(np.uint8) for c in range(1, n_classes + 1)])
    return np.clip(data, 0, 1).astype(np.float32), masks


@pytest.fixture(scope="module")
def scenes():
    return {f"s{i}": synthetic_scene(i) for i in range(3)}


@pytest.fixture(scope="module")
def fast_models(scenes):
    # Two classes at a time, whatever the cores: test_parallel_and_sequential_... compares with one.
    return train_models(sample_scenes(scenes, FAST.sample), BANDS, DSTL_CLASSES, FAST, n_jobs=2)


# ------------------------------------------------------------------------------------------ samples

def test_class_pixel_counts():
    masks = np.zeros((3, 4, 5), np.uint8)
    masks[0, :2] = 1
    masks[2, 0, 0] = 1
    counts = class_pixel_counts(masks)
    assert counts.dtype == np.int64
    assert counts.tolist() == [[10, 10], [0, 20], [1, 19]]


def test_quotas_sum_exactly_and_are_proportional():
    rng = np.random.default_rng(5)
    counts = {f"s{i}": np.stack([rng.integers(0, 50_000, 4), rng.integers(0, 900_000, 4)], axis=1)
              for i in range(7)}
    counts["s3"][1, 0] = 0  # a scene without class 2
    cfg = SampleConfig(n_in=60_000, n_out=200_000)
    quotas = allocate_quotas(counts, cfg)
    assert allocate_quotas(counts, cfg).keys() == quotas.keys()
    total = sum(counts.values())
    got = sum(quotas.values())
    for c in range(4):
        assert got[c, 0] == min(cfg.n_in, total[c, 0])
        assert got[c, 1] == min(cfg.n_out, total[c, 1])
    for s in counts:
        assert (quotas[s] <= counts[s]).all() and (quotas[s] >= 0).all()
        # proportional: largest-remainder rounding is within one pixel of the exact share
        for c in range(4):
            for j, asked in ((0, cfg.n_in), (1, cfg.n_out)):
                exact = min(asked, total[c, j]) * counts[s][c, j] / total[c, j]
                assert abs(quotas[s][c, j] - exact) < 1.0
    assert quotas["s3"][1, 0] == 0
    # same input, same quotas (deterministic)
    again = allocate_quotas(dict(reversed(list(counts.items()))), cfg)
    assert all((again[s] == quotas[s]).all() for s in counts)


def test_sample_counts_balance_and_membership(scenes):
    samples = sample_scenes(scenes, FAST.sample)
    assert sorted(samples) == list(range(1, 11))
    for cid, (X, y) in samples.items():
        assert X.dtype == np.float32 and X.shape == (4000, len(BANDS)) and y.dtype == np.uint8
        assert int(y.sum()) == 2000  # balanced: n_in in-class, n_out out-of-class
        # band 0 encodes the class index: every y=1 row is in the class, every y=0 row is not
        cls_of_row = np.rint(X[:, 0] * 16).astype(int)
        assert (cls_of_row[y == 1] == cid).all()
        assert (cls_of_row[y == 0] != cid).all()
    # no pixel drawn twice within a class sample of one scene
    part = sample_scene(*scenes["s0"], np.array([[300, 5000]] * 10), seed=0, scene_id="s0")
    pix = part[1][0][:, 1]
    assert np.unique(pix).size == pix.size == 5300


def test_sample_is_deterministic_and_depends_on_scene(scenes):
    data, masks = scenes["s1"]
    quotas = np.array([[50, 500]] * 10)
    a = sample_scene(data, masks, quotas, seed=3, scene_id="s1")
    b = sample_scene(data, masks, quotas, seed=3, scene_id="s1")
    c = sample_scene(data, masks, quotas, seed=3, scene_id="other")
    assert all(np.array_equal(a[k][0], b[k][0]) for k in a)
    assert not np.array_equal(a[4][0], c[4][0])


def test_too_few_pixels_takes_all_and_records_counts(scenes):
    data, masks = scenes["s0"]
    masks = masks.copy()
    masks[8] = 0
    masks[8, 10:15, 20:30] = 1  # class 9: only 50 pixels in the only scene
    masks[9] = 0                # class 10: none at all
    cfg = FAST
    samples = sample_scenes({"only": (data, masks)}, cfg.sample)
    assert sample_counts(samples)[9] == (50, 2000)
    assert sample_counts(samples)[10] == (0, 2000)
    ticks = []
    ms = train_models(samples, BANDS, DSTL_CLASSES, cfg, progress=ticks.append)
    assert ticks == [1] * 10  # one tick per class, trained or skipped
    table = auc_table(ms).set_index("class_id")
    assert table.loc[9, "n_in"] == 50 and table.loc[9, "n_out"] == 2000
    assert table.loc[9, "n_valid"] == 5 + 200 and table.loc[9, "n_train"] == 45 + 1800
    # its 45 training pixels weigh 1800/45 each: the same 50/50 prior as the balanced classes
    assert ms.results[9].pos_weight == pytest.approx(40.0)
    assert table.loc[9, "auc"] > 0.9
    assert 10 not in ms.boosters and "no pixels" in table.loc[10, "skipped"]
    assert np.isnan(table.loc[10, "auc"])
    proba = ms.predict_proba(data.reshape(len(BANDS), -1).T[:500])
    assert proba.shape == (500, 10) and (proba[:, 9] == 0).all() and (proba[:, 0] > 0).any()


def test_concat_samples_joins_parts(scenes):
    quotas = np.array([[10, 20]] * 10)
    parts = [sample_scene(d, m, quotas, 0, scene_id=s) for s, (d, m) in scenes.items()]
    joined = concat_samples(parts)
    assert joined[3][0].shape == (90, len(BANDS)) and int(joined[3][1].sum()) == 30


# ------------------------------------------------------------------------------------------ training

def test_split_sizes_are_stratified():
    y = np.r_[np.ones(1000), np.zeros(3000)].astype(np.uint8)
    tr, va = split_train_valid(y, 0.1, seed=0)
    assert tr.size == 3600 and va.size == 400
    assert y[va].sum() == 100 and y[tr].sum() == 900
    assert np.intersect1d(tr, va).size == 0
    tr2, va2 = split_train_valid(y, 0.1, seed=0)
    assert np.array_equal(va, va2)


def test_roc_auc_matches_definition():
    y = np.array([0, 0, 1, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.4])
    # pairs (pos, neg): 9; pos>neg wins: 0.35 beats 0.1 only; 0.8 and 0.9 beat all 3 -> 7 of 9
    assert roc_auc(y, s) == pytest.approx(7 / 9)
    assert np.isnan(roc_auc(np.ones(3), s[:3]))


def test_training_separates_synthetic_classes(fast_models):
    table = auc_table(fast_models)
    assert list(table.columns[:8]) == ["class_id", "class", "n_in", "n_out", "n_train", "n_valid", "auc", "seconds"]
    assert (table.n_train == 3600).all() and (table.n_valid == 400).all()
    assert fast_models.results[2].pos_weight == 1.0  # balanced sample: no reweighting
    # class regions differ in band 0 by construction (exact class code): a perfect split exists
    assert (table.auc > 0.99).all()
    assert set(fast_models.results[10].importance) == set(BANDS)


def test_importance_leads_with_the_band_that_separates(scenes):
    # class 10 has the highest code in band R (10/16): one split on R isolates it, so R leads, when
    # every split sees every band (the defaults offer each split half of them)
    config = FAST.replace("model", features_per_split=1.0)
    samples = {10: sample_scenes(scenes, FAST.sample)[10]}
    ms = train_models(samples, BANDS, ClassTable(DSTL_CLASSES.classes[9:]), config, n_jobs=1)
    imp = ms.results[10].importance
    assert max(imp, key=imp.get) == "R"


def test_random_trees_depend_on_the_seed_only(scenes):
    # rows per tree and features per split are drawn from [model] seed: the same seed gives the same
    # trees whatever the threads; another seed, or all rows and columns, other trees
    samples = sample_scenes(scenes, FAST.sample)
    classes = ClassTable(DSTL_CLASSES.classes[:2])
    X = scenes["s1"][0].reshape(len(BANDS), -1).T
    one = train_models(samples, BANDS, classes, FAST, n_jobs=1).predict_proba(X)
    assert np.array_equal(one, train_models(samples, BANDS, classes, FAST, n_jobs=2).predict_proba(X))
    other_seed = FAST.replace("model", seed=1)
    assert not np.array_equal(one, train_models(samples, BANDS, classes, other_seed, n_jobs=1).predict_proba(X))
    every = FAST.replace("model", rows_per_tree=1.0, features_per_split=1.0)
    assert not np.array_equal(one, train_models(samples, BANDS, classes, every, n_jobs=1).predict_proba(X))


def test_parallel_and_sequential_training_give_identical_models(scenes, fast_models):
    samples = sample_scenes(scenes, FAST.sample)
    classes = ClassTable(DSTL_CLASSES.classes[:3])
    one = train_models(samples, BANDS, classes, FAST, n_jobs=1)
    X = scenes["s1"][0].reshape(len(BANDS), -1).T
    # fast_models trained the classes two at a time (n_jobs=2); each class has its own seed
    assert np.array_equal(one.predict_proba(X), fast_models.predict_proba(X)[:, :3])


def test_model_round_trip(fast_models, scenes, tmp_path):
    card = fast_models.save(tmp_path / "models")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["card.json"] + [
        f"class_{i:02d}.ubj" for i in range(1, 11)]
    meta = json.loads(card.read_text())
    assert meta["bands"] == list(BANDS) and len(meta["classes"]) == 10
    assert {"sattag", "xgboost", "numpy"} <= set(meta["versions"])
    assert meta["models"][0]["n_in"] == 2000 and 0.99 < meta["models"][0]["auc"] <= 1
    assert meta["config"]["model"]["n_trees"] == 8
    loaded = load_models(tmp_path / "models", BANDS, DSTL_CLASSES)
    X = scenes["s2"][0].reshape(len(BANDS), -1).T
    p1, p2 = fast_models.predict_proba(X), loaded.predict_proba(X)
    assert p1.dtype == np.float32 and p1.shape == (X.shape[0], 10)
    assert np.array_equal(p1, p2)
    assert loaded.config == FAST
    assert loaded.results[3].auc == fast_models.results[3].auc


def test_load_refuses_mismatched_bands_and_classes(fast_models, tmp_path):
    d = tmp_path / "models"
    fast_models.save(d)
    swapped = list(BANDS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ModelError, match="band order mismatch") as e:
        load_models(d, swapped, DSTL_CLASSES)
    assert "card.json" in str(e.value)
    renamed = ClassTable((ObjectClass(1, "Houses", "#ffffff"),) + DSTL_CLASSES.classes[1:])
    with pytest.raises(ModelError, match="class table mismatch"):
        load_models(d, BANDS, renamed)
    with pytest.raises(ModelError, match="class table mismatch"):
        load_models(d, BANDS, ClassTable(DSTL_CLASSES.classes[:9]))
    # array-shape misuse is the caller's bug, not a file's: a ValueError, as numpy would raise
    with pytest.raises(ValueError, match="expected \\(N, 20\\)"):
        fast_models.predict_proba(np.zeros((3, 19), np.float32))


def test_load_refuses_missing_and_corrupt_files(fast_models, tmp_path):
    d = tmp_path / "models"
    fast_models.save(d)
    (d / "class_04.ubj").unlink()
    with pytest.raises(ModelError, match="missing") as e:
        load_models(d, BANDS, DSTL_CLASSES)
    assert "class_04.ubj" in str(e.value)
    shutil.rmtree(d)
    fast_models.save(d)
    raw = (d / "class_02.ubj").read_bytes()
    (d / "class_02.ubj").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelError, match="corrupt") as e:
        load_models(d, BANDS, DSTL_CLASSES)
    assert "class_02.ubj" in str(e.value)
    # without the checksum in the card, XGBoost's own parser must refuse it
    card = json.loads((d / "card.json").read_text())
    for m in card["models"]:
        m["sha256"] = None
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not a readable XGBoost model"):
        load_models(d, BANDS, DSTL_CLASSES)
    with pytest.raises(ModelError, match="no model card"):
        load_models(tmp_path / "nothing", BANDS, DSTL_CLASSES)


def test_gpu_request_without_gpu_is_a_clear_error():
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU tool is present here; this test is for machines without a GPU")
    with pytest.raises(SattagError, match="no usable GPU"):
        check_device(Config().model.__class__(device="cuda"))


# ------------------------------------------------------------------------------------------ generated data

@pytest.fixture(scope="module")
def generated_samples(small_dstl):
    """Balanced samples from the generator's training scenes: ingest + rasterize + sample."""
    from sattag.ingest import build_stack, discover_scenes
    from sattag.labels import rasterize_classes, scene_labels

    cfg = Config().replace("sample", n_in=3000, n_out=3000)
    scenes = {}
    for scene in discover_scenes(small_dstl):
        polygons = scene_labels(small_dstl, scene.id, DSTL_CLASSES)
        if polygons is None:
            continue
        stack = build_stack(scene, cfg.ingest)
        scenes[scene.id] = (stack.data, rasterize_classes(polygons, stack.grid, DSTL_CLASSES))
    assert len(scenes) == 3
    return sample_scenes(scenes, cfg.sample), tuple(stack.bands)


def test_auc_on_generated_data(generated_samples):
    samples, bands = generated_samples
    cfg = Config().replace("sample", n_in=3000, n_out=3000).replace("model", n_trees=20, max_depth=8)
    ms = train_models(samples, bands, DSTL_CLASSES, cfg)
    table = auc_table(ms)
    present = table[table.n_in >= 20]
    assert len(present) >= 6, table
    # Why 0.75 must hold: the generator paints each class with its own material reflectance curve
    # over 20 bands (water, vegetation, roads, roofs, ... differ by far more than the texture and
    # sensor noise in at least some bands), so even a shallow model separates a class from the rest
    # far better than chance (0.5); AUC below 0.75 would mean samples and labels are misaligned.
    assert (present.auc > 0.75).all(), table


# ------------------------------------------------------------------------------------------ Dask

@pytest.mark.parametrize("distributed", ["rows", "classes"])
def test_dask_training_matches_local(scenes, fast_models, distributed):
    from dask.distributed import Client, LocalCluster

    samples = sample_scenes(scenes, FAST.sample)
    classes = ClassTable(DSTL_CLASSES.classes[:4])
    config = FAST.replace("model", distributed=distributed)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        ms = train_models(samples, BANDS, classes, config, client=client)
    assert sorted(ms.boosters) == [1, 2, 3, 4]
    X = np.concatenate([samples[c][0] for c in (1, 2, 3, 4)])
    for cid in (1, 2, 3, 4):
        if distributed == "rows":
            # xgboost.dask: same rows, split and parameters; only the distributed quantile sketch
            # differs, so validation AUC (400 rows) agrees within noise
            assert abs(ms.results[cid].auc - fast_models.results[cid].auc) < 0.01
        else:
            # each class trained whole on one worker: the very model local training gives
            assert ms.results[cid].auc == fast_models.results[cid].auc
            np.testing.assert_array_equal(ms.boosters[cid].inplace_predict(X),
                                          fast_models.boosters[cid].inplace_predict(X))
        assert ms.boosters[cid].num_boosted_rounds() == FAST.model.n_trees


def test_auc_csv_written_and_read_back(fast_models, scenes, tmp_path):
    """auc.csv's owner (learn): in-sample rows then held-out rows, read back with their dtypes."""
    from sattag.errors import InputError
    from sattag.learn import HELD_OUT, IN_SAMPLE, read_auc, samples_auc, write_auc
    from sattag.runfolder import RunFolder

    run = RunFolder(tmp_path)
    held = samples_auc(fast_models, sample_scenes({"s0": scenes["s0"]}, FAST.sample))
    back = read_auc(write_auc(run.auc_csv, auc_table(fast_models), held))
    assert list(back.columns) == ["split", "measured_on", "class_id", "class", "n_in", "n_out", "n_train",
                                  "n_valid", "auc", "seconds", "skipped"]
    assert back["split"].tolist() == [IN_SAMPLE] * 10 + [HELD_OUT] * 10
    assert back["class_id"].tolist() == list(DSTL_CLASSES.ids) * 2 and back["class_id"].dtype == np.int64
    assert back["class"].tolist() == list(DSTL_CLASSES.names) * 2
    inside = back[back["split"] == IN_SAMPLE]
    assert (inside["n_train"] == 3600).all() and inside["measured_on"].str.contains("pixel split").all()
    np.testing.assert_allclose(inside["auc"], auc_table(fast_models)["auc"])
    out = back[back["split"] == HELD_OUT]
    assert out["n_train"].isna().all() and out["seconds"].isna().all() and (out["skipped"] == "").all()
    np.testing.assert_allclose(out["auc"], held["auc"])
    only = read_auc(write_auc(run.auc_csv, auc_table(fast_models)))  # no scene held out
    assert set(only["split"]) == {IN_SAMPLE}
    run.auc_csv.write_text("class_id,class,auc\n1,Buildings,0.9\n")  # a table written some other way
    with pytest.raises(InputError, match=r"auc\.csv.*'split'"):
        read_auc(run.auc_csv)


def test_relights_are_drawn_per_scene_and_keep_the_bands_in_range():
    from sattag.learn import draw_relights

    a, b = draw_relights("6010_1_2", 4, 2), draw_relights("6010_1_2", 4, 2)
    assert len(a) == 2 and all((x.gains == y.gains).all() and (x.haze == y.haze).all() for x, y in zip(a, b))
    assert not np.allclose(draw_relights("6010_4_2", 4, 1)[0].gains, a[0].gains)  # another scene, other light
    assert not np.allclose(a[0].gains, a[1].gains)
    data = np.random.default_rng(0).random((4, 16, 16), dtype=np.float32)
    relit = a[0].apply(data)
    assert relit.shape == data.shape and relit.dtype == np.float32 and relit.min() >= 0 and relit.max() <= 1
    inside = (relit > 0) & (relit < 1)  # unclipped values: gain times the value plus haze
    expect = data * a[0].gains[:, None, None].astype(np.float32) + a[0].haze[:, None, None].astype(np.float32)
    np.testing.assert_allclose(relit[inside], expect[inside], rtol=1e-6)
    assert draw_relights("x", 4, 0) == []

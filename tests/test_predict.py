"""Per-cluster prediction, thresholds, overlap and size rules, class masks, files and figures."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import (DSTL_OVERLAP_RULES, DSTL_SIZE_RULES, Config, OverlapRule, PredictConfig, SizeRule,
                           check_classes, rules_for)
from sattag.errors import ConfigError, SattagError
from sattag.predict import (RULE_COLUMNS, PredictResult, apply_rules, class_masks, cluster_probabilities,
                            neighbour_any, paint, predict_clusters, read_probabilities, read_rules, write_prediction)
from sattag.runfolder import RunFolder
from sattag.scene import Grid, dstl_grid
from sattag.segment import cluster_pixels

C = len(DSTL_CLASSES)


class TableModel:
    """Stand-in for a ModelSet: probability of class j = fixed value per cluster, looked up by band 0."""

    def __init__(self, by_value: dict[float, np.ndarray], bands=("x",)):
        self.by_value = by_value
        self.bands = bands

    def predict_proba(self, X):
        out = np.zeros((len(X), C), np.float32)
        for i, x in enumerate(np.asarray(X)[:, 0]):
            for v, p in self.by_value.items():
                if abs(x - v) < 1e-3:
                    out[i] = p
        return out


def two_regions(h: int, w: int, split: int | None = None):
    """(1, h, w) image: columns < split at 0.2, the rest at 0.8 -> two adjacent clusters."""
    split = w // 2 if split is None else split
    data = np.full((1, h, w), 0.8, np.float32)
    data[:, :, :split] = 0.2
    return data


def probs_for(*classes: int | str, p: float = 0.9) -> np.ndarray:
    """DSTL probabilities: ``p`` for the classes given by id or name, 0 for the rest."""
    v = np.zeros(C, np.float32)
    for c in classes:
        v[col(c)] = p
    return v


def col(c: int | str, table: ClassTable = DSTL_CLASSES) -> int:
    """Column of a class, by id or name."""
    return table.index(c if isinstance(c, int) else table.by_name(c).id)


def cluster_and_predict(data: np.ndarray, models, config: Config, classes: ClassTable) -> PredictResult:
    """What the engine does with a scene: the segment stage's clusters, then the prediction on them."""
    cluster_ids, cluster_table = cluster_pixels(data, config.cluster.tolerance, config.cluster.min_size)
    return predict_clusters(cluster_ids, cluster_table, models, config.predict, classes)


# ------------------------------------------------------------------------------------------- basics
def test_paint_and_class_masks():
    labels = np.array([[0, 0, 1], [2, 1, 1]], np.int32)
    vals = np.array([0.1, 0.5, 0.9], np.float32)
    np.testing.assert_array_equal(paint(labels, vals), vals[labels])
    v2 = np.arange(6, dtype=np.float32).reshape(3, 2)
    p2 = paint(labels, v2)
    assert p2.shape == (2, 2, 3)
    np.testing.assert_array_equal(p2[1], v2[labels, 1])
    flags = np.array([[True, False], [False, False], [True, True]])
    m = class_masks(labels, flags)
    assert m.dtype == np.uint8 and m.shape == (2, 2, 3)
    np.testing.assert_array_equal(m[0], [[1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(m[1], [[0, 0, 0], [1, 0, 0]])


def test_cluster_probabilities_use_mean_spectra():
    data = two_regions(20, 20)
    labels, table = cluster_pixels(data, 0.03, 10)
    model = TableModel({0.2: probs_for(5), 0.8: probs_for(3)})
    probs = cluster_probabilities(model, table)
    assert probs.dtype == np.float32 and probs.shape == (2, C)
    left, right = labels[0, 0], labels[0, -1]
    assert probs[left, DSTL_CLASSES.index(5)] == pytest.approx(0.9)
    assert probs[right, DSTL_CLASSES.index(3)] == pytest.approx(0.9)


def test_per_class_thresholds():
    data = two_regions(20, 20)
    _, table = cluster_pixels(data, 0.03, 10)
    probs = np.full((2, C), 0.6, np.float32)
    for key in (2, "Misc. manmade structures"):  # by id or by name
        cfg = PredictConfig(thresholds={key: 0.7}, overlap_rules=(), size_rules=())
        flags, record = apply_rules(probs, table, cfg, DSTL_CLASSES)
        assert flags[:, DSTL_CLASSES.index(2)].sum() == 0
        assert flags.sum() == 2 * (C - 1)
        assert record.empty


@pytest.mark.parametrize("thresholds, fault", [
    ({"Glacier": 0.7}, "thresholds: class 'Glacier' is not in the class table"),
    ({12: 0.7}, "thresholds: class id 12 is not in the class table"),
    ({9: 0.7, "Vehicle Large": 0.6}, "'Vehicle Large' is given twice"),
])
def test_thresholds_name_classes_of_the_table(thresholds, fault):
    _, table = cluster_pixels(two_regions(10, 10), 0.03, 1)
    with pytest.raises(ConfigError, match=fault):
        apply_rules(np.zeros((2, C), np.float32), table, PredictConfig(thresholds=thresholds), DSTL_CLASSES)


# -------------------------------------------------------------------------------------------- rules
def case_for(rule):
    """A scene, probabilities and the cluster the rule must change, built for one rule."""
    if isinstance(rule, SizeRule):
        if rule.min_px is not None:
            side = max(4, int(math.sqrt(rule.min_px)) - 2)  # both clusters under min_px
            data = two_regions(side, side)
        else:
            side = int(math.sqrt(2 * rule.max_px)) + 10  # both clusters over max_px
            data = two_regions(side, side)
        p = probs_for(rule.target)
        by_value = {0.2: p, 0.8: np.zeros(C, np.float32)}
    elif rule.scope == "cluster":
        data = two_regions(40, 40)
        by_value = {0.2: probs_for(rule.target, rule.other), 0.8: np.zeros(C, np.float32)}
    else:
        data = two_regions(40, 40)
        by_value = {0.2: probs_for(rule.target), 0.8: probs_for(rule.other)}
    return data, TableModel(by_value)


ALL_DEFAULT_RULES = list(PredictConfig().size_rules) + list(PredictConfig().overlap_rules)


@pytest.mark.parametrize("rule", ALL_DEFAULT_RULES, ids=[f"{type(r).__name__}-{r.target}-{getattr(r, 'other', '')}"
                                                       for r in ALL_DEFAULT_RULES])
def test_every_default_rule_changes_a_mask(rule):
    data, model = case_for(rule)
    is_size = isinstance(rule, SizeRule)
    only = PredictConfig(size_rules=(rule,) if is_size else (), overlap_rules=() if is_size else (rule,))
    none = PredictConfig(size_rules=(), overlap_rules=())
    base = Config()
    with_rule = cluster_and_predict(data, model, base.replace("predict", **only.__dict__).replace("cluster", min_size=1),
                                    DSTL_CLASSES)
    without = cluster_and_predict(data, model, base.replace("predict", **none.__dict__).replace("cluster", min_size=1),
                                  DSTL_CLASSES)
    t = col(rule.target)
    left = data[0] == np.float32(0.2)
    assert without.masks[t][left].all()  # predicted before the rule
    assert not with_rule.masks[t][left].any()  # dropped by it
    # nothing but the target's mask changed
    others = [j for j in range(C) if j != t]
    np.testing.assert_array_equal(with_rule.masks[others], without.masks[others])
    rec = with_rule.rule_counts
    assert len(rec) == 1 and rec.loc[0, "clusters"] == 1 and rec.loc[0, "pixels"] == int(left.sum())
    assert rec.loc[0, "reason"] == rule.reason
    assert rec.loc[0, "target"] == rule.target and rec.loc[0, "target_id"] == DSTL_CLASSES.by_name(rule.target).id


def test_neighbour_scope_rule():
    data = np.full((1, 30, 30), 0.8, np.float32)
    data[:, :10, :10] = 0.2  # cluster touching the 0.8 cluster
    data[:, 20:, 20:] = 0.5  # another one, also touching 0.8 only
    model = TableModel({0.2: probs_for(8), 0.5: probs_for(8), 0.8: probs_for(7)})
    rule = OverlapRule("Standing water", "Waterway", "neighbours", "water beside a waterway belongs to it")
    cfg = Config().replace("predict", overlap_rules=(rule,), size_rules=()).replace("cluster", min_size=1)
    res = cluster_and_predict(data, model, cfg, DSTL_CLASSES)
    assert res.masks[DSTL_CLASSES.index(8)].sum() == 0
    assert res.masks[DSTL_CLASSES.index(7)].sum() == 30 * 30 - 200
    assert res.rule_counts.loc[0, "clusters"] == 2
    # without a waterway neighbour the water stays
    model2 = TableModel({0.2: probs_for(8), 0.5: probs_for(8), 0.8: probs_for(1)})
    res2 = cluster_and_predict(data, model2, cfg, DSTL_CLASSES)
    assert res2.masks[DSTL_CLASSES.index(8)].sum() == 200


def test_neighbour_any():
    data = np.full((1, 10, 30), 0.2, np.float32)
    data[:, :, 10:20] = 0.5
    data[:, :, 20:] = 0.8
    labels, table = cluster_pixels(data, 0.03, 1)
    flag = np.zeros(3, bool)
    flag[labels[0, 0]] = True
    got = neighbour_any(flag, table)
    assert got[labels[0, 15]] and not got[labels[0, 0]] and not got[labels[0, 25]]


def test_default_rules_skip_a_table_without_the_dstl_classes():
    classes = ClassTable((ObjectClass(1, "a", "#ff0000"), ObjectClass(2, "b", "#00ff00")))
    data = two_regions(10, 10)
    _, table = cluster_pixels(data, 0.03, 1)
    flags, rec = apply_rules(np.full((2, 2), 0.9, np.float32), table, PredictConfig(), classes)
    assert flags.all()
    assert len(rec) == len(DSTL_SIZE_RULES) + len(DSTL_OVERLAP_RULES)
    assert rec["skipped"].all() and (rec["clusters"] == 0).all() and rec["target_id"].isna().all()


#: A user's 10-class table: the ids are DSTL's, the classes are not.
USER = ClassTable(tuple(ObjectClass(i, n, "#808080") for i, n in enumerate(
    ["Glacier", "Moraine", "Lake", "River", "Forest", "Meadow", "Rock", "Snow", "Hut", "Road"], start=1)))


def user_case():
    """Two adjacent clusters; the left one has every user class at 0.9, the right one none."""
    data = two_regions(40, 40)
    model = TableModel({0.2: np.full(C, 0.9, np.float32), 0.8: np.zeros(C, np.float32)})
    return data, model, Config().replace("cluster", min_size=1)


def test_dstl_rules_do_not_fire_on_a_user_table_with_the_same_ids():
    data, model, cfg = user_case()
    res = cluster_and_predict(data, model, cfg, USER)
    left = data[0] == np.float32(0.2)
    # the DSTL defaults would drop ids 9, 10, 5, 6, 8 (and size-limit 6, 9, 10) on a DSTL table
    assert all(res.masks[j][left].all() for j in range(C))
    assert res.rule_counts["skipped"].all()
    dstl = cluster_and_predict(data, model, cfg, DSTL_CLASSES)
    assert not dstl.masks[DSTL_CLASSES.index(9)][left].any()  # the same ids on DSTL's table: they fire


def test_user_rule_by_name_fires_on_the_named_class():
    data, model, cfg = user_case()
    rule = OverlapRule("Snow", "Lake", reason="snow on a lake is ice")
    res = cluster_and_predict(data, model, cfg.replace("predict", overlap_rules=(rule,)), USER)
    left = data[0] == np.float32(0.2)
    snow = col("Snow", USER)
    assert not res.masks[snow][left].any()
    assert all(res.masks[j][left].all() for j in range(C) if j != snow)
    rec = res.rule_counts
    # the default size rules are DSTL's: skipped; the user's rule fired, by name
    assert list(rec["skipped"]) == [True] * len(DSTL_SIZE_RULES) + [False]
    fired = rec.iloc[-1]
    assert (fired["target"], fired["other"], fired["target_id"], fired["other_id"]) == ("Snow", "Lake", 8, 3)
    assert fired["clusters"] == 1 and fired["pixels"] == int(left.sum())
    assert fired["rule"] == "drop Snow where Lake is predicted in the same cluster"


@pytest.mark.parametrize("rules, fault", [
    ({"overlap_rules": (OverlapRule("Foo", "Road"),)},
     "rule drop 'Foo' where 'Road': class 'Foo' is not in the class table (Glacier, Moraine"),
    ({"overlap_rules": (OverlapRule("Snow", "Vehicle Large"),)}, "class 'Vehicle Large' is not in the class table"),
    ({"size_rules": (SizeRule("Crops", min_px=10),)}, "rule drop 'Crops' from groups < 10 px: class 'Crops'"),
])
def test_a_configured_rule_naming_an_unknown_class_is_a_config_error(rules, fault):
    data, model, cfg = user_case()
    with pytest.raises(ConfigError, match=re.escape(fault)) as e:
        cluster_and_predict(data, model, cfg.replace("predict", **rules), USER)
    assert "\n" not in str(e.value) and str(e.value).startswith("configuration: [predict] rule")


def test_rules_for_resolves_names_and_names_the_file():
    bound = rules_for(PredictConfig(), DSTL_CLASSES)
    assert [(b.rule, b.target_id, b.other_id) for b in bound][:2] == [
        (DSTL_SIZE_RULES[0], 6, None), (DSTL_SIZE_RULES[1], 10, None)]
    assert [b.rule for b in bound] == list(DSTL_SIZE_RULES + DSTL_OVERLAP_RULES)
    assert not any(b.skipped for b in bound)
    assert all(b.skipped for b in rules_for(PredictConfig(), USER))
    cfg = PredictConfig(overlap_rules=(OverlapRule("Foo", "Road"),))
    with pytest.raises(ConfigError, match=r"run\.toml: \[predict\] rule drop 'Foo' where 'Road'"):
        rules_for(cfg, USER, "run.toml")
    with pytest.raises(ConfigError, match=r"run\.toml: \[predict\] thresholds: class 'Foo'"):
        check_classes(Config().replace("predict", thresholds={"Foo": 0.5}), USER, "run.toml")
    # a rule built in code is checked like a configured one
    with pytest.raises(ConfigError, match="scope: must be one of 'cluster', 'neighbours', got 'near'"):
        rules_for(PredictConfig(overlap_rules=(OverlapRule("Snow", "Lake", "near"),)), USER)


def test_shape_misuse_is_a_value_error():
    _, table = cluster_pixels(two_regions(10, 10), 0.03, 1)
    with pytest.raises(ValueError, match=r"shape \(K, 10\).*got \(2, 3\)") as e:
        apply_rules(np.zeros((2, 3), np.float32), table, PredictConfig(), DSTL_CLASSES)
    assert not isinstance(e.value, SattagError)
    with pytest.raises(ValueError, match="one probability row per cluster: got 3 rows for 2 clusters") as e:
        apply_rules(np.zeros((3, C), np.float32), table, PredictConfig(), DSTL_CLASSES)
    assert not isinstance(e.value, SattagError)
    with pytest.raises(ValueError, match="flags of shape"):
        class_masks(np.zeros((2, 2), np.int32), np.zeros(2, bool))
    with pytest.raises(ValueError, match=r"cluster ids in 0\.\.1"):
        paint(np.full((2, 2), 5, np.int32), np.zeros(2))


# --------------------------------------------------------------------------------- files & figures
def test_write_prediction_files(tmp_path):
    import rasterio

    data = two_regions(40, 50)
    model = TableModel({0.2: probs_for(5), 0.8: probs_for(3, 6)})
    res = cluster_and_predict(data, model, Config(), DSTL_CLASSES)
    assert isinstance(res, PredictResult)
    grid = dstl_grid(0.009, -0.009, 40, 50)
    run = RunFolder(tmp_path / "run")
    out = write_prediction(run, "6010_0_0", res, grid, DSTL_CLASSES)
    from sattag.labels import read_masks

    with rasterio.open(out["masks"]) as src:
        assert src.count == C and src.dtypes[0] == "uint8" and src.compression is not None
    masks, grid2, classes2 = read_masks(out["masks"])
    assert grid2.transform == grid.transform and classes2 == DSTL_CLASSES
    np.testing.assert_array_equal(masks, res.masks)
    with rasterio.open(out["clusters"]) as src:
        assert src.dtypes[0] == "int32"
        np.testing.assert_array_equal(src.read(1), res.cluster_ids)
    assert out["rules"] == run.rules_csv("6010_0_0")
    df = read_probabilities(out["probabilities"], DSTL_CLASSES)
    assert list(df.columns) == (["cluster", "size"] + [f"p_{c}" for c in DSTL_CLASSES.ids]
                                + [f"flag_{c}" for c in DSTL_CLASSES.ids])
    assert df["cluster"].dtype == np.int32 and df["p_1"].dtype == np.float32 and df["flag_1"].dtype == bool
    assert df["size"].sum() == 40 * 50
    np.testing.assert_allclose(df[[f"p_{c}" for c in DSTL_CLASSES.ids]].to_numpy(), res.probabilities)
    np.testing.assert_array_equal(df[[f"flag_{c}" for c in DSTL_CLASSES.ids]].to_numpy(), res.flags)
    # the crop-size rule dropped crops (class 6) from the 1000 px cluster; the record says so, by name
    rec = read_rules(out["rules"])
    assert list(rec.columns) == RULE_COLUMNS
    assert rec["target_id"].dtype == "Int64" and rec["clusters"].dtype == np.int64
    crops = rec[(rec["target"] == "Crops") & (rec["kind"] == "size")].iloc[0]
    assert crops["clusters"] == 1 and crops["target_id"] == 6 and crops["other"] == "" and pd.isna(crops["other_id"])
    assert [tuple(map(str, r)) for r in rec.itertuples(index=False)] == \
        [tuple(map(str, r)) for r in res.rule_counts.fillna({"other": "", "skipped": ""}).itertuples(index=False)]
    text = out["rules"].read_text()
    assert "nan" not in text and "2000.0" not in text and ",2000," in text
    assert not list(tmp_path.rglob("*.tmp*"))


def test_cluster_figures(tmp_path):
    from sattag.scene import Stack
    from sattag.viz.clusters import busiest_crop, write_cluster_figures

    rng = np.random.default_rng(0)
    data = np.repeat(np.repeat(rng.uniform(0, 1, (3, 12, 15)), 10, 1), 10, 2).astype(np.float32)
    class Bright:  # class j when band 0 falls in the j-th tenth of [0, 1]
        bands = ("R", "G", "B")

        def predict_proba(self, X):
            return np.eye(C, dtype=np.float32)[np.minimum((X[:, 0] * C).astype(int), C - 1)]

    res = cluster_and_predict(data, Bright(), Config().replace("predict", size_rules=()), DSTL_CLASSES)
    assert res.flags.any(axis=1).all()
    stack = Stack("s1", data, ("R", "G", "B"), Grid(120, 150, dstl_grid(1, -1, 120, 150).transform))
    paths = write_cluster_figures(tmp_path, "s1", stack, res, DSTL_CLASSES)
    assert paths[0].exists() and paths[0].stat().st_size > 5000
    r0, c0, r1, c1 = busiest_crop(res.cluster_ids, 50)
    assert (r1 - r0, c1 - c0) == (50, 50) and r1 <= 120 and c1 <= 150


# ------------------------------------------------------------- per-cluster vs per-pixel, generated scene
class XgbModels:
    """10 one-vs-all xgboost boosters trained here (a small stand-in for ``sattag.learn.ModelSet``)."""

    def __init__(self, data, masks, n_trees=10, depth=6, n=5_000, seed=0):
        import xgboost as xgb

        rng = np.random.default_rng(seed)
        b, h, w = data.shape
        flat = data.reshape(b, -1)
        self.bands = tuple(str(i) for i in range(b))
        self.boosters = []
        for j in range(masks.shape[0]):
            m = masks[j].ravel().astype(bool)
            pos, neg = np.flatnonzero(m), np.flatnonzero(~m)
            if len(pos) == 0:
                self.boosters.append(None)
                continue
            idx = np.concatenate([rng.choice(pos, min(n, len(pos)), replace=False),
                                  rng.choice(neg, min(n, len(neg)), replace=False)])
            X, y = flat[:, idx].T, m[idx].astype(np.float32)
            params = {"max_depth": depth, "eta": 0.3, "objective": "binary:logistic", "nthread": 1,
                      "tree_method": "hist", "seed": seed}
            self.boosters.append(xgb.train(params, xgb.DMatrix(X, label=y), n_trees))

    def predict_proba(self, X):
        out = np.zeros((len(X), len(self.boosters)), np.float32)
        for j, bst in enumerate(self.boosters):
            if bst is not None:
                out[:, j] = bst.inplace_predict(np.ascontiguousarray(X, np.float32))
        return out


@pytest.mark.slow
def test_cluster_masks_agree_with_pixel_masks_on_a_generated_scene(small_dstl):
    from sattag.ingest import build_stack, discover_scenes
    from sattag.labels import rasterize_classes, scene_labels
    from sattag.predict import threshold_flags

    scene = next(s for s in discover_scenes(small_dstl) if scene_labels(small_dstl, s.id, DSTL_CLASSES))
    stack = build_stack(scene, Config().ingest)
    truth_masks = rasterize_classes(scene_labels(small_dstl, scene.id, DSTL_CLASSES), stack.grid, DSTL_CLASSES)
    models = XgbModels(stack.data, truth_masks)
    cfg = Config()
    res = cluster_and_predict(stack.data, models, cfg, DSTL_CLASSES)
    b, h, w = stack.data.shape
    per_pixel = threshold_flags(models.predict_proba(stack.data.reshape(b, -1).T), cfg.predict, DSTL_CLASSES)
    per_pixel = per_pixel.T.reshape(C, h, w)
    per_cluster = class_masks(res.cluster_ids, threshold_flags(res.probabilities, cfg.predict, DSTL_CLASSES))
    agree = (per_cluster == per_pixel).mean()  # over classes x pixels, rules left out on both sides
    agree_all = (per_cluster == per_pixel).all(axis=0).mean()  # pixels where all 10 classes agree
    print(f"per-cluster vs per-pixel masks: {agree:.4f} of class-pixels, {agree_all:.4f} of pixels all classes; "
          f"{len(res.cluster_table)} clusters for {h * w} px")
    # Were 0.97 and 0.85. Since the generator's scenes got as hard as real ones (issue 12: texture,
    # sub-pixel mixtures and per-pixel cover changes within every object) a cluster's pixels are less
    # alike and per-pixel predictions within one cluster differ more: measured 0.967 of class-pixels
    # and 0.737 of pixels with all classes agreeing on this scene.
    assert agree > 0.95
    assert agree_all > 0.70
    assert len(res.cluster_table) < h * w / 50


def test_size_rule_measures_groups_of_adjacent_clusters():
    # three side-by-side clusters of 300 px, all crops: one group of 900 px
    data = np.full((1, 10, 90), 0.2, np.float32)
    data[:, :, 30:60] = 0.5
    data[:, :, 60:] = 0.8
    crops = probs_for(6)
    model = TableModel({0.2: crops, 0.5: crops, 0.8: crops})
    for scope, min_px, kept in (("group", 800, True), ("group", 1000, False), ("cluster", 800, False)):
        rule = SizeRule("Crops", min_px=min_px, scope=scope)
        cfg = Config().replace("predict", size_rules=(rule,), overlap_rules=()).replace("cluster", min_size=1)
        res = cluster_and_predict(data, model, cfg, DSTL_CLASSES)
        assert res.masks[DSTL_CLASSES.index(6)].all() == kept, (scope, min_px)
        assert res.masks[DSTL_CLASSES.index(6)].any() == kept


def test_sampled_cluster_pixels_are_spread_and_deterministic():
    from sattag.predict import mean_by_cluster, sample_cluster_pixels

    ids = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [3, 3, 3, 3]], np.int32)
    index, owner = sample_cluster_pixels(ids, 4, 2)
    assert owner.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert (ids.ravel()[index] == owner).all()
    assert index[-2:].tolist() == [9, 11]  # cluster 3's 4 pixels: the middle of each half
    whole, owner_all = sample_cluster_pixels(ids, 4, 100)  # at most what a cluster has
    assert sorted(whole.tolist()) == list(range(12))
    means = mean_by_cluster(np.arange(12, dtype=float)[whole, None], owner_all, 4)
    assert means[:, 0].tolist() == pytest.approx([5 / 3, 4.0, 5.5, 9.5])


def test_a_cluster_gets_the_mean_of_its_pixels_probabilities():
    """Averaging probabilities, not features: a cluster half of one kind and half of another gets
    probability 0.5 from a model that is sure of each pixel, where its mean feature would be ~0."""
    from sattag.predict import mean_by_cluster, sample_cluster_pixels

    class Step:
        columns = ("x",)

        def predict_proba(self, X):  # certain: 1 where x > 0.5, else 0 (a tree on a mean sees 0.5)
            return (X[:, :1] > 0.5).astype(np.float32)

    x = np.zeros((1, 4, 4), np.float32)
    x[0, :, :2] = 1.0
    ids = np.zeros((4, 4), np.int32)
    index, owner = sample_cluster_pixels(ids, 1, 16)  # as the predict task does it
    probs = mean_by_cluster(Step().predict_proba(x.reshape(1, -1)[:, index].T), owner, 1)
    assert probs[0, 0] == pytest.approx(0.5)

"""Pairwise models: declared by class name, trained on two classes' pixels, deciding where both fire."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import ClassPair, Config, ModelConfig, PredictConfig, check_classes, config_from_dict, pairs_for
from sattag.errors import ConfigError, ModelError
from sattag.learn import load_models, pair_file_name, train_models, train_pairs
from sattag.predict import apply_rules, pair_decider
from sattag.segment import ClusterTable

TWO = ClassTable((ObjectClass(1, "Pond", "#2e86c1"), ObjectClass(2, "River", "#1b4f72"),
                  ObjectClass(3, "Field", "#27ae60")))
BANDS = ("shape", "colour")


def test_dstl_pairs_bind_to_the_dstl_table_and_not_to_another():
    assert pairs_for(ModelConfig(), DSTL_CLASSES) == ((3, 4), (9, 10), (7, 8), (1, 2))
    assert pairs_for(ModelConfig(), TWO) == ()  # DSTL's default does not apply to a user's classes


def test_a_users_pairs_by_name_from_toml():
    config = config_from_dict({"model": {"pairs": [{"first": "River", "second": "Pond"}]}})
    assert config.model.pairs == (ClassPair("River", "Pond"),)
    assert pairs_for(config.model, TWO) == ((2, 1),)


@pytest.mark.parametrize("pair, text", [
    (ClassPair("Pond", "Lake"), "[model] pair 'Pond' vs 'Lake': class 'Lake' is not in the class table"),
    (ClassPair("Pond", "Pond"), "[model] pair 'Pond' vs 'Pond': a class cannot be paired with itself"),
])
def test_a_bad_pair_is_a_one_line_config_error_before_any_work(pair, text):
    config = dataclasses.replace(Config(), model=ModelConfig(pairs=(pair,)))
    with pytest.raises(ConfigError) as e:
        check_classes(config, TWO, "my.toml")
    assert str(e.value).startswith("my.toml: ") and text in str(e.value) and "\n" not in str(e.value)


def _samples(rng):
    """Pond and River share their colour (the one-vs-all models both fire on water); only ``shape``
    (elongation, say) tells them apart. Field differs in colour."""
    n = 600
    pond = np.column_stack([rng.uniform(0.0, 0.4, n), rng.uniform(0.6, 0.8, n)])
    river = np.column_stack([rng.uniform(0.6, 1.0, n), rng.uniform(0.6, 0.8, n)])
    field = np.column_stack([rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.3, n)])
    pixels = {1: pond, 2: river, 3: field}
    samples = {}
    for cid, inside in pixels.items():
        outside = np.concatenate([p for c, p in pixels.items() if c != cid])
        X = np.concatenate([inside, outside]).astype(np.float32)
        y = np.concatenate([np.ones(len(inside), np.uint8), np.zeros(len(outside), np.uint8)])
        samples[cid] = (X, y)
    return samples


@pytest.fixture(scope="module")
def models():
    config = dataclasses.replace(Config(), model=ModelConfig(n_trees=20, max_depth=4,
                                                             pairs=(ClassPair("Pond", "River"),)))
    samples = _samples(np.random.default_rng(0))
    model_set = train_models(samples, BANDS, TWO, config, n_jobs=1)
    return train_pairs(model_set, samples, pairs_for(config.model, TWO), n_jobs=1)


def test_pairwise_model_learns_what_tells_the_two_apart(models):
    assert set(models.pairs) == {(1, 2)}
    res = models.pair_results[(1, 2)]
    assert res.name == "Pond / River" and res.n_in == 600 and res.n_out == 600 and res.auc > 0.99
    rows = np.array([[0.1, 0.7], [0.9, 0.7]], np.float32)
    p = models.predict_pair(1, 2, rows)
    assert p[0] > 0.9 and p[1] < 0.1


def _table(k: int) -> ClusterTable:
    return ClusterTable(ids=np.arange(k, dtype=np.int32), sizes=np.full(k, 100, np.int64),
                        means=np.zeros((k, 2), np.float32), bbox=np.zeros((k, 4), np.int32),
                        neighbour_ptr=np.zeros(k + 1, np.int64), neighbour_ids=np.zeros(0, np.int32))


def test_the_pairwise_model_flips_the_clusters_built_for_it(models):
    # Four water clusters, each of 3 sampled pixels: two pond-shaped, two river-shaped, and both
    # one-vs-all models fire on all four (as they would: same colour). A fifth is a field.
    rng = np.random.default_rng(1)
    shapes = [0.1, 0.2, 0.8, 0.9]
    rows = [[s + rng.uniform(-0.05, 0.05), 0.7] for s in shapes for _ in range(3)] + [[0.5, 0.1]] * 3
    features = np.array(rows, np.float32)
    owner = np.repeat(np.arange(5), 3)
    probs = np.array([[0.9, 0.8, 0.0]] * 4 + [[0.0, 0.0, 0.95]], np.float32)
    table = _table(5)
    without, _ = apply_rules(probs, table, PredictConfig(), TWO)
    assert without[:4, 0].all() and without[:4, 1].all()  # both fire
    flags, record = apply_rules(probs, table, PredictConfig(), TWO, pairs=tuple(models.pairs),
                                decide_pair=pair_decider(models, features, owner, 5))
    assert flags[:, 0].tolist() == [True, True, False, False, False]   # Pond
    assert flags[:, 1].tolist() == [False, False, True, True, False]   # River
    assert flags[:, 2].tolist() == [False, False, False, False, True]  # Field untouched
    row = record[record.kind == "pair"].iloc[0]
    assert (row.target, row.other, row.clusters, row.pixels) == ("Pond", "River", 4, 400)


def test_pairs_are_asked_only_about_clusters_where_both_fire(models):
    asked = []

    def decide(first, second, clusters):
        asked.append((first, second, clusters.tolist()))
        return np.ones(len(clusters))

    probs = np.array([[0.9, 0.1, 0], [0.9, 0.9, 0], [0.1, 0.9, 0]], np.float32)
    flags, _ = apply_rules(probs, _table(3), PredictConfig(), TWO, pairs=((1, 2),), decide_pair=decide)
    assert asked == [(1, 2, [1])]
    assert flags[:, :2].tolist() == [[True, False], [True, False], [False, True]]


def test_pairwise_models_round_trip_through_the_card(models, tmp_path):
    models.save(tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    assert [(p["first_id"], p["second_id"], p["file"]) for p in card["pairs"]] == [(1, 2, pair_file_name(1, 2))]
    back = load_models(tmp_path, BANDS, TWO)
    rows = np.random.default_rng(2).uniform(0, 1, (50, 2)).astype(np.float32)
    assert np.array_equal(back.predict_pair(1, 2, rows), models.predict_pair(1, 2, rows))
    assert back.pair_results[(1, 2)].auc == pytest.approx(models.pair_results[(1, 2)].auc)
    (tmp_path / pair_file_name(1, 2)).write_bytes(b"not a model")
    with pytest.raises(ModelError, match="pair_01_02.ubj: model file of pair Pond / River is corrupt"):
        load_models(tmp_path, BANDS, TWO)


def test_a_pair_without_pixels_of_one_class_is_skipped_with_the_reason(models):
    samples = _samples(np.random.default_rng(0))
    samples[2] = (samples[2][0], np.zeros_like(samples[2][1]))  # no River pixel
    out = train_pairs(dataclasses.replace(models, pairs={}, pair_results={}), samples, ((1, 2),), n_jobs=1)
    assert out.pairs == {} and out.pair_results[(1, 2)].skipped == "no pixels of River in the training scenes"

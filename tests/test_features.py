"""The features stage: names per feature set, values the same for a whole scene and for samples,
per-cluster means, and models that refuse another feature set."""
from __future__ import annotations

import numpy as np
import pytest

from sattag.dstl import DSTL_BANDS
from sattag.features import FeatureSet, cluster_features, feature_maps, feature_names, pixel_features

RGBN = ("R", "G", "B", "NIR")


def _stack(bands, h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((len(bands), h, w), dtype=np.float32)


def test_names_follow_the_bands_a_stack_has():
    assert feature_names(DSTL_BANDS, FeatureSet("spectra")) == DSTL_BANDS
    dstl = feature_names(DSTL_BANDS, FeatureSet("context", (5, 15)))
    assert dstl[:20] == DSTL_BANDS and {"NDVI", "NDWI", "NDBI", "SWIR-CLAY", "NDVI_mean_15"} <= set(dstl)
    rgbn = feature_names(RGBN, FeatureSet("context", (5,)))
    assert "NDVI" in rgbn and "NDWI" in rgbn and "NDBI" not in rgbn  # no SWIR band
    pan = feature_names(("PAN",), FeatureSet("context", (5, 15)))
    # a panchromatic scene still gets its context: brightness statistics and edges, no index
    assert pan == ("PAN", "brightness", "brightness_mean_5", "brightness_sd_5", "edges_5", "brightness_rel_5",
                   "brightness_mean_15", "brightness_sd_15", "edges_15", "brightness_rel_15")

    with pytest.raises(ValueError, match="unknown feature set"):
        FeatureSet("colour")


def test_maps_match_names_and_are_finite():
    data = _stack(RGBN)
    fs = FeatureSet("context", (3, 9))
    got = list(feature_maps(data, RGBN, fs))
    assert tuple(n for n, _ in got) == feature_names(RGBN, fs)
    for name, m in got:
        assert m.shape == (64, 80) and m.dtype == np.float32 and np.isfinite(m).all(), name
    maps = dict(got)
    r, nir = data[0], data[3]
    np.testing.assert_allclose(maps["NDVI"], (nir - r) / (nir + r), rtol=1e-5, atol=1e-6)
    # the local mean over a 3x3 window inside the image
    np.testing.assert_allclose(maps["brightness_mean_3"][10, 10], data.mean(axis=0)[9:12, 9:12].mean(), rtol=1e-5)
    np.testing.assert_allclose(maps["brightness_sd_3"][10, 10], data.mean(axis=0)[9:12, 9:12].std(), rtol=1e-3, atol=1e-6)
    bright = data.mean(axis=0)
    np.testing.assert_allclose(maps["brightness_rel_3"][10, 10], bright[10, 10] / bright[9:12, 9:12].mean(), rtol=1e-5)


def test_relative_brightness_ignores_the_scenes_illumination():
    """A scene lit 30 % brighter gets the same relative brightness: a feature that lets models
    trained on one scene's light tag another's."""
    data = _stack(RGBN)
    fs = FeatureSet("context", (3, 9))
    dim, lit = dict(feature_maps(data, RGBN, fs)), dict(feature_maps(data * np.float32(1.3), RGBN, fs))
    for name in ("brightness_rel_3", "brightness_rel_9"):
        np.testing.assert_allclose(lit[name], dim[name], rtol=1e-4, err_msg=name)
    assert not np.allclose(lit["brightness_mean_9"], dim["brightness_mean_9"])


def test_pixel_features_equal_the_whole_scene_maps():
    data = _stack(DSTL_BANDS, 50, 70, seed=3)
    fs = FeatureSet("context", (5, 15))
    whole = np.stack([m for _, m in feature_maps(data, DSTL_BANDS, fs)])  # (F, H, W)
    idx = np.random.default_rng(1).choice(50 * 70, 300, replace=False)
    got = pixel_features(data, DSTL_BANDS, fs, idx)
    np.testing.assert_array_equal(got, whole.reshape(whole.shape[0], -1)[:, idx].T)


def test_cluster_features_are_cluster_means():
    data = _stack(RGBN, 40, 40, seed=4)
    ids = (np.arange(40 * 40).reshape(40, 40) // 37).astype(np.int32)
    k = int(ids.max()) + 1
    fs = FeatureSet("context", (5,))
    got = cluster_features(data, RGBN, fs, ids, k)
    whole = np.stack([m for _, m in feature_maps(data, RGBN, fs)]).reshape(len(got[0]), -1)
    for c in (0, 7, k - 1):
        np.testing.assert_allclose(got[c], whole[:, ids.ravel() == c].mean(axis=1), rtol=1e-5, atol=1e-6)


def test_sampling_draws_the_same_pixels_whatever_the_features():
    from sattag.learn import sample_scene

    data = _stack(RGBN, 60, 60, seed=5)
    masks = np.zeros((2, 60, 60), np.uint8)
    masks[0, 10:30, 10:30] = 1
    masks[1, 40:50, :] = 1
    quotas = np.array([[100, 100], [50, 80]])
    plain = sample_scene(data, masks, quotas, 7, scene_id="s")
    ctx = sample_scene(data, masks, quotas, 7, scene_id="s", bands=RGBN, feature_set=FeatureSet("context", (5,)))
    for cid in (1, 2):
        np.testing.assert_array_equal(plain[cid][1], ctx[cid][1])
        np.testing.assert_array_equal(plain[cid][0], ctx[cid][0][:, :4])  # the bands come first
        assert ctx[cid][0].shape[1] == len(feature_names(RGBN, FeatureSet("context", (5,))))


def test_models_refuse_another_feature_set(tmp_path):
    from sattag.classes import ClassTable, ObjectClass
    from sattag.config import Config
    from sattag.errors import ModelError
    from sattag.learn import load_models, sample_scene, train_models

    classes = ClassTable((ObjectClass(1, "Bright", "#ffffff"),))
    data = _stack(RGBN, 60, 60, seed=6)
    data[:, 20:40, 20:40] += 1.0
    masks = np.zeros((1, 60, 60), np.uint8)
    masks[0, 20:40, 20:40] = 1
    fs = FeatureSet("context", (5,))
    samples = sample_scene(data, masks, np.array([[200, 200]]), 0, bands=RGBN, feature_set=fs)
    cfg = Config().replace("model", n_trees=3, max_depth=2)
    train_models(samples, RGBN, classes, cfg, feature_set=fs, n_jobs=1).save(tmp_path / "models")
    loaded = load_models(tmp_path / "models", RGBN, classes)
    assert loaded.feature_set == fs and loaded.columns == feature_names(RGBN, fs)
    with pytest.raises(ModelError, match=r"trained on context \(scales 5 px\).*asked for spectra"):
        load_models(tmp_path / "models", RGBN, classes, FeatureSet("spectra"))
    with pytest.raises(ModelError):
        load_models(tmp_path / "models", ("R", "G", "B"), classes)

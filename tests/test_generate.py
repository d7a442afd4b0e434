"""The DSTL-format generator: layout, formats, ranges, offsets, determinism, spectra."""
from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import shapely
from shapely import wkt as shapely_wkt

from sattag.synth import (
    CLASS_LAYERS,
    EXTRA_LAYERS,
    MAT,
    REAL_TRAIN_IDS,
    dataset_scene_ids,
    generate_dataset,
    generate_scene,
)
from sattag.synth.spectra import CANOPY, ROAD_SURFACES, ROOF_ONLY, VEHICLE_PAINTS
from sattag.wkt_csv import wkt_csv_reader

ID_RE = re.compile(r"^6(0[1-9]|1[0-8])0_[0-4]_[0-4]$")


def _wkt_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a DSTL WKT CSV as dicts (its WKT fields run to megabytes: sattag's reader)."""
    with open(path, newline="") as f:
        reader = wkt_csv_reader(f)
        header = next(reader)
        return [dict(zip(header, r)) for r in reader if r]


def _ids(data: Path) -> list[str]:
    return sorted(p.stem for p in (data / "three_band").glob("*.tif"))


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_layout_and_names(small_dstl):
    ids = _ids(small_dstl)
    assert len(ids) == 4
    for sid in ids:
        assert ID_RE.match(sid), sid
        for suffix in ("P", "M", "A"):
            assert (small_dstl / "sixteen_band" / f"{sid}_{suffix}.tif").is_file()
    for name in ("grid_sizes.csv", "train_wkt_v4.csv", "sample_submission.csv", "generator_truth.csv"):
        assert (small_dstl / name).is_file(), name
    train = sorted(p.name for p in (small_dstl / "train_geojson_v3").iterdir())
    assert train == sorted(REAL_TRAIN_IDS[:3])
    # no temporary files left behind
    assert not [p for p in small_dstl.rglob(".*tmp*")]


def test_bands_dtypes_ranges_and_ratios(small_dstl):
    for sid in _ids(small_dstl):
        r = _read(small_dstl / "three_band" / f"{sid}.tif")
        p = _read(small_dstl / "sixteen_band" / f"{sid}_P.tif")
        m = _read(small_dstl / "sixteen_band" / f"{sid}_M.tif")
        a = _read(small_dstl / "sixteen_band" / f"{sid}_A.tif")
        assert (r.shape[0], p.shape[0], m.shape[0], a.shape[0]) == (3, 1, 8, 8)
        for arr in (r, p, m, a):
            assert arr.dtype == np.uint16
        assert r.max() <= 2047 and p.max() <= 2047 and m.max() <= 2047
        assert a.max() <= 16383 and a.max() > 2047  # A uses the 14-bit range
        assert r.shape[1:] == p.shape[1:]
        h, w = r.shape[1:]
        assert abs(w - 600) <= 3 and 0.97 < h / w < 1.0
        assert abs(h / m.shape[1] - 4) < 0.1 and abs(w / m.shape[2] - 4) < 0.1
        assert abs(h / a.shape[1] - 25) < 1.5 and abs(w / a.shape[2] - 25) < 1.5
        assert min(a.shape[1:]) >= 8
        # never constant images: texture and noise
        assert r.std() > 20 and a.std() > 100


def test_grid_sizes_csv(small_dstl):
    lines = (small_dstl / "grid_sizes.csv").read_text().splitlines()
    assert lines[0] == ",Xmax,Ymin"
    rows = [ln.split(",") for ln in lines[1:]]
    assert sorted(r[0] for r in rows) == _ids(small_dstl)
    for _, x, y in rows:
        assert 0.0090045 <= float(x) <= 0.0091881
        assert -0.009045 <= float(y) <= -0.009031


@pytest.mark.slow  # several scenes: the harder generator lays out each at full size (~4 s)
def test_grid_sizes_unsorted_and_long_digits(tmp_path):
    out = generate_dataset(tmp_path / "d", n_scenes=8, n_train=0, size=60, seed=2)
    rows = [ln.split(",") for ln in (out / "grid_sizes.csv").read_text().splitlines()[1:]]
    ids = [r[0] for r in rows]
    assert ids != sorted(ids)
    digits = [len(v.lstrip("-0.")) for r in rows for v in r[1:]]
    assert max(digits) >= 11 and min(digits) <= 6
    # no training scene: no polygons but all headers
    assert (out / "train_wkt_v4.csv").read_text().strip() == "ImageId,ClassType,MultipolygonWKT"


def test_wkt_csv(small_dstl):
    rows = _wkt_rows(small_dstl / "train_wkt_v4.csv")
    assert list(rows[0]) == ["ImageId", "ClassType", "MultipolygonWKT"]
    by_scene: dict[str, list[int]] = {}
    extents = {ln.split(",")[0]: (float(ln.split(",")[1]), float(ln.split(",")[2]))
               for ln in (small_dstl / "grid_sizes.csv").read_text().splitlines()[1:]}
    non_empty = set()
    for r in rows:
        by_scene.setdefault(r["ImageId"], []).append(int(r["ClassType"]))
        g = shapely_wkt.loads(r["MultipolygonWKT"])
        assert g.geom_type == "MultiPolygon" and g.is_valid
        if not g.is_empty:
            non_empty.add(int(r["ClassType"]))
            xmax, ymin = extents[r["ImageId"]]
            x0, y0, x1, y1 = g.bounds
            assert x0 >= -1e-9 and x1 <= xmax + 1e-9 and y0 >= ymin - 1e-9 and y1 <= 1e-9
    assert sorted(by_scene) == sorted(REAL_TRAIN_IDS[:3])
    assert all(sorted(v) == list(range(1, 11)) for v in by_scene.values())
    # the common classes are there in a few training scenes
    assert {1, 3, 5, 6} <= non_empty


def test_geojson_layers(small_dstl):
    layer_names = {n for names in CLASS_LAYERS.values() for n in names}
    for folder in (small_dstl / "train_geojson_v3").iterdir():
        files = {p.stem for p in folder.glob("*.geojson")}
        assert any(f.startswith("Grid") for f in files)
        present = {cid for cid, names in CLASS_LAYERS.items() if files & set(names)}
        assert {1, 3, 5, 6} <= present, (folder.name, present)
        for f in folder.glob("0*.geojson"):
            obj = json.loads(f.read_text())
            assert obj["type"] == "FeatureCollection" and obj["features"]
            for feat in obj["features"][:50]:
                assert feat["properties"]["LABEL"] == f.stem
                assert shapely.geometry.shape(feat["geometry"]).is_valid
            assert f.stem in layer_names or f.stem in EXTRA_LAYERS


def test_sample_submission_and_truth(small_dstl):
    rows = _wkt_rows(small_dstl / "sample_submission.csv")
    test_ids = {r["ImageId"] for r in rows}
    assert test_ids == set(_ids(small_dstl)) - set(REAL_TRAIN_IDS[:3])
    assert len(rows) == 10 * len(test_ids)
    assert all(not shapely_wkt.loads(r["MultipolygonWKT"]).is_empty for r in rows)
    with open(small_dstl / "generator_truth.csv", newline="") as f:
        truth = list(csv.DictReader(f))
    assert list(truth[0]) == ["scene", "group", "dx", "dy"]
    assert {(t["scene"], t["group"]) for t in truth} == {(s, g) for s in _ids(small_dstl) for g in "PMA"}
    # at 600 px the offsets shrink with the pixel size (600/3400 of the full-size ones)
    assert all(abs(float(t["dx"])) < 16 and abs(float(t["dy"])) < 16 for t in truth)


def test_scene_ids():
    ids, train = dataset_scene_ids(450, 25, seed=0)
    assert len(set(ids)) == 450 and ids[:25] == train == list(REAL_TRAIN_IDS)
    ids2, _ = dataset_scene_ids(30, 2, seed=5)
    assert ids2[:2] == list(REAL_TRAIN_IDS[:2]) and len(set(ids2)) == 30
    with pytest.raises(ValueError):
        dataset_scene_ids(3, 4)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # several scenes: the harder generator lays out each at full size (~4 s)
def test_deterministic(tmp_path):
    a = generate_dataset(tmp_path / "a", n_scenes=2, n_train=1, size=120, seed=4)
    b = generate_dataset(tmp_path / "b", n_scenes=2, n_train=1, size=120, seed=4)
    c = generate_dataset(tmp_path / "c", n_scenes=2, n_train=1, size=120, seed=5)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    assert da["three_band/6010_1_2.tif"] != dc["three_band/6010_1_2.tif"]


def test_progress_called(tmp_path):
    calls = []
    generate_dataset(tmp_path / "p", n_scenes=2, n_train=1, size=60, seed=1, progress=calls.append)
    assert sum(calls) == 2


@pytest.mark.slow  # several scenes: the harder generator lays out each at full size (~4 s)
def test_sizes_vary_and_same_land_at_every_size():
    widths = {generate_scene(sid, size=400, seed=0).shape[1] for sid in ("6010_1_2", "6040_2_2", "6100_1_3", "6120_2_2", "6170_4_1")}
    assert all(abs(w - 400) <= 2 for w in widths)
    small = generate_scene("6120_2_2", size=200, seed=3)
    big = generate_scene("6120_2_2", size=400, seed=3)
    # the same polygons in grid units, whatever the raster size
    assert small.polygons[6].symmetric_difference(big.polygons[6]).area < 0.01 * big.polygons[6].area + 1e-12


@pytest.fixture(scope="module")
def scene():
    return generate_scene("6120_2_2", size=500, seed=2)


def test_spectra():
    """Trees: NIR (M7) well above red (M5), and darker than bare soil in red."""
    # Most trees are small crowns (DSTL's tree layers hold tens of thousands of small polygons): a
    # tree's inner pixels, away from edges (blur, shift), need a finer grid than 500 px.
    for sid in ("6120_2_2", "6170_4_1", "6040_2_2", "6010_4_2"):
        scene = generate_scene(sid, size=1600, seed=2)
        mat = scene.materials
        masks = scene.masks()
        trees = cv2.erode(masks[4], np.ones((9, 9), np.uint8)) > 0
        soil = cv2.erode((mat == MAT["soil"]).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if trees.sum() > 50 and soil.sum() > 20:
            break
    else:
        pytest.fail("no scene with inner tree and bare-soil pixels")
    h, w = mat.shape
    m = cv2.resize(scene.bands["M"].transpose(1, 2, 0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    assert np.median(m[..., 6][trees]) > 1.5 * np.median(m[..., 4][trees])
    assert np.median(scene.bands["R"][0][trees]) < np.median(scene.bands["R"][0][soil])


def _pure(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels of a coarser grid (``shape``) lying wholly inside ``mask`` (with a margin for blur/shift)."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(np.float32)
    return cv2.resize(inner, shape[::-1], interpolation=cv2.INTER_AREA) > 0.999


def test_water_dark_in_nir_and_swir():
    """Water (waterway + standing water) is darker than bare soil in P, in NIR (M8) and in SWIR (A)."""
    for sid in ("6010_4_4", "6170_0_4", "6040_2_2", "6010_1_2", "6100_1_3", "6170_4_1", "6120_2_0", "6060_2_3",
                "6110_3_1", "6140_1_2", "6150_2_3", "6160_2_1"):
        sc = generate_scene(sid, size=600, seed=3)
        masks = sc.masks()
        water = (masks[6] | masks[7]) > 0
        soil = sc.materials == MAT["soil"]
        mshape = sc.bands["M"].shape[1:]
        wm, sm = _pure(water, mshape), _pure(soil, mshape)
        if wm.sum() >= 10 and sm.sum() >= 10:
            break
    else:
        pytest.fail("no scene with water and bare soil")
    p = sc.bands["P"][0]
    pw, ps = _pure(water, p.shape), _pure(soil, p.shape)
    assert np.median(p[pw]) < np.median(p[ps])
    m8 = sc.bands["M"][7]
    assert np.median(m8[wm]) < 0.5 * np.median(m8[sm])
    # SWIR: on A's coarse grid compare the darkest water-rich pixels with soil-rich ones
    a = sc.bands["A"][1].astype(np.float32)
    fw = cv2.resize(water.astype(np.float32), a.shape[::-1], interpolation=cv2.INTER_AREA)
    fs = cv2.resize(soil.astype(np.float32), a.shape[::-1], interpolation=cv2.INTER_AREA)
    if (fw > 0.6).any() and (fs > 0.6).any():
        assert a[fw > 0.6].mean() < a[fs > 0.6].mean()


def test_classes_separable_per_pixel(scene):
    """A nearest-centroid rule on the R grid's 20 band values beats chance by far for the big classes."""
    h, w = scene.shape
    stack = [scene.bands["R"][i].astype(np.float32) / 2047 for i in range(3)]
    stack.append(scene.bands["P"][0].astype(np.float32) / 2047)
    for g, div in (("M", 2047), ("A", 16383)):
        for b in scene.bands[g]:
            stack.append(cv2.resize(b.astype(np.float32) / div, (w, h), interpolation=cv2.INTER_CUBIC))
    X = np.stack(stack, -1)
    masks = scene.masks()
    labels = np.full((h, w), -1)
    for ci in (5, 4, 2):  # crops, trees (on top), roads
        labels[cv2.erode(masks[ci], np.ones((5, 5), np.uint8)) > 0] = ci
    sel = labels >= 0
    y = labels[sel]
    Xs = X[sel]
    classes = np.unique(y)
    assert len(classes) >= 2
    cent = np.stack([Xs[y == c].mean(0) for c in classes])
    sd = Xs.std(0) + 1e-6
    pred = classes[np.argmin((((Xs[:, None, :] - cent[None]) / sd) ** 2).sum(-1), axis=1)]
    acc = np.mean([np.mean(pred[y == c] == c) for c in classes])
    assert acc > 0.75
    # ... but pixels of one class are not identical
    assert Xs[y == classes[0]].std(0).mean() > 0.002


def test_forced_offset_measured_m_against_r():
    """A forced M shift is what phase correlation measures between R and M brought to the R grid."""
    dx, dy = 3.25, -2.5
    sc = generate_scene("6100_1_3", size=800, seed=1, offsets={"M": (dx, dy)})
    assert sc.offsets["M"] == (dx, dy)
    h, w = sc.shape
    ref = sc.bands["R"][0].astype(np.float32)
    up = cv2.resize(sc.bands["M"][4].astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)  # M5 = red
    win = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (mx, my), _ = cv2.phaseCorrelate(ref, up, win)
    assert abs(mx - dx) < 0.5 and abs(my - dy) < 0.5, (mx, my)


@pytest.mark.slow  # several scenes: the harder generator lays out each at full size (~4 s)
def test_forced_offset_a_sign_and_size():
    """A forced A shift moves A's content by (dx, dy) R px against an unshifted rendering of the same scene."""
    dx, dy = -50.0, 37.5
    sc = generate_scene("6100_1_3", size=1600, seed=1, offsets={"A": (dx, dy)})
    sc0 = generate_scene("6100_1_3", size=1600, seed=1, offsets={"A": (0.0, 0.0)})
    a0, a1 = (s.bands["A"][7].astype(np.float32) for s in (sc0, sc))
    ha, wa = a0.shape
    h, w = sc.shape
    warp = np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(a0, a1, warp, cv2.MOTION_TRANSLATION, crit, None, 5)
    mx, my = warp[0, 2] * w / wa, warp[1, 2] * h / ha  # A px -> R px
    assert abs(mx - dx) < 3 and abs(my - dy) < 3, (mx, my)
    assert np.array_equal(sc.bands["M"], sc0.bands["M"])  # other groups untouched
    # drawn offsets at a small size are the full-size ones scaled by the pixel size
    drawn = generate_scene("6100_1_3", size=200, seed=1).offsets
    assert all(abs(v) <= 80 * 200 / 3391 for v in drawn["A"])
    assert all(abs(v) <= 11 * 200 / 3391 for v in drawn["M"])


def test_labels_sit_on_the_image(scene):
    """Polygons rasterized through the grid_sizes formula land on the pixels painted with their material."""
    masks = scene.masks()
    mat = scene.materials

    def made_of(*names):
        return np.isin(mat, [MAT[n] for n in names])

    # roofs: roof materials, flat roofs of concrete, bitumen or gravel (as yards and roads are), and
    # crowns of trees hanging over them
    b = masks[0] > 0
    assert b.sum() > 100
    assert made_of(*ROOF_ONLY, "concrete", "asphalt", "gravel", "timber", *CANOPY)[b].mean() > 0.85
    # materials only roofs have are on buildings and small structures (sheds, huts, walls, fences)
    roofs = made_of(*ROOF_ONLY)
    assert (roofs & ~b & (masks[1] == 0)).sum() / max(roofs.sum(), 1) < 0.15
    road = masks[2] > 0
    assert made_of(*ROAD_SURFACES, "gravel", *CANOPY, *VEHICLE_PAINTS)[road].mean() > 0.85
    # crops contain trees (classes overlap as in reality) but no buildings
    assert (masks[5] & masks[4]).sum() > 0
    assert (masks[5] & masks[0]).sum() < 0.02 * masks[0].sum()


@pytest.mark.parametrize("d", [(0.0, 0.0), (0.3, -0.6), (-20.7, 13.25), (-50.5, 17.9)])
def test_sensor_shift_is_exact(d):
    """The optics (PSF + offset) move a smooth pattern by exactly d: the truth file can be trusted
    to far below the 0.1 px alignment target (cv2.warpAffine would quantise to 1/32 px)."""
    from sattag.synth.sensor import PSF_SIGMA, optics

    H, W = 200, 240
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    k = (2 * np.pi / 37.0, 2 * np.pi / 53.0)
    img = np.sin(k[0] * x + k[1] * y).astype(np.float32)
    out = optics(img, *d).astype(np.float64)
    # a Gaussian PSF scales a sinusoid and shifts nothing: out ~ a sin(theta) + b cos(theta) with
    # theta the phase moved by exactly d; b / a is the phase error, |phase| / |k| the shift error
    theta = k[0] * (x - d[0]) + k[1] * (y - d[1])
    inner = (slice(60, -60), slice(60, -60))
    basis = np.stack([np.sin(theta)[inner].ravel(), np.cos(theta)[inner].ravel()], 1)
    (a, b), *_ = np.linalg.lstsq(basis, out[inner].ravel(), rcond=None)
    gain = np.exp(-0.5 * PSF_SIGMA**2 * (k[0] ** 2 + k[1] ** 2))
    assert abs(a - gain) < 1e-3
    # (~0.004 px remain: a PSF of sigma 0.6 px sampled at whole pixels aliases a little)
    assert abs(np.arctan2(b, a)) / np.hypot(*k) < 0.01  # px


def test_a_dataset_too_large_for_the_disk_is_not_begun(tmp_path):
    """`sattag generate --size 1000000`: ~8 TB of GeoTIFFs. One line naming the folder and the bytes,
    exit 1, and nothing written (not even the folder)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "huge"
    res = subprocess.run([sys.executable, "-m", "sattag.cli", "generate", str(out), "--scenes", "2", "--train", "1",
                          "--size", "1000000", "--quiet"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "400"})  # one line, not wrapped at 80
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"error: {out}: not enough disk space for 2 generated scene(s) (size 1000000): "
                               "it needs up to "), lines[0]
    assert not out.exists()

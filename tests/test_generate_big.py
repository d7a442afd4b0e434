"""Scenes of any size in bounded memory: the generator renders and writes a scene window by window,
and what it writes does not depend on the window's size."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio

from sattag.synth import generate_scene, write_generated_scene
from sattag.synth.render import _Grain, _Smooth
from sattag.synth.sensor import apply_sep, block_normal, lowpass_op, optics, sensor_op


def _files(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(root.glob("*/*.tif")):
        with rasterio.open(p) as src:
            out[p.name] = (src.read(), src.profile["dtype"], src.block_shapes[0], src.tags())
    return out


# ---- the pieces, fast: each gives a window the values the whole grid has there


def test_sensor_operators_match_the_whole_image_steps():
    img = np.random.default_rng(0).random((90, 100), dtype=np.float32) * 1000
    # P: PSF with a sub-pixel shift
    ty, tx = sensor_op(90, 90, 0.4), sensor_op(100, 100, -1.3)
    assert np.abs(apply_sep(img, (0, 0), ty, (0, 90), tx, (0, 100)) - optics(img, -1.3, 0.4)).max() < 1e-3
    # M: PSF, area average to ~1/4, 0.5 px blur
    ty, tx = sensor_op(90, 22, 2.4), sensor_op(100, 25, -7.3)
    ref = cv2.GaussianBlur(cv2.resize(optics(img, -7.3, 2.4), (25, 22), interpolation=cv2.INTER_AREA), (0, 0), 0.5)
    full = apply_sep(img, (0, 0), ty, (0, 22), tx, (0, 25))
    assert np.abs(full - ref).max() < 1e-3
    # any window of the output from a window of the input: the same values, bit for bit
    (ya, yb), (xa, xb) = ty.span(5, 17), tx.span(3, 20)
    part = apply_sep(img[ya:yb, xa:xb].copy(), (ya, xa), ty, (5, 17), tx, (3, 20))
    assert np.array_equal(part, full[5:17, 3:20])
    # the pan-sharpening's low-pass: area to the M grid, bicubic back
    ly, lx = lowpass_op(90, 22), lowpass_op(100, 25)
    ref = cv2.resize(cv2.resize(img, (25, 22), interpolation=cv2.INTER_AREA), (100, 90), interpolation=cv2.INTER_CUBIC)
    assert np.abs(apply_sep(img, (0, 0), ly, (0, 90), lx, (0, 100)) - ref).max() < 1e-3


def test_random_fields_are_functions_of_position():
    a = block_normal((7, 1), -10, 300, 5, 600, 128)
    assert np.array_equal(block_normal((7, 1), 100, 200, 250, 400, 128), a[110:210, 245:395])
    assert abs(float(a.std()) - 1.0) < 0.02
    g = _Grain((3, 1), 2.5)
    whole = g.window(0, 700, 0, 650)
    assert np.array_equal(g.window(123, 456, 300, 610), whole[123:456, 300:610])
    assert abs(float(whole.std()) - 1.0) < 0.1
    s = _Smooth(np.random.default_rng(1), 700, 650, 40.0)
    whole = s.window(0, 700, 0, 650)
    assert np.array_equal(s.window(123, 456, 300, 610), whole[123:456, 300:610])
    assert abs(float(whole.std()) - 1.0) < 1e-4  # divided by the whole field's exact std


def test_burner_burns_what_rasterio_burns():
    from affine import Affine
    from rasterio.features import rasterize
    from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point, Polygon, box

    from sattag.synth.render import _Burner
    from sattag.synth.shapes import scale_many

    holed = box(10, 10, 60, 50).difference(Point(30, 30).buffer(8))
    geoms = [holed, Polygon(), MultiPolygon([box(70, 5, 90, 20), box(75, 30, 95, 60).difference(box(80, 40, 85, 45))]),
             GeometryCollection([box(5, 60, 30, 80), LineString([(0, 0), (100, 90)])]), Point(50, 50).buffer(20)]
    b = _Burner(geoms, 1.3, 0.9)
    ref = [(g, k + 1) for k, g in enumerate(scale_many(geoms, 1.3, 0.9)) if not g.is_empty]
    for y0, y1, x0, x1 in ((0, 80, 0, 130), (20, 47, 33, 101), (-5, 30, 90, 140)):
        want = rasterize(ref, out=np.zeros((y1 - y0, x1 - x0), np.int32), transform=Affine.translation(x0, y0))
        assert np.array_equal(b.burn(y0, y1, x0, x1, np.int32), want)
    assert b.burn(0, 80, 0, 130, np.int32).max() == 5


def test_compiled_loops_give_numpys_values(monkeypatch):
    from sattag.synth import _kernels, render, sensor
    from sattag.synth.spectra import MATERIAL_NAMES, draw_conditions, material_curves

    rng = np.random.default_rng(4)
    img = rng.random((120, 130), dtype=np.float32) * 3000 - 50
    ops = [(sensor_op(120, 120, 0.4), sensor_op(130, 130, -1.3)), (lowpass_op(120, 30), lowpass_op(130, 32)),
           (sensor_op(120, 30, 2.4), sensor_op(130, 32, -7.3)), (sensor_op(120, 8, -13.0), sensor_op(130, 8, 5.5))]
    for ty, tx in ops:
        (ya, yb), (xa, xb) = ty.span(0, ty.idx.shape[0]), tx.span(0, tx.idx.shape[0])
        args = (img[ya:yb, xa:xb], (ya, xa), ty, (0, ty.idx.shape[0]), tx, (0, tx.idx.shape[0]))
        monkeypatch.setattr(sensor, "kernels", lambda n: None)
        want = apply_sep(*args)
        monkeypatch.setattr(sensor, "kernels", lambda n: _kernels)
        got = apply_sep(*args)
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)
    cond = draw_conditions(np.random.default_rng(2))
    for ss in (1, 2):
        h, w = 64, 90
        land = render.Land(rng.integers(0, len(MATERIAL_NAMES), (h, w), dtype=np.uint8),
                           rng.integers(0, len(MATERIAL_NAMES), (h, w), dtype=np.uint8),
                           rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32) * 1.5,
                           rng.standard_normal((h, w), dtype=np.float32),
                           rng.random((h + 6, w + 4), dtype=np.float32)[3:-3, 2:-2],  # a window of a larger array
                           ss, cond, material_curves(cond))
        for band in ("P", "R", "M5", "M7", "A3", "A8"):
            monkeypatch.setattr(render, "kernels", lambda n: None)
            want = render.band_radiance_r(band, land)
            monkeypatch.setattr(render, "kernels", lambda n: _kernels)
            got = render.band_radiance_r(band, land)
            assert got.shape == (h // ss, w // ss) and np.array_equal(got, want), (ss, band)
    # the land's materials, brightness and mixtures (the scene's own fields and shapes)
    from sattag.synth.scene import ScenePlan

    r = ScenePlan("6120_2_2", size=150, seed=1).renderer
    lands = []
    for k in (None, _kernels):
        monkeypatch.setattr(render, "kernels", lambda n, k=k: k)
        lands.append(r.land(20, 90, 35, 140))
    for f in ("mat", "mat2", "frac", "bright", "shadow", "vig"):
        a, b = getattr(lands[0], f), getattr(lands[1], f)
        assert a.dtype == b.dtype and np.array_equal(a, b), f


def test_cutting_by_the_near_parts_is_cutting_by_the_whole():
    import shapely
    from shapely.geometry import MultiPolygon

    from sattag.synth.layout import _NearParts
    from sattag.synth.shapes import circles, rot_rects

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 3000, (400, 2))
    whole = shapely.union_all(np.concatenate([circles(xy[:200], rng.uniform(5, 40, 200), 3),
                                              rot_rects(xy[200:, 0], xy[200:, 1], rng.uniform(10, 300, 200), 12, 0.3)]))
    assert isinstance(whole, MultiPolygon)
    near = _NearParts(whole)
    c = rng.uniform(0, 3000, (300, 2))
    for ring in rot_rects(c[:, 0], c[:, 1], rng.uniform(20, 90, 300), rng.uniform(20, 90, 300), rng.uniform(0, 3, 300)):
        wall = ring.exterior.buffer(1.0, cap_style="flat", join_style="mitre")
        assert shapely.to_wkb(wall.difference(near.around(wall))) == shapely.to_wkb(wall.difference(whole))


def test_touching_by_parts_is_intersecting_the_union():
    import shapely

    from sattag.synth.dress import _touching
    from sattag.synth.shapes import circles, polys_of, rot_rects

    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 2000, (300, 2))
    area = shapely.union_all(np.concatenate([circles(xy[:150], rng.uniform(5, 60, 150), 3),
                                             rot_rects(xy[150:, 0], xy[150:, 1], rng.uniform(10, 400, 150), 9, 1.1)]))
    bushes = circles(rng.uniform(0, 2000, (3000, 2)), rng.uniform(3, 14, 3000), 2)
    want = shapely.intersects(bushes, area)
    assert 0 < want.sum() < len(bushes)
    assert np.array_equal(_touching(bushes, np.array(polys_of(area), dtype=object)), want)


# ---- whole scenes


@pytest.mark.slow  # two small scenes (~10 s)
def test_small_scene_same_whatever_the_window(tmp_path):
    a = generate_scene("6120_2_2", size=240, seed=5, tile=64)
    b = generate_scene("6120_2_2", size=240, seed=5)
    for g in a.bands:
        assert np.array_equal(a.bands[g], b.bands[g]), g
    assert np.array_equal(a.materials, b.materials)


@pytest.mark.slow  # three 1500 px scenes (~1 min)
def test_files_same_whatever_the_window(tmp_path):
    recs = {}
    for tile in (512, 768, 4096):  # 4096: the whole scene in one window
        recs[tile] = write_generated_scene(tmp_path / str(tile), "6100_1_3", size=1500, seed=3, tile=tile,
                                           with_labels=True)
    ref = _files(tmp_path / "4096")
    assert set(ref) == {"6100_1_3.tif", "6100_1_3_P.tif", "6100_1_3_M.tif", "6100_1_3_A.tif"}
    for tile in (512, 768):
        got = _files(tmp_path / str(tile))
        assert set(got) == set(ref)
        for name, (arr, dtype, block, tags) in ref.items():
            assert dtype == "uint16" and got[name][1] == dtype
            assert got[name][2] == block and got[name][3] == tags
            assert np.array_equal(got[name][0], arr), (tile, name)
        assert recs[tile] == recs[4096]
        labels = sorted(p.name for p in (tmp_path / str(tile) / "train_geojson_v3" / "6100_1_3").iterdir())
        assert labels == sorted(p.name for p in (tmp_path / "4096" / "train_geojson_v3" / "6100_1_3").iterdir())
    # the written scene is the in-memory one
    sc = generate_scene("6100_1_3", size=1500, seed=3)
    assert np.array_equal(ref["6100_1_3.tif"][0], sc.bands["R"])
    assert np.array_equal(ref["6100_1_3_A.tif"][0], sc.bands["A"])


_PEAK = """
import sys
from sattag.synth.scene import ScenePlan
from sattag.synth.write import write_plan
size, tile, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
plan = ScenePlan("6100_1_3", size=size, seed=3)
def kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
base = kb("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the present
    f.write("5")
write_plan(out, plan, tile)
print(base, kb("VmHWM:"), plan.H, plan.W)
"""


def _peak_mb(tmp_path: Path, size: int, tile: int) -> tuple[float, int, int]:
    """Peak resident memory (MB) writing one scene's pixels, above what its plan holds."""
    res = subprocess.run([sys.executable, "-c", _PEAK, str(size), str(tile), str(tmp_path / f"{size}_{tile}")],
                         capture_output=True, text=True, check=True)
    base, peak, h, w = (int(v) for v in res.stdout.split())
    return (peak - base) / 1024, h, w


@pytest.mark.slow  # two scenes (~1 min)
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak")
def test_memory_follows_the_window_not_the_scene(tmp_path):
    small, h, w = _peak_mb(tmp_path, 1000, 256)
    big, H, W = _peak_mb(tmp_path, 2000, 256)
    whole = H * W * 20 * 4 / 2**20  # the 20 bands of the larger scene as float32, as it was made before
    # a window's working set plus a row of windows' counts: far below the whole scene's arrays, and
    # nearly the same for a scene of four times the pixels
    assert big < 0.5 * whole, (big, whole)
    assert big < small + 0.15 * whole, (small, big, whole)


def test_writing_leaves_gdal_cache_as_it_was(tmp_path):
    # the files are written under a tiny GDAL block cache (flushed at once); rasterio would leave it
    # behind inside an outer Env, and GDAL rasterizes a row at a time under it (~10x slower)
    from rasterio._env import get_gdal_config

    from sattag.synth.scene import ScenePlan
    from sattag.synth.write import write_plan

    before = get_gdal_config("GDAL_CACHEMAX")
    plan = ScenePlan("6120_2_2", size=100, seed=0)
    write_plan(tmp_path / "a", plan)
    assert get_gdal_config("GDAL_CACHEMAX") == before
    with rasterio.Env(GDAL_NUM_THREADS=1):
        write_plan(tmp_path / "b", plan)
        assert get_gdal_config("GDAL_CACHEMAX") == before
    assert get_gdal_config("GDAL_CACHEMAX") == before


def test_shapes_are_burnt_in_one_pass_under_a_tiny_cache(monkeypatch):
    from sattag.synth import render

    seen = []

    def rasterize(shapes, out, transform):
        from rasterio._env import get_gdal_config

        seen.append(int(get_gdal_config("GDAL_CACHEMAX")))

    monkeypatch.setattr(render, "rasterize", rasterize)
    out = np.zeros((2000, 1500), np.int32)
    with rasterio.Env(GDAL_CACHEMAX=64):  # as write_plan writes
        render.burn_shapes([], out, None)
        assert int(rasterio.env.getenv()["GDAL_CACHEMAX"]) == 64
    assert seen and seen[0] >= out.nbytes  # GDAL's chunk of rows: the whole window

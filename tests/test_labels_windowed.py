"""The labels stage and the training sample window by window (``[ingest] tile_px``): the truth masks
file, the pixel counts, histograms and thumbnail are the same as from whole-scene arrays, the sample
draws the same pixels (same features: band values exactly, context features to the last bit or so),
and memory does not grow with the scene."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import LineString, MultiPolygon, box

from sattag.classes import DSTL_CLASSES
from sattag.config import Config, SampleConfig
from sattag.engine import tasks
from sattag.engine.contracts import RunContext
from sattag.features import FeatureSet, feature_names
from sattag.ingest import discover_scenes, read_stack, scene_thumbnail
from sattag.labels import (LabelSource, band_histograms, rasterize_classes, rasterize_windows, read_masks,
                           scene_histograms, write_masks)
from sattag.learn import allocate_quotas, class_pixel_counts, sample_scene
from sattag.learn import sample as sample_module
from sattag.runfolder import RunFolder
from sattag.scene import dstl_grid

SRC = Path(__file__).resolve().parents[1] / "src"
TILE = 256


def _context(data: Path, run: Path, tile_px: int = TILE, features: str = "context") -> RunContext:
    config = Config().replace("ingest", tile_px=tile_px).replace("features", set=features)
    return RunContext(RunFolder(run), config, DSTL_CLASSES, LabelSource.resolve(data))


@pytest.fixture(scope="module")
def scene_run(small_dstl, tmp_path_factory):
    """The first labelled scene of the shared 600-px dataset, ingested into a run folder: (ctx, scene)."""
    run = tmp_path_factory.mktemp("labels_windowed") / "run"
    ctx = _context(small_dstl, run)
    scenes = [s for s in discover_scenes(small_dstl) if ctx.labels.scene_polygons(
        s.id, dstl_grid(1, -1, 10, 10), DSTL_CLASSES) is not None]
    scene = scenes[0]
    tasks.ingest_task(scene, ctx)
    return ctx, scene


def _file(path: Path) -> tuple[np.ndarray, dict, list[np.ndarray]]:
    """Pixels, header and every overview's pixels of a masks file."""
    with rasterio.open(path) as src:
        head = dict(tags=src.tags(), descriptions=src.descriptions, transform=src.transform, crs=src.crs,
                    dtypes=src.dtypes, blocks=src.block_shapes, compression=src.compression,
                    overviews=src.overviews(1), layout=src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"))
        pixels = src.read()
    overviews = []
    for level in range(len(head["overviews"])):
        with rasterio.open(path, overview_level=level) as src:
            overviews.append(src.read())
    return pixels, head, overviews


def test_labels_task_in_windows_equals_the_whole_scene(scene_run, tmp_path):
    """Windows of 256 px on a 600-px scene (partial windows at the right and bottom): the masks file
    is the one write_masks makes of rasterize_classes' whole-scene masks (pixels, tags, overviews),
    and the counts, histograms (per class and background) and thumbnail are the whole-scene ones;
    a resumed run reading the files back returns the same."""
    ctx, scene = scene_run
    truth = tasks.labels_task(scene, ctx)
    assert truth is not None
    stack = read_stack(ctx.run.stack(scene.id))
    H, W = stack.grid.shape
    assert H > 2 * TILE and W > 2 * TILE and H % TILE and W % TILE
    polygons = ctx.labels.scene_polygons(scene.id, stack.grid, DSTL_CLASSES)
    whole = rasterize_classes(polygons, stack.grid, DSTL_CLASSES)
    assert whole.any()
    reference = write_masks(tmp_path / "whole.tif", whole, stack.grid, DSTL_CLASSES)
    pa, ha, oa = _file(ctx.run.truth_masks(scene.id))
    pb, hb, ob = _file(reference)
    assert ha == hb and ha["overviews"] and ha["layout"] == "COG"
    np.testing.assert_array_equal(pa, whole)
    np.testing.assert_array_equal(pa, pb)
    for a, b in zip(oa, ob, strict=True):
        np.testing.assert_array_equal(a, b)
    bins = ctx.config.figures.histogram_bins
    expected = dict(counts=class_pixel_counts(whole), histograms=scene_histograms(stack.data, whole, bins),
                    background=band_histograms(stack.data, bins), thumbnail=scene_thumbnail(stack.data, stack.bands))
    assert truth.bands == tuple(stack.bands)
    for name, value in expected.items():
        got = getattr(truth, name)
        assert got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)
    # resumed: the files are read back window by window, nothing rewritten
    mtime = ctx.run.truth_masks(scene.id).stat().st_mtime_ns
    again = tasks.labels_task(scene, ctx)
    assert ctx.run.truth_masks(scene.id).stat().st_mtime_ns == mtime
    for name in expected:
        np.testing.assert_array_equal(getattr(again, name), getattr(truth, name), err_msg=name)


def test_window_histograms_add_up_to_the_scene(scene_run):
    """The sums of per-window histograms and counts are the whole scene's, whatever the windows."""
    ctx, scene = scene_run
    stack = read_stack(ctx.run.stack(scene.id))
    masks = read_masks(ctx.run.truth_masks(scene.id))[0]
    for tile in (100, 256, 1000):
        hist, bg, counts = 0, 0, 0
        for r0 in range(0, stack.grid.height, tile):
            for c0 in range(0, stack.grid.width, tile):
                d, m = stack.data[:, r0:r0 + tile, c0:c0 + tile], masks[:, r0:r0 + tile, c0:c0 + tile]
                hist = hist + scene_histograms(d, m, 64)
                bg = bg + band_histograms(d, 64)
                counts = counts + class_pixel_counts(m)
        np.testing.assert_array_equal(hist, scene_histograms(stack.data, masks, 64))
        np.testing.assert_array_equal(bg, band_histograms(stack.data, 64))
        np.testing.assert_array_equal(counts, class_pixel_counts(masks))


def test_rasterize_windows_equals_rasterize_classes():
    """Hand-made shapes across window seams (a hole, a one-pixel-wide strip on pixel edges, parts far
    apart), all_touched or not, windows not dividing the grid: the same pixels. The label checks
    happen at the call; a line is refused (GDAL draws it from where it enters a window)."""
    grid = dstl_grid(0.009188, -0.00904, 330, 410)
    t = grid.transform

    def px_box(c0, r0, c1, r1):
        (x0, y0), (x1, y1) = t @ (c0, r0), t @ (c1, r1)
        return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    ring = px_box(20, 20, 300, 200).difference(px_box(60.3, 50.7, 250.2, 170.1))  # a hole across seams
    polygons = {1: MultiPolygon([ring, px_box(310.5, 250.5, 409.2, 329.9)]), 2: px_box(99.5, 0, 100.5, 330),
                3: MultiPolygon()}
    for all_touched in (False, True):
        whole = rasterize_classes(polygons, grid, DSTL_CLASSES, all_touched=all_touched)
        for tile in (64, 100, 1000):
            out = np.full_like(whole, 9)
            for r0, c0, m in rasterize_windows(polygons, grid, DSTL_CLASSES, tile, all_touched=all_touched):
                assert m.shape[1] <= tile and m.shape[2] <= tile
                out[:, r0:r0 + m.shape[1], c0:c0 + m.shape[2]] = m
            np.testing.assert_array_equal(out, whole, err_msg=f"tile {tile}, all_touched {all_touched}")
    from sattag.errors import LabelError

    with pytest.raises(LabelError, match="not in the class table"):
        rasterize_windows({99: ring}, grid, DSTL_CLASSES, 64)
    with pytest.raises(LabelError, match="class 4: window-by-window masks burn polygons only, not a LineString"):
        rasterize_windows({4: LineString([t @ (0, 0), t @ (409, 329)])}, grid, DSTL_CLASSES, 64)


def _whole_sample(ctx, scene, quotas, feature_set):
    stack = read_stack(ctx.run.stack(scene.id))
    masks = read_masks(ctx.run.truth_masks(scene.id))[0]
    return sample_scene(stack.data, masks, quotas, ctx.config.sample.seed, scene_id=scene.id, bands=stack.bands,
                        feature_set=feature_set), stack.bands


def _quotas(counts: np.ndarray) -> list[np.ndarray]:
    """Quotas that make every way of drawing happen: by rejection (few wanted of many), by choosing
    among the listed pixels (a third of them), all of them, none."""
    n_in, n_out = SampleConfig().n_in, SampleConfig().n_out
    q = allocate_quotas({"s": counts}, SampleConfig(n_in=min(n_in, 3000), n_out=min(n_out, 5000)))["s"]
    mixed = counts // 3
    mixed[::2] = np.minimum(counts[::2], [[500, 2000]])
    mixed[1] = counts[1]
    mixed[3] = 0
    return [q, mixed]


@pytest.mark.parametrize("features", ["spectra", "context"])
def test_sample_task_draws_what_sample_scene_draws(scene_run, features, monkeypatch):
    """sample_task in 256-px windows against sample_scene on the whole arrays: the same pixels and
    labels in the same order; band values identical; context features equal but for OpenCV's box
    filter rounding its running float64 sums differently from a window's edge (edge-strength maps
    only, a few float32 ulps). Also with draws cut into chunks of 1000 candidates (several lookup
    rounds), which numpy's bounded integers make the same as one chunk."""
    ctx, scene = scene_run
    if not ctx.run.truth_masks(scene.id).exists():
        assert tasks.labels_task(scene, ctx) is not None
    ctx = _context(Path(ctx.labels.path), ctx.run.root, features=features)
    fs = FeatureSet.from_config(ctx.config.features)
    counts = class_pixel_counts(read_masks(ctx.run.truth_masks(scene.id))[0])
    for quotas in _quotas(counts):
        want, bands = _whole_sample(ctx, scene, quotas, fs)
        names = feature_names(bands, fs)
        exact = [j for j, n in enumerate(names) if not n.startswith("edges_")]
        for chunk in (sample_module._LOOKUP_CHUNK, 1000):
            monkeypatch.setattr(sample_module, "_LOOKUP_CHUNK", chunk)
            got = tasks.sample_task(scene, quotas, ctx)
            assert sorted(got) == sorted(want)
            for cid in want:
                (Xw, yw), (Xg, yg) = want[cid], got[cid]
                assert Xg.dtype == np.float32 and Xg.shape == Xw.shape == (yw.size, len(names))
                np.testing.assert_array_equal(yg, yw)
                np.testing.assert_array_equal(Xg[:, exact], Xw[:, exact])
                np.testing.assert_allclose(Xg, Xw, rtol=1e-5, atol=1e-9)
        monkeypatch.undo()
    # the quotas drew in every way: none, all, choose and reject
    modes = {sample_module._draw_mode(int(q), int(a)) for quotas in _quotas(counts)
             for q, a in zip(quotas.ravel(), counts.ravel())}
    assert modes == {"none", "all", "choose", "reject"}


def test_bounded_integers_come_out_the_same_in_chunks():
    """What the chunked rejection draws rely on: numpy's Generator.integers gives the same stream in
    one call or several."""
    for n in (1000, 360_000, 2**33 + 5):
        one = np.random.default_rng([3, 1]).integers(0, n, size=5000, dtype=np.int64)
        rng = np.random.default_rng([3, 1])
        parts = np.concatenate([rng.integers(0, n, size=s, dtype=np.int64) for s in (7, 1000, 1993, 2000)])
        np.testing.assert_array_equal(one, parts)


_PEAK = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    import numpy as np
    from sattag.classes import DSTL_CLASSES
    from sattag.config import Config
    from sattag.engine import tasks
    from sattag.engine.contracts import RunContext
    from sattag.ingest import discover_scenes
    from sattag.labels import LabelSource
    from sattag.runfolder import RunFolder
    data, run, tile = sys.argv[1], sys.argv[2], int(sys.argv[3])
    scene = discover_scenes(data)[0]
    config = Config().replace("ingest", tile_px=tile)
    ctx = RunContext(RunFolder(run), config, DSTL_CLASSES, LabelSource.resolve(data))
    tasks.ingest_task(scene, ctx)
    # numba's cache, imports: not counted
    quotas = np.minimum(tasks.labels_task(scene, ctx).counts, [[2000, 2000]])
    tasks.sample_task(scene, quotas, ctx)
    ctx.run.truth_masks(scene.id).unlink()
    ctx.run.truth_polygons(scene.id).unlink()
    out = {}
    tracemalloc.start()
    truth = tasks.labels_task(scene, ctx)
    out["labels"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    tasks.sample_task(scene, quotas, ctx)
    out["sample"] = tracemalloc.get_traced_memory()[1]
    out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["pixels"] = int(truth.counts[0].sum())
    print(json.dumps(out))
""")


def _peak(data: Path, run: Path, tile: int) -> dict:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", _PEAK, str(data), str(run), str(tile)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two generated scenes of 700 and 1400 px, ingested: ~1 min on 2 cores
def test_memory_does_not_grow_with_the_scene(tmp_path):
    """Labels and sample tasks in windows of 256 px: a scene 2x wider and taller (4x the pixels) peaks
    at about the same traced memory (whole-scene arrays would take ~4x: the 20-band stack alone is
    80 bytes a pixel, 39 MB at 700 px, 157 MB at 1400 px)."""
    from sattag.synth import generate_dataset

    peaks = []
    for size in (700, 1400):
        data = generate_dataset(tmp_path / f"d{size}", n_scenes=1, n_train=1, size=size, seed=5)
        peaks.append(_peak(data, tmp_path / f"run{size}", TILE))
    small, large = peaks
    print("peaks", small, large)
    for task in ("labels", "sample"):
        assert large[task] < 1.5 * small[task], (task, small, large)
        assert large[task] < 40e6, (task, small, large)

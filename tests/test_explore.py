"""Per-class histograms (labels), thumbnails (ingest) and the exploration figures (viz), on a generated
DSTL scene."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
from matplotlib.figure import Figure
from rasterio.enums import Resampling

from sattag.classes import DSTL_CLASSES
from sattag.config import DSTL_BANDS
from sattag.ingest import scene_thumbnail
from sattag.labels import (band_histograms, rasterize_classes, read_histograms, scene_histograms, scene_labels,
                           write_histograms)
from sattag.scene import dstl_grid
from sattag.viz import (
    bands_figure,
    choose_window,
    histogram_figure,
    masks_figure,
    overlay_figure,
    stretch,
    thumbnails_figure,
    write_explore_figures,
)


def _stack(data_dir: Path, scene_id: str):
    """A (20, H, W) float stack of a generated scene, every file read straight onto the RGB grid
    (nearest, no alignment): enough for figures, and independent of the ingest stage."""
    ref = data_dir / "three_band" / f"{scene_id}.tif"
    with rasterio.open(ref) as src:
        h, w = src.height, src.width
    parts = []
    for path, bits in ((ref, 11), (data_dir / "sixteen_band" / f"{scene_id}_P.tif", 11),
                       (data_dir / "sixteen_band" / f"{scene_id}_M.tif", 11),
                       (data_dir / "sixteen_band" / f"{scene_id}_A.tif", 14)):
        with rasterio.open(path) as src:
            parts.append(src.read(out_shape=(src.count, h, w), resampling=Resampling.nearest) / (2**bits - 1))
    with open(data_dir / "grid_sizes.csv", newline="") as f:
        sizes = {r[0]: (float(r[1]), float(r[2])) for r in list(csv.reader(f))[1:]}
    return np.concatenate(parts).astype(np.float32), dstl_grid(*sizes[scene_id], h, w)


@pytest.fixture(scope="module")
def scene(small_dstl):
    ids = sorted(p.name for p in (small_dstl / "train_geojson_v3").iterdir())
    sid = ids[0]
    stacks = {i: _stack(small_dstl, i) for i in ids}
    data, grid = stacks[sid]
    polys = scene_labels(small_dstl, sid)
    masks = rasterize_classes(polys, grid)
    return {"dir": small_dstl, "ids": ids, "id": sid, "data": data, "grid": grid, "polys": polys, "masks": masks,
            "stacks": stacks}


def test_scene_histograms_counts_and_sum_over_parts():
    rng = np.random.default_rng(0)
    data = rng.random((4, 60, 70), dtype=np.float32)
    data[0, 0, 0] = np.nan  # not counted
    data[1, 0, 1] = 1.7  # clipped into the last bin
    masks = (rng.random((3, 60, 70)) > 0.6).astype(np.uint8)
    masks[:, 0, :2] = 1
    masks[2] = 0  # a class with no pixels
    h = scene_histograms(data, masks, bins=16)
    assert h.shape == (3, 4, 16) and h.dtype == np.int64
    m0 = masks[0].astype(bool)
    ref = np.histogram(np.clip(data[3][m0], 0, 1), bins=16, range=(0, 1))[0]
    assert np.array_equal(h[0, 3], ref)
    assert h[0, 0].sum() == m0.sum() - 1  # the NaN pixel is left out
    assert h[0, 1, -1] >= 1 and h[0, 1].sum() == m0.sum()
    assert h[2].sum() == 0
    # Two halves of a scene (as two "scenes") add up to the whole with plain +.
    top = scene_histograms(data[:, :30], masks[:, :30], bins=16)
    bottom = scene_histograms(data[:, 30:], masks[:, 30:], bins=16)
    assert np.array_equal(top + bottom, h)
    bg = band_histograms(data, bins=16)
    assert bg.shape == (4, 16) and bg[2].sum() == 60 * 70
    assert bg[0].sum() == 60 * 70 - 1  # the NaN again


def test_histograms_file_round_trip(tmp_path):
    hist = np.arange(2 * 3 * 5, dtype=np.int64).reshape(2, 3, 5)
    classes = DSTL_CLASSES.from_records(DSTL_CLASSES.to_records()[:2])
    p = write_histograms(tmp_path / "histograms.npz", hist, ["R", "G", "B"], classes, background=hist[0])
    assert p.name == "histograms.npz" and p.exists()
    back = read_histograms(p)
    assert np.array_equal(back["hist"], hist) and np.array_equal(back["background"], hist[0])
    assert back["bands"] == ("R", "G", "B") and back["classes"] == classes and back["value_range"] == (0.0, 1.0)


def test_stretch_brightens():
    img = np.linspace(0.1, 0.2, 1000, dtype=np.float32).reshape(10, 100)
    s = stretch(img)
    assert s.min() == 0.0 and s.max() == 1.0 and 0.4 < s.mean() < 0.6


def test_choose_window_finds_the_labelled_corner():
    masks = np.zeros((3, 200, 200), np.uint8)
    masks[0, 150:160, 150:160] = 1
    masks[1, 170:190, 140:145] = 1
    masks[2, 10:20, 10:20] = 1
    c0, r0, w, h = choose_window(masks, 64)
    assert (w, h) == (64, 64)
    assert c0 <= 140 and c0 + w >= 160 and r0 <= 150 and r0 + h >= 190


def test_figures_of_a_generated_scene(scene, tmp_path):
    stacks = scene["stacks"]
    thumbs = {sid: scene_thumbnail(stacks[sid][0], DSTL_BANDS, size=128) for sid in scene["ids"]}
    assert all(t.shape[0] == 3 and max(t.shape[1:]) <= 128 and t.dtype == np.float32 for t in thumbs.values())
    r, g, b = (DSTL_BANDS.index(n) for n in "RGB")
    sid = scene["ids"][0]
    step = -(-max(stacks[sid][0].shape[1:]) // 128)
    assert np.array_equal(thumbs[sid], stacks[sid][0][[r, g, b], ::step, ::step])  # the values, not a picture
    # As the engine does it: one partial histogram per scene, summed with +.
    hist = sum(scene_histograms(stacks[sid][0], rasterize_classes(scene_labels(scene["dir"], sid), stacks[sid][1]),
                                bins=64)
               for sid in scene["ids"])
    assert hist.shape == (10, 20, 64) and hist.sum() > 0
    written = write_explore_figures(
        tmp_path / "figures", classes=DSTL_CLASSES, thumbnails=thumbs, stack_data=scene["data"],
        bands=DSTL_BANDS, scene_id=scene["id"], masks=scene["masks"], polygons=scene["polys"],
        grid=scene["grid"], hist=hist, background=band_histograms(scene["data"], bins=64),
        hist_bands=[f"M{i}" for i in range(1, 9)], dpi=60)
    assert set(written) == {"thumbnails", "bands", "masks", "overlay", "histograms"}
    import matplotlib.image as mpimg

    for kind, path in written.items():
        assert path.exists() and path.stat().st_size > 10_000, kind
        img = mpimg.imread(path)
        assert min(img.shape[:2]) > 150, kind
        # Not blank: plenty of distinct colours on the page.
        assert len(np.unique(img[..., :3].reshape(-1, 3)[::7], axis=0)) > 50, kind
    assert written["overlay"].name == f"overlay_{scene['id']}.png"
    assert not [p for p in (tmp_path / "figures").iterdir() if p.name.startswith(".")]


def test_figure_functions_return_figures(scene):
    # Notebooks get Figures; check a few contents that could go wrong.
    f = bands_figure(scene["data"], DSTL_BANDS, scene["id"])
    assert isinstance(f, Figure) and sum(1 for a in f.axes if a.images) == 20
    assert "M7 NIR1" in " ".join(a.get_title() for a in f.axes)
    f = masks_figure(scene["masks"], DSTL_CLASSES, scene["id"])
    assert sum(1 for a in f.axes if a.images) == 10
    f = overlay_figure(scene["data"], DSTL_BANDS, scene["polys"], scene["grid"], DSTL_CLASSES,
                       window=(0, 0, 200, 200), scene_id=scene["id"])
    zoom = f.axes[1]
    assert zoom.collections  # polygons drawn
    assert zoom.get_legend() is not None
    f = thumbnails_figure({"a": np.zeros((3, 10, 10)), "b": np.ones((10, 12))})
    assert sum(1 for a in f.axes if a.images) == 2
    hist = scene_histograms(scene["data"], scene["masks"], bins=32)
    f = histogram_figure(hist, DSTL_BANDS, DSTL_CLASSES, show_bands=[f"M{i}" for i in range(1, 9)])
    assert len([a for a in f.axes if a.lines]) == 8
    present = int((scene["masks"].reshape(10, -1).sum(axis=1) > 0).sum())
    assert len(f.legends[0].get_texts()) == present

"""Offsets across a scene: the fit repeated on a 3x3 grid of windows, the spread from the centre's
offset recorded (offsets.csv ``spread_px``) and warned about when a single shift cannot hold."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import rasterio
from affine import Affine

from sattag.config import IngestConfig
from sattag.ingest import (build_stack, offsets_rows, read_offsets, read_stack_metadata, scene_from_files,
                           write_offsets, write_stack)
from sattag.ingest.align import (MIN_ALIGN_PX, AlignmentWarning, GroupGeometry, central_window, estimate_offset,
                                 grid_windows, offset_spread)

N = 600  # image side; fit windows of 128 px (200-px cells) keep each fit to a few ms
WIN = 128

from images import texture  # tests/images.py


def _shifted(truth: np.ndarray, d: tuple[float, float]) -> np.ndarray:
    """``truth`` with its features moved by +d (px), as a sensor offset by d records it."""
    m = np.array([[1, 0, d[0]], [0, 1, d[1]]], np.float32)
    return cv2.warpAffine(truth, m, truth.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _split_shift(truth: np.ndarray, left: tuple[float, float], right: tuple[float, float],
                 col: int) -> np.ndarray:
    """The left part (columns < ``col``) shifted by ``left``, the rest by ``right``."""
    out = _shifted(truth, left)
    out[:, col:] = _shifted(truth, right)[:, col:]
    return out


def test_grid_windows_tile_the_image_without_overlap():
    wins = grid_windows(1800, 2000, 512)
    assert len(wins) == 9
    cover = np.zeros((1800, 2000), np.int32)
    for r0, c0, h, w in wins:
        assert (h, w) == (512, 512) and r0 >= 0 and c0 >= 0 and r0 + h <= 1800 and c0 + w <= 2000
        cover[r0:r0 + h, c0:c0 + w] += 1
    assert cover.max() == 1  # no overlap
    assert wins[4] == central_window(1800, 2000, 512)  # the middle one is the central window
    # small cells give small windows; ones under MIN_ALIGN_PX are left out, as a fit would refuse them
    assert all(max(h, w) <= 200 for _, _, h, w in grid_windows(600, 600, 512))
    assert grid_windows(3 * MIN_ALIGN_PX - 3, 600, 512) == []


def test_uniform_shift_has_a_small_spread_and_no_warning():
    # two candidate bands, the target a mix of them (as P is of R, G, B and M): the grid fits on
    # the one mix found at the centre
    a, b = texture(N, N, 3), texture(N, N, 13)
    d = (0.37, -0.81)
    target = _shifted(0.7 * a + 0.3 * b, d)
    geom = GroupGeometry(0, 0, 1, 1)
    dx, dy, _ = estimate_offset([a, b], target, geom, window_px=WIN, scene="s1", group="X")
    assert abs(dx - d[0]) < 0.1 and abs(dy - d[1]) < 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        spread, fits = offset_spread([a, b], target, geom, (dx, dy), scene="s1", group="X", window_px=WIN)
    assert len(fits) == 8  # every window but the centre's
    assert spread < 0.2, fits
    # measured: 0.001 px (every window 0.39, -0.77: the same small bias as the centre's)


def test_offset_differing_across_the_scene_is_warned_about():
    truth = texture(N, N, 4)
    left, right = (0.3, -0.2), (1.1, -0.2)
    target = _split_shift(truth, left, right, col=400)  # the right column of cells is off by 0.8 px
    geom = GroupGeometry(0, 0, 1, 1)
    dx, dy, _ = estimate_offset(truth, target, geom, window_px=WIN, scene="6120_2_2", group="M")
    assert abs(dx - left[0]) < 0.1 and abs(dy - left[1]) < 0.1  # the centre sees the left part
    with pytest.warns(AlignmentWarning) as rec:
        spread, fits = offset_spread(truth, target, geom, (dx, dy), scene="6120_2_2", group="M", window_px=WIN)
    assert abs(spread - 0.8) < 0.1, fits  # measured: 0.79
    msg = str(rec[0].message)
    assert "scene 6120_2_2" in msg and "group M" in msg and f"{spread:.2f} px" in msg, msg
    right_fits = [(dx_, dy_) for (r0, c0, h, w), dx_, dy_ in fits if c0 >= 400]
    assert len(right_fits) == 3 and all(abs(x - right[0]) < 0.1 for x, _ in right_fits)
    # a looser threshold: no warning, the same spread
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        assert offset_spread(truth, target, geom, (dx, dy), scene="6120_2_2", group="M", window_px=WIN,
                             warn_px=1.0)[0] == pytest.approx(spread)


def test_windows_without_structure_are_left_out():
    """Open water in a third of the scene: those windows' fits are refused and left out, the rest
    measure the spread; with nothing fitted at all the spread is NaN, without a warning."""
    n, win = 360, 96  # smaller still: refused fits run ECC to its iteration limit
    truth = texture(n, n, 6)
    target = _shifted(truth, (0.5, 0.5))
    rng = np.random.default_rng(0)
    target[:, 240:] = 0.5 + rng.normal(0, 0.01, (n, n - 240)).astype(np.float32)
    geom = GroupGeometry(0, 0, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        spread, fits = offset_spread(truth, target, geom, (0.5, 0.5), group="W", window_px=win)
        assert len(fits) == 5 and all(c0 < 240 for (_, c0, _, _), _, _ in fits) and spread < 0.2
        flat = 0.5 + rng.normal(0, 0.01, (n, n)).astype(np.float32)
        spread, fits = offset_spread(truth, flat, geom, (0.0, 0.0), group="W", window_px=win)
    assert fits == [] and np.isnan(spread)


def _write(path, img: np.ndarray) -> str:
    with rasterio.open(path, "w", driver="GTiff", height=img.shape[0], width=img.shape[1], count=1,
                       dtype="float32", crs="EPSG:32631",
                       transform=Affine(0.5, 0, 592000.0, 0, -0.5, 5748000.0)) as dst:
        dst.write(img, 1)
    return str(path)


def test_build_stack_records_the_spread_through_cache_and_offsets_csv(tmp_path):
    truth = texture(N, N, 5)
    target = np.clip(_split_shift(truth, (0.4, 0.3), (1.4, 0.3), col=400), 0, 1)
    scene = scene_from_files("far", {"pan": _write(tmp_path / "pan.tif", truth),
                                     "ms": _write(tmp_path / "ms.tif", target)})
    with pytest.warns(AlignmentWarning, match=r"scene far: group ms: .*by up to \d\.\d\d px") as rec:
        stack = build_stack(scene, IngestConfig(grid_min_px=N))
    # The central window (512 px of 600) spans both parts: its offset lies between theirs, and the
    # stack applies it (one shift per group); the right column's windows are 1.4 px off, the spread
    # is their distance from the centre (measured: centre 0.72, spread 0.70 px).
    dx, dy, _ = stack.offsets["ms"]
    assert 0.4 < dx < 1.4 and abs(dy - 0.3) < 0.1
    spread = stack.offset_spread["ms"]
    assert abs(spread - (1.4 - dx)) < 0.1 and f"by up to {spread:.2f} px" in str(rec[0].message)
    # the cache keeps it, offsets.csv records it
    back = read_stack_metadata(write_stack(stack, tmp_path / "far.tif"))
    assert back.offset_spread == pytest.approx(stack.offset_spread)
    rows = offsets_rows(back)
    assert rows[0][:2] == ("far", "ms") and rows[0][5] == pytest.approx(stack.offset_spread["ms"])
    # a scene under grid_min_px (the default 1536 here) pays nothing and records no spread
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        small = build_stack(scene)
    assert small.offset_spread == {} and np.isnan(offsets_rows(small)[0][5])
    assert small.offsets["ms"] == pytest.approx(stack.offsets["ms"])
    path = write_offsets(tmp_path / "offsets.csv", rows + offsets_rows(small)[:1] + [("old", "X", 0.0, 0.0, 0.5)])
    lines = path.read_text().splitlines()
    assert lines[0] == "scene,group,dx,dy,correlation,spread_px"
    assert lines[1].endswith(f",{stack.offset_spread['ms']:.3f}")
    assert lines[2].endswith(",") and lines[3] == "old,X,0.000,0.000,0.5000,"  # not measured: empty
    df = read_offsets(path)
    assert list(df.columns) == ["scene", "group", "dx", "dy", "correlation", "spread_px"]
    assert df["spread_px"].dtype == np.float64
    assert df["spread_px"].iloc[0] == pytest.approx(stack.offset_spread["ms"], abs=1e-3)
    assert df["spread_px"].iloc[1:].isna().all()


def test_offsets_csv_without_spread_column_still_reads(tmp_path):
    """A run folder from before the column: every spread NaN, the rest as written."""
    (tmp_path / "offsets.csv").write_text("scene,group,dx,dy,correlation\n"
                                          "6010,P,0.123,-2.500,0.9877\n6010,A,41.5,12.25,\n")
    df = read_offsets(tmp_path / "offsets.csv")
    assert list(df.columns) == ["scene", "group", "dx", "dy", "correlation", "spread_px"]
    assert df["spread_px"].isna().all() and df["spread_px"].dtype == np.float64
    np.testing.assert_allclose(df[["dx", "dy"]].to_numpy(), [[0.123, -2.5], [41.5, 12.25]])
    assert np.isnan(df["correlation"].iloc[1])

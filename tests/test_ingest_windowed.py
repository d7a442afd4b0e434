"""Ingest in windows: a stack built and written window by window (``[ingest] tile_px``) is the same
file whatever the window size, ``build_stack`` gives the same values, memory does not grow with the
scene, and a window too small is refused in one line."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from sattag.config import Config, IngestConfig
from sattag.errors import ConfigError, InputError
from sattag.ingest import build_stack, discover_scenes, ingest_scene, read_stack, scene_from_files, write_stack

from images import texture  # tests/images.py

SRC = Path(__file__).resolve().parents[1] / "src"


def _pixels_and_header(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        head = dict(tags=src.tags(), descriptions=src.descriptions, scales=src.scales, offsets=src.offsets,
                    transform=src.transform, crs=src.crs, dtype=src.dtypes, blocks=src.block_shapes,
                    compression=src.compression, interleaving=src.interleaving)
        return src.read(), head


def _assert_same_stack(a: Path, b: Path) -> None:
    pa, ha = _pixels_and_header(a)
    pb, hb = _pixels_and_header(b)
    assert ha == hb
    assert pa.dtype == pb.dtype == np.uint16 and pa.shape == pb.shape
    diff = np.argwhere(pa != pb)
    assert len(diff) == 0, f"{len(diff)} pixels differ, first (band, row, col) {diff[0].tolist()}"


@pytest.fixture(scope="module")
def dstl_1300(tmp_path_factory) -> Path:
    """One generated DSTL scene of ~1300 px: A (~52 px) is fitted, with the polish; P's spread grid
    runs when grid_min_px is lowered."""
    from sattag.synth import generate_dataset

    out = tmp_path_factory.mktemp("windowed") / "data"
    generate_dataset(out, n_scenes=1, n_train=0, size=1300, seed=3)
    return out


def test_dstl_stack_is_the_same_whatever_the_window(dstl_1300, tmp_path):
    """Windows of 300 px (taken block by block, not a divisor of the 512-px blocks) and one window larger
    than the scene write the same pixels and tags; build_stack, in 1024-px windows (whole blocks, partial
    ones at the edges), holds the same values."""
    scene = discover_scenes(dstl_1300)[0]
    assert IngestConfig().tile_px == 2048  # the default
    whole = tmp_path / "whole.tif"
    # grid_min_px: P's offset is also fitted on a 3x3 grid of windows
    stack = ingest_scene(scene, whole, IngestConfig(grid_min_px=600, tile_px=4096))
    assert set(stack.offsets) == {"P", "M", "A"} and all(np.isfinite(v[2]) for v in stack.offsets.values())
    assert "P" in stack.offset_spread
    H, W = stack.grid.shape
    assert H > 1024 and W > 1024 and H % 300 and W % 300 and H % 512 and W % 512
    assert ingest_scene(scene, tmp_path / "t300.tif", IngestConfig(grid_min_px=600, tile_px=300)) is not None
    _assert_same_stack(whole, tmp_path / "t300.tif")
    built = build_stack(scene, IngestConfig(grid_min_px=600, tile_px=1024))
    assert built.offsets == stack.offsets and built.offset_spread == stack.offset_spread
    _assert_same_stack(whole, write_stack(built, tmp_path / "built.tif"))
    # ingest_scene's stack reads its pixels back from the file when asked
    np.testing.assert_array_equal(stack.data, read_stack(whole).data)


def _write_raster(path: Path, data: np.ndarray, transform: Affine) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype.name, crs="EPSG:32631", transform=transform) as dst:
        dst.write(data)
    return path


def _user_files(tmp_path: Path, rotate_ms: bool = False) -> dict[str, Path]:
    """A 0.5 m panchromatic band and a 2 m 4-band file over the same ground, 11-bit counts, the
    multispectral grid shifted by a fraction of its pixel (and, optionally, rotated by 2 degrees:
    then GDAL warps it)."""
    import cv2

    h, w = 700, 650
    truth = texture(h, w, 7)
    pan_t = Affine(0.5, 0, 592000.0, 0, -0.5, 5748000.0)
    pan = np.round(truth * 1800 + 100).astype(np.uint16)[None]
    ms_t = pan_t @ Affine.translation(1.4, 0.6) @ Affine.scale(4.0)
    if rotate_ms:
        ms_t = ms_t @ Affine.rotation(2.0)
    # what the 2 m sensor sees: the scene blurred to its pixel, sampled at its pixel centres
    rows, cols = np.mgrid[0:h // 4, 0:w // 4].astype(np.float64) + 0.5
    u, v = ~pan_t @ (ms_t @ (cols, rows))
    blurred = cv2.GaussianBlur(truth, (0, 0), 1.6)
    seen = cv2.remap(blurred, (u - 0.5).astype(np.float32), (v - 0.5).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
    ms = np.stack([np.round(seen * 1500 * k + 80) for k in (0.6, 0.8, 1.0, 1.2)]).astype(np.uint16)
    return {"pan": _write_raster(tmp_path / "pan.tif", pan, pan_t),
            "ms": _write_raster(tmp_path / "ms.tif", ms, ms_t)}


@pytest.mark.parametrize("rotate", [False, True], ids=["axis-aligned", "rotated"])
def test_user_stack_is_the_same_whatever_the_window(tmp_path, rotate):
    """A user scene of two rasterio-written files: axis-aligned (numba's cubic spline) or rotated
    (GDAL warps each window from the part of the file it needs)."""
    files = _user_files(tmp_path, rotate)
    scene = scene_from_files("u", files, bit_depths={"pan": 11, "ms": 11})
    assert scene.reference.group == "pan"
    whole = tmp_path / "whole.tif"
    stack = ingest_scene(scene, whole, IngestConfig(tile_px=4096))
    assert stack.offsets["ms"][2] > 0.5
    for tile in (256, 300):
        out = tmp_path / f"t{tile}.tif"
        ingest_scene(scene, out, IngestConfig(tile_px=tile))
        _assert_same_stack(whole, out)
    _assert_same_stack(whole, write_stack(build_stack(scene, IngestConfig(tile_px=256)), tmp_path / "b.tif"))


def test_rotterdam_stack_is_the_same_whatever_the_window(rotterdam_dir, tmp_path):
    scene = scene_from_files("rotterdam", {"ms": rotterdam_dir / "ms1.tif", "pan": rotterdam_dir / "pan1.tif"},
                             bit_depths={"ms": 11, "pan": 11})
    ingest_scene(scene, tmp_path / "whole.tif", IngestConfig(tile_px=1024))
    ingest_scene(scene, tmp_path / "t64.tif", IngestConfig(tile_px=64))
    _assert_same_stack(tmp_path / "whole.tif", tmp_path / "t64.tif")


def test_a_window_too_small_is_one_config_error(small_dstl, tmp_path):
    scene = discover_scenes(small_dstl)[0]
    out = tmp_path / "s.tif"
    for make in (lambda: ingest_scene(scene, out, IngestConfig(tile_px=32)),
                 lambda: build_stack(scene, IngestConfig(tile_px=63)),
                 lambda: Config().replace("ingest", tile_px=16)):
        with pytest.raises(ConfigError) as e:
            make()
        msg = str(e.value)
        assert "[ingest] tile_px" in msg and ">= 64" in msg and "\n" not in msg, msg
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match=r"\[ingest\] align_window_px: must be >= 64"):
        build_stack(scene, IngestConfig(align_window_px=10))


def test_values_beyond_the_bit_depth_in_a_late_window(small_dstl, tmp_path):
    """The reference file's bit depth is checked as its windows are written: out-of-range values only
    in the last window stop the scene with the same error naming the file, and nothing is left."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dstl, data)
    scene = discover_scenes(data)[0]
    path = scene.files[0].path
    with rasterio.open(path) as src:
        profile, arr = src.profile, src.read()
    arr[:, -100:, -100:] = 4000  # 12-bit values in an 11-bit file, bottom right only (~3 % of the band)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    out = tmp_path / "run" / "s.tif"
    with pytest.raises(InputError, match="outside the 11-bit range") as e:
        ingest_scene(scene, out, IngestConfig(tile_px=256, align=False))
    assert str(path) in str(e.value)
    assert not out.exists() and not list(out.parent.iterdir())
    with pytest.raises(InputError, match="outside the 11-bit range"):
        build_stack(scene, IngestConfig(tile_px=256, align=False))


_PEAK = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    from sattag.config import IngestConfig
    from sattag.ingest import discover_scenes, ingest_scene
    scene = discover_scenes(sys.argv[1])[0]
    cfg = IngestConfig(**json.loads(sys.argv[3]))
    ingest_scene(scene, sys.argv[2] + "-warm.tif", cfg)  # numba's cache, imports: not counted
    tracemalloc.start()
    ingest_scene(scene, sys.argv[2], cfg)
    print(json.dumps({"peak": tracemalloc.get_traced_memory()[1],
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""")


def _peak(data: Path, out: Path, cfg: dict) -> dict:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", _PEAK, str(data), str(out), json.dumps(cfg)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _memory_ratio(tmp_path: Path, sizes: tuple[int, int], cfg: dict, offsets=None) -> tuple[dict, dict]:
    from sattag.synth import generate_dataset

    peaks = []
    for size in sizes:
        data = generate_dataset(tmp_path / f"d{size}", n_scenes=1, n_train=0, size=size, seed=4, offsets=offsets)
        peaks.append(_peak(data, tmp_path / f"s{size}.tif", cfg))
    return peaks[0], peaks[1]


def test_memory_does_not_grow_with_the_scene(tmp_path):
    """Writing the stack: a scene 2x wider and taller (4x the pixels) in windows of 512 px peaks at
    about the same traced memory (a whole-scene stack would take ~4x). Alignment off: its windows are
    bounded by align_window_px, which these scenes are too small to reach (the slow test below)."""
    small, large = _memory_ratio(tmp_path, (1200, 2400), {"tile_px": 512, "align": False})
    assert large["peak"] < 1.5 * small["peak"], (small, large)


@pytest.mark.slow  # two generated scenes of 1600 and 3200 px: ~1 min on 2 cores
def test_memory_with_alignment_does_not_grow_with_the_scene(tmp_path):
    """With alignment: the fits read central windows of at most align_window_px (1024 here) plus the
    reach of max_shift_px, the same at both sizes."""
    offsets = {"P": (0.3, -0.2), "M": (-2.5, 1.5), "A": (-6.0, 4.0)}
    small, large = _memory_ratio(tmp_path, (1600, 3200),
                                 {"tile_px": 512, "align_window_px": 1024, "max_shift_px": 10.0}, offsets)
    assert large["peak"] < 1.5 * small["peak"], (small, large)

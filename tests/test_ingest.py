"""Ingest: discovery (DSTL and user layouts), reading and float conversion, resampling, stack cache,
bad input. Real GeoTIFFs on disk, small sizes."""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from sattag.config import DSTL_BANDS, IngestConfig
from sattag.errors import InputError
from sattag.ingest import (build_stack, discover_scenes, dstl_grid_sizes, ingest_scene, offsets_rows, read_offsets,
                           read_stack, scene_from_files, stack_is_complete, write_offsets, write_stack)
from sattag.ingest.bands import to_unit_float
from sattag.ingest.resample import resample_axis_aligned, resample_rasterio
from sattag.scene import dstl_transform

CFG = IngestConfig()


def _copy_scenes(src: Path, dst: Path, ids: list[str]) -> Path:
    """A DSTL folder with only ``ids`` (so tests can break files without touching the fixture)."""
    (dst / "three_band").mkdir(parents=True)
    (dst / "sixteen_band").mkdir()
    for i in ids:
        shutil.copy(src / "three_band" / f"{i}.tif", dst / "three_band")
        for g in "PMA":
            shutil.copy(src / "sixteen_band" / f"{i}_{g}.tif", dst / "sixteen_band")
    shutil.copy(src / "grid_sizes.csv", dst)
    return dst


@pytest.fixture()
def two_scenes(small_dstl, tmp_path) -> tuple[Path, list[str]]:
    ids = [s.id for s in discover_scenes(small_dstl)][:2]
    return _copy_scenes(small_dstl, tmp_path / "data", ids), ids


# ------------------------------------------------------------------------------------ discovery


def test_discover_dstl_layout(small_dstl):
    scenes = discover_scenes(small_dstl)
    sizes = dstl_grid_sizes(small_dstl)
    assert len(scenes) == 4
    assert [s.id for s in scenes] == sorted(p.stem for p in (small_dstl / "three_band").glob("*.tif"))
    s = scenes[0]
    assert [f.group for f in s.files] == ["R", "P", "M", "A"]
    assert [f.bit_depth for f in s.files] == [11, 11, 11, 14]
    assert s.bands == DSTL_BANDS
    assert s.files[2].path == small_dstl / "sixteen_band" / f"{s.id}_M.tif"
    assert s.dstl_extent == sizes[s.id]
    assert discover_scenes(small_dstl, [s.id])[0].id == s.id
    with pytest.raises(InputError, match="not found"):
        discover_scenes(small_dstl, ["9999_9_9"])


def test_scene_missing_from_grid_sizes_fails_alone(two_scenes):
    data, (keep, drop) = two_scenes
    rows = list(csv.reader(open(data / "grid_sizes.csv")))
    with open(data / "grid_sizes.csv", "w", newline="") as f:
        csv.writer(f).writerows([r for r in rows if r[0] != drop])
    scenes = {s.id: s for s in discover_scenes(data)}
    assert set(scenes) == {keep, drop}  # discovery does not fail
    with pytest.raises(InputError, match="not in grid_sizes.csv") as e:
        build_stack(scenes[drop], CFG)
    assert "grid_sizes.csv" in str(e.value) and drop in str(e.value)
    assert build_stack(scenes[keep], CFG).data.shape[0] == 20


# ------------------------------------------------------------------------------------ bad input


def _assert_no_stack(tmp_path: Path, scene, out: Path, match: str, name: str):
    with pytest.raises(InputError, match=match) as e:
        ingest_scene(scene, out, CFG)
    assert name in str(e.value)
    assert not out.exists()
    assert not list(out.parent.glob("*.tmp*")) if out.parent.exists() else True


def test_missing_band_file(two_scenes, tmp_path):
    data, (sid, other) = two_scenes
    (data / "sixteen_band" / f"{sid}_A.tif").unlink()
    scenes = {s.id: s for s in discover_scenes(data)}
    _assert_no_stack(tmp_path, scenes[sid], tmp_path / "run" / "s.tif", "band file missing", f"{sid}_A.tif")
    assert build_stack(scenes[other], CFG) is not None


def test_truncated_tiff(two_scenes, tmp_path):
    data, (sid, _) = two_scenes
    path = data / "sixteen_band" / f"{sid}_M.tif"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    scene = discover_scenes(data, [sid])[0]
    _assert_no_stack(tmp_path, scene, tmp_path / "run" / "s.tif", "truncated or corrupt", f"{sid}_M.tif")


def test_garbage_file(two_scenes, tmp_path):
    data, (sid, _) = two_scenes
    (data / "sixteen_band" / f"{sid}_P.tif").write_bytes(b"this is not a tiff" * 100)
    scene = discover_scenes(data, [sid])[0]
    _assert_no_stack(tmp_path, scene, tmp_path / "run" / "s.tif", "not a readable raster", f"{sid}_P.tif")


def _rewrite(path: Path, arr: np.ndarray):
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(count=arr.shape[0], dtype=arr.dtype.name)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)


def test_wrong_band_count(two_scenes, tmp_path):
    data, (sid, _) = two_scenes
    path = data / "sixteen_band" / f"{sid}_M.tif"
    with rasterio.open(path) as src:
        arr = src.read()
    _rewrite(path, arr[:3])
    scene = discover_scenes(data, [sid])[0]
    _assert_no_stack(tmp_path, scene, tmp_path / "run" / "s.tif", r"3 band\(s\) in the file, expected 8",
                     f"{sid}_M.tif")


def test_values_contradict_bit_depth(two_scenes, tmp_path):
    data, (sid, _) = two_scenes
    path = data / "sixteen_band" / f"{sid}_M.tif"
    with rasterio.open(path) as src:
        arr = src.read()
    _rewrite(path, (arr.astype(np.uint32) * 8).clip(0, 16383).astype(np.uint16))  # 14-bit values
    scene = discover_scenes(data, [sid])[0]
    _assert_no_stack(tmp_path, scene, tmp_path / "run" / "s.tif", "outside the 11-bit range",
                     f"{sid}_M.tif")


# ------------------------------------------------------------------------------ float, resampling


def test_to_unit_float_by_bit_depth(tmp_path):
    raw = np.array([[0, 1023, 2047]], np.uint16)
    out = np.empty(raw.shape, np.float32)
    to_unit_float(raw, 11, out, path=tmp_path)
    np.testing.assert_allclose(out, [[0.0, 1023 / 2047, 1.0]], rtol=1e-6)
    raw14 = np.array([[16383, 8191]], np.uint16)
    out14 = np.empty(raw14.shape, np.float32)
    to_unit_float(raw14, 14, out14, path=tmp_path)
    np.testing.assert_allclose(out14, [[1.0, 8191 / 16383]], rtol=1e-6)
    f = np.array([[0.25, 0.5]], np.float64)
    outf = np.empty(f.shape, np.float32)
    to_unit_float(f, None, outf, path=tmp_path)
    np.testing.assert_allclose(outf, f)
    # a few stray values are clipped, many mean a wrong bit depth
    few = np.zeros(10_000, np.uint16)
    few[:5] = 4000
    o = np.empty(few.shape, np.float32)
    to_unit_float(few, 11, o, path=tmp_path)
    assert o.max() == 1.0
    few[:100] = 4000
    with pytest.raises(InputError, match="wrong bit depth"):
        to_unit_float(few, 11, o, path=tmp_path)


def test_resampling_keeps_a_ramp_and_matches_gdal():
    h, w, H, W = 60, 64, 241, 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    src = (0.3 + 0.004 * xx + 0.002 * yy)[None]  # a ramp in source pixel-centre units
    out = np.empty((1, H, W), np.float32)
    sx, sy = W / w, H / h
    ax, ay = (1 / sx, 0.5 / sx - 0.5), (1 / sy, 0.5 / sy - 0.5)
    resample_axis_aligned(src, out, ax, ay)
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    expect = 0.3 + 0.004 * (ax[0] * jj + ax[1]) + 0.002 * (ay[0] * ii + ay[1])
    inner = (slice(None), slice(12, -12), slice(12, -12))  # the ramp bends only at the edges
    assert np.abs(out - expect[None])[inner].max() < 1e-5
    # same kernel as GDAL's cubic_spline warp, on a textured image
    rng = np.random.default_rng(0)
    tex = rng.random((1, h, w), dtype=np.float32)
    a = np.empty((1, H, W), np.float32)
    b = np.empty((1, H, W), np.float32)
    resample_axis_aligned(tex, a, ax, ay)
    resample_rasterio(tex, Affine.scale(sx, sy), None, b, Affine.identity(), None)
    assert np.abs(a - b)[inner].max() < 1e-4


# ---------------------------------------------------------------------------------- stack cache


def test_stack_round_trip_and_skip(small_dstl, tmp_path):
    scene = discover_scenes(small_dstl)[0]
    out = tmp_path / "run" / "stacks" / f"{scene.id}.tif"
    stack = ingest_scene(scene, out, CFG)
    assert stack is not None and stack_is_complete(out)
    H, W = stack.data.shape[1:]
    with rasterio.open(small_dstl / "three_band" / f"{scene.id}.tif") as src:
        assert (src.height, src.width) == (H, W)
    assert stack.data.dtype == np.float32 and stack.data.shape[0] == 20
    assert 0.0 <= stack.data.min() and stack.data.max() <= 1.0
    assert stack.grid.transform == dstl_transform(*scene.dstl_extent, H, W)
    assert set(stack.offsets) == {"P", "M", "A"}
    back = read_stack(out)
    assert back.bands == DSTL_BANDS and back.scene_id == scene.id
    assert np.abs(back.data - stack.data).max() <= 0.5 / 65535 + 1e-7
    assert back.grid.transform.almost_equals(stack.grid.transform, precision=1e-15)
    for g, v in stack.offsets.items():
        np.testing.assert_allclose(back.offsets[g], v, equal_nan=True)
    with rasterio.open(out) as src:
        assert src.descriptions == DSTL_BANDS
        assert src.profile["tiled"] and src.compression is not None
    # re-ingest skips the complete stack
    mtime = out.stat().st_mtime_ns
    assert ingest_scene(scene, out, CFG) is None
    assert out.stat().st_mtime_ns == mtime
    # a half-written (not renamed) file is never "complete"
    broken = tmp_path / "run" / "stacks" / "broken.tif"
    broken.write_bytes(out.read_bytes()[:1000])
    assert not stack_is_complete(broken)
    rows = offsets_rows(stack)
    assert [r[1] for r in rows] == ["P", "M", "A"] and all(r[0] == scene.id for r in rows)
    # offsets.csv (the engine writes it from these rows): a group left unaligned has an empty correlation
    rows.append((scene.id, "X", 0.0, 0.0, float("nan")))
    lines = write_offsets(tmp_path / "run" / "offsets.csv", rows).read_text().splitlines()
    assert lines[0] == "scene,group,dx,dy,correlation,spread_px"
    assert lines[-1] == f"{scene.id},X,0.000,0.000,,"


def test_offsets_csv_written_and_read_back(tmp_path):
    """offsets.csv's owner (ingest): writer and reader agree; ids stay text, an unaligned group is NaN."""
    rows = [("6010", "P", 0.1234, -2.5, 0.98765), ("6010", "A", 41.5, 12.25, float("nan"))]
    df = read_offsets(write_offsets(tmp_path / "offsets.csv", rows))
    assert list(df.columns) == ["scene", "group", "dx", "dy", "correlation", "spread_px"]
    assert df["scene"].tolist() == ["6010", "6010"] and df["group"].tolist() == ["P", "A"]
    assert df["dx"].dtype == np.float64 and df["correlation"].dtype == np.float64
    np.testing.assert_allclose(df[["dx", "dy"]].to_numpy(), [[0.123, -2.5], [41.5, 12.25]])
    assert df["correlation"].iloc[0] == pytest.approx(0.9877) and np.isnan(df["correlation"].iloc[1])
    (tmp_path / "bad.csv").write_text("scene,group,dx,dy\n6010,P,0,0\n")
    with pytest.raises(InputError, match=r"bad\.csv.*correlation"):
        read_offsets(tmp_path / "bad.csv")


# ---------------------------------------------------------------------------------- user layout


def test_user_layout_rotterdam(rotterdam_dir, tmp_path):
    (tmp_path / "scenes.csv").write_text(
        "scene,group,path,bit_depth,bands\n"
        f"rotterdam,MS,{rotterdam_dir / 'ms1.tif'},11,B G R N\n"
        f"rotterdam,PAN,{rotterdam_dir / 'pan1.tif'},11,\n")
    scenes = discover_scenes(tmp_path)
    assert len(scenes) == 1
    scene = scenes[0]
    assert scene.reference.group == "PAN"  # the finest grid, whatever the CSV order
    assert scene.bands == ("PAN", "B", "G", "R", "N")
    stack = build_stack(scene, CFG)
    with rasterio.open(rotterdam_dir / "pan1.tif") as pan:
        assert stack.grid.shape == (pan.height, pan.width)
        assert stack.grid.transform == pan.transform
        assert rasterio.crs.CRS.from_string(stack.grid.crs) == pan.crs
    assert "MS" in stack.offsets and stack.offsets["MS"][2] > 0.5
    out = tmp_path / "rotterdam.tif"
    write_stack(stack, out)
    back = read_stack(out)
    assert back.grid.crs and rasterio.crs.CRS.from_string(back.grid.crs).to_epsg() == 32631
    assert back.grid.transform.almost_equals(stack.grid.transform)


def test_scene_from_files_python_api(rotterdam_dir):
    scene = scene_from_files("p", {"ms": rotterdam_dir / "ms1.tif", "pan": rotterdam_dir / "pan1.tif"},
                             bit_depths={"ms": 11, "pan": 11})
    assert [f.group for f in scene.files] == ["pan", "ms"]
    assert scene.bands == ("pan", "ms1", "ms2", "ms3", "ms4")


def test_user_layout_bad_csv(tmp_path):
    (tmp_path / "scenes.csv").write_text("scene,file\na,b.tif\n")
    with pytest.raises(InputError, match="missing column"):
        discover_scenes(tmp_path)


def test_a_stack_too_large_for_the_disk_stops_before_any_pixel_is_read(tmp_path):
    """A (sparse, so tiny on disk) 4-band 400 000 x 400 000 px GeoTIFF: its stack would need ~1.3 TB.
    The check reads only the header, names the scene, the bytes and the folder; nothing is written."""
    from sattag.errors import DiskSpaceError

    big = tmp_path / "big.tif"
    with rasterio.open(big, "w", driver="GTiff", width=400_000, height=400_000, count=4, dtype="uint16",
                       tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True, BIGTIFF="YES",
                       crs="EPSG:32631", transform=Affine(0.3, 0, 440000, 0, -0.3, 5450000)):
        pass  # no block written: every tile is sparse
    assert big.stat().st_size < 50e6
    scene = scene_from_files("huge", {"ms": big}, bit_depths={"ms": 11})
    out = tmp_path / "stacks" / "huge.tif"
    with pytest.raises(DiskSpaceError) as err:
        ingest_scene(scene, out, CFG)
    assert err.value.path == out.parent and err.value.scene == "huge"
    assert re.fullmatch(r"not enough disk space for the stack \(4 bands of 400000 x 400000 px\): it needs up "
                        r"to 1280\.0 GB, [0-9.]+ [GM]B free", err.value.fault), err.value.fault
    assert str(err.value).startswith(f"{out.parent}: scene huge: not enough disk space")
    assert not out.exists() and not list(tmp_path.glob("stacks/*"))

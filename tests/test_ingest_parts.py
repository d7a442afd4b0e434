"""A scene larger than ``[predict] tile_px`` stacked in parts over the workers (``sattag.ingest.parts``):
the same stack as one task writes, bit for bit, tags and percentiles included; a rerun redoes only a
part that is missing; the free disk is checked before anything is written; a bad part names the
scene and the file."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from sattag.config import Config, IngestConfig
from sattag.ingest import (discover_scenes, read_band_percentiles, read_stack, read_stack_metadata,
                           read_stack_sample, read_stack_window, scene_from_files, stack_is_complete)
from sattag.ingest.parts import ingest_scene_in_parts, part_rows, parts_folder
from sattag.runfolder import RunFolder

#: Parts of 512 rows (one block: the smallest) on the ~1100-px scene below: three parts.
#: As predict's tile side (>= 4 feature halos) it also makes predict tile the scene.
TILE_PX = 400


def _config(workers: int, tile_px: int = TILE_PX, **ingest) -> Config:
    cfg = Config().replace("predict", tile_px=tile_px).replace("ingest", tile_px=256, **ingest)
    return cfg.replace("engine", workers=workers, memory_limit="2GiB")


@pytest.fixture(scope="module")
def dstl_1100(tmp_path_factory) -> Path:
    """One generated, labelled DSTL scene of ~1100 px (A ~44 px: left unaligned, as recorded)."""
    from sattag.synth import generate_dataset

    out = tmp_path_factory.mktemp("parts") / "data"
    generate_dataset(out, n_scenes=1, n_train=1, size=1100, seed=8)
    return out


def _ingest(data: Path, out: Path, workers: int, tile_px: int = TILE_PX, **ingest):
    from sattag import engine

    scenes = engine.select_scenes(data)
    with engine.open_session(data, out, _config(workers, tile_px, **ingest), local=workers == 0) as session:
        res = engine.ingest(session, scenes)
    return session, res


def _stages(run: Path) -> list[tuple[str, str]]:
    import csv

    with open(run / "timings.csv", newline="") as f:
        return [(r["stage"], r["scene"]) for r in csv.DictReader(f)]


def test_part_rows_are_strips_of_whole_blocks():
    assert part_rows(1100, 1100, 400) == [(0, 512), (512, 1024), (1024, 1100)]
    # about tile_px^2 px a part: 4096^2 / 20000 = 839 rows -> two 512-px blocks
    assert part_rows(20000, 20000, 4096)[:2] == [(0, 1024), (1024, 2048)] and len(part_rows(20000, 20000, 4096)) == 20
    assert part_rows(300, 5000, 4096) == [(0, 300)]


def test_parts_on_a_local_cluster_make_the_one_task_stack(dstl_1100, tmp_path):
    """Three parts written by two workers: pixels bit for bit, header, tags and percentiles equal to
    the stack one task writes with the same configuration on a worker (a worker, as the offsets'
    last bits depend on the threads the fit has: one a worker); every reader reads the VRT."""
    session, res = _ingest(dstl_1100, tmp_path / "run", workers=2)
    assert not session.failures
    run = RunFolder(tmp_path / "run")
    scene = discover_scenes(dstl_1100)[0]
    path = run.stack(scene.id)
    assert path == run.stack_vrt(scene.id) and stack_is_complete(path) and not run.stack_tif(scene.id).exists()
    stages = _stages(run.root)
    assert [s for s, _ in stages] == ["ingest offsets"] + ["ingest parts"] * 3 + ["ingest join"]
    H = read_stack_metadata(path).grid.height
    assert 1024 < H < 1536
    assert sorted(t for s, t in stages if s == "ingest parts") == [f"{scene.id}/rows{r}" for r in
                                                                   ("0-512", f"1024-{H}", "512-1024")]
    assert not list(run.root.rglob(".*.tmp*"))

    _, _ = _ingest(dstl_1100, tmp_path / "whole", workers=1, tile_px=4096)
    one = RunFolder(tmp_path / "whole").stack(scene.id)
    assert one.suffix == ".tif" and _stages(tmp_path / "whole") == [("ingest", scene.id)]
    a, b = read_stack(one), read_stack(path)
    assert a.data.shape == b.data.shape and a.data.tobytes() == b.data.tobytes()
    assert (a.bands, a.grid, a.offsets, a.offset_spread, a.scene_id) == (b.bands, b.grid, b.offsets, b.offset_spread,
                                                                         b.scene_id)
    with rasterio.open(one) as sa, rasterio.open(path) as sb:
        assert sa.tags() == sb.tags()
        assert (sa.descriptions, sa.scales, sa.offsets, sa.dtypes, sa.transform, sa.crs) == \
               (sb.descriptions, sb.scales, sb.offsets, sb.dtypes, sb.transform, sb.crs)
    for x, y in zip(read_band_percentiles(one), read_band_percentiles(path)):
        np.testing.assert_array_equal(x, y)
    win = ((300, 700), (100, 1000))  # across the first two parts
    np.testing.assert_array_equal(read_stack_window(one, *win), read_stack_window(path, *win))
    np.testing.assert_array_equal(read_stack_sample(one, 3), read_stack_sample(path, 3))
    assert read_stack_metadata(path).offsets == a.offsets
    assert [r[1] for r in res.results[scene.id]] == ["P", "M", "A"] and run.offsets_csv.exists()

    # Resume: one part's file gone -> the stack is not complete, and a rerun writes only that part.
    folder = parts_folder(path)
    lost = folder / "rows512-1024.tif"
    lost.unlink()
    assert not stack_is_complete(path)
    kept = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if not p.name.startswith("rows512-1024.")}
    assert set(kept) == {"fit.json", "rows0-512.tif", "rows0-512.npz", f"rows1024-{H}.tif", f"rows1024-{H}.npz"}
    session, _ = _ingest(dstl_1100, tmp_path / "run", workers=0)
    assert not session.failures and stack_is_complete(path) and lost.exists()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name in kept} == kept
    assert read_stack(path).data.tobytes() == a.data.tobytes()
    # A complete stack: nothing is done again.
    mtime = path.stat().st_mtime_ns
    session, _ = _ingest(dstl_1100, tmp_path / "run", workers=0)
    assert path.stat().st_mtime_ns == mtime and [s for s, _ in _stages(run.root)] == ["ingest"]


def test_scenes_up_to_a_tile_stay_one_task(small_dstl, tmp_path):
    """DSTL-size scenes (here 600 px, tile_px 4096 by default) are stacked as before: one task, a .tif."""
    from sattag import engine

    scenes = engine.select_scenes(small_dstl)[:1]
    with engine.open_session(small_dstl, tmp_path / "run", Config(), local=True) as session:
        engine.ingest(session, scenes)
    run = RunFolder(tmp_path / "run")
    assert run.stack(scenes[0].id) == run.stack_tif(scenes[0].id) and stack_is_complete(run.stack_tif(scenes[0].id))
    assert not run.stack_vrt(scenes[0].id).exists() and not parts_folder(run.stack_tif(scenes[0].id)).exists()
    assert _stages(run.root) == [("ingest", scenes[0].id)]


def test_a_stack_in_parts_too_large_for_the_disk_stops_before_anything_is_written(tmp_path):
    """The disk check runs before the fit and before any part: a (sparse) 400 000 px scene fails in its
    offsets task, naming the folder and the scene; nothing is left under stacks/."""
    from sattag import engine
    from sattag.errors import DiskSpaceError

    big = tmp_path / "data" / "big.tif"
    big.parent.mkdir()
    with rasterio.open(big, "w", driver="GTiff", width=400_000, height=400_000, count=4, dtype="uint16",
                       tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True, BIGTIFF="YES",
                       crs="EPSG:32631", transform=Affine(0.3, 0, 440000, 0, -0.3, 5450000)):
        pass
    scene = scene_from_files("huge", {"ms": big}, bit_depths={"ms": 11})
    with pytest.raises(DiskSpaceError, match=r"not enough disk space for the stack") as err:
        ingest_scene_in_parts(scene, tmp_path / "stacks" / "huge.vrt", IngestConfig())
    assert err.value.scene == "huge" and not (tmp_path / "stacks").exists()
    (tmp_path / "data" / "scenes.csv").write_text(f"scene,group,path,bit_depth,bands\nhuge,ms,{big},11,\n")
    with engine.open_session(tmp_path / "data", tmp_path / "run", Config(), local=True) as session:
        res = engine.ingest(session, engine.select_scenes(tmp_path / "data"))
    assert not res.results
    assert [(f.scene, f.stage) for f in session.failures] == [("huge", "ingest offsets")]
    assert "not enough disk space for the stack" in session.failures[0].error
    assert not any((tmp_path / "run" / "stacks").rglob("*")) if (tmp_path / "run" / "stacks").exists() else True


def _with_values_beyond_the_bit_depth(src: Path, dst: Path, regions) -> tuple[Path, object]:
    """A copy of the data whose reference file holds 12-bit values (4000) in ``regions`` (row and
    column slices), in an 11-bit file."""
    shutil.copytree(src, dst)
    scene = discover_scenes(dst)[0]
    ref = scene.files[0].path
    with rasterio.open(ref) as f:
        profile, arr = f.profile, f.read()
    for rows, cols in regions:
        arr[:, rows, cols] = 4000
    with rasterio.open(ref, "w", **profile) as f:
        f.write(arr)
    return ref, scene


def test_values_beyond_the_bit_depth_name_the_part_the_file_and_the_scene(dstl_1100, tmp_path):
    """The reference file's bit depth is the whole file's, checked part by part and over all parts.
    Out of range in the last rows only (~4 % of the band): that part fails, naming itself, the file
    and the scene; the other parts are kept, no stack. Out of range in two parts, neither over the
    0.1 % a band may have but both together: the join fails, naming the file and the scene.
    (Alignment off: the fit would read those rows first and fail as the one-task ingest does.)"""
    ref, scene = _with_values_beyond_the_bit_depth(dstl_1100, tmp_path / "d1", [(slice(-40, None), slice(None))])
    session, res = _ingest(tmp_path / "d1", tmp_path / "run1", workers=0, align=False)
    assert not res.results
    [f] = session.failures
    assert (f.scene, f.stage) == (scene.id, "ingest parts")
    assert re.match(r"part rows1024-\d+: ", f.error) and str(ref) in f.error and f"scene {scene.id}" in f.error
    assert "outside the 11-bit range" in f.error
    run = RunFolder(tmp_path / "run1")
    assert not stack_is_complete(run.stack(scene.id)) and not run.stack_vrt(scene.id).exists()
    assert (parts_folder(run.stack_vrt(scene.id)) / "rows0-512.tif").exists()

    # 10 x 90 = 900 values a part, under 0.1 % of the band's ~1.19 M (1194), 1800 over it
    ref, scene = _with_values_beyond_the_bit_depth(dstl_1100, tmp_path / "d2", [(slice(500, 510), slice(0, 90)),
                                                                                (slice(520, 530), slice(0, 90))])
    session, res = _ingest(tmp_path / "d2", tmp_path / "run2", workers=0, align=False)
    [f] = session.failures
    assert (f.scene, f.stage) == (scene.id, "ingest join") and not res.results
    assert f.error.startswith(f"{ref}: scene {scene.id}: ") and "outside the 11-bit range" in f.error
    assert not RunFolder(tmp_path / "run2").stack_vrt(scene.id).exists()


@pytest.mark.slow  # a whole run (ingest in parts, train, tiled predict) on 2 workers: ~1-2 min on 2 cores
def test_predict_on_a_stack_in_parts(dstl_1100, tmp_path):
    """``sattag run`` on a scene larger than a tile: stacked in parts (a VRT), trained on, predicted in
    tiles (read through the VRT); outputs written, no failure."""
    cfg = tmp_path / "small.toml"
    cfg.write_text(f"[sample]\nn_in = 3000\nn_out = 3000\n[model]\nn_trees = 10\nmax_depth = 5\n"
                   f"[predict]\ntile_px = {TILE_PX}\n[cluster]\nmerge = \"simultaneous\"\n"
                   "[engine]\nmemory_limit = \"2GiB\"\n")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "sattag.cli", "run", str(dstl_1100), "--out", str(out), "--workers", "2",
                        "--quiet", "--config", str(cfg)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    run = RunFolder(out)
    sid = discover_scenes(dstl_1100)[0].id
    assert run.stack(sid) == run.stack_vrt(sid)
    stages = {s for s, _ in _stages(out)}
    assert {"ingest offsets", "ingest parts", "ingest join", "labels", "predict tiles", "assemble"} <= stages
    assert run.masks(sid).exists() and run.polygons_geojson(sid).exists() and run.report_html.exists()

"""A scene larger than ``[predict] tile_px`` predicted tile by tile (``sattag.engine.tiles``): the same
masks as predicting it whole, clusters joined across seams, COG outputs, resume tile by tile,
a tile too small refused, memory that follows the tile."""
from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sattag.classes import DSTL_CLASSES
from sattag.labels import read_masks
from sattag.predict import read_probabilities
from sattag.runfolder import RunFolder
from sattag.segment import cluster_pixels, read_cluster_ids, seam_pairs, stitch_groups, tolerance_units

from test_cog import cog_errors

SMALL = "[sample]\nn_in = 4000\nn_out = 4000\n[model]\nn_trees = 15\nmax_depth = 6\n"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sattag.cli", *args]


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout)


def _config(folder: Path, name: str, extra: str = "") -> Path:
    path = folder / name
    path.write_text(SMALL + extra)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two size-700 scenes, stacked, with models trained on them (small), in a run folder."""
    from sattag.synth import generate_dataset

    root = tmp_path_factory.mktemp("tiles")
    data = root / "data"
    generate_dataset(data, n_scenes=2, n_train=2, size=700, seed=5)
    run = root / "run"
    r = _run("train", str(data), "--out", str(run), "--workers", "0", "--quiet", "--config", str(_config(root, "small.toml")))
    assert r.returncode == 0, r.stderr[-3000:]
    return data, run


def _predict(trained, out: Path, extra: str = "", workers: str = "0") -> subprocess.CompletedProcess:
    data, run = trained
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run / "stacks", out / "stacks", dirs_exist_ok=True)
    shutil.copytree(run / "models", out / "models", dirs_exist_ok=True)
    cfg = _config(out.parent, f"{out.name}.toml", extra)
    return _run("predict", str(data), "--models", str(out / "models"), "--out", str(out), "--workers", workers,
                "--quiet", "--config", str(cfg))


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The share of class pixels (pixel, class pairs set in either) on which two masks agree."""
    either = (a != 0) | (b != 0)
    return float(((a == b) & either).sum() / max(either.sum(), 1))


def test_tiled_and_whole_predictions_agree(trained, tmp_path):
    # Bound: clusters are grown with a 64-px margin around each tile and the small-cluster merge is
    # local (merge = "simultaneous", the default: a change moves clusters < 50 px away), so a tile's clusters are
    # the whole scene's except clusters reaching more than the margin past its edge; only those can
    # be decided differently (from a part of them, then one vote per joined cluster). On these scenes
    # that is well under 0.5 % of class pixels. (Models trained with the sequential merge: the
    # prediction's clusters are what is compared.)
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    local = '[cluster]\nmerge = "simultaneous"\n'
    assert _predict(trained, whole, local).returncode == 0
    r = _predict(trained, tiled, local + "[predict]\ntile_px = 360\n")
    assert r.returncode == 0, r.stderr[-3000:]
    tiles = RunFolder(tiled).root / "tiles"
    for sid in [p.stem for p in (whole / "masks").glob("*.tif")]:
        assert len(list((tiles / sid / "px360").glob("r*c*.paint.npz"))) == 4  # 700 px in tiles of 360: 2 x 2
        a, b = read_masks(whole / "masks" / f"{sid}.tif")[0], read_masks(tiled / "masks" / f"{sid}.tif")[0]
        assert a.any()
        assert _agreement(a, b) >= 0.995, (sid, _agreement(a, b))
        assert not cog_errors(tiled / "masks" / f"{sid}.tif")
        assert not cog_errors(tiled / "clusters" / f"{sid}.tif")
        # Clusters crossing the seams came out as one cluster: ids on both sides of the seam.
        ids = read_cluster_ids(tiled / "clusters" / f"{sid}.tif")[0]
        crossing = np.intersect1d(ids[:, 359], ids[:, 360])
        assert crossing.size > 10
        table = read_probabilities(tiled / "probabilities" / f"{sid}.parquet", DSTL_CLASSES)
        assert table["cluster"].is_unique and set(crossing) <= set(table["cluster"])
        assert table["size"].sum() == ids.size
    # Each scene's polygons: as many classes, nearly the same area as predicted whole.
    from sattag.vectorize import read_geojson_polygons

    # Per class: within 2 % of its area, or of one smallest cluster's (50 px). A class of few or long
    # clusters (roads cross seams) moves by a cluster decided otherwise at a seam: 1.08 % of the
    # roads of one 700-px scene here (~105 of ~9 800 px); over all classes the masks agree >= 99.5 %.
    for g in (whole / "polygons").glob("*.geojson"):
        a = read_geojson_polygons(g, DSTL_CLASSES)
        b = read_geojson_polygons(tiled / "polygons" / g.name, DSTL_CLASSES)
        t = read_masks(whole / "masks" / f"{g.stem}.tif")[1].transform
        one_cluster = 50 * abs(t.a * t.e)
        assert {c for c, m in a.items() if not m.is_empty} == {c for c, m in b.items() if not m.is_empty}
        for c in a:
            assert b[c].is_valid
            assert abs(a[c].area - b[c].area) <= max(0.02 * a[c].area, one_cluster), (g.stem, c)


@pytest.mark.slow
def test_a_dstl_size_scene_tiled_and_whole_agree(trained, tmp_path):
    # A full-size DSTL scene (~3400 px) predicted whole and, with [predict] tile_px = 2048, stacked in
    # parts and predicted in 2 x 2 tiles, each run from the scene's files with the default
    # configuration. Bound: the stack is the same to the bit (each part is rendered from the scene's
    # one fit, with the halo its resampling kernel needs); a tile's clusters are grown with a margin and
    # the small-cluster merge is local (merge = "simultaneous", the default), so only clusters reaching
    # past the margin can be decided differently: well under 0.5 % of class pixels.
    from sattag.ingest import read_stack
    from sattag.synth import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, n_scenes=1, n_train=0, seed=8)
    models = trained[1] / "models"
    runs = {}
    for name, extra in (("whole", ""), ("tiled", "[predict]\ntile_px = 2048\n")):
        out = tmp_path / name
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(extra)
        r = _run("predict", str(data), "--models", str(models), "--out", str(out), "--workers", "0", "--quiet",
                 "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = RunFolder(out)
    sid = next((runs["whole"].root / "masks").glob("*.tif")).stem
    assert runs["tiled"].stack(sid).suffix == ".vrt" and runs["whole"].stack(sid).suffix == ".tif"
    a, b = (read_stack(runs[n].stack(sid)) for n in ("whole", "tiled"))
    assert min(a.grid.shape) > 3000 and np.array_equal(a.data, b.data)
    del a, b
    assert len(list((runs["tiled"].root / "tiles" / sid / "px2048").glob("r*c*.paint.npz"))) == 4
    m_whole, m_tiled = (read_masks(runs[n].masks(sid))[0] for n in ("whole", "tiled"))
    assert m_whole.any()
    assert _agreement(m_whole, m_tiled) >= 0.995, _agreement(m_whole, m_tiled)


def test_a_big_scene_s_exploration_figures_are_drawn_from_a_sample(trained, tmp_path):
    # A scene larger than a tile is drawn from every n-th px of its stack and masks (memory follows
    # the tile); the sample readers give exactly the whole arrays' every n-th px.
    from sattag.config import Config
    from sattag.engine.contracts import RunContext
    from sattag.engine.tasks import explore_figures_task
    from sattag.ingest import discover_scenes, read_stack, read_stack_sample
    from sattag.labels import read_masks_sample
    from sattag.labels.source import LabelSource

    data, run = trained
    scene = discover_scenes(data)[0]
    inputs = RunFolder(run)
    whole = read_masks(inputs.truth_masks(scene.id))[0]
    assert np.array_equal(read_masks_sample(inputs.truth_masks(scene.id), 3), whole[:, ::3, ::3])
    assert np.array_equal(read_stack_sample(inputs.stack(scene.id), 3), read_stack(inputs.stack(scene.id)).data[:, ::3, ::3])
    ctx = RunContext(run=RunFolder(tmp_path / "run", shared=run), config=Config().replace("predict", tile_px=360),
                     classes=DSTL_CLASSES, labels=LabelSource.resolve(data))
    written = explore_figures_task(scene, ctx)  # 700 px, tiles of 360: every 2nd px
    assert sorted(Path(p).name for p in written) == sorted(f"{k}_{scene.id}.png" for k in ("bands", "masks", "overlay"))
    assert all(Path(p).stat().st_size > 10_000 and str(tmp_path) in p for p in written)


def test_a_cluster_cut_by_a_seam_is_joined(tmp_path):
    # A bright square on a dark ground, cut by a tile edge at column 20: clustered tile by tile, its
    # two pieces face each other across the seam and pass the growing rule: one cluster again.
    data = np.full((3, 40, 40), 0.2, np.float32)
    data[:, 10:30, 12:28] = 0.7
    left, lt = cluster_pixels(np.ascontiguousarray(data[:, :, :20]), 0.03, 1, "range")
    right, rt = cluster_pixels(np.ascontiguousarray(data[:, :, 20:]), 0.03, 1, "range")
    right = right + len(lt)
    pairs = seam_pairs(left[:, 19], right[:, 0])
    ids = np.arange(len(lt) + len(rt))
    means = np.concatenate([lt.means, rt.means])
    group = stitch_groups(pairs, ids, means, tolerance_units(0.03, "range", None, 3))
    joined = group[np.concatenate([left, right], axis=1)]
    square = np.unique(joined[10:30, 12:28])
    assert square.size == 1
    assert np.unique(joined[0:10]).size == 1 and joined[0, 0] != square[0]  # the ground too, apart


def test_a_tile_too_small_for_its_halo_is_refused(trained, tmp_path):
    out = tmp_path / "small-tiles"
    r = _predict(trained, out, "[predict]\ntile_px = 200\n")
    assert r.returncode != 0
    assert "tile_px = 200 is too small" in r.stderr and "use at least" in r.stderr
    assert not (out / "masks").exists() and not (out / "tiles").exists()


def test_an_interrupted_tiled_run_resumes_tile_by_tile(trained, tmp_path):
    data, run = trained
    out = tmp_path / "resumed"
    out.mkdir()
    shutil.copytree(run / "stacks", out / "stacks")
    shutil.copytree(run / "models", out / "models")
    cfg = _config(tmp_path, "t.toml", "[predict]\ntile_px = 360\n")
    cmd = _cli("predict", str(data), "--models", str(out / "models"), "--out", str(out), "--workers", "0",
               "--quiet", "--config", str(cfg))
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tiles = out / "tiles"
    deadline = time.time() + 600

    def done() -> list[Path]:
        return [p for p in tiles.rglob("r*c*.npz") if not p.name.startswith(".") and "paint" not in p.name]

    while time.time() < deadline and len(done()) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in done()}
    assert 3 <= len(finished) < 8  # killed mid-way through the 2 scenes' 8 tiles
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"finished tile {p.name} was redone"
    assert len(done()) == 8
    # The same masks as a run never interrupted.
    straight = tmp_path / "straight"
    assert _predict(trained, straight, "[predict]\ntile_px = 360\n").returncode == 0
    for m in (straight / "masks").glob("*.tif"):
        np.testing.assert_array_equal(read_masks(m)[0], read_masks(out / "masks" / m.name)[0])
    assert not list(out.rglob(".*.tmp*"))


@pytest.mark.slow
def test_peak_memory_of_a_tile_task_does_not_grow_with_the_scene(tmp_path, trained):
    """Two scene sizes (4x the pixels), the same tiles: the tile tasks' peak is the same."""
    from sattag.synth import generate_dataset

    peaks = {}
    for size in (1000, 2000):
        data = tmp_path / f"d{size}"
        generate_dataset(data, n_scenes=1, n_train=0, size=size, seed=7)
        out = tmp_path / f"r{size}"
        out.mkdir()
        shutil.copytree(trained[1] / "models", out / "models")
        cfg = _config(tmp_path, f"m{size}.toml", "[predict]\ntile_px = 512\n")
        # Ingest first, in a process of its own: a worker's peak is its lifetime's, and the offsets
        # of a scene stacked in parts are fitted in one task whose windows do not follow tile_px.
        r = _run("ingest", str(data), "--out", str(out), "--workers", "0", "--quiet", "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-3000:]
        r = _run("predict", str(data), "--models", str(out / "models"), "--out", str(out), "--workers", "1",
                 "--quiet", "--config", str(cfg), timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
        with open(out / "timings.csv") as f:
            rows = [row for row in csv.DictReader(f) if row["stage"] == "predict tiles"]
        assert len(rows) == (-(-size // 512)) ** 2
        peaks[size] = max(float(row["peak_mib"]) for row in rows)
    assert peaks[2000] < 1.25 * peaks[1000], peaks


def test_a_stack_records_the_band_percentiles_a_tiled_scene_clusters_with(tmp_path):
    # Built in 512-px windows with a sampling step of 3 (windows do not start on sampled rows): the
    # percentiles recorded are those of the whole stack's subsample, so a tiled scene's spread needs
    # no second pass over the stack.
    from sattag.config import IngestConfig
    from sattag.ingest import discover_scenes, ingest_scene, read_band_percentiles, read_stack
    from sattag.scene import sample_step
    from sattag.segment import band_spread, spread_from_percentiles
    from sattag.synth import generate_dataset

    generate_dataset(tmp_path / "d", n_scenes=1, n_train=0, size=2100, seed=2)
    scene = discover_scenes(tmp_path / "d")[0]
    path = tmp_path / "stack.tif"
    ingest_scene(scene, path, IngestConfig(tile_px=512))
    stack = read_stack(path)
    assert sample_step(*stack.grid.shape) == 3
    np.testing.assert_array_equal(spread_from_percentiles(*read_band_percentiles(path)), band_spread(stack.data))


def test_a_big_training_scene_gives_its_cluster_rows_tile_by_tile(trained, tmp_path):
    # Object-level training rows of a scene larger than a tile, tile by tile (bounded memory): with
    # the local merge, nearly every cluster of the whole scene is one row, the same row.
    from sattag.classes import DSTL_CLASSES as classes
    from sattag.config import Config
    from sattag.engine.contracts import RunContext
    from sattag.engine.tasks import cluster_rows_task
    from sattag.features.objects import read_object_rows
    from sattag.ingest import discover_scenes
    from sattag.labels.source import LabelSource

    data, run = trained
    scene = discover_scenes(data)[0]
    base = Config().replace("cluster", merge="simultaneous")
    rows = {}
    for tile_px in (4096, 360):
        config = base.replace("predict", tile_px=tile_px)
        ctx = RunContext(run=RunFolder(run), config=config, classes=classes, labels=LabelSource.resolve(data))
        r = cluster_rows_task(scene, 1, ctx)  # and once more under another light
        assert r.rows == ctx.run.object_rows(scene.id)  # written to the run folder, read back here
        rows[tile_px] = dataclasses.replace(r, rows=np.array(read_object_rows(r.rows)))
    whole, tiled = rows[4096], rows[360]
    assert abs(len(tiled.rows) - len(whole.rows)) <= 0.02 * len(whole.rows)
    for r in (whole, tiled):  # the relit copy: the same clusters (shares, sizes), other band values
        k = len(r.rows) // 2
        assert len(r.rows) == 2 * k and (r.shares[:k] == r.shares[k:]).all() and (r.sizes[:k] == r.sizes[k:]).all()
        assert not np.allclose(r.rows[:k, 0], r.rows[k:, 0])
    # (to 4 decimals: a window's box filters may differ from the scene's in the last float32 bits)
    same = {r.tobytes() for r in np.round(whole.rows, 4)} & {r.tobytes() for r in np.round(tiled.rows, 4)}
    assert len(same) >= 0.95 * len(whole.rows)
    assert tiled.shares.shape == (len(tiled.rows), len(classes)) and tiled.sizes.shape == (len(tiled.rows),)
    # Centres in scene px whichever way the rows were made (the strips a single scene is tuned on).
    assert {c.tobytes() for c in whole.centres} & {c.tobytes() for c in tiled.centres}
    assert tiled.centres.max(axis=0).min() > 360 and tiled.centres.shape == (len(tiled.rows), 2)


# ------------------------------------------------------------------- assembly in parts (issue 16)
TILED = "[predict]\ntile_px = 360\n"


@pytest.fixture(scope="module")
def tiled(trained, tmp_path_factory):
    """The trained scenes predicted in tiles of 360 px (2 x 2 a scene), in this process's way (no Dask)."""
    out = tmp_path_factory.mktemp("tiled") / "run"
    r = _predict(trained, out, TILED)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _outputs(run: Path, sid: str) -> dict[str, Path]:
    """Every file the assembly of scene ``sid`` writes, by part."""
    folder = RunFolder(run)
    pieces = run / "tiles" / sid / "px360"
    return {"masks": folder.masks(sid), "clusters": folder.clusters(sid), "probabilities": folder.probabilities(sid),
            "cluster table": folder.cluster_table(sid), "rules": folder.rules_csv(sid),
            "geojson": folder.polygons_geojson(sid),
            **{f"polygons {c}": pieces / f"polygons-{c}.npz" for c in DSTL_CLASSES.ids}}


def _same_polygons(a, b) -> bool:
    return all(a[c].normalize().equals_exact(b[c].normalize(), 1e-12) for c in DSTL_CLASSES.ids)


def test_a_tiled_scene_is_assembled_in_parts_each_a_task(tiled):
    # Each part is a task of its own (timed apart: what spreads a scene's assembly over the workers),
    # then one small task a scene writes the GeoJSON: the classes' polygons as the parts finished them.
    import shapely

    from sattag.vectorize import read_geojson_polygons

    with open(tiled / "timings.csv") as f:
        rows = list(csv.DictReader(f))
    scenes = sorted(p.stem for p in (tiled / "masks").glob("*.tif"))
    names = ["masks", "clusters", "tables", *(f"polygons {c}" for c in DSTL_CLASSES.ids)]
    assert sorted(r["scene"] for r in rows if r["stage"] == "assemble parts") == \
        sorted(f"{s}/{n}" for s in scenes for n in names)
    assert sorted(r["scene"] for r in rows if r["stage"] == "assemble") == scenes
    for sid in scenes:
        assert all(p.exists() for p in _outputs(tiled, sid).values())
        parts = {}
        for c in DSTL_CLASSES.ids:
            with np.load(tiled / "tiles" / sid / "px360" / f"polygons-{c}.npz") as z:
                parts[c] = shapely.from_wkb(z["wkb"].tobytes())
        assert _same_polygons(parts, read_geojson_polygons(tiled / "polygons" / f"{sid}.geojson", DSTL_CLASSES))
    assert not list(tiled.rglob(".*.tmp*"))


def test_a_rerun_redoes_only_the_parts_not_finished(trained, tiled, tmp_path):
    # As after a kill in the middle of the parts: one scene's masks, one class's polygons and its
    # GeoJSON missing. The rerun writes those again, the same, and leaves every other file alone.
    from sattag.vectorize import read_geojson_polygons

    out = tmp_path / "run"
    shutil.copytree(tiled, out)
    sid = sorted(p.stem for p in (out / "masks").glob("*.tif"))[0]
    files = {f"{s}:{k}": p for s in [q.stem for q in (out / "masks").glob("*.tif")]
             for k, p in _outputs(out, s).items()}
    files.update({f"tile {p.name}": p for p in (out / "tiles").rglob("r*c*.npz")})
    dense = max(DSTL_CLASSES.ids, key=lambda c: (out / "tiles" / sid / "px360" / f"polygons-{c}.npz").stat().st_size)
    gone = {f"{sid}:masks", f"{sid}:polygons {dense}", f"{sid}:geojson"}
    before_masks = read_masks(files[f"{sid}:masks"])[0]
    before_polygons = read_geojson_polygons(files[f"{sid}:geojson"], DSTL_CLASSES)
    for k in gone:
        files[k].unlink()
    mtimes = {k: p.stat().st_mtime_ns for k, p in files.items() if k not in gone}
    r = _run("predict", str(trained[0]), "--models", str(out / "models"), "--out", str(out), "--workers", "0",
             "--quiet", "--config", str(_config(tmp_path, "t.toml", TILED)))
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(files[k].exists() for k in gone)
    redone = sorted(k for k, t in mtimes.items() if files[k].stat().st_mtime_ns != t)
    assert redone == [], redone
    np.testing.assert_array_equal(read_masks(files[f"{sid}:masks"])[0], before_masks)
    assert _same_polygons(read_geojson_polygons(files[f"{sid}:geojson"], DSTL_CLASSES), before_polygons)


def test_a_tiled_scene_is_scored_by_its_parts(trained, tiled, tmp_path):
    # With truth, the masks part counts pixels against it tile by tile and each class's part overlays
    # its polygons with the class's truth polygons: the counts of the scene's files taken whole.
    # (Pieces kept from before the scene had truth: the final step overlays them itself.)
    import shapely

    from sattag.config import load_config
    from sattag.engine.contracts import RunContext
    from sattag.engine.tiles import ScenePart, assemble_part_task, assemble_task, plan_parts
    from sattag.evaluate import pixel_counts, polygon_counts
    from sattag.ingest import discover_scenes
    from sattag.labels import read_truth_polygons
    from sattag.labels.source import LabelSource

    data, trained_run = trained
    out = tmp_path / "run"
    shutil.copytree(tiled, out)
    for kind in ("truth_masks", "truth_polygons"):
        shutil.copytree(trained_run / kind, out / kind)
    run = RunFolder(out)
    ctx = RunContext(run=run, config=load_config(tiled.parent / f"{tiled.name}.toml"), classes=DSTL_CLASSES,
                     labels=LabelSource.resolve(data))
    scene = discover_scenes(data)[0]
    truth = read_truth_polygons(run.truth_polygons(scene.id), DSTL_CLASSES)
    pixel = assemble_part_task(ScenePart(scene, "masks"), None, ctx)  # there already: only counted
    np.testing.assert_array_equal(np.stack(pixel), np.stack(pixel_counts(read_masks(run.masks(scene.id))[0],
                                                                         read_masks(run.truth_masks(scene.id))[0])))
    for redo in (False, True):
        if redo:
            for p in (out / "tiles" / scene.id / "px360").glob("polygons-*.npz"):
                p.unlink()
            for part in plan_parts(scene, DSTL_CLASSES):
                assemble_part_task(part, None, ctx)
        pred = assemble_task(scene, pixel, ctx)
        polygons = {c: shapely.from_wkb(w) for c, w in pred.polygons.items()}
        assert pred.pixel is pixel
        np.testing.assert_allclose(np.stack(pred.polygon), np.stack(polygon_counts(polygons, truth, DSTL_CLASSES)),
                                   rtol=1e-12)
        assert pred.polygon[0].sum() > 0


def test_a_part_that_fails_fails_its_scene_only_naming_the_part(trained, tiled, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiled, out)
    bad, good = sorted(p.stem for p in (out / "masks").glob("*.tif"))
    (out / "masks" / f"{bad}.tif").unlink()
    paint = out / "tiles" / bad / "px360" / "r1c1.paint.npz"
    with np.load(paint) as z:
        kept = {k: z[k] for k in z.files if k != "masks"}  # what only the masks part reads
    np.savez(paint, **kept)
    (out / "polygons" / f"{good}.geojson").unlink()
    r = _run("predict", str(trained[0]), "--models", str(out / "models"), "--out", str(out), "--workers", "0",
             "--quiet", "--config", str(_config(tmp_path, "t.toml", TILED)))
    with open(out / "failures.csv") as f:
        failures = list(csv.DictReader(f))
    assert [(x["scene"], x["stage"]) for x in failures] == [(bad, "assemble parts")], (r.stderr[-2000:], failures)
    assert failures[0]["error"].startswith("masks: ")
    assert (out / "polygons" / f"{good}.geojson").exists() and not (out / "masks" / f"{bad}.tif").exists()


def test_the_densest_class_is_assembled_first():
    from sattag.engine.tiles import plan_parts
    from sattag.scene import Scene

    scene = Scene("s", ())
    names = [p.name for p in plan_parts(scene, DSTL_CLASSES, np.array([5, 0, 0, 0, 10, 900, 3, 0, 0, 0]))]
    assert names[:5] == ["polygons 6", "masks", "clusters", "tables", "polygons 5"]
    assert sorted(names) == sorted(p.name for p in plan_parts(scene, DSTL_CLASSES))


def test_seam_bands_follow_the_seam_bytes():
    from sattag.engine.tiles import plan_seam_bands, plan_tiles
    from sattag.scene import Scene

    tiles = plan_tiles(Scene("s", ()), 1000, 800, 250)  # 4 rows of tiles
    seam = {t.id: np.zeros(len(DSTL_CLASSES), np.int64) for t in tiles}
    for t in tiles:
        seam[t.id][5] = 100  # Crops: 400 B a row of tiles
        seam[t.id][0] = 10 if t.index[0] == 0 else 0  # Buildings: all in the first row
    assert plan_seam_bands(tiles, DSTL_CLASSES, seam, band_bytes=10_000) == {}
    bands = plan_seam_bands(tiles, DSTL_CLASSES, seam, band_bytes=800)
    assert bands == {6: ((0, 500), (500, 1000))}  # 1600 B in two bands of 800
    bands = plan_seam_bands(tiles, DSTL_CLASSES, seam, band_bytes=1)
    assert bands[6] == ((0, 250), (250, 500), (500, 750), (750, 1000))  # at most a band per row of tiles
    assert bands[1] == ((0, 250), (250, 1000))  # every band holds some of the class's bytes or the rest
    seam[tiles[-1].id][0] = 10**6  # Buildings: nearly all in the last row: no bands (one would
    assert 1 not in plan_seam_bands(tiles, DSTL_CLASSES, seam, band_bytes=1)  # only add the join)
    assert plan_seam_bands(plan_tiles(Scene("s", ()), 200, 800, 250), DSTL_CLASSES,
                           {t.id: np.full(10, 10**9) for t in plan_tiles(Scene("s", ()), 200, 800, 250)}) == {}


def test_a_dense_class_s_seams_are_joined_in_bands_as_one_union_would(trained, tiled, tmp_path, monkeypatch):
    # Forced to bands (any seam bytes at all): the engine runs a "join seams" task per band before
    # the polygons parts, and each class's polygons cover what the tiled run's single union gave.
    import shapely

    from sattag import engine
    from sattag.config import load_config
    from sattag.engine import tiles as tl
    from sattag.engine.run import open_session, select_scenes
    from sattag.vectorize import read_geojson_polygons

    data, _ = trained
    out = tmp_path / "run"
    shutil.copytree(tiled, out)
    scenes = sorted(p.stem for p in (out / "masks").glob("*.tif"))
    for sid in scenes:
        for p in (out / "tiles" / sid / "px360").glob("polygons-*.npz"):
            p.unlink()
        (out / "polygons" / f"{sid}.geojson").unlink()
    monkeypatch.setattr(tl, "SEAM_BAND_BYTES", 1)
    with open_session(data, out, load_config(tiled.parent / f"{tiled.name}.toml"), local=True) as session:
        engine.predict(session, select_scenes(data))
        assert not session.failures
    with open(out / "timings.csv") as f:
        joined = [r["scene"] for r in csv.DictReader(f) if r["stage"] == "join seams"]
    assert joined and all(j.split(" rows ")[1].startswith(("0-360", "360-")) for j in joined)
    for sid in scenes:
        assert len(list((out / "tiles" / sid / "px360").glob("seams-*.npz"))) == \
            len([j for j in joined if j.startswith(f"{sid}/")])
        before = read_geojson_polygons(tiled / "polygons" / f"{sid}.geojson", DSTL_CLASSES)
        after = read_geojson_polygons(out / "polygons" / f"{sid}.geojson", DSTL_CLASSES)
        for c in DSTL_CLASSES.ids:
            assert after[c].is_valid
            # the same union simplified: a ring may start elsewhere, so an outline may differ by a vertex
            assert shapely.symmetric_difference(before[c], after[c]).area <= 1e-3 * max(before[c].area, 1e-12)

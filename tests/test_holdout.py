"""One label source per run, held-out scenes apart from training scenes, k-fold by scene.

The data is a user's own: small GeoTIFFs in EPSG:32631 written here with rasterio, labels in a
GeoPackage in EPSG:4326 (so they are reprojected) whose polygons run over scene edges (so truth must
be clipped), a class table whose ids collide with DSTL's, and one scene the labels do not cover.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from sattag.learn import kfold_scenes, split_scenes
from sattag.errors import ConfigError

SIZE = 96  # px a side, 10 m pixels
ORIGIN = (500_000.0, 5_800_000.0)
SCENES = ("s1", "s2", "s3", "s4")  # side by side west -> east; s4 has no labels
CLASSES = "id,name,colour\n1,Roof,#c0392b\n2,Pond,#2e86c1\n"
SMALL = "[sample]\nn_in = 3000\nn_out = 3000\n[model]\nn_trees = 12\nmax_depth = 5\n[cluster]\nmin_size = 4\n"


def sattag(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sattag.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def _scene_box(i: int) -> shapely.Polygon:
    x0 = ORIGIN[0] + i * SIZE * 10
    return shapely.box(x0, ORIGIN[1] - SIZE * 10, x0 + SIZE * 10, ORIGIN[1])


@pytest.fixture(scope="module")
def user_data(tmp_path_factory) -> Path:
    """Four 3-band 8-bit scenes + labels.gpkg (column ``kind``, names) + classes.csv + run.toml."""
    import geopandas as gpd

    root = tmp_path_factory.mktemp("user") / "data"
    root.mkdir()
    rng = np.random.default_rng(5)
    roofs, ponds = [], []
    rows = ["scene,group,path,bit_depth,bands"]
    for i, sid in enumerate(SCENES):
        img = np.empty((3, SIZE, SIZE), np.float32)
        img[:] = np.array([90, 120, 70], np.float32)[:, None, None]  # meadow
        box = _scene_box(i)
        x0, y1 = box.bounds[0], box.bounds[3]
        for _ in range(6):  # roofs: bright grey squares
            c, r, w = rng.integers(4, SIZE - 16), rng.integers(4, SIZE - 16), rng.integers(5, 10)
            img[:, r:r + w, c:c + w] = np.array([200, 195, 190], np.float32)[:, None, None]
            roofs.append(shapely.box(x0 + c * 10, y1 - (r + w) * 10, x0 + (c + w) * 10, y1 - r * 10))
        c, r, w = rng.integers(4, SIZE - 24), rng.integers(4, SIZE - 24), 14  # a pond: dark blue
        img[:, r:r + w, c:c + w] = np.array([30, 50, 80], np.float32)[:, None, None]
        ponds.append(shapely.box(x0 + c * 10, y1 - (r + w) * 10, x0 + (c + w) * 10, y1 - r * 10))
        img += rng.normal(0, 4, img.shape).astype(np.float32)
        with rasterio.open(root / f"{sid}.tif", "w", driver="GTiff", width=SIZE, height=SIZE, count=3,
                           dtype="uint8", crs="EPSG:32631", transform=from_origin(x0, y1, 10, 10)) as dst:
            dst.write(np.clip(img, 0, 255).astype(np.uint8))
        rows.append(f"{sid},RGB,{sid}.tif,8,R G B")
    (root / "scenes.csv").write_text("\n".join(rows) + "\n")
    (root / "classes.csv").write_text(CLASSES)
    (root / "run.toml").write_text(SMALL)
    # Labels cover s1..s3 only (s4's roofs and pond are not labelled: nobody looked there); one roof
    # polygon spans the s1/s2 edge and one runs beyond the northern edge of s1, so truth must be clipped.
    covered = [g for g in roofs + ponds if g.intersects(shapely.union_all([_scene_box(i) for i in range(3)]))
               and not g.intersects(_scene_box(3))]
    kinds = ["Roof" if g in roofs else "pond" for g in covered]  # names, any case
    edge = _scene_box(0).bounds[2]
    covered += [shapely.box(edge - 60, ORIGIN[1] - 300, edge + 60, ORIGIN[1] - 200),
                shapely.box(ORIGIN[0] + 100, ORIGIN[1] - 40, ORIGIN[0] + 180, ORIGIN[1] + 500)]
    kinds += ["Roof", "Roof"]
    gdf = gpd.GeoDataFrame({"kind": kinds}, geometry=covered, crs="EPSG:32631").to_crs("EPSG:4326")
    gdf.to_file(root / "labels.gpkg", driver="GPKG")
    return root


def _common(data: Path) -> list:
    return ["--workers", "0", "--quiet", "--labels", data / "labels.gpkg", "--class-column", "kind",
            "--classes", data / "classes.csv", "--config", data / "run.toml"]


@pytest.fixture(scope="module")
def held_out_run(user_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run") / "run"
    res = sattag("run", user_data, "--out", run, "--holdout-scenes", "s2", *_common(user_data))
    assert res.returncode == 0, res.stderr
    assert "not covered" in res.stderr and "s4" in res.stderr  # said once
    return run


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _truth(data: Path, i: int) -> dict[str, shapely.Geometry]:
    """Independent truth of scene ``i``: the label file, reprojected, unioned per class, clipped."""
    import geopandas as gpd

    gdf = gpd.read_file(data / "labels.gpkg").to_crs("EPSG:32631")
    out = {}
    for name in ("Roof", "Pond"):
        geoms = gdf.geometry[gdf["kind"].str.casefold() == name.casefold()]
        out[name] = shapely.intersection(shapely.union_all(geoms.values), _scene_box(i))
    return out


def test_scores_equal_an_independent_computation(user_data, held_out_run):
    import geopandas as gpd
    from rasterio.features import rasterize

    rows = _csv(held_out_run / "scores.csv")
    assert {r["split"] for r in rows} == {"held-out", "in-sample"}
    assert rows[0]["split"] == "held-out"  # the figure to trust comes first
    for split, ids in (("held-out", [1]), ("in-sample", [0, 2])):
        for name in ("Roof", "Pond"):
            inter = union = px_inter = px_union = 0.0
            for i in ids:
                sid = SCENES[i]
                truth = _truth(user_data, i)[name]
                pred_frame = gpd.read_file(held_out_run / "polygons" / f"{sid}.geojson")
                pred = shapely.union_all(pred_frame.geometry[pred_frame["class_name"] == name].values)
                inter += shapely.intersection(pred, truth).area
                union += shapely.union(pred, truth).area
                with rasterio.open(held_out_run / "masks" / f"{sid}.tif") as src:
                    pm = src.read(1 if name == "Roof" else 2).astype(bool)
                    tm = np.zeros(pm.shape, np.uint8)
                    if not truth.is_empty:
                        rasterize([(truth, 1)], out=tm, transform=src.transform)
                px_inter += (pm & (tm > 0)).sum()
                px_union += (pm | (tm > 0)).sum()
            for kind, expect in (("polygon", inter / union), ("pixel", px_inter / px_union)):
                got = [r for r in rows if r["split"] == split and r["kind"] == kind and r["class"] == name]
                assert len(got) == 1
                assert float(got[0]["jaccard"]) == pytest.approx(expect, rel=1e-6, abs=1e-9), (split, kind, name)


def test_truth_is_clipped_to_each_scene(user_data, held_out_run):
    import geopandas as gpd

    for i, sid in enumerate(SCENES[:3]):
        frame = gpd.read_parquet(held_out_run / "truth_polygons" / f"{sid}.parquet")
        assert frame.crs.to_epsg() == 32631
        roof = frame.geometry[frame["class"] == "Roof"].iloc[0]
        assert _scene_box(i).buffer(1e-6).contains(roof)
        assert roof.area == pytest.approx(_truth(user_data, i)["Roof"].area, rel=1e-6)
    # s4 is not covered by the labels: no truth, not scored, not trained on
    assert not (held_out_run / "truth_masks" / "s4.tif").exists()
    scored = {r["scenes"] for r in _csv(held_out_run / "scores.csv")}
    assert scored == {"1", "2"}


def test_held_out_scenes_are_never_sampled_for_training(held_out_run):
    card = json.loads((held_out_run / "models" / "card.json").read_text())
    assert card["split"] == {"train": ["s1", "s3"], "held_out": ["s2"]}
    # the rows the models learn from: pixels ("sample") or clusters ("cluster rows"), by the card's level
    stage = {"pixel": "sample", "cluster": "cluster rows"}[card["level"]]
    sampled = {r["scene"] for r in _csv(held_out_run / "timings.csv") if r["stage"] == stage}
    assert sampled == {"s1", "s3"}
    held = {r["scene"] for r in _csv(held_out_run / "timings.csv") if r["stage"] == f"{stage} held-out"}
    assert held == {"s2"}
    info = json.loads((held_out_run / "run.json").read_text())
    assert info["split"] == card["split"]
    assert info["labels"]["kind"] == "vector" and info["labels"]["class_column"] == "kind"
    assert Path(info["labels"]["path"]).is_absolute()
    assert [c["name"] for c in info["classes"]] == ["Roof", "Pond"]
    auc = _csv(held_out_run / "auc.csv")
    assert {r["split"] for r in auc} == {"in-sample", "held-out"}
    assert all("pixel split" in r["measured_on"] for r in auc if r["split"] == "in-sample")


def test_rescore_with_a_truth_file_gives_the_same_table(user_data, held_out_run):
    before = _csv(held_out_run / "scores.csv")
    res = sattag("score", held_out_run, "--truth", user_data / "labels.gpkg", "--class-column", "kind")
    assert res.returncode == 0, res.stderr
    after = _csv(held_out_run / "scores.csv")
    assert [(r["split"], r["kind"], r["class"]) for r in after] == [(r["split"], r["kind"], r["class"]) for r in before]
    for a, b in zip(after, before):
        assert float(a["jaccard"] or "nan") == pytest.approx(float(b["jaccard"] or "nan"), rel=1e-9, nan_ok=True)


def test_report_headline_is_held_out(held_out_run):
    html = (held_out_run / "report.html").read_text()
    assert "held-out mean Jaccard" in html and "in-sample mean Jaccard" in html
    assert html.index("held-out mean Jaccard") < html.index("in-sample mean Jaccard")
    assert "neighbouring pixels leak" in html
    # what the models see and the thresholds chosen for them: 2 training scenes, 2 folds, each
    # scene validating once
    assert "Features: <b>context</b>" in html and "what each model uses most" in html
    assert "thresholds tuned for the Jaccard on 2 validation scene(s) in 2 fold(s)" in html


def test_split_by_fraction_and_names():
    ids = [f"s{i}" for i in range(10)]
    s = split_scenes(ids, 0.3, seed=1)
    assert len(s.held_out) == 3 and set(s.train) | set(s.held_out) == set(ids)
    assert split_scenes(list(reversed(ids)), 0.3, seed=1) == s  # order-free
    assert split_scenes(ids, None).held_out and not split_scenes(ids[:3], None).held_out  # default
    assert split_scenes(ids, 0).held_out == ()
    assert split_scenes(ids, held_out=["s4"]).held_out == ("s4",)
    with pytest.raises(ConfigError, match="not a labelled scene"):
        split_scenes(ids, held_out=["s99"])
    with pytest.raises(ConfigError, match="no training scene"):
        split_scenes(ids[:2], held_out=ids[:2])


def test_kfold_holds_out_every_scene_exactly_once():
    ids = [f"s{i}" for i in range(11)]
    folds = kfold_scenes(ids, 4, seed=3)
    held = [s for f in folds for s in f.held_out]
    assert sorted(held) == sorted(ids)
    assert all(not set(f.train) & set(f.held_out) and set(f.train) | set(f.held_out) == set(ids) for f in folds)
    assert {len(f.held_out) for f in folds} <= {2, 3}
    with pytest.raises(ConfigError):
        kfold_scenes(ids, 12)


def test_evaluate_folds_cover_each_labelled_scene_once(user_data, tmp_path):
    run = tmp_path / "cv"
    res = sattag("evaluate", user_data, "--out", run, "--folds", "3", *_common(user_data))
    assert res.returncode == 0, res.stderr
    held = []
    for k in (1, 2, 3):
        card = json.loads((run / "folds" / f"fold_{k}" / "models" / "card.json").read_text())
        held += card["split"]["held_out"]
        assert not set(card["split"]["held_out"]) & set(card["split"]["train"])
        assert not (run / "folds" / f"fold_{k}" / "stacks").exists()  # folds share the run's stacks
    assert sorted(held) == ["s1", "s2", "s3"]
    summary = _csv(run / "cv_summary.csv")
    roof = [r for r in summary if r["class"] == "Roof" and r["kind"] == "pixel"][0]
    assert int(roof["folds"]) == 3 and float(roof["min"]) <= float(roof["mean"]) <= float(roof["max"])
    per_fold = _csv(run / "cv_scores.csv")
    assert {r["fold"] for r in per_fold} == {"1", "2", "3"} and {r["split"] for r in per_fold} == {"held-out"}


def test_resumed_labels_stage_rewrites_nothing(user_data, tmp_path):
    run = tmp_path / "run"
    args = ["explore", user_data, "--out", run, *_common(user_data)]
    assert sattag(*args).returncode == 0
    files = [p for p in run.rglob("*") if p.is_file() and p.parent.name in ("truth_masks", "truth_polygons", "explore")]
    files.append(run / "histograms.npz")
    assert len(files) > 6
    before = {p: p.stat().st_mtime_ns for p in files}
    res = sattag(*args)
    assert res.returncode == 0, res.stderr
    assert {p: p.stat().st_mtime_ns for p in files} == before


@pytest.mark.parametrize("extra, message", [
    (["--holdout", "0.9"], "no training scene"),
    (["--holdout-scenes", "nope"], "--holdout-scenes: no scene nope"),
    (["--holdout-scenes", "s4"], "s4 is not a labelled scene"),
    (["--holdout", "0.2", "--holdout-scenes", "s1"], "not both"),
])
def test_bad_holdout_is_a_one_line_error(user_data, tmp_path, extra, message):
    run = tmp_path / "run"
    res = sattag("train", user_data, "--out", run, *_common(user_data), *extra)
    assert res.returncode == 1
    assert message in res.stderr.replace("\n", " ")
    assert "Traceback" not in res.stderr
    assert not (run / "models").exists() and not list(run.rglob(".*.tmp*"))


def test_truth_file_without_the_class_column(user_data, tmp_path):
    res = sattag("run", user_data, "--out", tmp_path / "run", "--workers", "0", "--quiet",
                 "--labels", user_data / "labels.gpkg", "--class-column", "klass", "--classes", user_data / "classes.csv")
    assert res.returncode == 1
    assert "labels.gpkg" in res.stderr and "klass" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


def test_rule_naming_a_class_not_in_the_table(user_data, tmp_path):
    cfg = tmp_path / "rules.toml"
    cfg.write_text('[[predict.overlap_rules]]\ntarget = "Road"\nother = "Pond"\n')
    res = sattag("run", user_data, "--out", tmp_path / "run", "--workers", "0", "--quiet",
                 "--labels", user_data / "labels.gpkg", "--class-column", "kind",
                 "--classes", user_data / "classes.csv", "--config", cfg)
    assert res.returncode == 1
    flat = res.stderr.replace("\n", " ")
    assert "rules.toml" in flat and "'Road'" in flat and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()

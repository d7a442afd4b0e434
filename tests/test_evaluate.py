"""evaluate: DSTL Jaccard on hand-computed cases, pixel Jaccard, reading and scoring WKT CSVs."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import shapely

from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import VectorizeConfig
from sattag.errors import InputError
from sattag.evaluate import (MEAN_ID, combine_scores, dstl_jaccard, pixel_jaccard, read_submission_csv,
                             score_files)
from sattag.scene import dstl_grid
from sattag.vectorize import mask_to_polygons, write_submission_csv

TWO = ClassTable((ObjectClass(1, "A", "#ff0000"), ObjectClass(2, "B", "#00ff00")))


def jac(df, cid):
    return float(df.loc[df["class_id"] == cid, "jaccard"].iloc[0])


def test_half_offset_unit_squares_one_third():
    a = shapely.box(0, 0, 1, 1)
    b = shapely.box(0.5, 0, 1.5, 1)
    df = dstl_jaccard({("s", 1): a}, {("s", 1): b}, TWO)
    assert jac(df, 1) == pytest.approx(1 / 3)
    assert np.isnan(jac(df, 2))  # empty union everywhere: no score ...
    assert jac(df, MEAN_ID) == pytest.approx(1 / 3)  # ... and left out of the mean
    row = df[df["class_id"] == 1].iloc[0]
    assert row["intersection"] == pytest.approx(0.5) and row["union"] == pytest.approx(1.5)
    assert list(df.columns) == ["class_id", "class", "intersection", "union", "jaccard"]
    assert df["class"].tolist() == ["A", "B", "mean"]


def test_sums_over_scenes_before_dividing():
    """Class score = sum of intersections / sum of unions, not the mean of per-scene ratios."""
    pred = {("s1", 1): shapely.box(0, 0, 1, 1), ("s2", 1): shapely.box(0, 0, 10, 10),
            ("s1", 2): shapely.box(0, 0, 2, 2)}
    truth = {("s1", 1): shapely.box(0.5, 0, 1.5, 1), ("s2", 1): shapely.box(0, 0, 10, 10),
             ("s2", 2): shapely.box(0, 0, 1, 1)}
    df = dstl_jaccard(pred, truth, TWO)
    assert jac(df, 1) == pytest.approx((0.5 + 100) / (1.5 + 100))
    assert jac(df, 2) == 0.0  # predicted where nothing is, missed what is
    assert jac(df, MEAN_ID) == pytest.approx(((0.5 + 100) / 101.5 + 0) / 2)


def test_self_score_one_and_empty_zero():
    truth = {("s1", 1): shapely.box(0, 0, 3, 1), ("s1", 2): shapely.MultiPolygon(),
             ("s2", 1): shapely.box(0, 0, 1, 1).union(shapely.box(2, 2, 4, 4))}
    assert jac(dstl_jaccard(truth, truth, TWO), MEAN_ID) == pytest.approx(1.0)
    assert jac(dstl_jaccard({}, truth, TWO), MEAN_ID) == 0.0
    assert jac(dstl_jaccard({k: shapely.MultiPolygon() for k in truth}, truth, TWO), MEAN_ID) == 0.0


def test_invalid_geometries_made_valid():
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # invalid; area 2 once made valid
    assert not bowtie.is_valid
    df = dstl_jaccard({("s", 1): bowtie}, {("s", 1): shapely.box(0, 0, 2, 2)}, TWO)
    assert jac(df, 1) == pytest.approx(0.5)


def test_scene_without_truth_is_an_error():
    with pytest.raises(InputError, match="s9"):
        dstl_jaccard({}, {("s1", 1): shapely.box(0, 0, 1, 1)}, TWO, scene_ids=["s1", "s9"])


def test_pixel_jaccard_and_combine():
    p = np.zeros((2, 4, 4), np.uint8)
    t = np.zeros((2, 4, 4), np.uint8)
    p[0, :2, :2] = 1      # 4 px
    t[0, :2, 1:3] = 1     # 4 px, 2 shared -> 2/6
    df = pixel_jaccard(p, t, TWO)
    assert jac(df, 1) == pytest.approx(1 / 3) and np.isnan(jac(df, 2))
    assert df.loc[0, "intersection"] == 2 and df.loc[0, "union"] == 6
    p2 = np.zeros_like(p)
    t2 = np.zeros_like(t)
    p2[0] = 1
    t2[0] = 1             # 16/16
    p2[1, 0, 0] = 1       # class 2: 0/1
    both = combine_scores([df, pixel_jaccard(p2, t2, TWO)], TWO)
    assert jac(both, 1) == pytest.approx(18 / 22)
    assert jac(both, 2) == 0.0
    assert jac(both, MEAN_ID) == pytest.approx((18 / 22) / 2)
    with pytest.raises(ValueError):
        pixel_jaccard(p, t[:1], TWO)


def test_pixel_and_polygon_jaccard_agree_on_pixel_polygons():
    """Exact pixel polygons of two masks have the polygon Jaccard of the masks' pixel Jaccard."""
    rng = np.random.default_rng(0)
    grid = dstl_grid(0.0091, -0.00904, 40, 50)
    p = (rng.random((2, 40, 50)) < 0.4).astype(np.uint8)
    t = (rng.random((2, 40, 50)) < 0.4).astype(np.uint8)
    exact = VectorizeConfig(simplify_px=0, min_area_px=0)
    pred = {("s", c): mask_to_polygons(p[i], grid.transform, exact) for i, c in enumerate(TWO.ids)}
    truth = {("s", c): mask_to_polygons(t[i], grid.transform, exact) for i, c in enumerate(TWO.ids)}
    a = dstl_jaccard(pred, truth, TWO)["jaccard"].to_numpy()
    b = pixel_jaccard(p, t, TWO)["jaccard"].to_numpy()
    assert a == pytest.approx(b, rel=1e-9)


def test_per_scene_polygon_counts_add_up_to_the_dstl_score():
    """What a predict task sends back (one scene's areas) sums to the all-scenes overlay."""
    from sattag.evaluate import polygon_counts, score_table

    pred = {("s1", 1): shapely.box(0, 0, 2, 2), ("s1", 2): shapely.box(0, 0, 1, 1),
            ("s2", 1): shapely.box(5, 5, 6, 7)}
    truth = {("s1", 1): shapely.box(1, 1, 3, 3), ("s2", 1): shapely.box(5, 5, 6, 6), ("s2", 2): shapely.box(0, 0, 3, 1)}
    per_scene = [polygon_counts({c: g for (s, c), g in pred.items() if s == sid},
                                {c: g for (s, c), g in truth.items() if s == sid}, TWO) for sid in ("s1", "s2")]
    inter, union = (sum(c[i] for c in per_scene) for i in (0, 1))
    # class 1: s1 overlaps 1 of 7, s2 1 of 2; class 2: s1 predicts 1 where nothing is, s2 misses 3
    np.testing.assert_allclose(inter, [2.0, 0.0])
    np.testing.assert_allclose(union, [9.0, 4.0])
    want = dstl_jaccard(pred, truth, TWO, scene_ids=["s1", "s2"])
    got = score_table(TWO, inter, union)
    np.testing.assert_allclose(got["jaccard"], want["jaccard"])


# ------------------------------------------------------------------------------------------- files


def _write_wkt_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "ClassType", "MultipolygonWKT"])
        w.writerows(rows)
    return path


def _truth(tmp_path):
    g1 = shapely.MultiPolygon([shapely.box(0.001, -0.003, 0.002, -0.001)])
    g5 = shapely.MultiPolygon([shapely.box(0.004, -0.006, 0.006, -0.004), shapely.box(0.007, -0.002, 0.008, -0.001)])
    truth = {("6120_2_2", 1): g1, ("6120_2_2", 5): g5, ("6010_1_2", 5): g1}
    path = write_submission_csv(tmp_path / "train_wkt_v4.csv", truth, scene_ids=["6120_2_2", "6010_1_2"])
    return truth, path


def test_wkt_csv_written_read_back_and_scored(tmp_path):
    truth, path = _truth(tmp_path)
    back = read_submission_csv(path, DSTL_CLASSES)
    assert len(back) == 20
    for k, g in truth.items():
        assert shapely.equals(back[k], g)
    assert back[("6010_1_2", 3)].is_empty
    df = score_files(path, path, DSTL_CLASSES)
    assert jac(df, MEAN_ID) == pytest.approx(1.0)
    assert df["jaccard"].notna().sum() == 3  # classes 1, 5 and the mean
    # a prediction shifted by half the building's width scores 1/3 on class 1
    pred = dict(truth)
    pred[("6120_2_2", 1)] = shapely.affinity.translate(truth[("6120_2_2", 1)], xoff=0.0005)
    sub = write_submission_csv(tmp_path / "sub.csv", pred, scene_ids=["6120_2_2", "6010_1_2"])
    df = score_files(sub, path, DSTL_CLASSES)
    assert jac(df, 1) == pytest.approx(1 / 3, rel=1e-6)
    assert jac(df, 5) == pytest.approx(1.0)
    # only one scene scored
    df1 = score_files(sub, path, DSTL_CLASSES, scene_ids=["6010_1_2"])
    assert jac(df1, MEAN_ID) == pytest.approx(1.0) and np.isnan(jac(df1, 1))
    empty = write_submission_csv(tmp_path / "empty.csv", {}, scene_ids=["6120_2_2", "6010_1_2"])
    assert jac(score_files(empty, path, DSTL_CLASSES), MEAN_ID) == 0.0


def _rows(scene="6120_2_2"):
    return [[scene, c, "MULTIPOLYGON EMPTY"] for c in range(1, 11)]


def test_missing_row(tmp_path):
    _, truth = _truth(tmp_path)
    rows = _rows() + _rows("6010_1_2")
    del rows[13]  # 6010_1_2 class 4
    sub = _write_wkt_csv(tmp_path / "sub.csv", rows)
    with pytest.raises(InputError) as e:
        score_files(sub, truth, DSTL_CLASSES)
    msg = str(e.value)
    assert "sub.csv" in msg and "6010_1_2" in msg and "class 4" in msg and "row 11" in msg
    with pytest.raises(InputError, match="class 4 missing"):
        read_submission_csv(sub, DSTL_CLASSES)


def test_unparsable_wkt(tmp_path):
    _, truth = _truth(tmp_path)
    rows = _rows()
    rows[6][2] = "MULTIPOLYGON (((0 0, 1 1, 1"
    sub = _write_wkt_csv(tmp_path / "sub.csv", rows)
    with pytest.raises(InputError) as e:
        score_files(sub, truth, DSTL_CLASSES)
    msg = str(e.value)
    assert "sub.csv" in msg and "row 7 (line 8)" in msg and "6120_2_2" in msg and "WKT" in msg


def test_scene_not_in_truth(tmp_path):
    _, truth = _truth(tmp_path)
    sub = _write_wkt_csv(tmp_path / "sub.csv", _rows() + _rows("6180_4_4"))
    with pytest.raises(InputError) as e:
        score_files(sub, truth, DSTL_CLASSES)
    msg = str(e.value)
    assert "sub.csv" in msg and "6180_4_4" in msg and "row 11" in msg and "not in the truth" in msg


@pytest.mark.parametrize("bad, match", [
    ([["6120_2_2", 11, "MULTIPOLYGON EMPTY"]], "ClassType 11"),
    ([["6120_2_2", "x", "MULTIPOLYGON EMPTY"]], "not an integer"),
    ([["6120_2_2", 1, "MULTIPOLYGON EMPTY"]], "second row"),
    ([["6010_1_2", 1, "LINESTRING (0 0, 1 1)"]], "LineString"),
])
def test_other_bad_rows(tmp_path, bad, match):
    sub = _write_wkt_csv(tmp_path / "sub.csv", _rows() + bad)
    with pytest.raises(InputError, match=match):
        read_submission_csv(sub, DSTL_CLASSES)


def test_bad_header_and_missing_file(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,c\n")
    with pytest.raises(InputError, match="header"):
        read_submission_csv(p, DSTL_CLASSES)
    with pytest.raises(InputError, match="cannot read"):
        read_submission_csv(tmp_path / "nope.csv", DSTL_CLASSES)


def test_score_files_written_and_read_back(tmp_path):
    """scores.csv, cv_scores.csv, cv_summary.csv: their owner's writers and readers agree, with dtypes."""
    from sattag.evaluate import (read_cv_scores, read_cv_summary, read_scores, score_table, write_cv_scores,
                                 write_cv_summary, write_scores)
    from sattag.runfolder import RunFolder

    run = RunFolder(tmp_path)
    classes = ClassTable((ObjectClass(1, "Roof", "#c0392b"), ObjectClass(2, "Pond", "#2e86c1")))
    table = score_table(classes, np.array([1e-6, 0.0]), np.array([4e-6, 0.0])).assign(
        split="held-out", kind="polygon", scenes=2)
    back = read_scores(write_scores(run.scores_csv, table))
    assert list(back.columns) == ["split", "kind", "scenes", "class_id", "class", "intersection", "union", "jaccard"]
    assert back["class_id"].tolist() == [1, 2, MEAN_ID] and back["class_id"].dtype == np.int64
    assert back["class"].tolist() == ["Roof", "Pond", "mean"] and back["scenes"].tolist() == [2, 2, 2]
    assert back["jaccard"].iloc[0] == pytest.approx(0.25) and np.isnan(back["jaccard"].iloc[1])
    assert np.isnan(back["intersection"].iloc[2]) and back["jaccard"].iloc[2] == pytest.approx(0.25)
    folds = read_cv_scores(write_cv_scores(run.cv_scores_csv, table.assign(fold=3)))
    assert folds["fold"].tolist() == [3, 3, 3] and folds["jaccard"].iloc[0] == pytest.approx(0.25)
    summary = table.assign(folds=[1, 0, 1], mean=table["jaccard"], std=np.nan, min=table["jaccard"],
                           max=table["jaccard"], pooled=table["jaccard"])
    s = read_cv_summary(write_cv_summary(run.cv_summary_csv, summary))
    assert s["folds"].tolist() == [1, 0, 1] and s["std"].isna().all() and s["kind"].tolist() == ["polygon"] * 3
    with pytest.raises(ValueError, match="scenes"):
        write_scores(run.scores_csv, table.drop(columns="scenes"))
    run.scores_csv.write_text("split,kind,class_id,class,intersection,union,jaccard\n")
    with pytest.raises(InputError, match=r"scores\.csv.*'scenes'"):
        read_scores(run.scores_csv)

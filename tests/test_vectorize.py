"""vectorize: masks -> valid polygons -> masks, simplification bounds, writers read back."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy import ndimage as ndi

from sattag.classes import DSTL_CLASSES
from sattag.config import VectorizeConfig
from sattag.errors import InputError
from sattag.scene import dstl_grid
from sattag.vectorize import (mask_to_polygons, masks_to_polygons, write_geojson, write_geoparquet,
                              write_submission_csv)

EXACT = VectorizeConfig(simplify_px=0.0, min_area_px=0.0)


def back(geom, shape, transform=Affine.identity()) -> np.ndarray:
    """Rasterize by pixel centres (GDAL's default rule): the inverse the polygons must satisfy."""
    if geom.is_empty:
        return np.zeros(shape, np.uint8)
    return rasterize([geom], out_shape=shape, transform=transform, dtype=np.uint8)


def boundary_band(mask: np.ndarray) -> np.ndarray:
    """Pixels with an 8-neighbour of the other value (outside the image counts as outside): the only
    ones whose centre is within 1 px of the outline, so the only ones a 1-px simplify may flip."""
    m = mask.astype(bool)
    k = np.ones((3, 3), bool)
    return ndi.binary_dilation(m, k, border_value=0) & ~ndi.binary_erosion(m, k, border_value=0)


def blobs(shape, seed, share=0.3, smooth=4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.random(shape), smooth)
    return (noise > np.quantile(noise, 1 - share)).astype(np.uint8)


@pytest.mark.parametrize("seed", range(40))
def test_random_masks_round_trip_exactly(seed):
    """simplify_px=0: the polygons cover exactly the mask's pixels (area and pixel by pixel), tiled
    or not, whatever the noise (diagonal touches, holes touching holes, islands in holes)."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 48, 2)
    m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
    for tile in (10**6, int(rng.integers(3, 20))):
        g = mask_to_polygons(m, None, VectorizeConfig(simplify_px=0, min_area_px=0, tile_px=tile))
        assert g.is_valid and g.geom_type == "MultiPolygon"
        assert g.area == pytest.approx(m.sum(), abs=1e-9)
        assert np.array_equal(back(g, m.shape), m)


def test_nested_holes_field_pond_island():
    """A field with a pond with an island: two polygons, the field with one hole, and the island."""
    m = np.zeros((40, 40), np.uint8)
    m[2:38, 2:38] = 1   # field
    m[10:30, 10:30] = 0  # pond
    m[15:25, 15:25] = 1  # island
    g = mask_to_polygons(m, None, EXACT)
    assert g.is_valid and len(g.geoms) == 2
    field, island = sorted(g.geoms, key=lambda p: -p.area)
    assert len(field.interiors) == 1 and len(island.interiors) == 0
    assert field.area == 36 * 36 - 20 * 20 and island.area == 100
    assert shapely.equals(island, shapely.box(15, 15, 25, 25))
    assert shapely.equals(shapely.Polygon(field.interiors[0]), shapely.box(10, 10, 30, 30))


def test_pixel_edges_and_transform():
    """Pixel (r, c) is the square [c, c+1] x [r, r+1] mapped through the transform (edges, not centres)."""
    m = np.zeros((5, 7), np.uint8)
    m[1:3, 2:5] = 1
    t = dstl_grid(0.0091, -0.00904, 5, 7).transform
    g = mask_to_polygons(m, t, EXACT)
    x0, y0 = t @ (2, 1)
    x1, y1 = t @ (5, 3)
    assert shapely.equals(g, shapely.MultiPolygon([shapely.box(x0, y1, x1, y0)]))
    assert np.array_equal(back(g, m.shape, t), m)


def test_checkerboard_is_valid_and_exact():
    m = (np.indices((30, 31)).sum(axis=0) % 2).astype(np.uint8)
    g = mask_to_polygons(m, None, EXACT)
    assert g.is_valid
    assert g.area == m.sum()
    assert len(g.geoms) == m.sum()  # squares touching at corners only: one polygon each
    assert np.array_equal(back(g, m.shape), m)
    # with a 1 px simplify too: still valid; a lone unit square may become a half-pixel triangle
    # (Douglas-Peucker may drop a corner 0.7 px from the chord) but never vanishes
    gs = mask_to_polygons(m, None, VectorizeConfig(simplify_px=1.0, min_area_px=0))
    assert gs.is_valid and len(gs.geoms) == m.sum() and gs.area >= 0.5 * m.sum()


def test_diagonal_line_one_pixel_wide():
    m = np.eye(50, dtype=np.uint8)
    m[np.arange(49), np.arange(1, 50)] = 0
    g = mask_to_polygons(m, None, EXACT)
    assert g.is_valid and g.area == 50 and len(g.geoms) == 50
    assert np.array_equal(back(g, m.shape), m)
    # an anti-diagonal 8-connected staircase with a hole-like ring of diagonal touches
    ring = np.zeros((9, 9), np.uint8)
    for i in range(4):
        ring[4 - i, i] = ring[4 + i, i] = ring[i, 4 + i] = ring[8 - i, 4 + i] = 1
    g = mask_to_polygons(ring, None, EXACT)
    assert g.is_valid and g.area == ring.sum()
    assert np.array_equal(back(g, ring.shape), ring)


@pytest.mark.parametrize("seed", [3, 7])
def test_simplify_one_pixel_changes_only_pixels_near_the_outline(seed):
    """simplify_px=1: a pixel can only flip if its centre is within simplify_px + 0.5 px of the exact
    outline (GEOS's topology-preserving simplifier keeps vertices within the tolerance of the new
    edges, and may also move a ring's start point; 1.5 px is the largest distance seen), so every
    flipped pixel touches (8-neighbourhood) a pixel that has a neighbour of the other value; the
    area changes by a few percent at most; the outline has far fewer vertices."""
    m = blobs((200, 220), seed=seed)
    for tile in (10**6, 64):
        g = mask_to_polygons(m, None, VectorizeConfig(simplify_px=1.0, min_area_px=0, tile_px=tile))
        exact = mask_to_polygons(m, None, VectorizeConfig(simplify_px=0, min_area_px=0, tile_px=tile))
        assert g.is_valid
        diff = back(g, m.shape) != m
        assert diff.any()  # it did simplify
        rows, cols = np.nonzero(diff)
        dist = shapely.distance(exact.boundary, shapely.points(cols + 0.5, rows + 0.5))
        assert dist.max() <= 1.5 + 1e-9
        near = ndi.binary_dilation(boundary_band(m), np.ones((3, 3), bool))
        assert not (diff & ~near).any()
        assert abs(g.area - m.sum()) / m.sum() < 0.03
        assert shapely.get_num_coordinates(g) < 0.7 * shapely.get_num_coordinates(exact)


def test_min_area_drops_small_parts():
    m = np.zeros((20, 20), np.uint8)
    m[1, 1] = 1            # 1 px
    m[5:7, 5:7] = 1        # 4 px
    m[10:15, 10:15] = 1    # 25 px
    g = mask_to_polygons(m, None, VectorizeConfig(simplify_px=0, min_area_px=4))
    assert sorted(p.area for p in g.geoms) == [4, 25]
    assert mask_to_polygons(np.zeros((5, 5), bool), None, EXACT).is_empty
    assert mask_to_polygons(np.zeros((0, 5), bool), None, EXACT).is_empty


def test_tiled_equals_untiled_on_large_blobs():
    m = blobs((300, 257), seed=5, share=0.6, smooth=6)
    a = mask_to_polygons(m, None, VectorizeConfig(simplify_px=0, min_area_px=0, tile_px=10**6))
    b = mask_to_polygons(m, None, VectorizeConfig(simplify_px=0, min_area_px=0, tile_px=50))
    assert a.is_valid and b.is_valid
    assert shapely.symmetric_difference(a, b).area == 0
    assert len(a.geoms) == len(b.geoms)


def test_masks_to_polygons_all_classes():
    grid = dstl_grid(0.009, -0.009, 60, 64)
    masks = np.zeros((10, 60, 64), np.uint8)
    masks[0, 5:20, 5:25] = 1
    masks[4] = blobs((60, 64), seed=1)
    progress = []
    polys = masks_to_polygons(masks, grid, DSTL_CLASSES, EXACT, progress=progress.append)
    assert sorted(polys) == list(range(1, 11)) and len(progress) == 10
    for i, cid in enumerate(DSTL_CLASSES.ids):
        assert polys[cid].is_valid
        assert np.array_equal(back(polys[cid], (60, 64), grid.transform), masks[i])
    with pytest.raises(ValueError):
        masks_to_polygons(masks[:3], grid, DSTL_CLASSES, EXACT)


# ------------------------------------------------------------------------------------------- writers


def _scene_polys():
    a = shapely.MultiPolygon([shapely.box(0.001, -0.002, 0.003, -0.001)])
    b = shapely.MultiPolygon([shapely.box(0.004, -0.006, 0.0055, -0.004, ccw=False)])
    return {1: a, 5: b, 6: shapely.MultiPolygon()}


def test_geojson_feature_collection(tmp_path):
    import pyogrio

    p = write_geojson(tmp_path / "s.geojson", "6120_2_2", _scene_polys(), DSTL_CLASSES)
    fc = json.loads(p.read_text())
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    props = [f["properties"] for f in fc["features"]]
    assert props == [{"scene": "6120_2_2", "class_id": 1, "class_name": "Buildings"},
                     {"scene": "6120_2_2", "class_id": 5, "class_name": "Trees"}]
    df = pyogrio.read_dataframe(p)
    assert shapely.area(df.geometry.values).tolist() == pytest.approx([2e-6, 3e-6])
    # a user CRS goes into the file and GDAL reads it back
    p2 = write_geojson(tmp_path / "u.geojson", "u1", {1: shapely.box(500000, 10, 500010, 20)}, DSTL_CLASSES,
                       crs="EPSG:32631")
    assert pyogrio.read_dataframe(p2).crs.to_epsg() == 32631
    assert not list(tmp_path.glob(".*tmp*"))  # temporary names renamed away


def _parquet_records():
    recs = {}
    for s in ("6120_2_2", "6010_1_2"):
        for cid, g in _scene_polys().items():
            recs[(s, cid)] = g
    return recs


def test_geoparquet_grid_units_read_back(tmp_path):
    import pyarrow.parquet as pq

    from sattag.vectorize import read_geoparquet

    p = write_geoparquet(tmp_path / "polygons.parquet", _parquet_records())
    meta = json.loads(pq.read_metadata(p).metadata[b"geo"])
    assert meta["primary_column"] == "geometry"
    assert "crs" in meta["columns"]["geometry"] and meta["columns"]["geometry"]["crs"] is None  # not CRS84
    df = read_geoparquet(p)
    assert df.crs is None
    assert list(df.columns) == ["scene", "class_id", "class_name", "geometry"]
    assert df["class_id"].dtype == np.int32 and df["scene"].dtype == "str"
    assert len(df) == 4  # empty class 6 left out
    assert set(df["class_name"]) == {"Buildings", "Trees"}
    assert df.geometry.is_valid.all()


def test_geoparquet_user_crs_geopandas_and_gdal(tmp_path):
    import geopandas as gpd
    import pyogrio

    recs = [("u1", 1, shapely.box(500000, 5000000, 500010, 5000010)),
            {"scene": "u2", "class_id": 3, "geometry": shapely.box(0, 0, 1, 1).buffer(5)}]
    p = write_geoparquet(tmp_path / "polygons.parquet", recs, crs="EPSG:32631")
    df = gpd.read_parquet(p)
    assert df.crs.to_epsg() == 32631 and df["scene"].tolist() == ["u1", "u2"]
    if "Parquet" not in pyogrio.list_drivers():
        pytest.skip(f"this GDAL ({pyogrio.__gdal_version_string__}, pyogrio wheel) has no Parquet driver")
    g = pyogrio.read_dataframe(p)
    assert g.crs.to_epsg() == 32631 and len(g) == 2


def test_geoparquet_unknown_class(tmp_path):
    with pytest.raises(InputError, match="class id 42"):
        write_geoparquet(tmp_path / "x.parquet", {("s", 42): shapely.box(0, 0, 1, 1)})


def test_submission_csv_rows_and_order(tmp_path):
    sample = tmp_path / "sample_submission.csv"
    with open(sample, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "ClassType", "MultipolygonWKT"])
        for s in ("6120_2_2", "6010_1_2"):  # not sorted: the writer must keep this order
            for c in range(1, 11):
                w.writerow([s, c, "MULTIPOLYGON (((0 0, 0.001 0, 0.001 -0.001, 0 0)))"])
    polys = {("6010_1_2", 1): shapely.box(0.001, -0.002, 0.003, -0.001), ("6120_2_2", 5): shapely.MultiPolygon()}
    out = write_submission_csv(tmp_path / "sub.csv", polys, sample_submission=sample)
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"]
    assert [(r[0], int(r[1])) for r in rows[1:]] == [(s, c) for s in ("6120_2_2", "6010_1_2") for c in range(1, 11)]
    body = {(r[0], int(r[1])): r[2] for r in rows[1:]}
    assert body[("6010_1_2", 1)].startswith("MULTIPOLYGON (((")
    assert shapely.from_wkt(body[("6010_1_2", 1)]).area == pytest.approx(2e-6, rel=1e-6)
    assert sum(v == "MULTIPOLYGON EMPTY" for v in body.values()) == 19
    # a polygon for a scene the sample does not list: left out, or an error when strict
    extra = dict(polys)
    extra[("9999_0_0", 1)] = shapely.box(0, 0, 1, 1)
    out3 = write_submission_csv(tmp_path / "sub3.csv", extra, sample_submission=sample)
    assert out3.read_text() == out.read_text()
    with pytest.raises(InputError, match="9999_0_0"):
        write_submission_csv(tmp_path / "bad.csv", extra, sample_submission=sample, strict=True)
    # without a sample: scene_ids x classes
    out2 = write_submission_csv(tmp_path / "sub2.csv", polys, scene_ids=["6010_1_2", "6120_2_2", "c"])
    assert len(list(csv.reader(open(out2)))) == 31


def test_submission_precision_keeps_pixels(tmp_path):
    """Grid-unit coordinates written with enough decimals that a polygon moves < 1/100 px."""
    grid = dstl_grid(0.0091881, -0.0090443, 3348, 3403)
    m = np.zeros((50, 60), np.uint8)
    m[3:17, 7:40] = 1
    t = grid.transform
    g = mask_to_polygons(m, t, EXACT)
    out = write_submission_csv(tmp_path / "s.csv", {("s", 1): g}, scene_ids=["s"])
    text = list(csv.reader(open(out)))[1][2]
    back_g = shapely.from_wkt(text)
    px = abs(t.a)
    assert shapely.hausdorff_distance(back_g, g) < px / 100


def test_geojson_read_back_gives_the_written_polygons(tmp_path):
    """The engine resumes a scene from its GeoJSON: what is read back must be what was written."""
    import shapely

    from sattag.classes import DSTL_CLASSES
    from sattag.vectorize import read_geojson_polygons, write_geojson

    field = shapely.box(0, 0, 10, 10).difference(shapely.box(2, 2, 6, 6))
    island = shapely.box(3, 3, 4, 4)
    written = {6: shapely.MultiPolygon([field]), 8: shapely.MultiPolygon([island])}
    path = write_geojson(tmp_path / "s.geojson", "s", written, DSTL_CLASSES, crs="EPSG:32631")
    back = read_geojson_polygons(path, DSTL_CLASSES)
    assert set(back) == set(DSTL_CLASSES.ids)
    assert back[6].equals(written[6]) and back[8].equals(written[8])
    assert all(back[c].is_empty for c in DSTL_CLASSES.ids if c not in written)
    (tmp_path / "bad.geojson").write_text("{not json")
    import pytest

    from sattag.errors import InputError

    with pytest.raises(InputError, match="bad.geojson"):
        read_geojson_polygons(tmp_path / "bad.geojson", DSTL_CLASSES)


def test_polygons_finished_in_tiles_equal_the_whole_masks():
    # Tiles finish the polygons no seam or other tile can come near; with the seams joined and the
    # rest finished after, the class's MultiPolygon is the one finishing all the tiles' polygons at
    # the end gives (the same shapes as the whole mask's; a seam's union can start its rings
    # elsewhere, so simplified outlines there may differ by a vertex).
    import cv2
    import shapely

    from sattag.config import VectorizeConfig
    from sattag.vectorize import finish_polygons, join_seams, pixel_polygons, settle_tile_polygons, tile_pixel_polygons

    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.random((600, 700)).astype(np.float32), (0, 0), 4)
    mask = (noise > np.quantile(noise, 0.6)).astype(np.uint8)
    for config in (VectorizeConfig(), VectorizeConfig(simplify_px=2.0, min_area_px=30)):
        settled, rest, cut, whole = [], [], [], []
        n_settled = 0
        for r0 in range(0, 600, 250):
            for c0 in range(0, 700, 250):
                w, s = tile_pixel_polygons(mask[r0:r0 + 250, c0:c0 + 250], r0, c0, 600, 700)
                whole.append(w)
                done, left = settle_tile_polygons(w, s, (r0, min(600, r0 + 250)), (c0, min(700, c0 + 250)),
                                                  600, 700, config)
                n_settled += len(done)
                settled.append(done)
                rest.append(left)
                cut.append(s)
        tiled = finish_polygons(join_seams(rest, cut), None, config, settled=settled)
        at_the_end = finish_polygons(join_seams(whole, cut), None, config)
        assert n_settled > 20
        assert tiled.is_valid
        assert shapely.equals(tiled, at_the_end)
        assert len(tiled.geoms) == len(at_the_end.geoms)
        # and the same pixels as the whole mask, before simplifying
        assert shapely.equals(shapely.union_all(join_seams(whole, cut)), shapely.union_all(pixel_polygons(mask)))


def test_near_pairs_are_the_dwithin_pairs_from_either_side():
    # near_pairs measures each candidate pair from its larger side; the pairs must be exactly those
    # of the plain dwithin query, at distances just inside, on and just outside the limit, and
    # with one shape far larger than the others (the case it exists for).
    from sattag.vectorize.polygons import near_pairs, pixel_polygons

    mask = blobs((300, 400), seed=5, share=0.45, smooth=3.0)
    mask[100:110, 0:400] = 1  # a long band joining many blobs into one big shape
    polys = pixel_polygons(mask)
    polys = np.concatenate([polys, [shapely.box(0, 0, 1, 1), shapely.box(4, 0, 5, 1)]])
    assert shapely.get_num_coordinates(polys).max() > 20 * np.median(shapely.get_num_coordinates(polys))
    for distance in (0.5, 1.0, 3.0, 3.0001, 5.0):
        a, b = shapely.STRtree(polys).query(polys, predicate="dwithin", distance=distance)
        expected = {(i, j) for i, j in zip(a.tolist(), b.tolist()) if i != j}
        a, b = near_pairs(polys, distance)
        got = list(zip(a.tolist(), b.tolist()))
        assert len(got) == len(set(got))
        assert set(got) == expected, distance
    assert not any(shapely.is_prepared(polys))  # the caller's geometries are left as they were
    assert [len(x) for x in near_pairs(polys[:1], 2.0)] == [0, 0]


def test_seams_joined_in_bands_are_the_seams_joined_at_once():
    # The bands' closed pieces are final and the open ones, joined across the bands, complete them:
    # the same shapes as one union of every seam piece, for 1, 2 and 3 bands of tile rows.
    from sattag.vectorize import join_band_seams, join_bands, join_seams, tile_pixel_polygons

    mask = blobs((600, 700), seed=11, share=0.5, smooth=6.0)
    mask[:, 340:350] = 1  # one shape through every band
    tile = 150
    cut = {}
    for r0 in range(0, 600, tile):
        for c0 in range(0, 700, tile):
            cut.setdefault(r0, []).append(tile_pixel_polygons(mask[r0:r0 + tile, c0:c0 + tile], r0, c0, 600, 700)[1])
    at_once = join_seams([], [p for row in cut.values() for p in row])
    for edges in ([0, 600], [0, 300, 600], [0, 150, 450, 600]):
        closed, opened = [], []
        for r0, r1 in zip(edges, edges[1:]):
            c, o = join_band_seams([p for r, row in cut.items() if r0 <= r < r1 for p in row], (r0, r1), 600)
            closed.append(c)
            opened.append(o)
            b = shapely.bounds(c)
            assert not len(c) or ((r0 == 0) | (b[:, 1] > r0)).all() and ((r1 == 600) | (b[:, 3] < r1)).all()
        banded = np.concatenate([*closed, join_bands(opened)])
        assert len(banded) == len(at_once), edges
        assert shapely.is_valid(banded).all()
        assert shapely.equals(shapely.union_all(banded), shapely.union_all(at_once))
        if len(edges) > 2:
            assert sum(map(len, closed)) > 0 and sum(map(len, opened)) > 0

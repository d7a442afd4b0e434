"""labels: readers (WKT CSV, GeoJSON folders, OGR files), grid <-> pixel transforms, rasterizing."""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import shapes
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, shape

from sattag.classes import DSTL_CLASSES
from sattag.errors import LabelError
from sattag.labels import (
    LabelReport,
    LabelWarning,
    dstl_to_pixel,
    geometry_to_grid,
    geometry_to_pixel,
    grid_to_pixel,
    pixel_to_dstl,
    pixel_to_grid,
    rasterize_classes,
    read_geojson_folder,
    read_masks,
    read_vector_labels,
    read_wkt_csv,
    scene_labels,
    write_masks,
)
from sattag.scene import Grid, dstl_grid

XMAX, YMIN = 0.009188, -0.00904


def _dstl(h=400, w=410) -> Grid:
    return dstl_grid(XMAX, YMIN, h, w)


def _px_poly(grid: Grid, geom):
    """A geometry drawn in pixel coordinates, moved into the grid's scene coordinates."""
    return geometry_to_grid(geom, grid)


def _vectorize_area(mask: np.ndarray, grid: Grid) -> float:
    """Area (scene units) of the 1-pixels of ``mask``, found by vectorizing it back to polygons."""
    polys = [shape(g) for g, v in shapes(mask, mask=mask > 0, transform=grid.transform) if v == 1]
    return shapely.union_all(polys).area


def _write_wkt_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "ClassType", "MultipolygonWKT"])
        w.writerows(rows)
    return path


def _write_geojson(path: Path, geoms, props=None) -> Path:
    feats = [{"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": props or {}}
             for g in geoms]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


# ---------------------------------------------------------------------------------------------- grid


def test_grid_pixel_round_trip_and_dstl_formula():
    h, w = 3348, 3403
    grid = dstl_grid(XMAX, YMIN, h, w)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, XMAX, 1000)
    y = rng.uniform(YMIN, 0, 1000)
    col, row = grid_to_pixel(x, y, grid)
    # The formula of dstl-format.md, written out: x_px = x * W'/Xmax with W' = W*W/(W+1).
    assert np.allclose(col, x * (w * w / (w + 1)) / XMAX, rtol=1e-12, atol=0)
    assert np.allclose(row, y * (h * h / (h + 1)) / YMIN, rtol=1e-12, atol=0)
    assert (row >= 0).all() and (col >= 0).all()
    c2, r2 = dstl_to_pixel(x, y, XMAX, YMIN, h, w)
    assert np.allclose(c2, col, rtol=1e-12) and np.allclose(r2, row, rtol=1e-12)
    x2, y2 = pixel_to_grid(col, row, grid)
    assert np.allclose(x2, x, rtol=0, atol=1e-15) and np.allclose(y2, y, rtol=0, atol=1e-15)
    x3, y3 = pixel_to_dstl(col, row, XMAX, YMIN, h, w)
    assert np.allclose(x3, x, rtol=0, atol=1e-15) and np.allclose(y3, y, rtol=0, atol=1e-15)
    # The extent's corner lands at (W', H'), just short of the raster's last edge.
    cx, cy = grid_to_pixel(XMAX, YMIN, grid)
    assert cx == pytest.approx(w * w / (w + 1)) and cy == pytest.approx(h * h / (h + 1))


def test_grid_pixel_round_trip_crs_affine():
    grid = Grid(300, 300, Affine(0.5, 0, 448_000.0, 0, -0.5, 5_411_000.0), "EPSG:32631")
    col, row = np.array([0.0, 10.5, 299.25]), np.array([0.0, 20.5, 150.0])
    x, y = pixel_to_grid(col, row, grid)
    assert x[1] == pytest.approx(448_005.25) and y[1] == pytest.approx(5_410_989.75)
    c2, r2 = grid_to_pixel(x, y, grid)
    assert np.allclose(c2, col, atol=1e-9) and np.allclose(r2, row, atol=1e-9)


# ---------------------------------------------------------------------------------------- rasterize


def test_mask_area_matches_polygon_area_with_holes():
    grid = _dstl(400, 410)
    field = box(20, 20, 220, 180).difference(box(60, 50, 110, 100)).difference(Point(170, 120).buffer(25))
    ring = Point(300, 280).buffer(80).difference(Point(300, 280).buffer(40))
    polys = {6: _px_poly(grid, MultiPolygon([field])), 5: _px_poly(grid, MultiPolygon([ring]))}
    masks = rasterize_classes(polys, grid)
    assert masks.shape == (10, 400, 410) and masks.dtype == np.uint8
    for cid, geom in polys.items():
        m = masks[DSTL_CLASSES.index(cid)]
        assert set(np.unique(m)) <= {0, 1}
        area_back = _vectorize_area(m, grid)
        assert area_back == pytest.approx(geom.area, rel=0.01)
    # Holes stay holes: the centre of each hole is 0, the solid parts 1.
    crops, trees = masks[DSTL_CLASSES.index(6)], masks[DSTL_CLASSES.index(5)]
    assert crops[75, 85] == 0 and crops[120, 170] == 0 and crops[30, 30] == 1
    assert trees[280, 300] == 0 and trees[280, 360] == 1
    # Classes untouched stay empty.
    assert masks[DSTL_CLASSES.index(1)].sum() == 0


def test_overlapping_classes_both_set():
    grid = _dstl(100, 100)
    masks = rasterize_classes({5: _px_poly(grid, box(10, 10, 60, 60)), 6: _px_poly(grid, box(40, 40, 90, 90))},
                              grid)
    both = masks[DSTL_CLASSES.index(5)] & masks[DSTL_CLASSES.index(6)]
    assert both.sum() == 20 * 20


def test_masks_file_round_trip(tmp_path):
    grid = Grid(120, 130, Affine(0.5, 0, 448_000.0, 0, -0.5, 5_411_000.0), "EPSG:32631")
    rng = np.random.default_rng(1)
    masks = (rng.random((10, 120, 130)) > 0.7).astype(np.uint8)
    p = write_masks(tmp_path / "m" / "scene.tif", masks, grid)
    back, grid2, classes2 = read_masks(p)
    assert np.array_equal(back, masks)
    assert grid2.transform == grid.transform and grid2.shape == grid.shape
    assert rasterio.crs.CRS.from_user_input(grid2.crs).to_epsg() == 32631
    assert classes2 == DSTL_CLASSES
    assert not [q for q in p.parent.iterdir() if q.name.startswith(".")]  # no temporary left behind
    # DSTL grid (no CRS) too.
    g = _dstl(50, 60)
    write_masks(tmp_path / "d.tif", masks[:, :50, :60], g)
    back, g2, _ = read_masks(tmp_path / "d.tif")
    assert np.array_equal(back, masks[:, :50, :60]) and g2.crs is None
    assert np.allclose(tuple(g2.transform), tuple(g.transform), rtol=1e-12)
    with pytest.raises(LabelError, match="do not fit"):
        write_masks(tmp_path / "bad.tif", masks[:3], grid)


# ------------------------------------------------------------------------------------------ readers


def test_wkt_csv_reader_repairs_and_skips(tmp_path):
    grid = _dstl()
    bowtie = Polygon([(0.001, -0.001), (0.003, -0.003), (0.003, -0.001), (0.001, -0.003)])  # self-crossing
    sq = box(0.004, -0.006, 0.006, -0.004)
    rows = [("6120_2_2", cid, "MULTIPOLYGON EMPTY") for cid in range(1, 11)]
    rows[0] = ("6120_2_2", 1, MultiPolygon([sq]).wkt)
    rows[4] = ("6120_2_2", 5, bowtie.wkt)
    # Overlapping parts make a MultiPolygon invalid too.
    overlapping = "MULTIPOLYGON (((0 0, 2 0, 2 -2, 0 -2, 0 0)), ((1 0, 3 0, 3 -2, 1 -2, 1 0)))"
    rows[5] = ("6120_2_2", 6, overlapping.replace("3", "0.003").replace("2", "0.002").replace("1", "0.001"))
    rows.append(("6010_1_2", 3, MultiPolygon([sq]).wkt))
    path = _write_wkt_csv(tmp_path / "train_wkt_v4.csv", rows)
    rep = LabelReport()
    labels = read_wkt_csv(path, report=rep)
    assert set(labels) == {"6120_2_2", "6010_1_2"}
    assert set(labels["6010_1_2"]) == set(range(1, 11)) and labels["6010_1_2"][1].is_empty
    assert rep.n_repaired == 2 and rep.n_empty == 7 and rep.n_features == 11
    crops = labels["6120_2_2"][6]
    assert crops.is_valid and crops.area == pytest.approx(0.003 * 0.002, rel=1e-9)
    trees = labels["6120_2_2"][5]
    assert trees.is_valid and trees.geom_type == "MultiPolygon"
    assert trees.area == pytest.approx(2 * 0.5 * 0.002 * 0.001, rel=1e-9)  # the two triangles of the bowtie
    only = read_wkt_csv(path, scene_ids=["6010_1_2"])
    assert list(only) == ["6010_1_2"]
    masks = rasterize_classes(labels["6120_2_2"], grid)
    assert masks[0].sum() > 0 and masks[4].sum() > 0


def test_geojson_folder_layers(tmp_path):
    folder = tmp_path / "train_geojson_v3" / "6120_2_2"
    a, b = box(0.001, -0.002, 0.002, -0.001), box(0.0015, -0.0025, 0.003, -0.0015)  # overlapping
    _write_geojson(folder / "001_MM_L2_LARGE_BUILDING.geojson", [a])
    _write_geojson(folder / "001_MM_L3_RESIDENTIAL_BUILDING.geojson", [b])
    _write_geojson(folder / "003_VH_L6_MOTORBIKE.geojson", [box(0.005, -0.005, 0.0051, -0.0049)])
    _write_geojson(folder / "001_MM_L4_BRIDGE.geojson", [box(0, -0.009, 0.009, 0)])  # not scored
    _write_geojson(folder / "Grid_6120_2_2.geojson", [box(0, -0.009, 0.009, 0)])  # outline
    rep = LabelReport()
    labels = read_geojson_folder(folder, report=rep)
    assert labels[1].is_valid and labels[1].area == pytest.approx(a.union(b).area)
    assert labels[10].area == pytest.approx(1e-8)
    assert all(labels[c].is_empty for c in (2, 3, 4, 5, 6, 7, 8, 9))
    assert sorted(rep.skipped_layers) == ["001_MM_L4_BRIDGE.geojson", "Grid_6120_2_2.geojson"]


def test_scene_labels_prefers_wkt_then_geojson(tmp_path):
    sq = box(0.001, -0.002, 0.002, -0.001)
    _write_geojson(tmp_path / "train_geojson_v3" / "6120_2_2" / "002_TR_L3_GOOD_ROADS.geojson", [sq])
    _write_geojson(tmp_path / "train_geojson_v3" / "6010_1_2" / "002_TR_L3_GOOD_ROADS.geojson", [sq])
    _write_wkt_csv(tmp_path / "train_wkt_v4.csv", [("6120_2_2", 8, MultiPolygon([sq]).wkt)])
    from_csv = scene_labels(tmp_path, "6120_2_2")
    assert not from_csv[8].is_empty and from_csv[3].is_empty  # the CSV won
    from_json = scene_labels(tmp_path, "6010_1_2")
    assert not from_json[3].is_empty
    assert scene_labels(tmp_path, "6999_0_0") is None


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "parquet"])
def test_vector_labels_4326_land_on_utm_raster(tmp_path, fmt):
    # A 1 m UTM 31N raster over Paris; a building drawn on known pixels, stored in lon/lat.
    grid = Grid(200, 200, Affine(1.0, 0, 448_000.0, 0, -1.0, 5_411_000.0), "EPSG:32631")
    px = box(50, 120, 80, 150)  # cols 50-80, rows 120-150
    utm = geometry_to_grid(px, grid)
    to_ll = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    ll = shapely.transform(shapely.segmentize(utm, 1.0), lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    road = shapely.transform(shapely.segmentize(geometry_to_grid(LineString([(0, 20), (200, 40)]).buffer(3), grid), 1.0),
                             lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    gdf = gpd.GeoDataFrame({"kind": ["Buildings", "road"]}, geometry=[ll, road], crs="EPSG:4326")
    path = tmp_path / f"labels.{fmt}"
    if fmt == "parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    polys = read_vector_labels(path, "kind", grid.crs)
    masks = rasterize_classes(polys, grid)
    bld = masks[DSTL_CLASSES.index(1)]
    assert bld[120:150, 50:80].all()
    assert bld.sum() == 30 * 30
    assert masks[DSTL_CLASSES.index(3)][25:35, 95:105].any()
    assert masks[DSTL_CLASSES.index(3)][100:, :].sum() == 0


def test_vector_labels_class_ids_and_repairs(tmp_path):
    bowtie = Polygon([(10, 10), (12, 12), (12, 10), (10, 12)])
    gdf = gpd.GeoDataFrame({"cls": [5, 5, 8, 1, 1]},
                           geometry=[box(0, 0, 1, 1), box(0.5, 0, 2, 1), box(5, 5, 6, 6), bowtie, None],
                           crs="EPSG:32631")
    path = tmp_path / "l.gpkg"
    gdf.to_file(path)
    rep = LabelReport()
    polys = read_vector_labels(path, "cls", "EPSG:32631", report=rep)
    assert polys[5].area == pytest.approx(2.0) and polys[5].is_valid and polys[8].area == pytest.approx(1.0)
    assert polys[1].area == pytest.approx(2.0) and polys[1].is_valid  # the bowtie's two triangles
    assert rep.n_repaired == 1 and rep.n_empty == 1 and rep.n_features == 5


# ------------------------------------------------------------------------------------- bad input


def test_bad_wkt_names_file_row_scene(tmp_path):
    path = _write_wkt_csv(tmp_path / "train_wkt_v4.csv",
                          [("6120_2_2", 1, "MULTIPOLYGON EMPTY"), ("6120_2_2", 2, "MULTIPOLYGON (((0 0, 1 1")])
    with pytest.raises(LabelError) as e:
        read_wkt_csv(path)
    msg = str(e.value)
    assert "train_wkt_v4.csv" in msg and "row 2 (line 3)" in msg and "6120_2_2" in msg and "WKT" in msg


def test_unknown_class_type_in_wkt(tmp_path):
    path = _write_wkt_csv(tmp_path / "w.csv", [("6120_2_2", 11, "MULTIPOLYGON EMPTY")])
    with pytest.raises(LabelError, match=r"w\.csv.*ClassType 11"):
        read_wkt_csv(path)


def test_bad_header(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LabelError, match="header"):
        read_wkt_csv(path)


def test_geojson_without_features_warns(tmp_path):
    folder = tmp_path / "6120_2_2"
    _write_geojson(folder / "006_VEG_L2_WOODLAND.geojson", [])
    with pytest.warns(LabelWarning, match="006_VEG_L2_WOODLAND.geojson.*no features"):
        labels = read_geojson_folder(folder)
    assert labels[5].is_empty


def test_vector_file_without_features_warns(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.warns(LabelWarning, match="empty.geojson"):
        polys = read_vector_labels(path, "cls", "EPSG:32631")
    assert all(g.is_empty for g in polys.values())


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_vector_file_without_crs(tmp_path):
    # A Shapefile without .prj has no CRS (a GeoJSON would be read as EPSG:4326, RFC 7946).
    shp = tmp_path / "nocrs.shp"
    gpd.GeoDataFrame({"cls": [1]}, geometry=[box(0, 0, 1, 1)]).to_file(shp)
    with pytest.raises(LabelError, match=r"nocrs\.shp.*no CRS"):
        read_vector_labels(shp, "cls", "EPSG:32631")
    with pytest.raises(LabelError, match=r"nocrs\.shp.*no CRS"):
        read_vector_labels(shp, "cls", "EPSG:32631", bounds=(0, 0, 10, 10))
    # With no target CRS (DSTL grid units), a file without a CRS is taken as it is.
    assert read_vector_labels(shp, "cls", None)[1].area == pytest.approx(1.0)


def test_vector_unknown_class_value(tmp_path):
    path = tmp_path / "l.gpkg"
    gpd.GeoDataFrame({"cls": ["Trees", "Swimming pool"]}, geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3)],
                     crs="EPSG:32631").to_file(path)
    with pytest.raises(LabelError, match=r"l\.gpkg.*Swimming pool"):
        read_vector_labels(path, "cls", "EPSG:32631")
    with pytest.raises(LabelError, match=r"l\.gpkg.*no class column 'kind'"):
        read_vector_labels(path, "kind", "EPSG:32631")


def test_labels_outside_raster_warn(tmp_path):
    grid = Grid(100, 100, Affine(1.0, 0, 448_000.0, 0, -1.0, 5_411_000.0), "EPSG:32631")
    far = {1: box(500_000, 5_000_000, 500_010, 5_000_010)}
    with pytest.warns(LabelWarning, match=r"labels\.gpkg: scene 6120_2_2: labels .* do not overlap"):
        masks = rasterize_classes(far, grid, source="labels.gpkg", scene_id="6120_2_2")
    assert masks.sum() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rasterize_classes({1: box(448_010, 5_410_950, 448_020, 5_410_960)}, grid)  # inside: no warning


def test_unknown_class_id_in_polygons():
    with pytest.raises(LabelError, match=r"\[12\]"):
        rasterize_classes({12: box(0, -0.001, 0.001, 0)}, _dstl())


# ------------------------------------------------------------------------------ generated DSTL data


def _grid_of(data_dir: Path, scene_id: str) -> Grid:
    with open(data_dir / "grid_sizes.csv", newline="") as f:
        sizes = {r[0]: (float(r[1]), float(r[2])) for r in list(csv.reader(f))[1:]}
    with rasterio.open(data_dir / "three_band" / f"{scene_id}.tif") as src:
        h, w = src.height, src.width
    return dstl_grid(*sizes[scene_id], h, w)


def test_generated_wkt_and_geojson_give_same_masks(small_dstl):
    ids = sorted(p.name for p in (small_dstl / "train_geojson_v3").iterdir() if p.is_dir())
    assert ids
    from_csv = read_wkt_csv(small_dstl / "train_wkt_v4.csv")
    assert set(ids) <= set(from_csv)
    total = 0
    for sid in ids:
        grid = _grid_of(small_dstl, sid)
        m_csv = rasterize_classes(from_csv[sid], grid)
        m_json = rasterize_classes(read_geojson_folder(small_dstl / "train_geojson_v3" / sid), grid)
        differ = (m_csv != m_json).sum(axis=(1, 2))
        # Pixel centres exactly on an edge may fall either way after a union: allow a hair of them.
        assert (differ <= np.maximum(3, m_csv.sum(axis=(1, 2)) * 0.001)).all(), (sid, differ)
        total += int(m_csv.sum())
    assert total > 0


@pytest.mark.parametrize("fmt", ["gpkg", "parquet"])
def test_vector_labels_bounds_reads_only_the_scene(tmp_path, fmt):
    from sattag.labels import grid_bounds

    # One label file (lon/lat) over two scenes side by side; each scene reads only its own features.
    grids = [Grid(100, 100, Affine(1.0, 0, x0, 0, -1.0, 5_411_000.0), "EPSG:32631") for x0 in (448_000.0, 449_000.0)]
    to_ll = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    geoms = [shapely.transform(geometry_to_grid(box(10, 10, 30, 30), g),
                               lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1]))) for g in grids]
    gdf = gpd.GeoDataFrame({"cls": [1, 5]}, geometry=geoms, crs="EPSG:4326")
    path = tmp_path / f"all.{fmt}"
    gdf.to_parquet(path) if fmt == "parquet" else gdf.to_file(path)
    a = read_vector_labels(path, "cls", "EPSG:32631", bounds=grid_bounds(grids[0]))
    b = read_vector_labels(path, "cls", "EPSG:32631", bounds=grid_bounds(grids[1]))
    assert not a[1].is_empty and a[5].is_empty
    assert b[1].is_empty and not b[5].is_empty
    assert rasterize_classes(b, grids[1])[DSTL_CLASSES.index(5)].sum() == 400
    far = Grid(100, 100, Affine(1.0, 0, 500_000.0, 0, -1.0, 5_000_000.0), "EPSG:32631")
    with pytest.warns(LabelWarning, match=rf"all\.{fmt}: scene 6010_1_2: no label feature"):
        none = read_vector_labels(path, "cls", "EPSG:32631", bounds=grid_bounds(far), scene_id="6010_1_2")
    assert all(g.is_empty for g in none.values())

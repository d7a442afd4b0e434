"""Masks and cluster-id images are Cloud Optimized GeoTIFFs: tiled, internal overviews of values
the image holds, laid out as GDAL's COG validation requires, and read back unchanged."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from sattag._files import cog_overview_factors, write_cog
from sattag.classes import DSTL_CLASSES
from sattag.labels import read_masks, write_masks
from sattag.scene import Grid, dstl_grid
from sattag.segment import read_cluster_ids, write_cluster_ids

H, W = 900, 1100  # larger than one 512-px block either way, not a multiple of it: partial tiles


def cog_errors(path) -> list[str]:
    """What keeps ``path`` from being a valid COG, by the rules of GDAL's
    ``validate_cloud_optimized_geotiff.py`` (not shipped with rasterio's wheels, whose Python has no
    ``osgeo``): a GeoTIFF, tiled when larger than 512 px, internal overviews in decreasing size, the
    main IFD at the start of the file, each overview's IFD after the previous one's, tile data after
    the IFDs, the smallest overview's tiles first and the full resolution's last; and GDAL's own
    verdict: ``LAYOUT=COG`` in the IMAGE_STRUCTURE domain, which GDAL reports only when the file's
    ghost header says the COG layout was kept."""
    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            if src.driver != "GTiff":
                return [f"driver {src.driver}, not GTiff"]
            if any(str(f).lower().endswith(".ovr") for f in src.files):
                errors.append("external .ovr file")
            if src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
                errors.append(f"no LAYOUT=COG: {src.tags(ns='IMAGE_STRUCTURE')}")
            overviews = src.overviews(1)
            if max(src.width, src.height) > 512:
                if src.block_shapes[0] == (1, src.width) or not src.profile.get("tiled"):
                    errors.append("larger than 512 px but not tiled")
                if not overviews:
                    errors.append("larger than 512 px but no overviews")
            if overviews != sorted(overviews) or any(f <= 1 for f in overviews):
                errors.append(f"overview factors {overviews} not increasing from > 1")
            ifd = [int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1))]
            if ifd[0] > 300:  # 8 or 16 plus GDAL's ghost header (< 300 bytes)
                errors.append(f"main IFD at byte {ifd[0]}, not at the start of the file")
            data = [int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1) or 0)]
            for i in range(len(overviews)):
                ifd.append(int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1, ovr=i)))
                data.append(int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1, ovr=i) or 0))
            if ifd != sorted(ifd):
                errors.append(f"IFDs not in order of decreasing size: {ifd}")
            if data[-1] and data[-1] < ifd[-1]:
                errors.append("the first tile comes before the last IFD")
            if data != sorted(data, reverse=True):
                errors.append(f"tiles not smallest overview first, full resolution last: {data}")
        for i in range(len(overviews)):
            with rasterio.open(path, OVERVIEW_LEVEL=i) as ovr:
                if max(ovr.width, ovr.height) > 512 and ovr.block_shapes[0][0] == 1:
                    errors.append(f"overview {i} not tiled")
    return errors


def overview_arrays(path) -> list[np.ndarray]:
    """Every overview level of every band: (bands, h, w) per level, as GDAL stores them."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            n = len(src.overviews(1))
        for i in range(n):
            with rasterio.open(path, OVERVIEW_LEVEL=i) as ovr:
                out.append(ovr.read())
    return out


def _masks() -> np.ndarray:
    rng = np.random.default_rng(0)
    masks = np.zeros((len(DSTL_CLASSES), H, W), np.uint8)
    for c in range(len(DSTL_CLASSES)):
        for _ in range(20):
            r, k = rng.integers(0, H - 60), rng.integers(0, W - 60)
            masks[c, r:r + rng.integers(1, 60), k:k + rng.integers(1, 60)] = 1
    return masks


def test_masks_are_a_valid_cog_and_read_back_unchanged(tmp_path):
    masks, grid = _masks(), dstl_grid(0.00918, -0.00904, H, W)
    path = write_masks(tmp_path / "masks" / "6010_1_2.tif", masks, grid)
    assert sorted(p.name for p in path.parent.iterdir()) == ["6010_1_2.tif"]  # no temporary left
    assert cog_errors(path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            assert src.block_shapes == [(512, 512)] * len(DSTL_CLASSES)
            assert src.overviews(1) == [2, 4] == cog_overview_factors(H, W)
            assert src.descriptions == tuple(c.name for c in DSTL_CLASSES)
            assert src.compression is not None and src.dtypes[0] == "uint8"
    ovrs = overview_arrays(path)
    assert [o.shape for o in ovrs] == [(10, 450, 550), (10, 225, 275)]
    for o in ovrs:  # nearest: only the 0 and 1 of the masks
        assert set(np.unique(o)) <= {0, 1}
    back, g, classes = read_masks(path)
    assert back.dtype == np.uint8 and np.array_equal(back, masks)
    assert g == grid and classes == DSTL_CLASSES


def test_cluster_ids_are_a_valid_cog_and_read_back_unchanged(tmp_path):
    rng = np.random.default_rng(1)
    # ~2500 clusters of 20 x 20 px, ids scattered over a wide range (a scene's ids run into millions)
    ids = np.repeat(np.repeat(rng.permutation(2_000_000)[:45 * 55].reshape(45, 55), 20, 0), 20, 1)
    ids = ids.astype(np.int32)
    grid = Grid(H, W, Affine(0.5, 0, 592000.0, 0, -0.5, 5748000.0), "EPSG:32631")
    path = write_cluster_ids(tmp_path / "clusters" / "rotterdam.tif", ids, grid)
    assert cog_errors(path) == []
    with rasterio.open(path) as src:
        assert src.block_shapes == [(512, 512)] and src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
    values = set(np.unique(ids))
    for o in overview_arrays(path):  # nearest: ids stay ids, never a mean of two
        assert set(np.unique(o)) <= values
    back, g = read_cluster_ids(path)
    assert back.dtype == np.int32 and np.array_equal(back, ids)
    assert g.shape == grid.shape and g.transform == grid.transform and g.crs == "EPSG:32631"


def test_small_image_is_one_block_without_overviews(tmp_path):
    assert cog_overview_factors(512, 300) == [] and cog_overview_factors(513, 10) == [2]
    assert cog_overview_factors(3400, 3400) == [2, 4, 8]
    ids = np.arange(200 * 300, dtype=np.int32).reshape(200, 300)
    path = write_cluster_ids(tmp_path / "small.tif", ids, dstl_grid(0.009, -0.009, 200, 300))
    assert cog_errors(path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            assert src.overviews(1) == []
    assert np.array_equal(read_cluster_ids(path)[0], ids)


def test_cog_validation_catches_a_plain_geotiff(tmp_path):
    """The check above is no rubber stamp: an untiled GeoTIFF without overviews fails it."""
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", count=1, height=H, width=W, dtype="uint8",
                       transform=Affine(0.5, 0, 592000.0, 0, -0.5, 5748000.0), crs="EPSG:32631") as dst:
        dst.write(np.zeros((1, H, W), np.uint8))
    errors = cog_errors(path)
    assert any("LAYOUT=COG" in e for e in errors) and any("not tiled" in e for e in errors)
    assert any("no overviews" in e for e in errors)


def test_write_cog_refuses_wrong_shapes(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        write_cog(tmp_path / "x.tif", np.zeros((2, 2, 2, 2)), transform=Affine.identity())
    with pytest.raises(ValueError, match="2 descriptions for 1 bands"):
        write_cog(tmp_path / "x.tif", np.zeros((4, 4), np.uint8), transform=Affine.identity(),
                  descriptions=["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_masks_written_in_pieces_are_the_file_written_whole(tmp_path):
    # A tiled scene's masks come in pieces (write_masks_windows); a scene predicted whole has them
    # in one array (write_masks). Same pixels, tags and overviews: the overviews of a staging file
    # built over all bands at once (pixel-interleaved) picked other pixels than the whole writer's.
    from sattag.labels import write_masks_windows

    h, w = 2100, 1700  # 3 overview levels: the pixel-interleaved one differed at the third
    rng = np.random.default_rng(1)
    masks = (rng.random((len(DSTL_CLASSES), h, w)) < 0.3).astype(np.uint8)  # every pixel its own
    grid = dstl_grid(0.00918, -0.00904, h, w)
    whole = write_masks(tmp_path / "whole.tif", masks, grid)
    pieces = [(r, c, masks[:, r:r + 1024, c:c + 1024]) for r in range(0, h, 1024) for c in range(0, w, 1024)]
    tiled = write_masks_windows(tmp_path / "tiled.tif", pieces, grid)
    assert cog_errors(tiled) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiled.tif", "whole.tif"]  # no staging file left
    back, g, classes = read_masks(tiled)
    assert np.array_equal(back, masks) and g == grid and classes == DSTL_CLASSES
    for a, b in zip(overview_arrays(whole), overview_arrays(tiled), strict=True):
        np.testing.assert_array_equal(a, b)

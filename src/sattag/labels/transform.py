"""Scene coordinates <-> pixel coordinates, over numpy arrays and shapely geometries.

A :class:`sattag.scene.Grid` carries an affine ``transform`` mapping pixel (col, row) to the scene's
coordinates: DSTL grid units (built by ``sattag.scene.dstl_transform`` from grid_sizes.csv) or the
CRS of a user's rasters. Pixel coordinates are continuous: (0, 0) is the top-left corner of the
top-left pixel, (0.5, 0.5) its centre, as rasterio and GDAL count them.

The DSTL formula of ``dstl-format.md`` is also given directly (:func:`dstl_to_pixel`,
:func:`pixel_to_dstl`) for code that only has (Xmax, Ymin) and the raster size at hand; it agrees
with the affine of :func:`sattag.scene.dstl_transform`.
"""
from __future__ import annotations

import numpy as np
from affine import Affine

from sattag.scene import Grid


def _apply(t: Affine, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def grid_to_pixel(x, y, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Scene coordinates (arrays ``x``, ``y``: DSTL grid units or CRS units) -> pixel (col, row) floats."""
    return _apply(~grid.transform, x, y)


def pixel_to_grid(col, row, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (col, row) floats -> scene coordinates (x, y) of ``grid``; inverse of :func:`grid_to_pixel`."""
    return _apply(grid.transform, col, row)


def dstl_to_pixel(x, y, xmax: float, ymin: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """DSTL grid units -> pixel (col, row) of a ``height`` x ``width`` raster, by ``dstl-format.md``.

    ``W' = W*W/(W+1)``, ``H' = H*H/(H+1)``, ``col = x*W'/Xmax``, ``row = y*H'/Ymin`` (y and Ymin < 0).
    """
    w_ = width * width / (width + 1)
    h_ = height * height / (height + 1)
    return np.asarray(x, dtype=np.float64) * (w_ / xmax), np.asarray(y, dtype=np.float64) * (h_ / ymin)


def pixel_to_dstl(col, row, xmax: float, ymin: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (col, row) of a ``height`` x ``width`` raster -> DSTL grid units; inverse of :func:`dstl_to_pixel`."""
    w_ = width * width / (width + 1)
    h_ = height * height / (height + 1)
    return np.asarray(col, dtype=np.float64) * (xmax / w_), np.asarray(row, dtype=np.float64) * (ymin / h_)


def _affine_params(t: Affine) -> list[float]:
    # shapely.affinity.affine_transform order: [a, b, d, e, xoff, yoff]
    return [t.a, t.b, t.d, t.e, t.c, t.f]


def geometry_to_pixel(geom, grid: Grid):
    """A shapely geometry in scene coordinates -> the same geometry in pixel (col, row) coordinates."""
    from shapely.affinity import affine_transform

    return affine_transform(geom, _affine_params(~grid.transform))


def geometry_to_grid(geom, grid: Grid):
    """A shapely geometry in pixel (col, row) coordinates -> scene coordinates of ``grid``."""
    from shapely.affinity import affine_transform

    return affine_transform(geom, _affine_params(grid.transform))


def grid_bounds(grid: Grid) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the whole raster in scene coordinates."""
    cols = np.array([0, grid.width, 0, grid.width], dtype=np.float64)
    rows = np.array([0, 0, grid.height, grid.height], dtype=np.float64)
    x, y = pixel_to_grid(cols, rows, grid)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def bounds_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (minx, miny, maxx, maxy) boxes share some area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


__all__ = [
    "bounds_overlap",
    "dstl_to_pixel",
    "geometry_to_grid",
    "geometry_to_pixel",
    "grid_bounds",
    "grid_to_pixel",
    "pixel_to_dstl",
    "pixel_to_grid",
]

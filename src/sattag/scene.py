"""The core data every stage shares: band files, scenes, grids and band stacks.

Coordinates: a :class:`Grid`'s ``transform`` maps pixel (col, row) to the scene's own coordinates.
For a DSTL scene those are DSTL grid units (0 <= x <= Xmax, Ymin <= y <= 0, no CRS), through the
grid_sizes.csv formula of ``dstl-format.md``; for a user's rasters they are the rasters' CRS. So
labels, vectorizing and scoring use one code path: the affine transform.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine

from sattag.dstl import dstl_transform  # the grid_sizes.csv formula; importable from here too


@dataclass(frozen=True)
class BandFile:
    """One raster file of a scene.

    ``group``: the band group (DSTL: ``R`` for the 3-band RGB file, ``P``, ``M``, ``A``).
    ``bands``: names of the file's bands in file order. ``bit_depth``: the sensor's bits per value,
    used to scale counts to [0, 1] (None: the file already holds reflectance-like floats in [0, 1]).
    """

    group: str
    path: Path
    bands: tuple[str, ...]
    bit_depth: int | None


@dataclass(frozen=True)
class Scene:
    """A scene: its id and band files; the first file is the reference group (finest grid).

    ``dstl_extent`` is (Xmax, Ymin) from grid_sizes.csv for DSTL scenes, else None.
    """

    id: str
    files: tuple[BandFile, ...]
    dstl_extent: tuple[float, float] | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        """All band names of the scene, in stack order."""
        return tuple(b for f in self.files for b in f.bands)

    @property
    def reference(self) -> BandFile:
        return self.files[0]


@dataclass(frozen=True)
class Grid:
    """A raster grid: ``height`` x ``width`` pixels, ``transform`` pixel -> scene coordinates, ``crs``
    (a WKT/EPSG string, or None for DSTL grid units)."""

    height: int
    width: int
    transform: Affine
    crs: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


def sample_step(height: int, width: int, max_px: int = 1_000_000) -> int:
    """The stride of the regular subsample of an (H, W) grid that statistics of a whole scene are
    measured on (every ``step``-th row and column from 0): at most ~``max_px`` pixels."""
    return max(1, int(np.ceil(np.sqrt(height * width / max_px))))


def sampled_row_bands(height: int, step: int, rows_per_band: int = 512):
    """Bands of rows to read a grid's every ``step``-th row and column (from 0) a band at a time:
    ``(r0, r1, s0, s1)``: grid rows ``r0:r1`` give sample rows ``s0:s1`` (take ``[r0:r1][::step]``).
    Each band is a whole multiple of ``step`` rows (about ``rows_per_band``), so each starts on a
    sampled row; the sample is ``ceil(height / step)`` rows."""
    band = max(step, (rows_per_band // step) * step)
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        yield r0, r1, r0 // step, -(-r1 // step)


def dstl_grid(xmax: float, ymin: float, height: int, width: int) -> Grid:
    """The grid of a DSTL raster of ``height`` x ``width`` pixels with grid_sizes.csv extent."""
    return Grid(height, width, dstl_transform(xmax, ymin, height, width), None)


@dataclass
class Stack:
    """All bands of a scene on one grid.

    ``data``: float32 (bands, H, W) in [0, 1] (None when only the header was read); ``bands``: band names in stack order; ``offsets``:
    per band group, the (dx, dy) in reference pixels that alignment found and removed, and the fit's
    correlation: ``{"M": (dx, dy, corr), ...}``; ``offset_spread``: per band group whose offset was
    also measured across the scene (``sattag.ingest.align.offset_spread``), how far (reference px) the
    offsets of a grid of windows lie from the centre's; groups not measured are absent.
    """

    scene_id: str
    data: np.ndarray
    bands: tuple[str, ...]
    grid: Grid
    offsets: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    offset_spread: dict[str, float] = field(default_factory=dict)

    def band(self, name: str) -> np.ndarray:
        """One band (H, W) by name."""
        return self.data[self.bands.index(name)]

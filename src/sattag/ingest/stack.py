"""A scene's band files -> one aligned stack on the reference grid, built and cached window by window.

Each band group is placed on the reference grid once its offset is known: the reference group as
read, the others resampled with the offset folded into that one warp (:mod:`sattag.ingest.resample`).
Offsets are fitted first, group by group, on central windows (:mod:`sattag.ingest.align`, on the
group's own grid): a fit reads only its window of the group's file and renders only the candidate
bands it reaches (``[ingest] align_window_px``). Then the stack is made in windows of ``[ingest]
tile_px`` reference px: for each window every group reads only the part of its file the window
needs (the resampling kernel's halo included) and is resampled onto that window alone, with the
full axis's cubic-spline taps sliced to it, so a window holds exactly the values the whole-scene
resampling gives there. :func:`ingest_scene` converts each window to uint16 and writes it;
:func:`build_stack` fills an array with the same windows. Memory follows the window, not the scene.

Cache format (:func:`write_stack`): a tiled (512 px), band-interleaved GeoTIFF, uint16 holding
``round(value * 65535)`` with GDAL scale ``1/65535`` per band (so GDAL/QGIS show [0, 1] values),
ZSTD level 1, no predictor, written with 2 compression threads. Quantisation error <= 7.7e-6, far
below one count of the 14-bit A bands (6.1e-5). Why (measured on a full-size 20-band stack, same
machine and run): uint16+ZSTD-1 wrote in 6.9 s / read 6.0 s (222 MiB); float32+ZSTD-1+floating-point
predictor 10.7 s / 10.0 s (482 MiB); uint16+DEFLATE-1+predictor 8.4 s (221 MiB); LZW 12.4 s (256
MiB); 4-band probes: the horizontal predictor costs ~25 % more write time for ~10 % smaller files,
so it is off. (Those seconds are from a heavily shared 2-core box; the ratios are what count.)
Band descriptions are the band names; tags ``SATTAG_FORMAT``, ``SATTAG_SCENE``, ``SATTAG_OFFSETS``
(JSON ``{group: [dx, dy, correlation]}``) and, when a group's offset was also measured across the
scene, ``SATTAG_OFFSET_SPREAD`` (JSON ``{group: spread_px}``) describe the stack, and
``SATTAG_BAND_PERCENTILES`` (JSON ``{"step": s, "1": [...], "99": [...]}``: each band's 1st and 99th
percentiles over the stored values at every ``s``-th row and column, :func:`sattag.scene.sample_step`)
saves a tiled scene's clustering a pass over the whole stack; CRS and transform are the grid's.
A scene stacked in parts (:mod:`sattag.ingest.parts`) has strips of rows in this format, one file
each, and a GDAL VRT over them with the same band descriptions, scales and tags
(:func:`write_stack_vrt`); every reader here reads it as the one file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numba
import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from sattag._files import atomic_path, gdal_block_cache
from sattag.config import IngestConfig
from sattag.errors import ConfigError, InputError
from sattag.ingest.align import (MIN_ALIGN_PX, GroupGeometry, central_window, fit_offset, spread_from)
from sattag.ingest.bands import BandReader, RasterInfo, raster_info
from sattag.ingest.discover import DstlScene
from sattag.ingest.resample import axis_weights, resample_rasterio, resample_taps, window_taps
from sattag.scene import BandFile, Grid, Scene, Stack, dstl_grid, sample_step, sampled_row_bands

__all__ = ["build_stack", "write_stack", "write_stack_vrt", "read_stack", "read_stack_window", "read_stack_sample", "read_band_percentiles", "stack_is_complete", "ingest_scene", "STACK_FORMAT"]

STACK_FORMAT = "sattag-stack-1"
_SCALE = 65535.0
#: Side of the cache file's tiles; the windows a stack is written in are made of whole ones.
_BLOCK = 512
#: Most bytes of uint16 a window is converted into at a time before it is written.
_U16_BUFFER = 16 << 20


# ----------------------------------------------------------------------------------------- geometry


def _is_dstl(scene: Scene) -> bool:
    return isinstance(scene, DstlScene) or scene.dstl_extent is not None


def _axis_aligned_geometry(ref: RasterInfo, info: RasterInfo) -> GroupGeometry | None:
    """Where group pixels lie on the reference grid, or None when the grids are rotated against each
    other or in different CRSs (then GDAL warps)."""
    tr, tg = ref.transform, info.transform
    if tr.b or tr.d or tg.b or tg.d or ref.crs != info.crs:
        return None
    sx, sy = tg.a / tr.a, tg.e / tr.e
    if sx <= 0 or sy <= 0:
        return None
    return GroupGeometry((tg.c - tr.c) / tr.a, (tg.f - tr.f) / tr.e, sx, sy)


def _shifted_src_transform(ref_t: Affine, group_t: Affine, dx: float, dy: float) -> Affine:
    """The group's transform with the offset removed: T_ref . Translate(-d) . T_ref^-1 . T_g."""
    return ref_t @ Affine.translation(-dx, -dy) @ ~ref_t @ group_t


def _windows(height: int, width: int, tile_px: int) -> Iterator[tuple[int, int, int, int]]:
    """``(row0, row1, col0, col1)`` of the windows a stack is made in: ``tile_px`` rounded down to
    whole 512-px blocks of the cache file (from 512 up), so each window writes whole blocks and GDAL
    need not keep a half-written one; under 512 px, windows of ``tile_px`` taken block by block (a
    block is finished before the next one is begun)."""
    cell = max(_BLOCK, tile_px // _BLOCK * _BLOCK)
    step = min(tile_px, cell)
    for R0 in range(0, height, cell):
        for C0 in range(0, width, cell):
            R1, C1 = min(R0 + cell, height), min(C0 + cell, width)
            for r0 in range(R0, R1, step):
                for c0 in range(C0, C1, step):
                    yield r0, min(r0 + step, R1), c0, min(c0 + step, C1)


def _check_window_settings(config: IngestConfig) -> None:
    """The window sizes' ranges (declared once, on the fields) hold for a config made in Python too:
    a one-line :class:`ConfigError` naming the field and its range."""
    fields = {f.name: f for f in dataclasses.fields(IngestConfig)}
    for name in ("tile_px", "align_window_px"):
        value, rng = getattr(config, name), fields[name].metadata["range"]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in rng:
            shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
            raise ConfigError(f"configuration: [ingest] {name}: must be {rng}, got {shown}")


# ----------------------------------------------------------------------------------- band groups


def _band_mean(data: np.ndarray, idx: list[int]) -> np.ndarray:
    out = data[idx[0]].astype(np.float32, copy=True)
    for i in idx[1:]:
        out += data[i]
    out *= np.float32(1.0 / len(idx))
    return out


#: DSTL alignment pairs: group -> (target band indices in the group's file, which are averaged;
#: partner candidate bands already on the stack, of which the best linear mix is used). M's
#: Blue/Green/Red against B/G/R; P (450-800 nm) against R/G/B plus the aligned M bands (red edge and
#: NIR reach into P's range, which R/G/B alone cannot mimic); A1 (SWIR 1210 nm) against the aligned M bands (SWIR follows vegetation and
#: soil as NIR does; fitted on A's grid, where M's blur is moot).
DSTL_ALIGN_PAIRS: dict[str, tuple[list[int], list[str]]] = {
    "M": ([1, 2, 4], ["R", "G", "B"]),
    "P": ([0], ["R", "G", "B"] + [f"M{i}" for i in range(1, 9)]),
    "A": ([0], [f"M{i}" for i in range(1, 9)]),
}


def _processing_order(scene: Scene, dstl: bool) -> list[int]:
    """Indices of the non-reference files in the order they are aligned. DSTL: M first (against
    RGB), then P and A, which may then draw on the aligned M bands (P spans 450-800 nm, red edge
    included; SWIR follows NIR more than RGB). User scenes: finest to coarsest."""
    idx = list(range(1, len(scene.files)))
    if dstl:
        rank = {"M": 0, "P": 1, "A": 2}
        idx.sort(key=lambda i: rank.get(scene.files[i].group, 3))
    return idx


@dataclass
class _Group:
    """One band file: its bands' place in the stack and how its pixels reach the reference grid.

    ``geom``: where its pixels lie on the reference grid when the grids are axis-aligned (the fit
    runs on the group's own grid then), else None; ``fast``: resampled by the numba cubic-spline
    path (axis-aligned and ``resampling = "cubic_spline"``), else by GDAL. ``src_t``/``src_crs``,
    ``ref_t``/``dst_crs``: the transforms and CRSs GDAL warps between. Once the offset is known
    (:meth:`place`): ``taps`` (whole-axis cubic-spline taps, fast path) or ``warp_t`` (the source
    transform with the offset removed, GDAL path)."""

    bf: BandFile
    reader: BandReader
    start: int
    stop: int
    is_ref: bool
    geom: GroupGeometry | None
    fast: bool
    src_t: Affine
    src_crs: str | None
    ref_t: Affine
    dst_crs: str | None
    taps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    warp_t: Affine | None = None

    @property
    def info(self) -> RasterInfo:
        return self.reader.info

    def place(self, dx: float, dy: float, height: int, width: int) -> None:
        """Fold the offset (dx, dy) into the group's mapping onto the reference grid."""
        if self.is_ref:
            return
        if self.fast:
            ax, ay = self.geom.resample_axes(dx, dy)
            ix, wx = axis_weights(width, self.info.width, *ax)
            iy, wy = axis_weights(height, self.info.height, *ay)
            self.taps = (ix, wx, iy, wy)
        else:
            self.warp_t = _shifted_src_transform(self.ref_t, self.src_t, dx, dy)


def _source_window(g: _Group, src_t: Affine, rows: tuple[int, int], cols: tuple[int, int],
                   ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The rows and columns of ``g``'s file that GDAL needs to warp (source transform ``src_t``) onto
    reference rows ``rows``, columns ``cols``: the window's outline mapped into the file, plus a halo
    of the widest kernel (lanczos, 3 px) stretched by the scale; None when the file does not reach
    the window."""
    (r0, r1), (c0, c1) = rows, cols
    t = np.linspace(0.0, 1.0, 9)
    xs = np.concatenate([c0 + (c1 - c0) * t, np.full(9, float(c1)), c0 + (c1 - c0) * t, np.full(9, float(c0))])
    ys = np.concatenate([np.full(9, float(r0)), r0 + (r1 - r0) * t, np.full(9, float(r1)), r0 + (r1 - r0) * t])
    wx, wy = g.ref_t @ (xs, ys)
    if g.src_crs and g.dst_crs and g.src_crs != g.dst_crs:
        from rasterio.warp import transform

        wx, wy = transform(g.dst_crs, g.src_crs, list(wx), list(wy))
    sc, sr = ~src_t @ (np.asarray(wx), np.asarray(wy))
    scale = max(1.0, (sc.max() - sc.min()) / max(1, c1 - c0), (sr.max() - sr.min()) / max(1, r1 - r0))
    halo = int(math.ceil(4.0 * scale)) + 2
    y0, y1 = max(0, int(math.floor(sr.min())) - halo), min(g.info.height, int(math.ceil(sr.max())) + halo)
    x0, x1 = max(0, int(math.floor(sc.min())) - halo), min(g.info.width, int(math.ceil(sc.max())) + halo)
    if y0 >= y1 or x0 >= x1:
        return None
    return (y0, y1), (x0, x1)


class _Plan:
    """A scene being stacked: its groups (band files open), grid, offsets; renders windows."""

    def __init__(self, scene: Scene, config: IngestConfig, files: contextlib.ExitStack):
        self.scene, self.config = scene, config
        self.dstl = _is_dstl(scene)
        if self.dstl and scene.dstl_extent is None:
            raise InputError("scene id not in grid_sizes.csv", getattr(scene, "grid_sizes", None), scene.id)
        # Every file open (header and band count checked) first: a missing or broken file fails
        # before any pixel is read.
        readers = [files.enter_context(BandReader(bf, scene.id, config.max_out_of_range_share))
                   for bf in scene.files]
        infos = [r.info for r in readers]
        self.names = scene.bands
        if len(set(self.names)) != len(self.names):
            raise InputError(f"band names repeat: {' '.join(self.names)}", scene=scene.id)
        ref_info = infos[0]
        self.height, self.width = H, W = ref_info.height, ref_info.width
        if self.dstl:
            self.grid = dstl_grid(scene.dstl_extent[0], scene.dstl_extent[1], H, W)
        else:
            self.grid = Grid(H, W, ref_info.transform, ref_info.crs)
        starts = np.cumsum([0] + [len(bf.bands) for bf in scene.files])
        self.groups: list[_Group] = []
        for fi, (bf, reader, info) in enumerate(zip(scene.files, readers, infos)):
            if fi == 0:
                geom, src_t, ref_t, src_crs, dst_crs = GroupGeometry(0.0, 0.0, 1.0, 1.0), Affine.identity(), \
                    Affine.identity(), None, None
            elif self.dstl:  # every file covers the scene's footprint: georeferencing ignored
                geom = GroupGeometry(0.0, 0.0, W / info.width, H / info.height)
                src_t, ref_t = Affine.scale(W / info.width, H / info.height), Affine.identity()
                src_crs = dst_crs = None
            else:
                geom = _axis_aligned_geometry(ref_info, info)
                src_t, ref_t = info.transform, ref_info.transform
                src_crs, dst_crs = info.crs, ref_info.crs
            fast = geom is not None and config.resampling == "cubic_spline"
            self.groups.append(_Group(bf, reader, int(starts[fi]), int(starts[fi + 1]), fi == 0, geom, fast,
                                      src_t, src_crs, ref_t, dst_crs))
        self.offsets: dict[str, tuple[float, float, float]] = {}
        self.spreads: dict[str, float] = {}

    # ------------------------------------------------------------------------------- rendering

    def render_group(self, g: _Group, rows: tuple[int, int], cols: tuple[int, int], out: np.ndarray,
                     tally: bool = False) -> np.ndarray:
        """``g``'s bands on reference rows ``rows``, columns ``cols`` into ``out`` (contiguous,
        (bands, rows, cols) float32): read (reference group; ``tally`` counts the window towards its
        bit-depth check) or read with the kernel's halo and resampled onto the window."""
        if g.is_ref:
            return g.reader.read(rows, cols, out=out, tally=tally)
        if g.fast:
            ix, wx, iy, wy = g.taps
            jx, vx, x0, x1 = window_taps(ix, wx, *cols)
            jy, vy, y0, y1 = window_taps(iy, wy, *rows)
            return resample_taps(g.reader.read((y0, y1), (x0, x1)), out, jx, vx, jy, vy)
        self._warp(g, g.warp_t, rows, cols, out)
        return np.clip(out, 0.0, 1.0, out=out)

    def _warp(self, g: _Group, src_t: Affine, rows: tuple[int, int], cols: tuple[int, int], out: np.ndarray,
              bands: list[int] | None = None) -> np.ndarray:
        """GDAL's warp of ``g``'s file (``bands`` of it; several averaged into one when ``out`` is 2-D)
        with source transform ``src_t`` onto the reference window: only the part of the file it
        needs is read (a halo around the window's outline); 0 where the file does not reach."""
        out[...] = 0.0
        win = _source_window(g, src_t, rows, cols)
        if win is None:
            return out
        (y0, _), (x0, _) = win
        src = g.reader.read(*win, bands=bands)
        if out.ndim == 2:
            src = _band_mean(src, list(range(src.shape[0])))
        resample_rasterio(src, src_t @ Affine.translation(x0, y0), g.src_crs, out,
                          g.ref_t @ Affine.translation(cols[0], rows[0]), g.dst_crs, self.config.resampling,
                          self.config.gdal_threads)
        return out

    def render_bands(self, idx: list[int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """Stack bands ``idx`` (of placed groups) over a reference window: (len(idx), h, w) float32,
        one array, rendered as the stack's windows are."""
        h, w = rows[1] - rows[0], cols[1] - cols[0]
        out = np.empty((len(idx), h, w), np.float32)
        pos = {b: k for k, b in enumerate(idx)}
        for g in self.groups:
            mine = [b for b in range(g.start, g.stop) if b in pos]
            if not mine:
                continue
            ks = [pos[b] for b in mine]
            if len(mine) == g.stop - g.start and ks == list(range(ks[0], ks[0] + len(ks))):
                self.render_group(g, rows, cols, out[ks[0]:ks[0] + len(ks)])
            else:
                tmp = self.render_group(g, rows, cols, np.empty((g.stop - g.start, h, w), np.float32))
                for b, k in zip(mine, ks):
                    out[k] = tmp[b - g.start]
        return out

    def render_window(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """Every band of the stack over a reference window, (bands, h, w) float32: the one function
        both the writer and :func:`build_stack` make a stack with. The reference group's windows
        count towards its bit-depth check (the windows partition the grid)."""
        out = np.empty((len(self.names), rows[1] - rows[0], cols[1] - cols[0]), np.float32)
        for g in self.groups:
            self.render_group(g, rows, cols, out[g.start:g.stop], tally=g.is_ref)
        return out

    def windows(self, rows: tuple[int, int] | None = None) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        """The stack's windows (reference px), or those of the rows ``rows`` (a part of the scene,
        starting on a 512-px block) taken as a grid of its own."""
        r0, r1 = rows if rows is not None else (0, self.height)
        for a0, a1, c0, c1 in _windows(r1 - r0, self.width, self.config.tile_px):
            yield (r0 + a0, r0 + a1), (c0, c1)

    # ------------------------------------------------------------------------------- alignment

    def align(self, progress: Callable[[int], None] | None = None) -> None:
        """Check every file's bit depth, find and fold in each group's offset (see build_stack)."""
        config, scene, names = self.config, self.scene, self.names
        ref = self.groups[0]
        placed = list(range(ref.start, ref.stop))  # stack bands already on the grid (partner candidates)
        if progress:
            progress(1)
        for fi in _processing_order(scene, self.dstl):
            g = self.groups[fi]
            g.reader.check()  # the bit depth, before the group is fitted (the reference: as it is written)
            dx = dy = 0.0
            info = g.info
            if config.align and min(info.height, info.width) < MIN_ALIGN_PX:
                # Too few pixels for a sub-pixel fit (A of a scene under ~1000 px): left unaligned and
                # recorded as such (correlation NaN, an empty cell in offsets.csv), never a guessed fit.
                self.offsets[g.bf.group] = (0.0, 0.0, float("nan"))
            elif config.align:
                # DSTL: the pairs above. User groups: the mean of the group's bands against the best
                # linear mix of the reference group's bands.
                pair = DSTL_ALIGN_PAIRS.get(g.bf.group) if self.dstl else None
                if pair is not None and all(n in names and names.index(n) in placed for n in pair[1]):
                    t_idx, c_idx = pair[0], [names.index(n) for n in pair[1]]
                else:
                    t_idx, c_idx = list(range(len(g.bf.bands))), list(range(ref.start, ref.stop))
                images = _FitImages(self, g, c_idx, t_idx)
                # rotated / other CRS: the target is compared on the reference grid (GDAL warps it)
                geom = g.geom if g.geom is not None else GroupGeometry(0.0, 0.0, 1.0, 1.0)
                size = _fit_window_size(geom, config)
                h, w = images.target_shape
                dx, dy, corr = fit_offset(images, geom, config, scene=scene.id, group=g.bf.group,
                                          window=central_window(h, w, size))
                self.offsets[g.bf.group] = (dx, dy, corr)
                if min(h, w) >= config.grid_min_px:
                    spread, _ = spread_from(images, geom, (dx, dy), config, scene=scene.id, group=g.bf.group,
                                            window_px=size, warn_px=config.spread_warn_px)
                    if np.isfinite(spread):  # NaN: no window of the grid could be fitted
                        self.spreads[g.bf.group] = spread
            g.place(dx, dy, self.height, self.width)
            placed = sorted(placed + list(range(g.start, g.stop)))
            if progress:
                progress(1)
        self.offsets = {bf.group: self.offsets[bf.group] for bf in scene.files if bf.group in self.offsets}
        self.spreads = {bf.group: self.spreads[bf.group] for bf in scene.files if bf.group in self.spreads}

    def place(self, offsets: dict[str, tuple[float, float, float]], spreads: dict[str, float]) -> None:
        """Place every group with offsets fitted before (by :meth:`align` in another process, for a
        scene stacked in parts) instead of fitting them: a group without one was left where it lies.
        The non-reference files' bit depths were checked by that fit, so they are not read again."""
        for g in self.groups:
            dx, dy, _ = offsets.get(g.bf.group, (0.0, 0.0, float("nan")))
            g.place(dx, dy, self.height, self.width)
        self.offsets, self.spreads = dict(offsets), dict(spreads)


def _fit_window_size(geom: GroupGeometry, config: IngestConfig, window_px: int = 512) -> tuple[int, int]:
    """(height, width) of a group's fit windows, in its own pixels: at most ``window_px`` and at most
    ``config.align_window_px`` reference px, but never under MIN_ALIGN_PX."""
    return (min(window_px, max(MIN_ALIGN_PX, int(config.align_window_px // geom.sy))),
            min(window_px, max(MIN_ALIGN_PX, int(config.align_window_px // geom.sx))))


class _FitImages:
    """What a group's fit reads (:class:`sattag.ingest.align.FitImages`), from the files: the
    candidate bands ``cand_idx`` rendered on the reference grid as the stack renders them, and the
    target, the mean of the group's bands ``t_idx``, on its own grid (GDAL path: warped onto the
    reference grid)."""

    def __init__(self, plan: _Plan, group: _Group, cand_idx: list[int], t_idx: list[int]):
        self._plan, self._group, self._cand, self._t_idx = plan, group, cand_idx, list(t_idx)
        self.ref_shape = (plan.height, plan.width)
        self.target_shape = ((group.info.height, group.info.width) if group.geom is not None
                             else self.ref_shape)
        self.n_partner = len(cand_idx)

    def partner(self, region: tuple[int, int, int, int]) -> list[np.ndarray]:
        y0, y1, x0, x1 = region
        return list(self._plan.render_bands(self._cand, (y0, y1), (x0, x1)))

    def target(self, window: tuple[int, int, int, int]) -> np.ndarray:
        r0, c0, h, w = window
        g = self._group
        if g.geom is not None:
            raw = g.reader.read((r0, r0 + h), (c0, c0 + w), bands=self._t_idx)
            return _band_mean(raw, list(range(len(self._t_idx))))
        return self._plan._warp(g, g.src_t, (r0, r0 + h), (c0, c0 + w), np.empty((h, w), np.float32),
                                bands=self._t_idx)


@contextlib.contextmanager
def _planned(scene: Scene, config: IngestConfig, progress: Callable[[int], None] | None,
             fitted: tuple[dict, dict] | None = None) -> Iterator[_Plan]:
    """The scene's files open and every group aligned, inside a GDAL environment whose block cache
    holds about one window of the stack as uint16 (at least 64 MiB), not GDAL's default 5 % of RAM
    (which a large scene's reads and writes would fill). ``fitted``: the (offsets, spreads) a fit
    found before, used instead of fitting again (:meth:`_Plan.place`)."""
    _check_window_settings(config)
    side = max(_BLOCK, config.tile_px // _BLOCK * _BLOCK)
    with gdal_block_cache(max(64 << 20, len(scene.bands) * side * side * 2)), \
            rasterio.Env(GDAL_NUM_THREADS=config.gdal_threads), contextlib.ExitStack() as files:
        plan = _Plan(scene, config, files)
        if fitted is None:
            plan.align(progress)
        else:
            plan.place(*fitted)
        yield plan


# ------------------------------------------------------------------------------------ build (memory)


def build_stack(scene: Scene, config: IngestConfig | None = None,
                progress: Callable[[int], None] | None = None) -> Stack:
    """All bands of ``scene`` as one aligned float32 (bands, H, W) stack in [0, 1] on the reference grid.

    The values :func:`ingest_scene` writes, made by the same window function (so ``write_stack`` of
    this stack and ``ingest_scene``'s file hold the same pixels); the stack itself is whole in
    memory (4 bytes a pixel a band): for small scenes and tests. Large scenes: :func:`ingest_scene`.

    DSTL scenes: every file covers the scene's footprint (georeferencing ignored), the grid is
    ``dstl_grid(Xmax, Ymin, H, W)`` of the R file. User scenes: the reference file's transform and
    CRS; other groups are placed by their own transforms. With ``config.align`` each non-reference
    group's offset is found on a central window of at most ``config.align_window_px`` reference px
    (and 512 of its own) and removed (``Stack.offsets``). ``progress(1)`` after each band group's
    offset is known.

    Offsets across the scene: for a group whose image (the one the fit runs on) is at least
    ``config.grid_min_px`` on each side (default 1536: three 512-px fit windows side by side, so they do not
    overlap; inf: never) the offset is also measured on a 3x3 grid of windows
    (:func:`sattag.ingest.align.offset_spread`); the largest distance from the centre's offset is
    recorded (``Stack.offset_spread``, ``spread_px`` in offsets.csv) and above
    ``config.spread_warn_px`` an :class:`~sattag.ingest.align.AlignmentWarning` names scene, group and
    spread. The stack applies the centre's offset either way. Cost: 8 more fits per measured group,
    on one mix of the candidate bands; on a full-size (3400 px) generated DSTL scene only P is
    measured, build_stack took 6.8-7.6 s without and 8.7-11.3 s with (a loaded 2-core machine).
    Smaller group images pay nothing.

    Raises :class:`InputError` (missing/corrupt file, wrong band count, bit depth contradicted, id
    not in grid_sizes.csv), :class:`AlignmentError` (failed fit) naming file/scene and fault, or
    :class:`~sattag.errors.ConfigError` (``tile_px`` or ``align_window_px`` out of range).
    """
    config = config or IngestConfig()
    with _planned(scene, config, progress) as plan:
        data = np.empty((len(plan.names), plan.height, plan.width), np.float32)
        for rows, cols in plan.windows():
            data[:, rows[0]:rows[1], cols[0]:cols[1]] = plan.render_window(rows, cols)
        return Stack(scene.id, data, plan.names, plan.grid, plan.offsets, plan.spreads)


# ------------------------------------------------------------------------------------------- cache


@numba.njit(parallel=True, cache=True)
def _to_u16(src, out):  # pragma: no cover - compiled
    # round(clip(v, 0, 1) * 65535) in one pass (numpy would need three over 46 MB per band)
    flat_in = src.reshape(-1)
    flat_out = out.reshape(-1)
    n = flat_in.size
    chunk = 1 << 16
    for c in numba.prange((n + chunk - 1) // chunk):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            v = flat_in[i]
            if v <= 0.0:
                flat_out[i] = 0
            elif v >= 1.0:
                flat_out[i] = 65535
            else:
                flat_out[i] = np.uint16(v * np.float32(_SCALE) + np.float32(0.5))


def _profile(grid: Grid, n: int, threads: int) -> dict:
    """The cache GeoTIFF's creation options (see the module docstring)."""
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=n, dtype="uint16", tiled=True,
                   blockxsize=_BLOCK, blockysize=_BLOCK, interleave="band", compress="zstd", zstd_level=1,
                   num_threads=threads, bigtiff="IF_SAFER", transform=grid.transform)
    if grid.crs:
        profile["crs"] = grid.crs
    return profile


def _header_tags(scene_id: str, offsets: dict, spreads: dict | None) -> dict[str, str]:
    """The SATTAG_* tags of a cache stack that describe it (the percentiles apart)."""
    tags = dict(SATTAG_FORMAT=STACK_FORMAT, SATTAG_SCENE=scene_id,
                SATTAG_OFFSETS=json.dumps({g: list(v) for g, v in offsets.items()}))
    if spreads:
        tags["SATTAG_OFFSET_SPREAD"] = json.dumps({g: float(v) for g, v in spreads.items()})
    return tags


def _write_header(dst, bands: tuple[str, ...], scene_id: str, offsets: dict, spreads: dict | None) -> None:
    """Band names, scales and the SATTAG_* tags of a cache stack."""
    n = len(bands)
    for i, name in enumerate(bands):
        dst.set_band_description(i + 1, name)
    dst.scales = (1.0 / _SCALE,) * n
    dst.offsets = (0.0,) * n
    dst.update_tags(**_header_tags(scene_id, offsets, spreads))


def percentiles_tag(sample: np.ndarray, step: int) -> str:
    """The ``SATTAG_BAND_PERCENTILES`` tag (:func:`read_band_percentiles`): each band's 1st and 99th
    percentiles over ``sample``, the stack's stored uint16 counts (bands, rows, cols) at every
    ``step``-th row and column, taken as the values :func:`read_stack` gives. A band at a time: the
    float copy is one band's."""
    low, high = np.empty(sample.shape[0]), np.empty(sample.shape[0])
    for i in range(sample.shape[0]):
        low[i], high[i] = np.nanpercentile(sample_values(sample[i]).ravel(), [1.0, 99.0])
    return json.dumps({"step": step, "1": low.tolist(), "99": high.tolist()})


def write_stack(stack: Stack, path: str | Path, threads: int = IngestConfig.gdal_threads) -> Path:
    """Write ``stack`` as the cache GeoTIFF at ``path`` (temporary name, then rename); returns path.

    See the module docstring for the format.
    """
    path = Path(path)
    n, H, W = stack.data.shape
    if len(stack.bands) != n:
        raise InputError(f"{len(stack.bands)} band names for {n} bands", path, stack.scene_id)
    buf = np.empty((H, W), np.uint16)
    step = sample_step(H, W)
    sample = np.empty((n, -(-H // step), -(-W // step)), np.uint16)
    with atomic_path(path) as tmp:
        with rasterio.Env(GDAL_NUM_THREADS=threads):
            with rasterio.open(tmp, "w", **_profile(stack.grid, n, threads)) as dst:
                for i in range(n):
                    band = stack.data[i]
                    if not band.flags.c_contiguous:
                        band = np.ascontiguousarray(band)
                    _to_u16(band, buf)
                    dst.write(buf, i + 1)
                    sample[i] = buf[::step, ::step]
                # a plain Stack may lack offset_spread
                _write_header(dst, stack.bands, stack.scene_id, stack.offsets, getattr(stack, "offset_spread", None))
                dst.update_tags(SATTAG_BAND_PERCENTILES=percentiles_tag(sample, step))
    return path


def write_stack_vrt(path: str | Path, head: Stack, parts: list[tuple[tuple[int, int], Path]],
                    percentiles: str) -> Path:
    """Write the stack of a scene stacked in parts (:mod:`sattag.ingest.parts`) as a GDAL VRT at
    ``path`` (temporary name, then rename): the grid, band names, scales and SATTAG_* tags of
    ``head`` (a :class:`Stack` without data) as :func:`write_stack` records them, ``percentiles`` the
    ``SATTAG_BAND_PERCENTILES`` tag (:func:`percentiles_tag`), and ``parts``: each part file's rows
    ``(r0, r1)`` of the stack (the full width; its bands the stack's, as uint16 counts). Part files
    are named relative to the VRT, so the stacks folder can move. Every reader of this module reads
    it as it reads the one-file stack. Returns ``path``."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    grid, n = head.grid, len(head.bands)
    root = ET.Element("VRTDataset", rasterXSize=str(grid.width), rasterYSize=str(grid.height))
    if grid.crs:
        ET.SubElement(root, "SRS").text = rasterio.crs.CRS.from_user_input(grid.crs).to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in grid.transform.to_gdal())
    tags = _header_tags(head.scene_id, head.offsets, getattr(head, "offset_spread", None))
    tags["SATTAG_BAND_PERCENTILES"] = percentiles
    with rasterio.open(parts[0][1]) as first:  # what GDAL reports of a GeoTIFF of this grid (AREA_OR_POINT)
        tags = {**{k: v for k, v in first.tags().items() if not k.startswith("SATTAG_")}, **tags}
    meta = ET.SubElement(root, "Metadata")
    for key, value in tags.items():
        ET.SubElement(meta, "MDI", key=key).text = value
    for b in range(1, n + 1):
        band = ET.SubElement(root, "VRTRasterBand", dataType="UInt16", band=str(b), blockXSize=str(_BLOCK),
                             blockYSize=str(_BLOCK))
        ET.SubElement(band, "Description").text = head.bands[b - 1]
        ET.SubElement(band, "Offset").text = "0"
        ET.SubElement(band, "Scale").text = repr(1.0 / _SCALE)
        for (r0, r1), part in parts:
            src = ET.SubElement(band, "SimpleSource")
            ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = \
                Path(os.path.relpath(Path(part).resolve(), path.resolve().parent)).as_posix()
            ET.SubElement(src, "SourceBand").text = str(b)
            ET.SubElement(src, "SourceProperties", RasterXSize=str(grid.width), RasterYSize=str(r1 - r0),
                          DataType="UInt16", BlockXSize=str(_BLOCK), BlockYSize=str(_BLOCK))
            ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(grid.width), ySize=str(r1 - r0))
            ET.SubElement(src, "DstRect", xOff="0", yOff=str(r0), xSize=str(grid.width), ySize=str(r1 - r0))
    ET.indent(root)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8")
    return path


def stack_is_complete(path: str | Path) -> bool:
    """True when ``path`` is a finished cache stack (written whole, then renamed; header readable);
    a stack in parts (a VRT) only while every part file it names is there."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
            return (tags.get("SATTAG_FORMAT") == STACK_FORMAT and src.count > 0
                    and all(d for d in src.descriptions) and all(Path(f).is_file() for f in src.files))
    except RasterioError:
        return False


def _read_env(threads: int) -> rasterio.Env:
    """GDAL's settings for reading a stack with ``threads`` threads: decompression, and a VRT's
    reads of its part files (GDAL 3.10 would otherwise read those on every core)."""
    return rasterio.Env(GDAL_NUM_THREADS=threads, VRT_NUM_THREADS=threads)


def read_stack(path: str | Path, threads: int = IngestConfig.gdal_threads) -> Stack:
    """Read a cache stack written by :func:`write_stack`: float32 (bands, H, W) in [0, 1], band names,
    grid (transform, CRS), offsets and offset spreads (none for a stack written before they were
    recorded). Raises :class:`InputError` when it is not one."""
    return _read(Path(path), with_data=True, threads=threads)


def read_stack_metadata(path: str | Path) -> Stack:
    """The header of a cache stack: band names, grid, offsets and scene id, without reading pixels
    (``data`` is None). Cheap: what a resumed run needs to know about a finished stack."""
    return _read(Path(path), with_data=False)


def read_stack_window(path: str | Path, rows: tuple[int, int], cols: tuple[int, int],
                      threads: int = IngestConfig.gdal_threads) -> np.ndarray:
    """Pixels of a window of a cache stack: float32 (bands, r1 - r0, c1 - c0) in [0, 1], the same values
    :func:`read_stack` gives there (``rows = (r0, r1)``, ``cols = (c0, c1)``, reference px, end
    exclusive, inside the grid). Reads only the stack's blocks under the window: what a tile of a
    scene too large for memory needs. Raises :class:`InputError` naming the file."""
    path = Path(path)
    (r0, r1), (c0, c1) = rows, cols
    try:
        with _read_env(threads), rasterio.open(path) as src:
            if not (0 <= r0 < r1 <= src.height and 0 <= c0 < c1 <= src.width):
                raise InputError(f"window rows {r0}:{r1}, cols {c0}:{c1} is not inside the stack's "
                                 f"{src.height} x {src.width} grid", path)
            window = Window(c0, r0, c1 - c0, r1 - r0)
            data = np.empty((src.count, r1 - r0, c1 - c0), np.float32)
            buf = np.empty((r1 - r0, c1 - c0), src.dtypes[0])
            for i in range(src.count):
                src.read(i + 1, out=buf, window=window)
                scale = src.scales[i] if src.dtypes[i] != "float32" else 1.0
                np.multiply(buf, np.float32(scale), out=data[i], casting="unsafe")
    except RasterioError as e:
        raise InputError(f"cannot read stack (truncated or corrupt?): {e}", path) from e
    return data


def read_band_percentiles(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The 1st and 99th percentiles of each band that :func:`ingest_scene` recorded, measured on the
    stack's values at every :func:`sattag.scene.sample_step`-th row and column: two float64 (B,)
    arrays, or None for a stack written without them (:func:`write_stack`, or before they were)."""
    try:
        with rasterio.open(path) as src:
            text = src.tags().get("SATTAG_BAND_PERCENTILES")
    except RasterioError as e:
        raise InputError(f"cannot read stack (truncated or corrupt?): {e}", path) from e
    if not text:
        return None
    d = json.loads(text)
    return np.asarray(d["1"], np.float64), np.asarray(d["99"], np.float64)


def read_stack_sample(path: str | Path, step: int, threads: int = IngestConfig.gdal_threads) -> np.ndarray:
    """Every ``step``-th row and column of a cache stack, starting at 0: float32 (bands, ceil(H / step),
    ceil(W / step)), equal to ``read_stack(path).data[:, ::step, ::step]`` but read a band of rows at
    a time, so memory follows the sample, not the scene."""
    path = Path(path)
    try:
        with _read_env(threads), rasterio.open(path) as src:
            n, H, W = src.count, src.height, src.width
            out = np.empty((n, -(-H // step), -(-W // step)), np.float32)
            for r0, r1, s0, s1 in sampled_row_bands(H, step):
                for i in range(n):
                    buf = src.read(i + 1, window=Window(0, r0, W, r1 - r0))
                    scale = src.scales[i] if src.dtypes[i] != "float32" else 1.0
                    out[i, s0:s1] = buf[::step, ::step] * np.float32(scale)
    except RasterioError as e:
        raise InputError(f"cannot read stack (truncated or corrupt?): {e}", path) from e
    return out


def _read(path: Path, with_data: bool, threads: int = IngestConfig.gdal_threads) -> Stack:
    if not path.is_file():
        raise InputError("stack file missing", path)
    data = None
    try:
        with _read_env(threads):
            with rasterio.open(path) as src:
                tags = src.tags()
                if tags.get("SATTAG_FORMAT") != STACK_FORMAT:
                    raise InputError("not a sattag stack (no SATTAG_FORMAT tag)", path)
                n, H, W = src.count, src.height, src.width
                if with_data:
                    data = np.empty((n, H, W), np.float32)
                    buf = np.empty((H, W), src.dtypes[0])
                    for i in range(n):
                        src.read(i + 1, out=buf)
                        scale = src.scales[i] if src.dtypes[i] != "float32" else 1.0
                        np.multiply(buf, np.float32(scale), out=data[i], casting="unsafe")
                bands = tuple(src.descriptions)
                crs = src.crs.to_string() if src.crs else None
                grid = Grid(H, W, src.transform, crs)
                offsets = {g: tuple(float(x) for x in v)
                           for g, v in json.loads(tags.get("SATTAG_OFFSETS", "{}")).items()}
                spreads = {g: float(v) for g, v in json.loads(tags.get("SATTAG_OFFSET_SPREAD", "{}")).items()}
                scene_id = tags.get("SATTAG_SCENE", path.stem)
    except RasterioError as e:
        raise InputError(f"cannot read stack (truncated or corrupt?): {e}", path) from e
    return Stack(scene_id, data, bands, grid, offsets, spreads)


def check_stack_space(scene: Scene, path: str | Path) -> None:
    """Raise :class:`~sattag.errors.DiskSpaceError` when the disk of ``path`` has less room than the
    scene's stack could take: every band as uint16 on the reference grid, uncompressed (the file is
    zstd-compressed, so this is an upper bound). From the headers alone, before any pixel is read."""
    from sattag._files import check_free_space

    info = raster_info(scene.files[0], scene.id)
    need = len(scene.bands) * info.height * info.width * 2
    check_free_space(Path(path).parent, need, f"the stack ({len(scene.bands)} bands of {info.height} x "
                     f"{info.width} px)", scene=scene.id)


class _StackOnDisk(Stack):
    """The stack :func:`ingest_scene` wrote: header in memory (bands, grid, offsets, spreads), ``data``
    read from the file when first used (never, when only the offsets are wanted)."""

    def __init__(self, scene_id: str, bands: tuple[str, ...], grid: Grid, offsets: dict, offset_spread: dict,
                 path: Path, threads: int):
        self._path, self._threads = Path(path), threads
        super().__init__(scene_id, None, bands, grid, offsets, offset_spread)

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data = read_stack(self._path, self._threads).data
        return self._data

    @data.setter
    def data(self, value) -> None:
        self._data = value


def ingest_scene(scene: Scene, path: str | Path, config: IngestConfig | None = None,
                 progress: Callable[[int], None] | None = None) -> Stack | None:
    """Build and cache the stack of ``scene`` at ``path`` window by window (``config.tile_px``), in
    memory that follows the window, not the scene; None (nothing done) when a complete stack is
    already there.

    Returns the stack's header (bands, grid, offsets, spreads); its ``data`` is read back from
    ``path`` when first used. The file is written under a temporary name and renamed when complete:
    any error (a bad file, a failed fit, values beyond the bit depth found in a late window) leaves
    nothing at ``path`` and no temporary behind. Errors as :func:`build_stack`.
    """
    if stack_is_complete(path):
        return None
    config = config or IngestConfig()
    _check_window_settings(config)
    check_stack_space(scene, path)
    threads = config.gdal_threads
    with _planned(scene, config, progress) as plan, atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **_profile(plan.grid, len(plan.names), threads)) as dst:
            # Every step-th row and column, as read back: the band percentiles of the scene, recorded
            # so that a later stage need not read the whole stack again to find them.
            sample = write_windows(plan, dst, plan.windows())
            _write_header(dst, plan.names, scene.id, plan.offsets, plan.spreads)
            dst.update_tags(SATTAG_BAND_PERCENTILES=percentiles_tag(sample, sample_step(plan.height, plan.width)))
        stack = _StackOnDisk(scene.id, plan.names, plan.grid, plan.offsets, plan.spreads, Path(path), threads)
    return stack


def sample_values(sample: np.ndarray) -> np.ndarray:
    """The uint16 counts of a stack's sample (:func:`write_windows`) as the float32 values
    :func:`read_stack` gives for them."""
    return sample * np.float32(1.0 / _SCALE)


def sample_rows(rows: tuple[int, int], step: int) -> tuple[int, int]:
    """The rows (or columns) of a stack's sample grid (every ``step``-th of the scene's, from 0) that
    fall in the scene's rows ``rows = (r0, r1)``: ``(i0, i1)``, end exclusive."""
    return -(-rows[0] // step), -(-rows[1] // step)


def write_windows(plan: "_Plan", dst, windows, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Render ``windows`` (reference px) of a planned scene, convert them to uint16 and write each into
    the open dataset ``dst`` at its place less ``origin`` (the dataset's first row and column in the
    scene). Returns the stored counts of the scene's sample grid (every
    :func:`sattag.scene.sample_step`-th row and column of the scene, from 0) that the windows cover:
    uint16 (bands, rows, cols), the sample rows and columns of the rectangle the windows fill."""
    n = len(plan.names)
    step = sample_step(plan.height, plan.width)
    oy, ox = origin
    ys, xs = sample_rows((oy, oy + dst.height), step), sample_rows((ox, ox + dst.width), step)
    sample = np.zeros((n, ys[1] - ys[0], xs[1] - xs[0]), np.uint16)
    flat = np.empty(0, np.uint16)
    for rows, cols in windows:
        block = plan.render_window(rows, cols)
        h, w = block.shape[1:]
        window = Window(cols[0] - ox, rows[0] - oy, w, h)
        # As many bands at a time as fit in _U16_BUFFER bytes (at least one): few calls for
        # small windows (each numba call has a fixed cost), a bounded buffer for large ones.
        per = max(1, min(n, _U16_BUFFER // (h * w * 2)))
        if flat.size < per * h * w:
            flat = np.empty(per * h * w, np.uint16)
        (i0, i1), (j0, j1) = sample_rows(rows, step), sample_rows(cols, step)
        r, c = (-rows[0]) % step, (-cols[0]) % step
        for b0 in range(0, n, per):
            b1 = min(n, b0 + per)
            buf = flat[:(b1 - b0) * h * w].reshape(b1 - b0, h, w)
            _to_u16(block[b0:b1], buf)
            dst.write(buf, indexes=list(range(b0 + 1, b1 + 1)), window=window)
            sample[b0:b1, i0 - ys[0]:i1 - ys[0], j0 - xs[0]:j1 - xs[0]] = buf[:, r::step, c::step]
        del block
    return sample

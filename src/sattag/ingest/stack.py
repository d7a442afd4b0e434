"""A scene's band files -> one aligned float32 stack on the reference grid, and its GeoTIFF cache.

:func:`build_stack` reads the reference group straight into the stack, then per other group: reads
it, finds its offset against the reference (:mod:`sattag.ingest.align`, on the group's own grid),
and resamples it onto the reference grid once, with the offset folded into that one warp
(:mod:`sattag.ingest.resample`).

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
scene, ``SATTAG_OFFSET_SPREAD`` (JSON ``{group: spread_px}``) describe the stack; CRS and transform
are the grid's.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numba
import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError

from sattag._files import atomic_path
from sattag.config import IngestConfig
from sattag.errors import InputError
from sattag.ingest.align import MIN_ALIGN_PX, GroupGeometry, estimate_offset, offset_spread
from sattag.ingest.bands import RasterInfo, raster_info, read_band_file
from sattag.ingest.discover import DstlScene
from sattag.ingest.resample import resample_axis_aligned, resample_rasterio
from sattag.scene import Grid, Scene, Stack, dstl_grid

__all__ = ["build_stack", "write_stack", "read_stack", "stack_is_complete", "ingest_scene", "STACK_FORMAT"]

STACK_FORMAT = "sattag-stack-1"
_SCALE = 65535.0


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
    return ref_t * Affine.translation(-dx, -dy) * ~ref_t * group_t


# ------------------------------------------------------------------------------------ build (memory)


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


def build_stack(scene: Scene, config: IngestConfig | None = None,
                progress: Callable[[int], None] | None = None) -> Stack:
    """All bands of ``scene`` as one aligned float32 (bands, H, W) stack in [0, 1] on the reference grid.

    DSTL scenes: every file covers the scene's footprint (georeferencing ignored), the grid is
    ``dstl_grid(Xmax, Ymin, H, W)`` of the R file. User scenes: the reference file's transform and
    CRS; other groups are placed by their own transforms. With ``config.align`` each non-reference
    group's offset is found and removed (``Stack.offsets``). ``progress(1)`` after each band group.

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
    not in grid_sizes.csv) or :class:`AlignmentError` (failed fit) naming file/scene and fault.
    """
    config = config or IngestConfig()
    dstl = _is_dstl(scene)
    if dstl and scene.dstl_extent is None:
        raise InputError("scene id not in grid_sizes.csv", getattr(scene, "grid_sizes", None), scene.id)
    # Every header first: a missing or broken file fails before any heavy work.
    infos = [raster_info(bf, scene.id) for bf in scene.files]
    ref_bf, ref_info = scene.files[0], infos[0]
    H, W = ref_info.height, ref_info.width
    names = scene.bands
    if len(set(names)) != len(names):
        raise InputError(f"band names repeat: {' '.join(names)}", scene=scene.id)
    data = np.empty((len(names), H, W), np.float32)
    pos = 0
    read_band_file(ref_bf, data[pos:pos + len(ref_bf.bands)], scene=scene.id,
                   max_out_of_range_share=config.max_out_of_range_share)
    pos += len(ref_bf.bands)
    if progress:
        progress(1)
    if dstl:
        grid = dstl_grid(scene.dstl_extent[0], scene.dstl_extent[1], H, W)
    else:
        grid = Grid(H, W, ref_info.transform, ref_info.crs)
    offsets: dict[str, tuple[float, float, float]] = {}
    spreads: dict[str, float] = {}
    starts = np.cumsum([0] + [len(bf.bands) for bf in scene.files])
    placed = list(range(len(ref_bf.bands)))  # stack bands already on the grid (partner candidates)
    for fi in _processing_order(scene, dstl):
        bf, info = scene.files[fi], infos[fi]
        sl = slice(int(starts[fi]), int(starts[fi + 1]))
        native, _ = read_band_file(bf, scene=scene.id, max_out_of_range_share=config.max_out_of_range_share)
        if dstl:
            geom = GroupGeometry(0.0, 0.0, W / info.width, H / info.height)
            src_t, ref_t = Affine.scale(W / info.width, H / info.height), Affine.identity()
            src_crs = dst_crs = None
        else:
            geom = _axis_aligned_geometry(ref_info, info)
            src_t, ref_t = info.transform, ref_info.transform
            src_crs, dst_crs = info.crs, ref_info.crs
        fast = geom is not None and config.resampling == "cubic_spline"
        dx = dy = 0.0
        too_small = min(info.height, info.width) < MIN_ALIGN_PX
        if config.align and too_small:
            # Too few pixels for a sub-pixel fit (A of a scene under ~1000 px): left unaligned and
            # recorded as such (correlation NaN, an empty cell in offsets.csv), never a guessed fit.
            offsets[bf.group] = (0.0, 0.0, float("nan"))
        elif config.align:
            # DSTL: the pairs above. User groups: the mean of the group's bands against the best
            # linear mix of the reference group's bands. Candidates are views into the stack.
            pair = DSTL_ALIGN_PAIRS.get(bf.group) if dstl else None
            if pair is not None and all(n in names and names.index(n) in placed for n in pair[1]):
                t_idx, c_idx = pair[0], [names.index(n) for n in pair[1]]
            else:
                t_idx, c_idx = list(range(len(bf.bands))), list(range(len(ref_bf.bands)))
            target = _band_mean(native, t_idx)
            cands = [data[i] for i in c_idx]
            if geom is None:  # rotated / other CRS: compare on the reference grid (GDAL warp first)
                on_ref = np.empty((H, W), np.float32)
                resample_rasterio(target, src_t, src_crs, on_ref, ref_t, dst_crs, config.resampling,
                                  config.gdal_threads)
                target, geom_fit = on_ref, GroupGeometry(0.0, 0.0, 1.0, 1.0)
            else:
                geom_fit = geom
            dx, dy, corr = estimate_offset(cands, target, geom_fit, config, scene=scene.id,
                                           group=bf.group)
            offsets[bf.group] = (dx, dy, corr)
            if min(target.shape) >= config.grid_min_px:
                spread, _ = offset_spread(cands, target, geom_fit, (dx, dy), config, scene=scene.id,
                                          group=bf.group, warn_px=config.spread_warn_px)
                if np.isfinite(spread):  # NaN: no window of the grid could be fitted
                    spreads[bf.group] = spread
            del target, cands
        if fast:
            ax, ay = geom.resample_axes(dx, dy)
            resample_axis_aligned(native, data[sl], ax, ay)
        else:
            resample_rasterio(native, _shifted_src_transform(ref_t, src_t, dx, dy), src_crs, data[sl],
                              ref_t, dst_crs, config.resampling, config.gdal_threads)
            np.clip(data[sl], 0.0, 1.0, out=data[sl])
        placed = sorted(placed + list(range(sl.start, sl.stop)))
        del native
        if progress:
            progress(1)
    offsets = {bf.group: offsets[bf.group] for bf in scene.files if bf.group in offsets}
    spreads = {bf.group: spreads[bf.group] for bf in scene.files if bf.group in spreads}
    return Stack(scene.id, data, names, grid, offsets, spreads)


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


def write_stack(stack: Stack, path: str | Path, threads: int = IngestConfig.gdal_threads) -> Path:
    """Write ``stack`` as the cache GeoTIFF at ``path`` (temporary name, then rename); returns path.

    See the module docstring for the format.
    """
    path = Path(path)
    n, H, W = stack.data.shape
    if len(stack.bands) != n:
        raise InputError(f"{len(stack.bands)} band names for {n} bands", path, stack.scene_id)
    profile = dict(driver="GTiff", width=W, height=H, count=n, dtype="uint16", tiled=True,
                   blockxsize=512, blockysize=512, interleave="band", compress="zstd", zstd_level=1,
                   num_threads=threads, bigtiff="IF_SAFER", transform=stack.grid.transform)
    if stack.grid.crs:
        profile["crs"] = stack.grid.crs
    buf = np.empty((H, W), np.uint16)
    with atomic_path(path) as tmp:
        with rasterio.Env(GDAL_NUM_THREADS=threads):
            with rasterio.open(tmp, "w", **profile) as dst:
                for i in range(n):
                    band = stack.data[i]
                    if not band.flags.c_contiguous:
                        band = np.ascontiguousarray(band)
                    _to_u16(band, buf)
                    dst.write(buf, i + 1)
                    dst.set_band_description(i + 1, stack.bands[i])
                dst.scales = (1.0 / _SCALE,) * n
                dst.offsets = (0.0,) * n
                dst.update_tags(SATTAG_FORMAT=STACK_FORMAT, SATTAG_SCENE=stack.scene_id,
                                SATTAG_OFFSETS=json.dumps({g: list(v) for g, v in stack.offsets.items()}))
                spread = getattr(stack, "offset_spread", None)  # a plain Stack has none
                if spread:
                    dst.update_tags(SATTAG_OFFSET_SPREAD=json.dumps({g: float(v) for g, v in spread.items()}))
    return path


def stack_is_complete(path: str | Path) -> bool:
    """True when ``path`` is a finished cache stack (written whole, then renamed; header readable)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
            return (tags.get("SATTAG_FORMAT") == STACK_FORMAT and src.count > 0
                    and all(d for d in src.descriptions))
    except RasterioError:
        return False


def read_stack(path: str | Path, threads: int = IngestConfig.gdal_threads) -> Stack:
    """Read a cache stack written by :func:`write_stack`: float32 (bands, H, W) in [0, 1], band names,
    grid (transform, CRS), offsets and offset spreads (none for a stack written before they were
    recorded). Raises :class:`InputError` when it is not one."""
    return _read(Path(path), with_data=True, threads=threads)


def read_stack_metadata(path: str | Path) -> Stack:
    """The header of a cache stack: band names, grid, offsets and scene id, without reading pixels
    (``data`` is None). Cheap: what a resumed run needs to know about a finished stack."""
    return _read(Path(path), with_data=False)


def _read(path: Path, with_data: bool, threads: int = IngestConfig.gdal_threads) -> Stack:
    if not path.is_file():
        raise InputError("stack file missing", path)
    data = None
    try:
        with rasterio.Env(GDAL_NUM_THREADS=threads):
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


def ingest_scene(scene: Scene, path: str | Path, config: IngestConfig | None = None,
                 progress: Callable[[int], None] | None = None) -> Stack | None:
    """Build and cache the stack of ``scene`` at ``path``; None (nothing done) when a complete stack
    is already there."""
    if stack_is_complete(path):
        return None
    config = config or IngestConfig()
    check_stack_space(scene, path)
    stack = build_stack(scene, config, progress)
    write_stack(stack, path, config.gdal_threads)
    return stack

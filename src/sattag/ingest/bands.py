"""Reading one band file: checks, then counts -> float32 in [0, 1] by bit depth.

Every fault is an :class:`InputError` naming the file: missing, not a readable raster, truncated or
corrupt, wrong band count, or values contradicting the declared bit depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError

from sattag.errors import InputError
from sattag.scene import BandFile

__all__ = ["RasterInfo", "raster_info", "read_band_file", "to_unit_float"]


@dataclass(frozen=True)
class RasterInfo:
    """Header facts of a band file."""

    height: int
    width: int
    count: int
    dtype: str
    transform: Affine
    crs: str | None


def _open(path: Path, scene: str | None):
    if not path.exists():
        raise InputError("band file missing", path, scene)
    try:
        return rasterio.open(path)
    except RasterioError as e:
        raise InputError(f"not a readable raster (truncated or corrupt?): {e}", path, scene) from e


def _crs_text(crs) -> str | None:
    if crs is None:
        return None
    return crs.to_string()


def raster_info(bf: BandFile, scene: str | None = None) -> RasterInfo:
    """Open ``bf.path``'s header and check its band count against ``bf.bands``."""
    with _open(bf.path, scene) as src:
        info = RasterInfo(src.height, src.width, src.count, src.dtypes[0], src.transform,
                          _crs_text(src.crs))
    _check_count(bf, info.count, scene)
    return info


def _check_count(bf: BandFile, count: int, scene: str | None) -> None:
    if count != len(bf.bands):
        raise InputError(f"{count} band(s) in the file, expected {len(bf.bands)} "
                         f"({' '.join(bf.bands)}) for group {bf.group}", bf.path, scene)


def to_unit_float(raw: np.ndarray, bit_depth: int | None, out: np.ndarray, *, path: Path,
                  scene: str | None = None, max_out_of_range_share: float = 0.001) -> np.ndarray:
    """Write ``raw / (2**bit_depth - 1)`` into ``out`` (float32, same shape), clipped to [0, 1].

    ``bit_depth=None``: ``raw`` already holds values in [0, 1]. More than ``max_out_of_range_share``
    of the values outside the range means the bit depth is wrong: :class:`InputError`.
    """
    top = 1.0 if bit_depth is None else float(2**bit_depth - 1)
    n = raw.size
    if np.issubdtype(raw.dtype, np.unsignedinteger):
        n_bad = int(np.count_nonzero(raw > top)) if top < np.iinfo(raw.dtype).max else 0
    else:
        n_bad = int(np.count_nonzero(~((raw >= 0) & (raw <= top))))  # NaN counts as bad
    if n_bad > max_out_of_range_share * n:
        what = f"{bit_depth}-bit range 0..{int(top)}" if bit_depth is not None else "range [0, 1]"
        raise InputError(f"{n_bad / n:.2%} of values outside the {what} (max {float(np.nanmax(raw)):g}): "
                         "wrong bit depth?", path, scene)
    if bit_depth is None and raw.dtype == np.float32:
        np.copyto(out, raw)
    else:
        np.multiply(raw, np.float32(1.0 / top), out=out, dtype=np.float32, casting="unsafe")
    if n_bad:
        np.nan_to_num(out, copy=False, nan=0.0)
        np.clip(out, 0.0, 1.0, out=out)
    return out


def read_band_file(bf: BandFile, out: np.ndarray | None = None, *, scene: str | None = None,
                   max_out_of_range_share: float = 0.001) -> tuple[np.ndarray, RasterInfo]:
    """Read all bands of ``bf`` as float32 (bands, h, w) in [0, 1]; returns ``(data, info)``.

    ``out``: an optional float32 (bands, h, w) array (e.g. a slice of the stack) to read into, so
    the reference group lands in the stack without a copy.
    """
    with _open(bf.path, scene) as src:
        info = RasterInfo(src.height, src.width, src.count, src.dtypes[0], src.transform,
                          _crs_text(src.crs))
        _check_count(bf, info.count, scene)
        shape = (info.count, info.height, info.width)
        if out is None:
            out = np.empty(shape, np.float32)
        elif out.shape != shape:
            raise InputError(f"size {shape[1:]} differs from the reference grid {out.shape[1:]}",
                             bf.path, scene)
        try:
            for i in range(info.count):
                # One band at a time: the raw buffer stays one band big.
                raw = src.read(i + 1)
                to_unit_float(raw, bf.bit_depth, out[i], path=bf.path, scene=scene,
                              max_out_of_range_share=max_out_of_range_share)
        except RasterioError as e:
            raise InputError(f"cannot read band {i + 1} (truncated or corrupt file?): {e}",
                             bf.path, scene) from e
    return out, info

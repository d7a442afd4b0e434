"""Reading band files: checks, then counts -> float32 in [0, 1] by bit depth, whole or window by window.

Every fault is an :class:`InputError` naming the file: missing, not a readable raster, truncated or
corrupt, wrong band count, or values contradicting the declared bit depth.

:class:`BandReader` keeps a file open and reads windows of it (what the windowed stack builder
needs: memory follows the window, not the file). The bit-depth check counts, per band, the values
outside the range over the whole band; :meth:`BandReader.check` does that in strips of rows, so a
file of any size is checked in bounded memory, and :meth:`BandReader.read` can tally the windows it
reads instead when they partition the file (the reference group's windows do).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from sattag.errors import InputError
from sattag.scene import BandFile

__all__ = ["BandReader", "check_tallies", "RasterInfo", "raster_info", "read_band_file", "to_unit_float", "out_of_range"]


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


def _info(src) -> RasterInfo:
    return RasterInfo(src.height, src.width, src.count, src.dtypes[0], src.transform, _crs_text(src.crs))


def raster_info(bf: BandFile, scene: str | None = None) -> RasterInfo:
    """Open ``bf.path``'s header and check its band count against ``bf.bands``."""
    with _open(bf.path, scene) as src:
        info = _info(src)
    _check_count(bf, info.count, scene)
    return info


def _check_count(bf: BandFile, count: int, scene: str | None) -> None:
    if count != len(bf.bands):
        raise InputError(f"{count} band(s) in the file, expected {len(bf.bands)} "
                         f"({' '.join(bf.bands)}) for group {bf.group}", bf.path, scene)


def _top(bit_depth: int | None) -> float:
    return 1.0 if bit_depth is None else float(2**bit_depth - 1)


def out_of_range(raw: np.ndarray, bit_depth: int | None) -> int:
    """How many values of ``raw`` lie outside ``[0, 2**bit_depth - 1]`` (``[0, 1]`` without a bit
    depth); NaN counts as outside."""
    top = _top(bit_depth)
    if np.issubdtype(raw.dtype, np.unsignedinteger):
        return int(np.count_nonzero(raw > top)) if top < np.iinfo(raw.dtype).max else 0
    return int(np.count_nonzero(~((raw >= 0) & (raw <= top))))


def _range_error(bit_depth: int | None, n_bad: int, n: int, top_seen: float, path: Path,
                 scene: str | None) -> InputError:
    top = _top(bit_depth)
    what = f"{bit_depth}-bit range 0..{int(top)}" if bit_depth is not None else "range [0, 1]"
    return InputError(f"{n_bad / n:.2%} of values outside the {what} (max {top_seen:g}): wrong bit depth?",
                      path, scene)


def _convert(raw: np.ndarray, bit_depth: int | None, out: np.ndarray) -> np.ndarray:
    """``raw / (2**bit_depth - 1)`` into ``out`` (float32), NaN -> 0, clipped to [0, 1]. Each value on
    its own: the same whether a band is converted whole or window by window."""
    if bit_depth is None and raw.dtype == np.float32:
        np.copyto(out, raw)
    else:
        np.multiply(raw, np.float32(1.0 / _top(bit_depth)), out=out, dtype=np.float32, casting="unsafe")
    if raw.dtype.kind == "f":
        np.nan_to_num(out, copy=False, nan=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def to_unit_float(raw: np.ndarray, bit_depth: int | None, out: np.ndarray, *, path: Path,
                  scene: str | None = None, max_out_of_range_share: float = 0.001) -> np.ndarray:
    """Write ``raw / (2**bit_depth - 1)`` into ``out`` (float32, same shape), clipped to [0, 1].

    ``bit_depth=None``: ``raw`` already holds values in [0, 1]. More than ``max_out_of_range_share``
    of the values outside the range means the bit depth is wrong: :class:`InputError`.
    """
    n_bad = out_of_range(raw, bit_depth)
    if n_bad > max_out_of_range_share * raw.size:
        raise _range_error(bit_depth, n_bad, raw.size, float(np.nanmax(raw)), path, scene)
    return _convert(raw, bit_depth, out)


def read_band_file(bf: BandFile, out: np.ndarray | None = None, *, scene: str | None = None,
                   max_out_of_range_share: float = 0.001) -> tuple[np.ndarray, RasterInfo]:
    """Read all bands of ``bf`` as float32 (bands, h, w) in [0, 1]; returns ``(data, info)``.

    ``out``: an optional float32 (bands, h, w) array (e.g. a slice of the stack) to read into, so
    the reference group lands in the stack without a copy.
    """
    with _open(bf.path, scene) as src:
        info = _info(src)
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


class BandReader:
    """One band file, open, read window by window as float32 in [0, 1] (a context manager).

    ``read`` returns a window's bands converted as :func:`to_unit_float` does, value by value (so a
    band read in windows equals the band read whole). The bit-depth check is the whole band's: more
    than ``max_out_of_range_share`` of its values out of range is an :class:`InputError` naming the
    file, as :func:`read_band_file` raises. :meth:`check` counts every band in strips of rows;
    ``read(..., tally=True)`` counts the windows read instead (callers whose windows partition the
    file), raising as soon as a band's count passes its share; any other read raises when the window
    alone holds more bad values than the whole band may (a wrong bit depth shows at the first read).
    """

    def __init__(self, bf: BandFile, scene: str | None = None, max_out_of_range_share: float = 0.001):
        self.bf, self.scene, self.share = bf, scene, max_out_of_range_share
        self._src = _open(bf.path, scene)
        try:
            self.info = _info(self._src)
            _check_count(bf, self.info.count, scene)
        except BaseException:
            self._src.close()
            raise
        self._allowed = self.share * self.info.height * self.info.width  # per band
        self._bad = np.zeros(self.info.count, np.int64)
        self._seen = 0  # pixels per band tallied so far
        self._max = np.full(self.info.count, -np.inf)  # max over tallied windows holding bad values

    def __enter__(self) -> "BandReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._src.close()

    def _raw(self, rows: tuple[int, int], cols: tuple[int, int], bands: list[int]) -> np.ndarray:
        (r0, r1), (c0, c1) = rows, cols
        try:
            return self._src.read([b + 1 for b in bands], window=Window(c0, r0, c1 - c0, r1 - r0))
        except RasterioError as e:
            raise InputError(f"cannot read rows {r0}-{r1}, columns {c0}-{c1} (truncated or corrupt file?): "
                             f"{e}", self.bf.path, self.scene) from e

    def _count(self, raw: np.ndarray, bands: list[int], tally: bool) -> None:
        n = raw[0].size
        for k, b in enumerate(bands):
            bad = out_of_range(raw[k], self.bf.bit_depth)
            if not bad and not tally:
                continue
            if bad:
                self._max[b] = max(self._max[b], float(np.nanmax(raw[k])) if raw.dtype.kind == "f"
                                   else float(raw[k].max()))
            if tally:
                self._bad[b] += bad
            total = int(self._bad[b]) if tally else bad
            if total > self._allowed:
                seen = self._seen + n if tally else n
                raise _range_error(self.bf.bit_depth, total, seen, float(self._max[b]), self.bf.path, self.scene)
        if tally:
            self._seen += n

    def read(self, rows: tuple[int, int], cols: tuple[int, int], bands: list[int] | None = None,
             out: np.ndarray | None = None, tally: bool = False) -> np.ndarray:
        """Bands ``bands`` (indices into the file's bands; default all) of rows ``[r0, r1)``, columns
        ``[c0, c1)`` as float32 (len(bands), r1 - r0, c1 - c0) in [0, 1], into ``out`` when given.
        ``tally``: count the window towards the file's bit-depth check (every band must be read)."""
        bands = list(range(self.info.count)) if bands is None else list(bands)
        raw = self._raw(rows, cols, bands)
        self._count(raw, bands, tally)
        if out is None:
            out = np.empty(raw.shape, np.float32)
        for k in range(len(bands)):
            _convert(raw[k], self.bf.bit_depth, out[k])
        return out

    def tallied(self) -> tuple[np.ndarray, np.ndarray]:
        """What ``read(..., tally=True)`` has counted so far, per band of the file: values outside the
        range (int64 (count,)) and the largest of them (float64 (count,), -inf where none): the share
        of the whole file's check that these reads make, to be added up with the other shares
        (:func:`check_tallies`) when other processes read the rest of the file."""
        return self._bad.copy(), self._max.copy()

    def check(self, strip_px: int = 1 << 22) -> None:
        """The bit-depth check of the whole file, in strips of about ``strip_px`` pixels per band
        (bounded memory, whatever the file's size). Raises :class:`InputError` naming the file."""
        h, w = self.info.height, self.info.width
        rows = max(1, strip_px // max(w, 1))
        bands = list(range(self.info.count))
        self._bad[:] = 0
        self._seen = 0
        for r0 in range(0, h, rows):
            self._count(self._raw((r0, min(h, r0 + rows)), (0, w), bands), bands, tally=True)


def check_tallies(bf: BandFile, bad: np.ndarray, top_seen: np.ndarray, n_px: int, scene: str | None = None,
                  max_out_of_range_share: float = 0.001) -> None:
    """The bit-depth check of a whole file from the tallies of reads that partition it
    (:meth:`BandReader.tallied`, summed; ``top_seen``: their maxima's maximum), ``n_px`` pixels per
    band: the :class:`InputError` naming the file that :class:`BandReader` raises, when more than
    ``max_out_of_range_share`` of a band's values are out of range."""
    for b in range(len(bad)):
        if bad[b] > max_out_of_range_share * n_px:
            raise _range_error(bf.bit_depth, int(bad[b]), n_px, float(top_seen[b]), bf.path, scene)

"""Writing outputs so that nothing is ever half-written: a temporary name, then a rename."""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Mapping


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it to ``final``, on error remove it.

    The temporary name keeps the suffix so that format drivers (GDAL, pyarrow) recognise it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


def check_free_space(folder: str | Path, need_bytes: int, what: str, scene: str | None = None) -> None:
    """Raise :class:`~sattag.errors.DiskSpaceError` naming ``folder`` (and ``scene``) when its disk has
    less than ``need_bytes`` free for ``what`` (e.g. "the stack"): checked before a large
    write starts, so that a full disk stops it with one line instead of a half-written file and a
    GDAL error. ``folder`` need not exist yet (its nearest existing parent is asked)."""
    from sattag.errors import DiskSpaceError

    probe = Path(folder).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need_bytes > free:
        raise DiskSpaceError(f"not enough disk space for {what}: it needs up to {_gb(need_bytes)}, "
                             f"{_gb(free)} free", folder, scene)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")


def sweep_temporaries(root: str | Path) -> int:
    """Remove temporary files that :func:`atomic_path` left under ``root`` when a process was killed
    mid-write (nothing else can clean them: SIGKILL runs no handler). Returns how many were removed.

    Only call this on a folder no other process is writing to.
    """
    removed = 0
    for path in Path(root).rglob(".*.tmp*"):
        if _TEMPORARY.match(path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def write_text(final: str | Path, text: str) -> Path:
    """Write ``text`` to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
    return Path(final)


def write_csv(final: str | Path, header: Iterable[str], rows: Iterable[Iterable]) -> Path:
    """Write a CSV file atomically."""
    with atomic_path(final) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(header))
            w.writerows(rows)
    return Path(final)


#: Column kinds of :func:`read_csv` and the dtypes they become.
CSV_KINDS = {"str": "str", "int": "int64", "Int64": "Int64", "float": "float64", "bool": "bool"}


def read_csv(path: str | Path, columns: Mapping[str, str], optional: Mapping[str, str] | None = None):
    """A CSV file that sattag wrote, as a DataFrame of ``columns`` (in that order) with explicit dtypes.

    ``columns``: name -> kind: ``"str"`` (text; an empty cell is ``""``), ``"int"`` (int64, every cell
    filled), ``"Int64"`` (nullable integer, ``<NA>`` for an empty cell), ``"float"`` (float64, NaN for an
    empty cell), ``"bool"`` (``True``/``False``). ``optional``: more columns (name -> kind, after
    ``columns``) that files written before they existed lack: read as all-empty cells then (so only
    the kinds that allow an empty cell: ``"str"``, ``"Int64"``, ``"float"``). Other columns of the
    file are left out. Raises :class:`sattag.errors.InputError` naming the file for a file that cannot
    be read, a missing column, or a cell that is not of its column's kind.
    """
    import pandas as pd

    from sattag.errors import InputError

    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError as e:
        raise InputError(f"no {path.name} ({e.strerror})", path) from e
    except OSError as e:
        raise InputError(f"cannot read {path.name}: {e.strerror or e}", path) from e
    except pd.errors.EmptyDataError:
        raise InputError("empty file: no header", path) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        raise InputError(f"not a CSV file ({e})", path) from e
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError(f"no column {', '.join(map(repr, missing))} (columns: {list(raw.columns)})", path)
    for name in optional or {}:
        if name not in raw.columns:
            raw[name] = ""
    columns = {**columns, **(optional or {})}
    out = {}
    for name, kind in columns.items():
        text = raw[name].astype(str)
        if kind == "str":
            out[name] = text
            continue
        if kind == "bool":
            bad = ~text.isin(["True", "False"])
            if bad.any():
                raise InputError(f"column {name!r}, row {int(bad.to_numpy().argmax()) + 1}: "
                                 f"{text[bad].iloc[0]!r} is not True or False", path)
            out[name] = text == "True"
            continue
        empty = text.str.strip() == ""
        if kind == "int" and empty.any():
            raise InputError(f"column {name!r}, row {int(empty.to_numpy().argmax()) + 1}: empty cell "
                             "where a whole number belongs", path)
        values = pd.to_numeric(text.where(~empty, "nan"), errors="coerce")
        bad = values.isna() & ~empty & ~text.str.strip().str.lower().isin(["nan"])
        if kind == "int":
            bad |= values.isna()
        if kind in ("int", "Int64"):
            bad |= values.notna() & (values != values.round())
        if bad.any():
            raise InputError(f"column {name!r}, row {int(bad.to_numpy().argmax()) + 1}: "
                             f"{text[bad].iloc[0]!r} is not a {'whole ' if kind != 'float' else ''}number", path)
        out[name] = values.astype(CSV_KINDS[kind])
    return pd.DataFrame(out, index=pd.RangeIndex(len(raw)))



def cog_overview_factors(height: int, width: int, blocksize: int = 512) -> list[int]:
    """Decimation factors 2, 4, 8, ... of a COG's internal overviews: halve until the last overview
    fits in one block (as GDAL's COG driver does with ``OVERVIEWS=AUTO``); none for an image that
    already fits."""
    factors, f = [], 2
    while max(height, width) / (f // 2) > blocksize:
        factors.append(f)
        f *= 2
    return factors


def _checked_descriptions(descriptions: Iterable[str] | None, count: int, who: str) -> list[str] | None:
    descriptions = list(descriptions) if descriptions is not None else None
    if descriptions is not None and len(descriptions) != count:
        raise ValueError(f"{who}: {len(descriptions)} descriptions for {count} bands")
    return descriptions


def _describe_for_cog(ds, tags: Mapping[str, str] | None, descriptions: list[str] | None, blocksize: int,
                      overview_resampling: str) -> None:
    """Tags, band descriptions and overviews (:func:`cog_overview_factors`) of the dataset ``ds`` that
    GDAL's COG driver then copies (in memory for :func:`write_cog`, a staging file for
    :func:`write_cog_windows`)."""
    from rasterio.enums import Resampling

    if tags:
        ds.update_tags(**tags)
    for i, d in enumerate(descriptions or [], start=1):
        ds.set_band_description(i, d)
    factors = cog_overview_factors(ds.height, ds.width, blocksize)
    if factors:
        ds.build_overviews(factors, Resampling[overview_resampling])


def _cog_options(compress: str, blocksize: int, predictor: bool) -> dict:
    """GDAL COG driver options of :func:`write_cog` and :func:`write_cog_windows` (overviews built
    beforehand)."""
    options = dict(driver="COG", compress=compress, blocksize=blocksize, bigtiff="IF_SAFER",
                   overviews="FORCE_USE_EXISTING")
    if compress.lower() == "deflate":
        # Level 1: 3x faster than GDAL's default 6 on a scene's masks, files ~1.3x larger.
        options["level"] = 1
    if predictor:
        options["predictor"] = "YES"
    return options


def write_cog(final: str | Path, data, *, transform, crs=None, descriptions: Iterable[str] | None = None,
              tags: Mapping[str, str] | None = None, compress: str = "deflate", predictor: bool = False,
              blocksize: int = 512, overview_resampling: str = "nearest") -> Path:
    """Write ``data`` ((bands, H, W) or (H, W)) atomically as a Cloud Optimized GeoTIFF: tiled
    (``blocksize`` px), compressed, with internal overviews (:func:`cog_overview_factors`), so a
    viewer opens it at any zoom at once.

    How: the array goes into an in-memory (GDAL MEM) dataset, its overviews are built there with
    ``overview_resampling`` (``"nearest"``: every overview pixel is one of the image's pixels, so
    class values stay 0/1 and ids stay ids; ``"mode"`` too, slower), then GDAL's COG driver copies it
    to disk in COG layout (IFDs first, smallest overview's tiles first, full resolution last). Costs
    1.33x the array's size in memory for the copy; no temporary file beside the output (the COG
    driver's own overview pass would leave a ``.ovr.tmp`` there) and measured ~25 % faster than
    letting the driver build the overviews.

    ``descriptions`` (one per band) and ``tags`` (dataset metadata) are kept in the file;
    ``crs=None`` writes no CRS (DSTL grids). ``predictor``: horizontal differencing (integers: ids).
    No ``NBITS=1`` for 0/1 masks (GeoTIFF's 1-bit samples): through the COG driver it logs spurious
    "pixels clipped" warnings for every image whose size is not a multiple of the block; DEFLATE
    packs 0/1 bytes nearly as well. Written to a temporary name, then renamed (:func:`atomic_path`).
    """
    import warnings

    import numpy as np
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as gdal_copy

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"write_cog: data of shape {data.shape} is neither (H, W) nor (bands, H, W)")
    count, height, width = data.shape
    descriptions = _checked_descriptions(descriptions, count, "write_cog")
    options = _cog_options(compress, blocksize, predictor)
    with atomic_path(final) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # DSTL grids have no CRS
        with MemoryFile() as memfile, memfile.open(driver="MEM", count=count, height=height, width=width,
                                                   dtype=data.dtype.name, transform=transform, crs=crs) as mem:
            mem.write(data)
            _describe_for_cog(mem, tags, descriptions, blocksize, overview_resampling)
            gdal_copy(mem, tmp, **options)
    return Path(final)


#: Least GDAL block cache while :func:`write_cog_windows` works (bytes): below it, the COG copy reads
#: blocks of the staging file again and again.
COG_WINDOWS_CACHE_BYTES = 64 << 20


@contextlib.contextmanager
def gdal_block_cache(n_bytes: int) -> Iterator[None]:
    """GDAL's block cache limited to ``n_bytes`` inside (rasterio takes a number as bytes), and put back
    after: rasterio leaves an inner Env's cache size behind when an outer Env is open. GDAL's default
    (5 % of RAM) fills up with the dirty blocks of a large file being written, whatever the file."""
    import rasterio
    from rasterio._env import get_gdal_config, set_gdal_config  # rasterio's own (private) accessors

    before = get_gdal_config("GDAL_CACHEMAX")
    try:
        with rasterio.Env(GDAL_CACHEMAX=int(n_bytes)):
            yield
    finally:
        if before is not None and get_gdal_config("GDAL_CACHEMAX") != before:
            set_gdal_config("GDAL_CACHEMAX", int(before))


def write_cog_windows(final: str | Path, pieces, *, count: int, height: int, width: int, dtype: str,
                      transform, crs=None, descriptions: Iterable[str] | None = None,
                      tags: Mapping[str, str] | None = None, compress: str = "deflate", predictor: bool = False,
                      blocksize: int = 512, overview_resampling: str = "nearest") -> Path:
    """The file :func:`write_cog` writes, built from pieces so that the whole image is never in memory.

    ``pieces``: an iterable of ``(row0, col0, array)``, ``array`` (count, h, w) (or (h, w) for one
    band) of ``dtype``, placed at ``row0, col0`` of the (``count``, ``height``, ``width``) image;
    pixels no piece covers are 0. The pieces go into a tiled GeoTIFF beside ``final`` (a hidden
    temporary that :func:`sweep_temporaries` recognises), GDAL builds its overviews from the file
    block by block, then its COG driver copies it to ``final`` in COG layout; the staging file is
    removed.

    Memory: one piece, GDAL's block cache and the overview pass's strip of one band (``blocksize``
    rows of the image's width), whatever the image's height. The block cache is held to two such
    strips (at least :data:`COG_WINDOWS_CACHE_BYTES`): with GDAL's default, 5 % of RAM, the dirty
    blocks of a big scene's image piled up to 1.2 GiB of a 24 GiB machine. The staging file is
    band-interleaved, so that the overviews are built band by band: pixel-interleaved, GDAL builds
    them over all bands at once and, with a small cache, read each block ~10 times (a 10-class masks
    file took 6x longer).
    """
    import warnings

    import numpy as np
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.shutil import copy as gdal_copy
    from rasterio.windows import Window

    final = Path(final)
    descriptions = _checked_descriptions(descriptions, count, "write_cog_windows")
    options = _cog_options(compress, blocksize, predictor)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.stem}-staging.{uuid.uuid4().hex[:8]}.tmp.tif")
    strip = blocksize * width * np.dtype(dtype).itemsize
    try:
        with atomic_path(final) as tmp, warnings.catch_warnings(), \
                gdal_block_cache(max(COG_WINDOWS_CACHE_BYTES, 2 * strip)):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(staging, "w", driver="GTiff", count=count, height=height, width=width,
                               dtype=dtype, transform=transform, crs=crs, tiled=True, blockxsize=blocksize,
                               blockysize=blocksize, bigtiff="IF_SAFER",
                               sparse_ok=True, interleave="band") as dst:
                for row0, col0, array in pieces:
                    array = np.asarray(array, dtype=dtype)
                    if array.ndim == 2:
                        array = array[None]
                    if array.shape[0] != count or row0 < 0 or col0 < 0 or \
                            row0 + array.shape[1] > height or col0 + array.shape[2] > width:
                        raise ValueError(f"write_cog_windows: a piece of shape {array.shape} at "
                                         f"({row0}, {col0}) does not fit a ({count}, {height}, {width}) image")
                    dst.write(array, window=Window(col0, row0, array.shape[2], array.shape[1]))
                _describe_for_cog(dst, tags, descriptions, blocksize, overview_resampling)
            gdal_copy(staging, tmp, **options)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    return final

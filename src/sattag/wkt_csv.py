"""The DSTL WKT CSV format, owned here: its reader of rows and its writer.

``ImageId,ClassType,MultipolygonWKT``: DSTL's ``train_wkt_v4.csv`` (the truth), ``sample_submission.csv``
(the rows a submission must have) and a submission (``RUN/submission.csv``) all share it. One row per
scene and class: ``ImageId`` a scene id (text, e.g. ``6120_2_2``), ``ClassType`` an integer class id,
``MultipolygonWKT`` the class's polygons as WKT in DSTL grid units (``MULTIPOLYGON EMPTY`` for none).

This module knows the format: the header, the integer ClassType, the csv field-size limit the
megabyte WKT fields need, row numbers in messages (data row n is file line n + 1). What a row's WKT
means is the caller's policy: ``sattag.labels.read_wkt_csv`` repairs invalid polygons and merges a
class given twice; ``sattag.evaluate.read_submission_csv`` is strict (a duplicate, a non-polygon or an
unparsable WKT is an error); ``sattag.vectorize.write_submission_csv`` takes only the row order of a
sample submission.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, Collection, Iterable, Iterator, NamedTuple

from sattag._files import atomic_path
from sattag.errors import InputError, SattagError

__all__ = ["HEADER", "WktRow", "read_wkt_rows", "wkt_csv_reader", "write_wkt_csv"]

#: The header of every DSTL WKT CSV.
HEADER: tuple[str, str, str] = ("ImageId", "ClassType", "MultipolygonWKT")


def wkt_csv_reader(f: IO[str]) -> Iterator[list[str]]:
    """``csv.reader`` over a DSTL WKT CSV opened with ``newline=""``.

    Its ``MultipolygonWKT`` fields run to megabytes, past the csv module's default 128 KiB field
    limit. That limit is process-wide; this is the one place sattag raises it (to the largest size).
    """
    if csv.field_size_limit() < sys.maxsize:
        csv.field_size_limit(sys.maxsize)
    return csv.reader(f)


class WktRow(NamedTuple):
    """One data row: ``row`` its number (1 = the first row under the header, file line 2), ``scene``
    the ImageId, ``class_type`` the ClassType, ``wkt`` the MultipolygonWKT text (not parsed)."""

    row: int
    scene: str
    class_type: int
    wkt: str

    @property
    def where(self) -> str:
        """``row n (line n+1)``: how messages name the row."""
        return f"row {self.row} (line {self.row + 1})"


def read_wkt_rows(path: str | Path, *, error: type[SattagError] = InputError,
                  class_ids: Collection[int] | None = None, scene_ids: Collection[str] | None = None,
                  strict: bool = False) -> Iterator[WktRow]:
    """The data rows of a DSTL WKT CSV, in file order (blank lines skipped).

    ``error``: the :class:`~sattag.errors.SattagError` subclass raised, naming the file, the row and
    the scene, for an unreadable file, a wrong header, a row with too few fields, a ClassType that
    is not an integer or (``class_ids`` given) not one of ``class_ids``. ``scene_ids``: yield only
    these scenes' rows (the real truth file is ~140 MB of WKT: one scene should not pay for all),
    others are skipped unchecked. ``strict``: the header is exactly :data:`HEADER` and every row has
    exactly 3 fields (else: the first 3 header names, at least 3 fields).
    """
    path = Path(path)
    wanted = set(scene_ids) if scene_ids is not None else None
    try:
        f = open(path, newline="")
    except OSError as e:
        raise error(f"cannot read WKT CSV: {e.strerror}", path) from e
    with f:
        reader = wkt_csv_reader(f)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as e:
            raise error(f"not a text CSV file ({e})", path) from e
        names = [h.strip().lstrip("\ufeff") for h in header] if header is not None else None
        if names is None or (names != list(HEADER) if strict else names[:3] != list(HEADER)):
            raise error(f"header must be {','.join(HEADER)}, got {header}", path)
        n = 0
        while True:
            try:
                rec = next(reader, None)
            except (UnicodeDecodeError, csv.Error) as e:
                raise error(f"row {n + 1} (line {n + 2}): not a text CSV row ({e})", path) from e
            if rec is None:
                return
            n += 1
            if not rec:
                continue
            where = f"row {n} (line {n + 1})"
            if len(rec) < 3 or (strict and len(rec) != 3):
                raise error(f"{where}: expected 3 fields, got {len(rec)}", path, rec[0])
            scene, ctype, wkt = rec[0], rec[1], rec[2]
            if wanted is not None and scene not in wanted:
                continue
            try:
                cid = int(ctype)
            except ValueError:
                raise error(f"{where}: ClassType {ctype!r} is not an integer", path, scene) from None
            if class_ids is not None and cid not in class_ids:
                raise error(f"{where}: ClassType {cid} is not one of the class table's ids "
                            f"{sorted(class_ids)}", path, scene)
            yield WktRow(n, scene, cid, wkt)


def write_wkt_csv(path: str | Path, rows: Iterable[tuple[str, int, str]]) -> Path:
    """Write a DSTL WKT CSV atomically: :data:`HEADER`, then ``(ImageId, ClassType, WKT)`` rows as given."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(rows)
    return Path(path)

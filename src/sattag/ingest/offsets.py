"""``offsets.csv``: what alignment found and removed, one row per scene and band group (writer and reader).

Columns: ``scene`` (str, the scene id), ``group`` (str, the band group: P, M, A, or a user's group
name), ``dx``, ``dy`` (float, the group's offset against the reference group in reference pixels,
written to 1/1000 px), ``correlation`` (float, the ECC correlation of the fit, written to 4
decimals; an empty cell, NaN when read, for a group left unaligned), ``spread_px`` (float, written to
1/1000 px: how far the offsets measured on a 3x3 grid of windows across the scene lie from the
centre's, :func:`sattag.ingest.align.offset_spread`; an empty cell, NaN when read, where it was not
measured: a group image under ``build_stack``'s ``grid_min_px``, or a file written before the column
existed).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from sattag._files import read_csv, write_csv
from sattag.scene import Stack

__all__ = ["OFFSETS_COLUMNS", "offsets_rows", "read_offsets", "write_offsets"]

#: Columns of ``offsets.csv`` and their kinds (:func:`sattag._files.read_csv`).
OFFSETS_COLUMNS = {"scene": "str", "group": "str", "dx": "float", "dy": "float", "correlation": "float",
                   "spread_px": "float"}

#: Columns a file written before them may lack (read as empty cells: NaN).
_LATER_COLUMNS = ("spread_px",)


def offsets_rows(stack: Stack) -> list[tuple[str, str, float, float, float, float]]:
    """A stack's rows ``(scene, group, dx, dy, correlation, spread_px)`` of ``offsets.csv``;
    ``spread_px`` NaN for a group not measured across the scene."""
    spreads = stack.offset_spread
    return [(stack.scene_id, g, float(v[0]), float(v[1]), float(v[2]), float(spreads.get(g, math.nan)))
            for g, v in stack.offsets.items()]


def _cell(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def write_offsets(path: str | Path, rows: Iterable[Sequence]) -> Path:
    """Write ``offsets.csv`` atomically from rows ``(scene, group, dx, dy, correlation, spread_px)``
    (:func:`offsets_rows`; a row of five, without ``spread_px``, counts as not measured): offsets and
    spread to 1/1000 px, an empty correlation for a group left unaligned (NaN), an empty spread where
    it was not measured (NaN)."""
    out = []
    for row in rows:
        s, g, dx, dy, c = row[:5]
        spread = float(row[5]) if len(row) > 5 else math.nan
        out.append((s, g, f"{dx:.3f}", f"{dy:.3f}", _cell(float(c), 4), _cell(spread, 3)))
    return write_csv(path, OFFSETS_COLUMNS, out)


def read_offsets(path: str | Path) -> pd.DataFrame:
    """Read ``offsets.csv``: the columns of the module docstring with their dtypes; a file written
    before ``spread_px`` existed reads with ``spread_px`` NaN. Raises
    :class:`sattag.errors.InputError` naming the file when it cannot be read or lacks a column."""
    required = {k: v for k, v in OFFSETS_COLUMNS.items() if k not in _LATER_COLUMNS}
    return read_csv(path, required, optional={k: OFFSETS_COLUMNS[k] for k in _LATER_COLUMNS})

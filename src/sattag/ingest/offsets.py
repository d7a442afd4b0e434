"""``offsets.csv``: what alignment found and removed, one row per scene and band group (writer and reader).

Columns: ``scene`` (str, the scene id), ``group`` (str, the band group: P, M, A, or a user's group
name), ``dx``, ``dy`` (float, the group's offset against the reference group in reference pixels,
written to 1/1000 px), ``correlation`` (float, the ECC correlation of the fit, written to 4
decimals; an empty cell, NaN when read, for a group left unaligned).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import pandas as pd

from sattag._files import read_csv, write_csv
from sattag.scene import Stack

__all__ = ["OFFSETS_COLUMNS", "offsets_rows", "read_offsets", "write_offsets"]

#: Columns of ``offsets.csv`` and their kinds (:func:`sattag._files.read_csv`).
OFFSETS_COLUMNS = {"scene": "str", "group": "str", "dx": "float", "dy": "float", "correlation": "float"}


def offsets_rows(stack: Stack) -> list[tuple[str, str, float, float, float]]:
    """A stack's rows ``(scene, group, dx, dy, correlation)`` of ``offsets.csv``."""
    return [(stack.scene_id, g, float(v[0]), float(v[1]), float(v[2])) for g, v in stack.offsets.items()]


def write_offsets(path: str | Path, rows: Iterable[tuple[str, str, float, float, float]]) -> Path:
    """Write ``offsets.csv`` atomically from rows ``(scene, group, dx, dy, correlation)``
    (:func:`offsets_rows`): offsets to 1/1000 px, an empty correlation for a group left unaligned (NaN)."""
    return write_csv(path, OFFSETS_COLUMNS,
                     [(s, g, f"{dx:.3f}", f"{dy:.3f}", f"{c:.4f}" if math.isfinite(c) else "")
                      for s, g, dx, dy, c in rows])


def read_offsets(path: str | Path) -> pd.DataFrame:
    """Read ``offsets.csv``: the columns of the module docstring with their dtypes. Raises
    :class:`sattag.errors.InputError` naming the file when it cannot be read or lacks a column."""
    return read_csv(path, OFFSETS_COLUMNS)

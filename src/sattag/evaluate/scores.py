"""Score files of a run folder (writers and readers): ``scores.csv``, ``cv_scores.csv``, ``cv_summary.csv``.

``scores.csv`` (``sattag score``, ``sattag run``): one row per split, kind and class, held-out first.
Columns: ``split`` (str: ``held-out`` for scenes the models never saw, ``in-sample`` for their
training scenes, ``unknown`` for a submission scored without models), ``kind`` (str: ``polygon``, the
DSTL metric, or ``pixel``), ``scenes`` (int, scenes scored), ``class_id`` (int; 0 =
:data:`sattag.evaluate.MEAN_ID` for the mean of the class scores), ``class`` (str, the class name;
``mean``), ``intersection``, ``union`` (float: areas in scene units squared, or pixel counts; NaN on
the mean row), ``jaccard`` (float; NaN for a class with nothing true and nothing predicted).

``cv_scores.csv`` (``sattag evaluate``): the held-out rows of every fold's ``scores.csv``, with
``fold`` (int, 1..K) added.

``cv_summary.csv`` (``sattag evaluate``): per ``kind`` (str), ``class_id`` (int) and ``class`` (str),
``folds`` (int, folds in which the class has a score) and the held-out Jaccard's ``mean``, ``std``,
``min``, ``max`` over those folds and ``pooled`` (intersections and unions summed over all folds, then
divided) (float, NaN where there is none).

Empty cells are NaN when read; a missing column raises :class:`sattag.errors.InputError` naming the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from sattag._files import atomic_path, read_csv

__all__ = ["CV_SCORES_COLUMNS", "CV_SUMMARY_COLUMNS", "SCORES_COLUMNS", "read_cv_scores", "read_cv_summary",
           "read_scores", "write_cv_scores", "write_cv_summary", "write_scores"]

#: Columns of ``scores.csv`` and their kinds (:func:`sattag._files.read_csv`).
SCORES_COLUMNS = {"split": "str", "kind": "str", "scenes": "int", "class_id": "int", "class": "str",
                  "intersection": "float", "union": "float", "jaccard": "float"}
#: Columns of ``cv_scores.csv``.
CV_SCORES_COLUMNS = {**SCORES_COLUMNS, "fold": "int"}
#: Columns of ``cv_summary.csv``.
CV_SUMMARY_COLUMNS = {"kind": "str", "class_id": "int", "class": "str", "folds": "int", "mean": "float",
                      "std": "float", "min": "float", "max": "float", "pooled": "float"}


def _write(path: str | Path, table: pd.DataFrame, columns: Mapping[str, str]) -> Path:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"a table for {Path(path).name} needs the columns {missing}")
    with atomic_path(path) as tmp:
        table[list(columns)].to_csv(tmp, index=False)
    return Path(path)


def write_scores(path: str | Path, table: pd.DataFrame) -> Path:
    """Write ``scores.csv`` atomically: ``table``'s :data:`SCORES_COLUMNS`, in that order."""
    return _write(path, table, SCORES_COLUMNS)


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read ``scores.csv`` (columns and dtypes: the module docstring)."""
    return read_csv(path, SCORES_COLUMNS)


def write_cv_scores(path: str | Path, table: pd.DataFrame) -> Path:
    """Write ``cv_scores.csv`` atomically: ``table``'s :data:`CV_SCORES_COLUMNS`, in that order."""
    return _write(path, table, CV_SCORES_COLUMNS)


def read_cv_scores(path: str | Path) -> pd.DataFrame:
    """Read ``cv_scores.csv`` (columns and dtypes: the module docstring)."""
    return read_csv(path, CV_SCORES_COLUMNS)


def write_cv_summary(path: str | Path, table: pd.DataFrame) -> Path:
    """Write ``cv_summary.csv`` atomically: ``table``'s :data:`CV_SUMMARY_COLUMNS`, in that order."""
    return _write(path, table, CV_SUMMARY_COLUMNS)


def read_cv_summary(path: str | Path) -> pd.DataFrame:
    """Read ``cv_summary.csv`` (columns and dtypes: the module docstring)."""
    return read_csv(path, CV_SUMMARY_COLUMNS)

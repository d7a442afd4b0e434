"""What a run records about itself: ``failures.csv``, ``timings.csv`` and ``run.json`` (writers and readers).

``failures.csv``: one row per scene that failed at a stage; columns ``scene`` (str), ``stage`` (str),
``error`` (str, the one-line error). A header alone means no failure.

``timings.csv``: one row per task; columns ``stage`` (str), ``scene`` (str; ``*`` for a step of the
whole run: training, scoring, the report), ``seconds`` (float, written to 1/1000 s), ``peak_mib``
(float, the worker process's peak resident memory when the task ended, written to 1 MiB).

``run.json``: one JSON object: ``config`` (the configuration used, :meth:`sattag.config.Config.to_dict`),
``classes`` (the class table, :meth:`sattag.classes.ClassTable.to_records`), ``labels`` (the label
source), ``split`` (training / held-out scenes, or null before the split), ``versions`` (sattag and
the libraries that shape results), ``scenes`` (the scene ids), ``data`` (the data folder),
``started`` and ``finished`` (UTC, ISO 8601; ``finished`` null while the run goes on).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from sattag._files import read_csv, write_csv, write_text
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.engine.scenes import Failure, Timing
from sattag.errors import InputError

__all__ = ["FAILURE_COLUMNS", "TIMING_COLUMNS", "read_failures", "read_run_json", "read_timings",
           "recorded_classes", "write_failures", "write_run_json", "write_timings"]

#: Columns of ``failures.csv`` and their kinds (:func:`sattag._files.read_csv`).
FAILURE_COLUMNS = {"scene": "str", "stage": "str", "error": "str"}
#: Columns of ``timings.csv`` and their kinds.
TIMING_COLUMNS = {"stage": "str", "scene": "str", "seconds": "float", "peak_mib": "float"}


def write_failures(path: str | Path, failures: Iterable[Failure]) -> Path:
    """Write ``failures.csv`` atomically (the header alone when there is none)."""
    return write_csv(path, FAILURE_COLUMNS, [(f.scene, f.stage, f.error) for f in failures])


def read_failures(path: str | Path) -> pd.DataFrame:
    """Read ``failures.csv`` (columns and dtypes: the module docstring); :class:`InputError` naming the
    file when it cannot be read or lacks a column."""
    return read_csv(path, FAILURE_COLUMNS)


def write_timings(path: str | Path, timings: Iterable[Timing]) -> Path:
    """Write ``timings.csv`` atomically: seconds to 1/1000 s, peak memory to 1 MiB."""
    return write_csv(path, TIMING_COLUMNS,
                     [(t.stage, t.scene, f"{t.seconds:.3f}", f"{t.peak_mib:.0f}") for t in timings])


def read_timings(path: str | Path) -> pd.DataFrame:
    """Read ``timings.csv`` (columns and dtypes: the module docstring); :class:`InputError` naming the
    file when it cannot be read or lacks a column."""
    return read_csv(path, TIMING_COLUMNS)


def write_run_json(path: str | Path, record: dict) -> Path:
    """Write ``run.json`` atomically: ``record`` (the keys of the module docstring) as indented JSON;
    values JSON does not know (paths, dates) as their text."""
    return write_text(path, json.dumps(record, indent=2, default=str))


def read_run_json(path: str | Path) -> dict:
    """Read ``run.json`` as a dict. Raises :class:`InputError` naming the file when it is missing,
    unreadable, not JSON, or not a JSON object."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError("no run.json", path) from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read run.json ({e})", path) from e
    if not isinstance(record, dict):
        raise InputError("run.json does not hold a JSON object", path)
    return record


def recorded_classes(record: dict) -> ClassTable:
    """The class table a run recorded in its ``run.json`` (:func:`read_run_json`); DSTL's for a run
    that predates that record."""
    if not record.get("classes"):
        return DSTL_CLASSES
    try:
        return ClassTable.from_records(record["classes"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"run.json: not a class table ({type(e).__name__}: {e})") from e

"""Writing outputs so that nothing is ever half-written: a temporary name, then a rename."""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator


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

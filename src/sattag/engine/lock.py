"""One run per run folder: a lock file held by the run that writes the folder.

``RUN/.sattag.lock`` holds the holder's process id, host and start time (JSON). It is created
atomically (``O_CREAT | O_EXCL``), so of two runs started at once exactly one gets it; it is removed
when the run ends, however it ends (a ``with`` block). A lock whose process no longer exists on this
host is stale (the run was killed): it is taken over, saying so. A lock held from another host cannot
be checked from here and is respected.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

from sattag.errors import SattagError

LOCK_NAME = ".sattag.lock"


class RunLockedError(SattagError, RuntimeError):
    """The run folder is being written by another run."""


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _alive(info: dict) -> bool:
    """Whether the lock's holder may still be running (unknown hosts count as alive)."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(info.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(root: str | Path, wait: bool = False, poll_s: float = 2.0,
             say: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the lock of the run folder ``root`` for the ``with`` block.

    Raises :class:`RunLockedError` naming the holder (process, host, start time) when another live
    run holds it, unless ``wait``: then it waits for that run to end. ``say`` is told when a stale
    lock is taken over or when waiting starts.
    """
    path = Path(root) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = _holder()
    told = False
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            info = _read(path)
            if info and not _alive(info):
                if say:
                    say(f"{path}: a run (process {info.get('pid')}, started {info.get('started')}) "
                        "ended without releasing the run folder; taking it over")
                path.unlink(missing_ok=True)
                continue
            who = (f"process {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
                   if info else "another run")
            if not wait:
                raise RunLockedError(f"run folder in use by {who} (wait with --wait, or use another --out)",
                                     path.parent) from None
            if say and not told:
                say(f"waiting for {who} to finish with {path.parent}")
                told = True
            time.sleep(poll_s)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield path
    finally:
        if _read(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)

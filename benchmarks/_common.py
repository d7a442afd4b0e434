"""Shared benchmark plumbing: run a callable in a fresh process, time it, read its peak memory.

Each measurement runs in its own spawned process so that peak RSS belongs to that measurement alone
(ru_maxrss of the child), and peers are measured the same way in the same run.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import time
import traceback
from typing import Any, Callable


def _peak_gib() -> float:
    """Peak resident memory of this process, GiB: VmHWM, which starts afresh at exec (ru_maxrss
    does not: Linux carries it over exec, so a spawned child would report its parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_gib_of(pid: int) -> float:
    """Peak resident memory (VmHWM) of another process, GiB, e.g. a JVM a peer tool started."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _child(fn, args, kwargs, queue):
    try:
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        peak_gib = _peak_gib()
        queue.put(("ok", result, seconds, peak_gib))
    except BaseException:
        queue.put(("error", traceback.format_exc(), 0.0, 0.0))


def measure(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """Run ``fn(*args, **kwargs)`` in a fresh process; return (result, seconds, peak GiB).

    ``fn`` must be importable (module level) and its result picklable. Seconds cover the call only,
    not interpreter start-up or imports done at module level of the benchmark file.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, kwargs, queue))
    proc.start()
    status, result, seconds, peak = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark {getattr(fn, '__name__', fn)} failed:\n{result}")
    return result, seconds, peak


def row(benchmark: str, tool: str, seconds: float, peak_gib: float, metric: str = "", target: str = "",
        note: str = "") -> dict:
    """One line of the benchmark table."""
    return {"benchmark": benchmark, "tool": tool, "seconds": round(seconds, 3),
            "peak_gib": round(peak_gib, 3), "metric": metric, "target": target, "note": note}

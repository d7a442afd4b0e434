"""Map a per-scene stage over scenes on Dask, isolating faults and recording timings.

A task is a module-level function of (scene, ...) that reads and writes files on the worker and
returns something small. Scenes never travel through the scheduler as big arrays. A task that raises
is a failure of that scene at that stage (recorded, the others go on); a worker that dies is the
scheduler's business: its tasks are rerun elsewhere (Dask's ``allowed-failures``), so a killed
worker costs only a retry.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sattag.engine.progress import NULL_PROGRESS, Progress
from sattag.errors import SattagError
from sattag.scene import Scene


@dataclass
class Failure:
    """A scene that failed at a stage, with the one-line error."""

    scene: str
    stage: str
    error: str


@dataclass
class Timing:
    """Seconds one task took and the worker process's peak resident memory (MiB) when it ended."""

    stage: str
    scene: str
    seconds: float
    peak_mib: float


@dataclass
class StageResult:
    """Results by scene id (failed scenes absent), failures and timings of one stage."""

    results: dict[str, Any] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB.

    VmHWM belongs to the process's own address space; ru_maxrss is not used where VmHWM exists
    because Linux carries it over exec, so a spawned worker would report its parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable, scene: Scene, *args: Any) -> tuple[Any, float, float]:
    t0 = time.perf_counter()
    try:
        result = fn(scene, *args)
    except Exception as exc:
        # Dask pickles an error with the exceptions it chains from; GDAL's (rasterio's CPLE_*) do not
        # unpickle, and the client then gets a bare Exception(repr). Our errors already carry the
        # cause's message, file and scene: cut the chain so the type travels intact.
        exc.__cause__ = exc.__context__ = None
        raise
    seconds = time.perf_counter() - t0
    # The worker process's lifetime peak: an upper bound of this task's own peak.
    return result, seconds, peak_rss_mib()


class ClusterLostError(SattagError, ConnectionError):
    """The scheduler (or every worker) went away: a failure of the whole run, not of its scenes."""


def _cluster_lost(client, exc: BaseException) -> bool:
    """Whether ``exc`` from a future says the cluster is gone rather than that the task failed: Dask
    cancels every future when it loses the scheduler, and a closed client can hold no results."""
    import concurrent.futures

    return isinstance(exc, concurrent.futures.CancelledError) or getattr(client, "status", "running") in (
        "closing", "closed")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SattagError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def map_scenes(
    client,
    stage: str,
    fn: Callable,
    scenes: Sequence[Scene],
    *args: Any,
    per_scene: dict[str, Any] | None = None,
    progress: Progress = NULL_PROGRESS,
) -> StageResult:
    """Run ``fn(scene, *args)`` for every scene; ``client`` None runs them here, one after another.

    ``per_scene``: an argument that differs by scene (e.g. its sampling quota), passed right after
    the scene: ``fn(scene, per_scene[scene.id], *args)``. Returns a :class:`StageResult`. Arguments
    must be small (paths, configs, quotas): they travel with every task.
    """
    def call_args(scene: Scene) -> tuple:
        return (per_scene[scene.id], *args) if per_scene is not None else args

    out = StageResult()
    bar = progress.stage(stage, len(scenes))
    if client is None:
        for scene in scenes:
            try:
                result, seconds, peak = _timed(fn, scene, *call_args(scene))
            except Exception as exc:  # a bad scene never kills the run
                out.failures.append(Failure(scene.id, stage, _one_line(exc)))
            else:
                out.results[scene.id] = result
                out.timings.append(Timing(stage, scene.id, seconds, peak))
            bar.advance()
        bar.close()
        return out

    from distributed import as_completed

    futures = {}
    for scene in scenes:
        fut = client.submit(_timed, fn, scene, *call_args(scene), key=f"{stage}-{scene.id}-{time.time_ns()}", pure=False)
        futures[fut] = scene.id
    for fut in as_completed(list(futures)):
        scene_id = futures[fut]
        try:
            result, seconds, peak = fut.result()
        except Exception as exc:
            if _cluster_lost(client, exc):
                unfinished = sum(1 for f in futures if not f.done() or f.status != "finished")
                bar.close()
                raise ClusterLostError(
                    f"the Dask cluster was lost during {stage} ({unfinished} scene(s) unfinished); finished "
                    "scenes are kept: start the cluster again and rerun the same command to resume",
                    getattr(client, "scheduler", None) and str(client.scheduler.address)) from None
            out.failures.append(Failure(scene_id, stage, _one_line(exc)))
        else:
            out.results[scene_id] = result
            out.timings.append(Timing(stage, scene_id, seconds, peak))
        bar.advance()
    bar.close()
    return out

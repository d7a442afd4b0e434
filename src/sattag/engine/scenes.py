"""Map a per-scene stage over scenes on Dask, isolating faults and recording timings.

A task is a module-level function of (scene, ...) that reads and writes files on the worker and
returns something small. Scenes never travel through the scheduler as big arrays. A task that raises
is a failure of that scene at that stage (recorded, the others go on); a worker that dies is the
scheduler's business: its tasks are rerun elsewhere (Dask's ``allowed-failures``), so a killed
worker costs only a retry. Losing the whole cluster (the scheduler, or every worker for
``[engine] no_workers_timeout`` seconds) is a failure of the run: :class:`ClusterLostError`
(waiting: :func:`sattag._futures.as_finished`).

A stage can also be submitted without waiting (:func:`submit_scenes`) and waited for later
(:func:`gather_scenes`), each scene's task chained after its own task of an earlier stage: a run's
scenes then go from stage to stage each at its own pace, with no barrier between stages.
"""
from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sattag._futures import as_finished
from sattag.config import EngineConfig
from sattag.engine.progress import NULL_PROGRESS, Progress
from sattag.errors import ClusterLostError, SattagError
from sattag.scene import Scene

__all__ = ["ClusterLostError", "Failure", "PendingStage", "StageResult", "Timing", "gather_scenes", "map_scenes",
           "peak_rss_mib", "submit_scenes", "worker_guard"]


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


# Tasks of this module running in this process (a worker's task threads), see worker_guard().
_running = 0
_running_lock = threading.Lock()


def _running_tasks() -> int:
    with _running_lock:
        return _running


def _timed(fn: Callable, scene: Scene, *args: Any) -> tuple[Any, float, float]:
    global _running
    with _running_lock:
        _running += 1
    t0 = time.perf_counter()
    try:
        result = fn(scene, *args)
    except Exception as exc:
        # Dask pickles an error with the exceptions it chains from; GDAL's (rasterio's CPLE_*) do not
        # unpickle, and the client then gets a bare Exception(repr). Our errors already carry the
        # cause's message, file and scene: cut the chain so the type travels intact.
        exc.__cause__ = exc.__context__ = None
        raise
    finally:
        with _running_lock:
            _running -= 1
    seconds = time.perf_counter() - t0
    # The worker process's lifetime peak: an upper bound of this task's own peak.
    return result, seconds, peak_rss_mib()


def worker_guard():
    """A Dask worker plugin (register it with ``client.register_plugin``): a worker that closes while
    tasks of :func:`map_scenes` run in its threads ends its process there and then.

    A worker closes when it loses its scheduler (or its cluster is closed, or it is retired). It
    cannot stop a task thread, and by default waits for it; the task's result can no longer reach
    the client, but its files would still land in the run folder after the run has ended, and while
    another run may hold the folder. Ending the process (which was closing anyway) stops those
    writes; a file a task was writing stays a hidden temporary, which the next run sweeps away.
    Nothing happens when the plugin is merely replaced (a second run registering it) or in the
    client's own process.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class SattagWorkerGuard(WorkerPlugin):
        name = "sattag-worker-guard"

        def __init__(self, client_pid: int):
            self.client_pid = client_pid

        def teardown(self, worker):
            import os as _os
            import sys as _sys

            scenes = _sys.modules.get("sattag.engine.scenes")  # not imported: no task of ours ever ran here
            closing = getattr(getattr(worker, "status", None), "name", "") in (
                "closing", "closing_gracefully", "closed")
            if closing and scenes is not None and _os.getpid() != self.client_pid and scenes._running_tasks():
                _os._exit(1)

    return SattagWorkerGuard(os.getpid())


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SattagError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _after(fn: Callable, scene: Scene, *args: Any) -> Any:
    """``fn(scene, *args[:-1])``: the last argument is the scene's task of an earlier stage, a Dask
    dependency only (this task starts when that one has finished, and errs with it if it failed)."""
    return _timed(fn, scene, *args[:-1])


@dataclass
class PendingStage:
    """A per-scene stage submitted and not yet waited for (:func:`submit_scenes`): its tasks run on
    the workers while the client goes on; :func:`gather_scenes` waits for them.

    ``futures``: scene id -> Dask future; without a client, ``calls``: scene id -> the call to make
    here when gathered (one after another, as :func:`map_scenes` does)."""

    stage: str
    scenes: list[Scene]
    futures: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, Callable[[], Any]] = field(default_factory=dict)
    bar: Any = None


def submit_scenes(
    client,
    stage: str,
    fn: Callable,
    scenes: Sequence[Scene],
    *args: Any,
    per_scene: dict[str, Any] | None = None,
    after: PendingStage | None = None,
    priority: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> PendingStage:
    """Submit ``fn(scene, *args)`` for every scene (as :func:`map_scenes` runs it) without waiting.

    ``after``: an earlier stage submitted the same way; each scene's task here waits for that
    scene's task there (a chain per scene: one scene's next stage starts as soon as its own previous
    task is done, whatever the other scenes' state). A scene absent from ``after`` waits for nothing.
    ``priority``: Dask's (higher first among a worker's ready tasks).
    Without a client nothing runs until :func:`gather_scenes`.
    """
    def call_args(scene: Scene) -> tuple:
        return (per_scene[scene.id], *args) if per_scene is not None else args

    pending = PendingStage(stage, list(scenes), bar=progress.stage(stage, len(scenes)))
    for scene in scenes:
        if client is None:
            pending.calls[scene.id] = (lambda s=scene: _timed(fn, s, *call_args(s)))
            continue
        key = f"{stage}-{scene.id}-{time.time_ns()}"
        before = after.futures.get(scene.id) if after is not None else None
        if before is not None:
            pending.futures[scene.id] = client.submit(_after, fn, scene, *call_args(scene), before, key=key,
                                                      pure=False, priority=priority)
        else:
            pending.futures[scene.id] = client.submit(_timed, fn, scene, *call_args(scene), key=key, pure=False,
                                                      priority=priority)
    return pending


def gather_scenes(
    client,
    pending: PendingStage,
    skip: Callable[[str], bool] = lambda scene_id: False,
    no_workers_timeout: float = EngineConfig.no_workers_timeout,
) -> StageResult:
    """Wait for a stage submitted with :func:`submit_scenes`: its :class:`StageResult`.

    ``skip(scene_id)``: true for a scene that failed at an earlier stage of its chain; its task here
    is not run (without a client) or its error, the earlier stage's own, is not recorded again.
    Raises :class:`ClusterLostError` as :func:`map_scenes` does.
    """
    out = StageResult()
    stage, bar = pending.stage, pending.bar
    try:
        if client is None:
            for scene in pending.scenes:
                if skip(scene.id):
                    bar.advance()
                    continue
                try:
                    result, seconds, peak = pending.calls[scene.id]()
                except Exception as exc:  # a bad scene never kills the run
                    out.failures.append(Failure(scene.id, stage, _one_line(exc)))
                else:
                    out.results[scene.id] = result
                    out.timings.append(Timing(stage, scene.id, seconds, peak))
                bar.advance()
            return out
        scene_of = {fut: sid for sid, fut in pending.futures.items()}
        for fut, result, error in as_finished(client, list(scene_of), stage, no_workers_timeout):
            scene_id = scene_of[fut]
            if error is not None:
                if not skip(scene_id):
                    out.failures.append(Failure(scene_id, stage, _one_line(error)))
            else:
                result, seconds, peak = result
                out.results[scene_id] = result
                out.timings.append(Timing(stage, scene_id, seconds, peak))
            bar.advance()
    finally:
        bar.close()
    return out


def map_scenes(
    client,
    stage: str,
    fn: Callable,
    scenes: Sequence[Scene],
    *args: Any,
    per_scene: dict[str, Any] | None = None,
    progress: Progress = NULL_PROGRESS,
    no_workers_timeout: float = EngineConfig.no_workers_timeout,
) -> StageResult:
    """Run ``fn(scene, *args)`` for every scene; ``client`` None runs them here, one after another.

    ``per_scene``: an argument that differs by scene (e.g. its sampling quota), passed right after
    the scene: ``fn(scene, per_scene[scene.id], *args)``. Returns a :class:`StageResult`. Arguments
    must be small (paths, configs, quotas): they travel with every task.

    Raises :class:`ClusterLostError` when the scheduler goes away, or when no worker has been
    connected to it for ``no_workers_timeout`` seconds (``[engine] no_workers_timeout``) while
    scenes are unfinished (:func:`sattag._futures.as_finished`).
    """
    pending = submit_scenes(client, stage, fn, scenes, *args, per_scene=per_scene, progress=progress)
    return gather_scenes(client, pending, no_workers_timeout=no_workers_timeout)

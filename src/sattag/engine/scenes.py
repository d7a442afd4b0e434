"""Map a per-scene stage over scenes on Dask, isolating faults and recording timings.

A task is a module-level function of (scene, ...) that reads and writes files on the worker and
returns something small. Scenes never travel through the scheduler as big arrays. A task that raises
is a failure of that scene at that stage (recorded, the others go on); a worker that dies is the
scheduler's business: its tasks are rerun elsewhere (Dask's ``allowed-failures``), so a killed
worker costs only a retry. Losing the whole cluster (the scheduler, or every worker for
:data:`NO_WORKERS_TIMEOUT_S`) is a failure of the run: :class:`ClusterLostError`.
"""
from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

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


#: Seconds a run waits with unfinished scenes and no worker connected to the scheduler before it
#: stops (:class:`ClusterLostError`): long enough for a nanny to restart a killed worker, or for a
#: worker to join a scheduler started just before the run.
NO_WORKERS_TIMEOUT_S = 60.0

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


class ClusterLostError(SattagError, ConnectionError):
    """The scheduler (or every worker) went away: a failure of the whole run, not of its scenes."""


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


def _workers_now(client) -> int | None:
    """Workers connected to the scheduler as the client last heard (None: unknown).

    Dask's client refreshes its copy of the scheduler's identity every 2 s in the background
    (``distributed.client.scheduler-info-interval``): reading it never blocks, whereas asking the
    scheduler (``client.scheduler_info()``) waits out the connect timeout when the scheduler is gone.
    """
    info = getattr(client, "_scheduler_identity", None)
    try:
        n = info["n_workers"]
    except (KeyError, TypeError):
        return None
    return int(n) if n is not None else None


def _address(client) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return "unknown"


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
    no_workers_timeout: float | None = None,
) -> StageResult:
    """Run ``fn(scene, *args)`` for every scene; ``client`` None runs them here, one after another.

    ``per_scene``: an argument that differs by scene (e.g. its sampling quota), passed right after
    the scene: ``fn(scene, per_scene[scene.id], *args)``. Returns a :class:`StageResult`. Arguments
    must be small (paths, configs, quotas): they travel with every task.

    Raises :class:`ClusterLostError` when the scheduler goes away, or when no worker has been
    connected to it for ``no_workers_timeout`` seconds (default :data:`NO_WORKERS_TIMEOUT_S`) while
    scenes are unfinished (:func:`as_finished`).
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

    futures = {}
    for scene in scenes:
        fut = client.submit(_timed, fn, scene, *call_args(scene), key=f"{stage}-{scene.id}-{time.time_ns()}", pure=False)
        futures[fut] = scene.id
    done = 0
    try:
        for fut, result, error in as_finished(client, list(futures), stage, no_workers_timeout):
            scene_id = futures[fut]
            if error is not None:
                out.failures.append(Failure(scene_id, stage, _one_line(error)))
            else:
                result, seconds, peak = result
                out.results[scene_id] = result
                out.timings.append(Timing(stage, scene_id, seconds, peak))
            done += 1
            bar.advance()
    finally:
        bar.close()
    return out


def as_finished(client, futures: Sequence, stage: str, no_workers_timeout: float | None = None,
                unit: str = "scene(s)") -> Iterator[tuple[Any, Any, BaseException | None]]:
    """Yield ``(future, result, error)`` for each of ``futures`` (of ``client``) as it finishes:
    ``error`` None and its result, here; or the exception its task raised. Like
    ``distributed.as_completed``, except that when the cluster goes away it raises
    :class:`ClusterLostError` (naming ``stage``, and how many ``unit`` are unfinished) instead of
    waiting forever:

    * the scheduler is lost: Dask cancels every future (or a result's transfer breaks off);
    * no worker has been connected to the scheduler for ``no_workers_timeout`` seconds (default
      :data:`NO_WORKERS_TIMEOUT_S`) while futures are unfinished: the scheduler would keep them
      waiting for a worker forever. That holds while a result is fetched too: a finished task's
      result lives on its worker, and when that worker dies the task waits to be computed again.
    """
    import concurrent.futures

    from distributed import as_completed

    if no_workers_timeout is None:
        no_workers_timeout = NO_WORKERS_TIMEOUT_S
    total, handled = len(futures), 0
    no_workers_since = None
    lock = threading.Lock()

    def workers_gone() -> ClusterLostError | None:
        """The error to raise once no worker has been there for ``no_workers_timeout`` seconds."""
        nonlocal no_workers_since
        with lock:
            if _workers_now(client) != 0:
                no_workers_since = None
                return None
            no_workers_since = no_workers_since or time.monotonic()
            if time.monotonic() - no_workers_since <= no_workers_timeout:
                return None
        return ClusterLostError(
            f"the Dask cluster lost its workers: none for {no_workers_timeout:g} s during {stage} "
            f"(scheduler {_address(client)}; {total - handled} of {total} {unit} unfinished); work already "
            "finished is kept: start workers and rerun the same command to resume")

    def outcome(fut) -> tuple[Any, BaseException | None]:
        # Fetching a result waits, with no limit, for a task whose result was lost with its worker to
        # be computed again. A watchdog cancels the future once no worker is left: the wait then ends
        # (a timeout on the wait would leave Dask waiting on the key in the background, and
        # complaining when the client closes).
        gone: list[ClusterLostError] = []
        stop = threading.Event()

        def watchdog():
            while not stop.wait(0.25):
                error = workers_gone()
                if error is not None:
                    gone.append(error)
                    fut.cancel()
                    return

        dog = threading.Thread(target=watchdog, name=f"sattag-{stage}-watchdog", daemon=True)
        dog.start()
        try:
            return fut.result(), None
        except Exception as exc:
            if gone:
                raise gone[0] from None
            if fut.status == "error":  # the task raised (whatever it raised)
                return None, exc
            if isinstance(exc, (concurrent.futures.CancelledError, OSError)):
                # Cancelled with the scheduler, or the transfer broke off with it.
                raise _lost_scheduler(client, stage, total - handled, total, unit) from None
            raise
        finally:
            stop.set()
            dog.join()

    waiting = as_completed(list(futures))
    while not waiting.is_empty():
        if not waiting.has_ready():
            if getattr(client, "status", "running") in ("closing", "closed"):
                raise _lost_scheduler(client, stage, total - handled, total, unit)
            error = workers_gone()
            if error is not None:
                raise error
            time.sleep(0.05)
            continue
        fut = next(waiting)
        if fut.cancelled():
            raise _lost_scheduler(client, stage, total - handled, total, unit)
        result, error = outcome(fut)
        yield fut, result, error
        handled += 1


def _lost_scheduler(client, stage: str, unfinished: int, total: int, unit: str) -> ClusterLostError:
    # The address in the message, not as the error's path: a path would read tcp:/HOST.
    return ClusterLostError(
        f"the Dask cluster was lost during {stage} (scheduler {_address(client)}; {unfinished} of {total} {unit} "
        "unfinished); work already finished is kept: start the cluster again and rerun the same command to resume")

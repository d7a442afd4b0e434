"""Waiting on Dask futures without waiting forever: when the cluster goes away, one
:class:`~sattag.errors.ClusterLostError` instead of an endless wait or a flood of cancelled futures.

Used by every stage that sends work to a cluster (the engine's per-scene tasks, the training of
models spread over workers), so it sits below the stages, like ``_files``.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterator, Sequence

from sattag.config import EngineConfig
from sattag.errors import ClusterLostError


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


def as_finished(client, futures: Sequence, stage: str,
                no_workers_timeout: float = EngineConfig.no_workers_timeout, unit: str = "scene(s)") -> Iterator[tuple[Any, Any, BaseException | None]]:
    """Yield ``(future, result, error)`` for each of ``futures`` (of ``client``) as it finishes:
    ``error`` None and its result, here; or the exception its task raised. Like
    ``distributed.as_completed``, except that when the cluster goes away it raises
    :class:`ClusterLostError` (naming ``stage``, and how many ``unit`` are unfinished) instead of
    waiting forever:

    * the scheduler is lost: Dask cancels every future (or a result's transfer breaks off);
    * no worker has been connected to the scheduler for ``no_workers_timeout`` seconds
      (``[engine] no_workers_timeout``) while futures are unfinished: the scheduler would keep them
      waiting for a worker forever. That holds while a result is fetched too: a finished task's
      result lives on its worker, and when that worker dies the task waits to be computed again.
    """
    import concurrent.futures

    from distributed import as_completed

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

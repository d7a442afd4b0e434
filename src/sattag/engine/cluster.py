"""Where the work runs: an embedded LocalCluster by default, or an existing scheduler by address."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from sattag.config import EngineConfig
from sattag.errors import ConfigError


def default_workers() -> int:
    """One worker per core: the per-scene stages are single-threaded numpy/numba/GDAL work."""
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_client(config: EngineConfig) -> Iterator["distributed.Client"]:  # noqa: F821
    """A dask.distributed Client for the run, closed (and its LocalCluster stopped) on exit.

    ``config.scheduler`` (``tcp://HOST:PORT``) connects to an existing cluster; otherwise a
    LocalCluster with ``config.workers`` worker processes (default: one per core), one thread each
    and ``config.memory_limit`` per worker is started for the run. Either way the workers get
    :func:`sattag.engine.scenes.worker_guard`: a worker that closes (it lost the scheduler, or the
    run stopped) while running a task of the run ends there, and writes nothing after the run.
    """
    from distributed import Client, LocalCluster

    from sattag.engine.scenes import worker_guard

    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="20s")
        except OSError as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {config.scheduler}: {e}") from e
        try:
            client.register_plugin(worker_guard())
            yield client
        finally:
            client.close()
        return
    workers = config.workers or default_workers()
    # Each worker keeps to its own share of the cores: numba, OpenMP (XGBoost) and GDAL would
    # otherwise each start a thread per core in every worker and oversubscribe the machine.
    threads = str(config.threads_per_worker)
    # (GDAL's threads come from the configuration: the engine sets [ingest] gdal_threads to match.)
    # (OpenCV's own thread pool reads OPENCV_FOR_THREADS_NUM, not OMP_NUM_THREADS.)
    env = {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": threads}
    # Workers write their own files; the dashboard takes a free port so that runs never fight over one.
    cluster = _started_without_sigint(lambda: LocalCluster(
        n_workers=workers,
        threads_per_worker=config.threads_per_worker,
        memory_limit=config.memory_limit,
        processes=True,
        dashboard_address=":0",
        silence_logs=50,  # a failed task is reported once, in failures.csv and the summary
        env=env,
    ))
    with cluster, Client(cluster) as client:
        client.register_plugin(worker_guard())
        yield client


def _started_without_sigint(start):
    """``start()`` with Ctrl-C ignored while it runs, so the worker processes it spawns ignore it (an
    ignored signal stays ignored in a child); this process's handler is back when it returns. Ctrl-C
    then reaches only the client, which stops the run and the cluster in order, instead of every
    worker printing its own traceback."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return start()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return start()
    finally:
        signal.signal(signal.SIGINT, previous)

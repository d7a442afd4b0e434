"""Runs on a real Dask cluster of separate processes: ``dask scheduler`` and ``dask worker`` started
here, the workers in another working directory, and ``sattag`` itself as a command.

What happens when the cluster goes away under a run (the scheduler killed, then started again; every
worker killed), what workers do after the run has ended, two runs into one folder, and how a bad
scene reads whatever runs the tasks. Every process started here is killed when its test ends.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
# Small samples and models, no threshold tuning, no cluster figures: the engine is under test here.
SMALL_TOML = """\
[sample]
n_in = 2000
n_out = 2000
[model]
n_trees = 5
max_depth = 4
[predict]
tune_thresholds = false
[figures]
cluster_figure_scenes = 0
"""
# Run-level outputs: written once every scene is done, never by a run that did not finish.
RUN_LEVEL = ("submission.csv", "polygons.parquet", "scores.csv", "report.html")
# Folders of per-scene outputs written before predict (the stage the scheduler is killed in).
BEFORE_PREDICT = ("stacks", "truth_masks", "truth_polygons")
# Wide enough that the command's one-line messages and failure table are not wrapped.
ENV = {**os.environ, "COLUMNS": "400"}


@pytest.fixture(scope="module")
def data(small_dstl) -> Path:
    """The session's small generated DSTL data (4 scenes, 3 with polygons), read-only here."""
    return small_dstl


@pytest.fixture(scope="module")
def small_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.toml"
    path.write_text(SMALL_TOML)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Processes of one test, each in its own process group, all killed at the end (no orphans)."""

    def __init__(self, root: Path):
        self.elsewhere = root / "elsewhere"  # the workers' (and scheduler's) working directory
        self.elsewhere.mkdir()
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.started: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None
        self.workers: subprocess.Popen | None = None

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        kw.setdefault("cwd", self.elsewhere)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def start_cluster(self, workers: int = 2) -> str:
        """``dask scheduler`` on this object's port and ``dask worker`` with ``workers`` worker
        processes of one thread; returns the address once every worker has joined."""
        from distributed import Client

        self.scheduler = self.popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                     "--dashboard-address", ":0"])
        self.workers = self.popen([str(BIN / "dask"), "worker", self.address, "--nworkers", str(workers),
                                   "--nthreads", "1", "--memory-limit", "0", "--no-dashboard"])
        deadline = time.monotonic() + 120
        while True:
            assert self.scheduler.poll() is None, "dask scheduler exited at start"
            try:
                with Client(self.address, timeout="5s") as client:
                    client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
                return self.address
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @staticmethod
    def kill(proc: subprocess.Popen | None) -> None:
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in reversed(self.started):
            self.kill(proc)


@pytest.fixture
def procs(tmp_path):
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.close()


def _cli(*args: str) -> list[str]:
    """``sattag ARGS`` as a command."""
    return [sys.executable, "-m", "sattag.cli", *args]


def _said(stderr: str) -> list[str]:
    """What a command said on stderr, less the dashboard link: its non-empty lines."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Dask dashboard:")]


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.05)


def _visible(folder: Path, pattern: str = "*") -> list[Path]:
    """Files of ``folder`` less hidden ones (temporaries being written)."""
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def _finished(run: Path) -> set[str]:
    """Scenes whose GeoJSON, the last file predict writes of a scene, exists."""
    return {p.stem for p in _visible(run / "polygons", "*.geojson")}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``, hidden ones too: name -> (size, mtime)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def _outputs(run: Path) -> list[Path]:
    """Every file of the run folder but temporaries being written (hidden names) and the lock."""
    return sorted(p for p in run.rglob("*") if p.is_file() and not p.name.startswith("."))


def _assert_complete(path: Path) -> None:
    """The file reads whole in its format."""
    if path.suffix == ".tif":
        import rasterio

        with rasterio.open(path) as src:
            src.read()
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.read_table(path)
    elif path.suffix in (".geojson", ".json"):
        json.loads(path.read_text())
    elif path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        assert rows and all(len(r) == len(rows[0]) for r in rows), path
    elif path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            image.load()
    elif path.suffix == ".npz":
        import numpy as np

        with np.load(path) as arrays:
            [arrays[k] for k in arrays.files]
    else:
        assert path.stat().st_size > 0, path


def _temporaries(run: Path) -> list[Path]:
    return list(run.rglob(".*.tmp*"))


@pytest.mark.slow
def test_scheduler_killed_mid_run_then_restarted_resumes_only_unfinished_scenes(data, small_toml, tmp_path, procs):
    """The scheduler is killed once a scene is predicted: the run stops in one line naming the lost
    cluster, exit 1, nothing run-level written, and nothing at all written once it has ended (the
    workers stop with their scheduler); the finished scenes' files are whole. Started again, the same
    command completes and redoes only the unfinished scenes."""
    run = tmp_path / "run"
    address = procs.start_cluster(workers=2)
    cmd = _cli("run", str(data), "--out", str(run), "--scheduler", address, "--quiet", "--config", str(small_toml))
    proc = procs.popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV)
    _wait_for(lambda: _finished(run), proc, "scene predicted")
    procs.kill(procs.scheduler)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 1, err[-3000:]
    said = _said(err)
    assert len(said) == 1, err
    assert said[0].startswith("error: the Dask cluster was lost during predict (scheduler " + address), said[0]
    assert "rerun the same command" in said[0] and "Traceback" not in err
    for name in RUN_LEVEL:
        assert not (run / name).exists(), f"{name} written by a run that did not finish"

    # Nothing is written once the run has ended: no worker finishes its task after the client left.
    before = _snapshot(run)
    time.sleep(3)
    assert _snapshot(run) == before, "files of the run folder changed after the run ended"
    # The workers end with their scheduler (no process left behind on the worker machine).
    procs.workers.wait(timeout=30)

    for path in _outputs(run):
        _assert_complete(path)
    finished = _finished(run)
    assert 0 < len(finished) < 4, finished
    # What must not be redone: every file in a subfolder (stacks, truth, models, figures, a finished
    # scene's predictions) but the predict stage's partial outputs of an unfinished scene. (Files at
    # the top are the run's records, rewritten by every run.)
    unfinished = {p.stem for p in _visible(data / "three_band", "*.tif")} - finished
    kept = {p: p.stat().st_mtime_ns for p in _outputs(run) if p.parent != run and not (
        p.parent.name not in BEFORE_PREDICT and any(p.name.startswith(sid) for sid in unfinished))}
    assert any(p.parent.name == "polygons" for p in kept) and any(p.parent.name == "models" for p in kept)

    procs.start_cluster(workers=2)  # the same address
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    for name in RUN_LEVEL:
        assert (run / name).exists(), name
    assert _finished(run) == {p.stem for p in _visible(data / "three_band", "*.tif")}
    redone = sorted(str(p.relative_to(run)) for p, mtime in kept.items() if p.stat().st_mtime_ns != mtime)
    assert not redone, f"finished work was redone: {redone}"
    assert not _temporaries(run)


@pytest.mark.slow
def test_losing_every_worker_ends_the_run_in_bounded_time(data, small_toml, tmp_path, procs):
    """Every worker killed mid-run, the scheduler alive: the run does not wait forever for a worker;
    after the no-worker timeout (5 s here) it stops in one line naming the cluster, exit 1."""
    run = tmp_path / "run"
    address = procs.start_cluster(workers=2)
    # A run waits [engine] no_workers_timeout for a worker to come back (60 s by default): 5 s here.
    config = tmp_path / "short-wait.toml"
    config.write_text(small_toml.read_text() + "\n[engine]\nno_workers_timeout = 5\n")
    proc = procs.popen(_cli("run", str(data), "--out", str(run), "--scheduler", address, "--quiet", "--config",
                            str(config)),
                       cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV)
    _wait_for(lambda: _visible(run / "stacks", "*.tif"), proc, "scene stacked")
    procs.kill(procs.workers)
    t0 = time.monotonic()
    try:
        err = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        pytest.fail("the run still waits 60 s after its last worker was killed")
    waited = time.monotonic() - t0
    assert proc.returncode == 1, err[-3000:]
    said = _said(err)
    assert len(said) == 1, err
    assert said[0].startswith("error: the Dask cluster lost its workers: none for 5 s during ingest (scheduler "
                              + address), said[0]
    assert "Traceback" not in err
    # 5 s without a worker, then up to 2 s for the client to hear of it (and a loaded machine).
    assert 5 <= waited < 30, waited
    assert procs.scheduler.poll() is None  # the scheduler itself was never lost
    for name in RUN_LEVEL:
        assert not (run / name).exists(), name


@pytest.mark.slow
def test_two_runs_into_one_folder(data, tmp_path, procs):
    """Two real runs into one folder: the second stops at once in one line naming the first (process
    and host), exit 1, and the first completes; with --wait, the second waits for the first, then runs.
    (The first starts an embedded cluster after taking the folder: the second comes meanwhile.)"""
    run = tmp_path / "run"
    cmd = _cli("ingest", str(data), "--out", str(run), "--quiet")
    first = procs.popen([*cmd, "--workers", "2"], cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV)
    lock = run / ".sattag.lock"
    _wait_for(lock.exists, first, "lock taken")
    waiter = procs.popen([*cmd, "--workers", "0", "--wait"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    second = subprocess.run([*cmd, "--workers", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=ENV)
    assert first.poll() is None, "the first run ended before the second tried: the test proves nothing"
    assert second.returncode == 1, second.stderr[-3000:]
    said = _said(second.stderr)
    assert len(said) == 1 and said[0].startswith(f"error: {run}: run folder in use by "), second.stderr
    assert f"process {first.pid} on {socket.gethostname()}" in said[0]
    assert "--wait" in said[0] and "Traceback" not in second.stderr

    first_err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, first_err[-3000:]
    stacks = {p: p.stat().st_mtime_ns for p in _visible(run / "stacks")}
    assert len(stacks) == 4
    said, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err[-3000:]
    assert f"waiting for process {first.pid} on {socket.gethostname()}" in err.replace("\n", " ")
    # It ran once the first had released the folder: it found every stack done, redid none.
    assert "4 of 4 scenes stacked" in said
    assert {p: p.stat().st_mtime_ns for p in _visible(run / "stacks")} == stacks
    assert not lock.exists()


@pytest.mark.slow
def test_a_bad_scene_reads_the_same_in_process_on_the_embedded_cluster_and_by_address(data, tmp_path, procs):
    """A truncated band file: the same one-line error in failures.csv and in the command's output
    whether the tasks run in-process (--workers 0), on the embedded cluster (--workers 2) or on a
    cluster by address; and the exception reaches the client as an InputError, not as a bare
    Exception holding its repr."""
    from distributed import Client

    from sattag.classes import DSTL_CLASSES
    from sattag.config import Config
    from sattag.engine.contracts import RunContext
    from sattag.engine import select_scenes, tasks
    from sattag.engine.scenes import _timed
    from sattag.errors import InputError
    from sattag.labels.source import LabelSource
    from sattag.runfolder import RunFolder

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    scenes = sorted(p.stem for p in _visible(copy / "three_band", "*.tif"))
    good, bad = scenes[0], scenes[-1]
    band = copy / "sixteen_band" / f"{bad}_M.tif"
    raw = band.read_bytes()
    band.write_bytes(raw[: len(raw) // 3])
    address = procs.start_cluster(workers=1)

    errors = {}
    for how in (["--workers", "0"], ["--workers", "2"], ["--scheduler", address]):
        out = tmp_path / f"run{'-'.join(how).replace(':', '').replace('/', '')}"
        res = subprocess.run(_cli("ingest", str(copy), "--out", str(out), "--scenes", f"{good},{bad}", "--quiet", *how),
                             cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
        assert res.returncode == 1, res.stderr[-3000:]
        with open(out / "failures.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["scene"], r["stage"]) for r in rows] == [(bad, "ingest")], rows
        error = rows[0]["error"]
        assert error in res.stderr, f"{how}: the output does not show {error!r}:\n{res.stderr}"
        assert "Traceback" not in res.stderr
        errors[" ".join(how)] = error
    assert len(set(errors.values())) == 1, errors
    error = next(iter(errors.values()))
    assert error.startswith(f"{band}: scene {bad}: not a readable raster"), error
    assert not error.startswith("Exception") and "InputError(" not in error, error

    scene = next(s for s in select_scenes(copy, [bad]))
    with Client(address, timeout="20s") as client:
        ctx = RunContext(RunFolder(tmp_path / "direct"), Config(), DSTL_CLASSES, LabelSource.resolve(copy))
        fut = client.submit(_timed, tasks.ingest_task, scene, ctx, pure=False)
        exc = fut.exception(timeout=120)
    assert type(exc) is InputError, repr(exc)
    assert str(exc) == error and exc.path == band and exc.scene == bad


@pytest.mark.timeout(60)
def test_a_scheduler_without_workers_is_a_lost_cluster_not_an_endless_wait(tmp_path):
    """map_scenes on a scheduler that has no worker: ClusterLostError after the no-worker timeout."""
    from distributed import Client, LocalCluster

    from sattag._futures import _workers_now
    from sattag.engine.scenes import ClusterLostError, map_scenes
    from sattag.scene import Scene

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        assert _workers_now(client) == 0  # what the client knows of the workers, without a round trip
        t0 = time.monotonic()
        with pytest.raises(ClusterLostError, match=r"lost its workers: none for 0\.5 s during ingest \(scheduler "
                                                   r"inproc://.*; 2 of 2 scene\(s\) unfinished\)"):
            map_scenes(client, "ingest", len, [Scene("s1", ()), Scene("s2", ())], no_workers_timeout=0.5)
        assert time.monotonic() - t0 < 10

"""Whole runs on a real LocalCluster: a corrupt scene, an interruption, a killed worker, 1 vs 2 workers."""
from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sattag.config import Config
from sattag.runfolder import RunFolder

pytestmark = pytest.mark.slow


def small_config(workers: int = 2) -> Config:
    """Small samples and trees: the engine is under test here, not the models."""
    cfg = Config()
    cfg = cfg.replace("sample", n_in=3000, n_out=3000)
    cfg = cfg.replace("model", n_trees=15, max_depth=6)
    cfg = cfg.replace("engine", workers=workers, memory_limit="3GiB")
    return cfg


@pytest.fixture(scope="module")
def engine_data(tmp_path_factory) -> Path:
    """4 scenes (3 labelled) plus a fifth whose M file is truncated (corrupt)."""
    from sattag.synth import generate_dataset

    data = tmp_path_factory.mktemp("engine") / "data"
    generate_dataset(data, n_scenes=5, n_train=3, size=400, seed=5)
    m_files = sorted((data / "sixteen_band").glob("*_M.tif"))
    bad = m_files[-1]
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3])
    return data


def bad_scene(data: Path) -> str:
    return sorted((data / "sixteen_band").glob("*_M.tif"))[-1].name[: -len("_M.tif")]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_engine(data: Path, out: Path, workers: int):
    from sattag import engine

    scenes = engine.select_scenes(data)
    with engine.open_session(data, out, small_config(workers)) as session:
        result = engine.run_all(session, scenes)
    return session, result


def test_run_with_corrupt_scene_on_local_cluster(engine_data, tmp_path):
    out = tmp_path / "run"
    session, result = run_engine(engine_data, out, workers=2)
    run = RunFolder(out)
    bad = bad_scene(engine_data)
    failures = read_rows(run.failures_csv)
    assert [(f["scene"], f["stage"]) for f in failures] == [(bad, "ingest")]
    assert "_M.tif" in failures[0]["error"]
    good = [s for s in (p.stem for p in (engine_data / "three_band").glob("*.tif")) if s != bad]
    for sid in good:
        assert run.stack(sid).exists() and run.masks(sid).exists() and run.polygons_geojson(sid).exists()
    assert not run.stack(bad).exists()
    assert not list(run.root.rglob(".*.tmp*")), "temporary files left behind"
    assert (run.models / "card.json").exists() and run.auc_csv.exists()
    assert run.scores_csv.exists() and run.report_html.exists()
    stages = {r["stage"] for r in read_rows(run.timings_csv)}
    assert {"ingest", "labels", "cluster rows", "train", "predict"} <= stages  # cluster-level models: the default


def test_one_and_two_workers_give_identical_outputs(engine_data, tmp_path):
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"run{workers}"
        run_engine(engine_data, out, workers=workers)
        outs[workers] = RunFolder(out)
    from sattag.labels import read_masks

    a, b = outs[1], outs[2]
    assert a.submission_csv.read_text() == b.submission_csv.read_text()
    for path in sorted((a.root / "masks").glob("*.tif")):
        np.testing.assert_array_equal(read_masks(path)[0], read_masks(b.masks(path.stem))[0])


@pytest.fixture(scope="module")
def trained_run(engine_data, tmp_path_factory) -> Path:
    """A whole run on 2 workers that trained its models (its scenes predicted after training)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    run_engine(engine_data, out, workers=2)
    return out


def run_with_models(data: Path, out: Path, models: Path, workers: int, scenes=None, config: Config | None = None):
    """A run into a fresh folder that starts with trained ``models`` (training skipped, as in the
    engine benchmark); ``workers`` 0: no Dask, every task in this process."""
    from sattag import engine

    shutil.copytree(models, out / "models")
    config = config or small_config(max(workers, 1))
    with engine.open_session(data, out, config, local=workers == 0) as session:
        engine.run_all(session, scenes if scenes is not None else engine.select_scenes(data))
    return RunFolder(out)


@pytest.mark.parametrize("workers", [2, 0])
def test_a_run_with_trained_models_gives_the_same_outputs(engine_data, trained_run, tmp_path, workers):
    """Models copied in: each scene's stages are chained (its predict follows its own labels, not
    every scene's), on a cluster or in process. Same files and values as the run that trained them;
    the corrupt scene fails once, at ingest (its chained labels and predict are not failures again)."""
    from sattag.labels import read_masks

    first = RunFolder(trained_run)
    run = run_with_models(engine_data, tmp_path / "run", first.models, workers)
    assert [(f["scene"], f["stage"]) for f in read_rows(run.failures_csv)] == [(bad_scene(engine_data), "ingest")]
    assert run.submission_csv.read_text() == first.submission_csv.read_text()
    assert run.scores_csv.read_text() == first.scores_csv.read_text()
    for path in sorted(first.root.joinpath("masks").glob("*.tif")):
        np.testing.assert_array_equal(read_masks(path)[0], read_masks(run.masks(path.stem))[0])

    def figures(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / "figures").rglob("*.png"))

    assert figures(run.root) == figures(first.root)
    stages = [r["stage"] for r in read_rows(run.timings_csv)]
    assert "train" not in stages and {"ingest", "labels", "explore", "figures", "predict", "report"} <= set(stages)
    assert run.report_html.exists()


def test_a_scene_is_predicted_while_another_still_ingests(engine_data, trained_run, tmp_path):
    """A large scene first, then the small ones, on 2 workers: a small scene's predict does not wait
    for the large scene's ingest (one worker stacks the large scene while the other takes the small
    scenes from ingest to polygons)."""
    from sattag import engine
    from sattag.synth import generate_dataset

    large = tmp_path / "large"
    generate_dataset(large, n_scenes=1, n_train=0, size=3000, seed=8)
    big = engine.select_scenes(large)[0]
    bad = bad_scene(engine_data)
    small = [s for s in engine.select_scenes(engine_data) if s.id != bad]
    assert big.id not in {s.id for s in small}
    config = small_config(2).replace("engine", memory_limit="4GiB")
    run = run_with_models(engine_data, tmp_path / "run", RunFolder(trained_run).models, 2, [big, *small], config)
    assert read_rows(run.failures_csv) == []
    stacked = run.stack(big.id).stat().st_mtime
    predicted = {s.id: run.polygons_geojson(s.id).stat().st_mtime for s in small}
    first = min(predicted, key=predicted.get)
    assert predicted[first] < stacked, (f"no small scene predicted before the large scene's stack was written "
                                        f"(first {first} {predicted[first] - stacked:+.2f} s after it)")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sattag.cli", *args]


def test_interrupted_run_resumes_only_unfinished_scenes(engine_data, tmp_path):
    out = tmp_path / "run"
    cmd = _cli("run", str(engine_data), "--out", str(out), "--workers", "2", "--quiet",
               "--config", str(_write_small_toml(tmp_path)))
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    polygons = out / "polygons"  # a scene's GeoJSON is the last file its predict task writes
    deadline = time.time() + 300
    # Interrupt as soon as the first scene is finished: the others are not.
    while time.time() < deadline and not (polygons.is_dir() and _finished(polygons)):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _finished(polygons)
    assert finished
    run = RunFolder(out)
    before = {sid: (run.masks(sid).stat().st_mtime_ns, run.polygons_geojson(sid).stat().st_mtime_ns)
              for sid in finished}
    stacks_before = {p.name: p.stat().st_mtime_ns for p in (out / "stacks").glob("*.tif")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1, again.stderr[-3000:]  # the corrupt scene still fails
    assert run.report_html.exists() and run.submission_csv.exists()
    for sid, mtimes in before.items():
        assert (run.masks(sid).stat().st_mtime_ns, run.polygons_geojson(sid).stat().st_mtime_ns) == mtimes, \
            f"finished scene {sid} was redone"
    for name, mtime in stacks_before.items():
        assert (out / "stacks" / name).stat().st_mtime_ns == mtime, f"stack {name} was redone"
    assert len(_finished(polygons)) == 4
    assert not list(out.rglob(".*.tmp*"))


def _finished(polygons: Path) -> set[str]:
    """Scenes whose GeoJSON is written (hidden names are temporaries being written)."""
    return {p.stem for p in polygons.glob("*.geojson") if not p.name.startswith(".")}


def _write_small_toml(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text("[sample]\nn_in = 3000\nn_out = 3000\n[model]\nn_trees = 15\nmax_depth = 6\n"
                    "[engine]\nmemory_limit = \"3GiB\"\n")
    return path


def test_killed_worker_costs_only_a_retry(engine_data, tmp_path):
    from distributed import Client, LocalCluster

    from sattag import engine
    from sattag.engine.run import Session

    out = tmp_path / "run"
    data = engine_data
    scenes = engine.select_scenes(data)
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="3GiB", silence_logs=50) as cluster, Client(cluster) as client:
        session = Session(data_dir=data, run=RunFolder(out), config=small_config(2), client=client)
        session.run.root.mkdir(parents=True)

        def killer():
            # Kill one worker process while predict tasks are running on it.
            deadline = time.time() + 300
            while time.time() < deadline:
                processing = client.processing()
                busy = [w for w, keys in processing.items() if any(str(k).startswith("predict-") for k in keys)]
                if busy:
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.02)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        engine.run_all(session, scenes)
        t.join(timeout=5)
    assert killed, "no predict task was ever seen running"
    failures = read_rows(RunFolder(out).failures_csv)
    assert [f["stage"] for f in failures] == ["ingest"]  # only the corrupt scene
    assert len(list((out / "masks").glob("*.tif"))) == 4


def test_cli_reports_bad_input_in_one_line(tmp_path):
    res = subprocess.run(_cli("ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "run"), "--workers", "0"),
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "error:" in res.stderr and "nope" in res.stderr


def _raise_from_gdal(scene, path):
    """A task failing as ingest does on a truncated file: an InputError chained from rasterio's error."""
    import rasterio

    from sattag.errors import InputError

    try:
        rasterio.open(path)
    except Exception as e:
        raise InputError(f"not a readable raster: {e}", path, scene.id) from e


def test_errors_keep_their_type_and_text_across_workers(tmp_path):
    """The same failure reads the same in-process and from a real worker process."""
    from distributed import Client, LocalCluster

    from sattag.engine import map_scenes
    from sattag.scene import Scene

    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 64)
    scenes = [Scene("s1", ())]
    here = map_scenes(None, "ingest", _raise_from_gdal, scenes, str(bad)).failures
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        there = map_scenes(client, "ingest", _raise_from_gdal, scenes, str(bad)).failures
    assert [f.error for f in there] == [f.error for f in here]
    assert here[0].error.startswith(f"{bad}: scene s1: not a readable raster")


def test_ctrl_c_is_one_line_exit_130_and_no_orphans(engine_data, tmp_path):
    """Ctrl-C reaches the whole process group (client and workers): one line, exit 130, no worker
    traceback, no worker process left, and the same command resumes."""
    out = tmp_path / "run"
    cmd = _cli("run", str(engine_data), "--out", str(out), "--workers", "2", "--quiet",
               "--config", str(_write_small_toml(tmp_path)))
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    stacks = out / "stacks"
    while time.time() < deadline and not (stacks.is_dir() and any(stacks.glob("*.tif"))):  # mid-run
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err and "resume" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) <= 4  # dashboard link + the message (wrapped)
    deadline = time.time() + 15  # workers are stopped by the client on its way out; give them a moment
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break  # nothing of the group is left
        time.sleep(0.2)
    else:
        pytest.fail("processes of the interrupted run are still alive 15 s after it exited")


@contextlib.contextmanager
def _dask_processes(tmp_path: Path):
    """A real ``dask scheduler`` and one ``dask worker`` as separate processes, started in another
    working directory than the tests'; yields (address, scheduler process); both killed at the end."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = Path(sys.executable).parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    address = f"tcp://127.0.0.1:{port}"
    sched = subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--dashboard-address", ":0"], cwd=elsewhere, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    worker = subprocess.Popen([str(bindir / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1"],
                              cwd=elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        yield address, sched
    finally:
        for p in (worker, sched):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)


def test_relative_paths_on_a_cluster_by_address(engine_data, tmp_path):
    """DATA and --out given relative to the user's directory; the workers run in another one."""
    user = tmp_path / "user"
    shutil.copytree(engine_data, user / "data")
    with _dask_processes(tmp_path) as (address, _):
        res = subprocess.run(_cli("ingest", "data", "--out", "run", "--scheduler", address, "--quiet"),
                             cwd=user, capture_output=True, text=True, timeout=600)
    assert "Dask dashboard: http" in res.stderr
    bad = bad_scene(user / "data")
    assert res.returncode == 1, res.stderr[-2000:]  # the corrupt scene, and only it
    assert [r["scene"] for r in read_rows(user / "run" / "failures.csv")] == [bad]
    assert len(list((user / "run" / "stacks").glob("*.tif"))) == 4
    assert not (tmp_path / "elsewhere" / "run").exists()


def test_a_worker_that_cannot_see_a_folder_is_named(tmp_path):
    from distributed import Client, LocalCluster

    from sattag.engine.run import check_workers_see
    from sattag.errors import SattagError

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        check_workers_see(client, [tmp_path])  # seen: nothing raised
        with pytest.raises(SattagError, match=r"worker tcp://127\.0\.0\.1:\d+ cannot see this folder") as e:
            check_workers_see(client, [tmp_path / "only-on-my-laptop"])
    assert "only-on-my-laptop" in str(e.value)


def test_the_readme_stage_table_is_the_engines():
    import re

    from sattag.engine import STAGES, stage_named

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| (scene|tile|part|run) \| (.+) \|$", readme, flags=re.M)
    assert rows == [(s.name, s.per, s.what) for s in STAGES]
    with pytest.raises(ValueError, match="no stage 'trian'; the stages are: ingest, ingest offsets"):
        stage_named("trian")


def _thread_pools() -> dict:
    import cv2
    import numba

    return {"opencv": cv2.getNumThreads(), "numba": numba.config.NUMBA_NUM_THREADS,
            "openmp": os.environ.get("OMP_NUM_THREADS")}


def test_embedded_workers_keep_their_thread_pools_to_their_cores():
    # With 2 workers on 2 cores, a library that starts a thread per core in every worker
    # oversubscribes the machine and makes the 1-worker run the only fast one.
    from sattag.config import EngineConfig
    from sattag.engine.cluster import open_client

    with open_client(EngineConfig(workers=1, threads_per_worker=1)) as client:
        pools = list(client.run(_thread_pools).values())
    assert pools == [{"opencv": 1, "numba": 1, "openmp": "1"}]

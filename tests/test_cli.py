"""The command line: a multi-scene ingest with one bad scene, and one-line errors."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path


def sattag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sattag.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_ingest_records_a_bad_scene_and_completes_the_others(small_dstl, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dstl, data)
    scenes = sorted(p.stem for p in (data / "three_band").glob("*.tif"))
    bad = scenes[1]
    (data / "sixteen_band" / f"{bad}_A.tif").unlink()
    run = tmp_path / "run"
    res = sattag("ingest", str(data), "--out", str(run), "--workers", "0", "--quiet")
    assert res.returncode == 1, res.stderr
    with open(run / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["scene"], r["stage"]) for r in failures] == [(bad, "ingest")]
    assert f"{bad}_A.tif" in failures[0]["error"]
    assert f"{bad}_A.tif" in res.stderr  # the summary names the file too
    for sid in scenes:
        assert (run / "stacks" / f"{sid}.tif").exists() == (sid != bad)
    assert not list(run.rglob(".*.tmp*"))
    with open(run / "offsets.csv", newline="") as f:
        assert {r["scene"] for r in csv.DictReader(f)} == set(scenes) - {bad}


def test_unknown_config_field_is_one_line_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[model]\nn_tres = 5\n")
    res = sattag("ingest", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(cfg))
    assert res.returncode == 1
    assert "bad.toml" in res.stderr and "n_tres" in res.stderr
    assert "Traceback" not in res.stderr


def test_score_against_itself_is_one(small_dstl, tmp_path):
    """`sattag score` on a folder holding the truth itself as a DSTL submission scores 1.0."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(small_dstl / "train_wkt_v4.csv", run / "submission.csv")
    res = sattag("score", str(run), "--truth", str(small_dstl))
    assert res.returncode == 0, res.stderr
    with open(run / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    mean = [r for r in rows if r["class"] == "mean"][0]
    assert abs(float(mean["jaccard"]) - 1.0) < 1e-12  # areas of A∩A and A∪A differ by rounding only


def test_unexpected_exception_is_one_line_and_a_traceback_file(capsys):
    import pytest
    import typer

    from sattag.cli import _errors

    with pytest.raises(typer.Exit):
        with _errors():
            raise RuntimeError("boom\nsecond line")
    err = capsys.readouterr().err.replace("\n", " ")
    assert "unexpected RuntimeError: boom" in err and "second line" not in err
    path = Path(err.split("full traceback: ")[1].split(")")[0].strip())
    text = path.read_text()
    assert "Traceback" in text and "RuntimeError: boom" in text
    path.unlink()


def test_a_second_run_into_a_locked_run_folder_stops_naming_the_holder(small_dstl, tmp_path):
    """A live run holds RUN/.sattag.lock: a second run stops at once with one line naming it; a lock
    left by a dead process is taken over; the lock goes when the run ends."""
    import json
    import os
    import socket

    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".sattag.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-11-30T09:00:00+00:00"}))
    one = sorted(p.stem for p in (small_dstl / "three_band").glob("*.tif"))[0]
    args = ("ingest", str(small_dstl), "--out", str(run), "--workers", "0", "--quiet", "--scenes", one)
    res = sattag(*args)
    assert res.returncode == 1
    flat = res.stderr.replace("\n", " ")
    assert f"process {os.getpid()}" in flat and "in use" in flat and "Traceback" not in res.stderr
    assert lock.exists()  # still the holder's
    # a dead holder (a process id that does not exist) is stale: taken over, then released
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "started": "x"}))
    res = sattag(*args)
    assert res.returncode == 0, res.stderr
    assert "taking it over" in res.stderr.replace("\n", " ")
    assert not lock.exists()

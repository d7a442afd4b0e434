"""What a run records about itself (``sattag.engine.records``): failures.csv, timings.csv, run.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import Config
from sattag.engine.records import (read_failures, read_run_json, read_timings, recorded_classes, write_failures,
                                   write_run_json, write_timings)
from sattag.engine.scenes import Failure, Timing
from sattag.errors import InputError
from sattag.runfolder import RunFolder


def test_failures_written_and_read_back(tmp_path):
    run = RunFolder(tmp_path)
    failures = [Failure("6010", "ingest", "band file <A> unreadable, \"quoted\"\nsecond line"),
                Failure("6120_2_0", "predict", "")]
    df = read_failures(write_failures(run.failures_csv, failures))
    assert list(df.columns) == ["scene", "stage", "error"]
    assert [tuple(r) for r in df.itertuples(index=False)] == [(f.scene, f.stage, f.error) for f in failures]
    assert df["scene"].tolist() == ["6010", "6120_2_0"]  # an id that looks like a number stays text
    empty = read_failures(write_failures(run.failures_csv, []))
    assert len(empty) == 0 and list(empty.columns) == ["scene", "stage", "error"]


def test_timings_written_and_read_back(tmp_path):
    run = RunFolder(tmp_path)
    timings = [Timing("ingest", "6010", 1.23456, 200.4), Timing("train", "*", 12.0, 1024.6)]
    df = read_timings(write_timings(run.timings_csv, timings))
    assert list(df.columns) == ["stage", "scene", "seconds", "peak_mib"]
    assert df["scene"].tolist() == ["6010", "*"] and df["stage"].tolist() == ["ingest", "train"]
    assert df["seconds"].dtype == np.float64 and df["peak_mib"].dtype == np.float64
    np.testing.assert_allclose(df["seconds"], [1.235, 12.0])
    np.testing.assert_allclose(df["peak_mib"], [200.0, 1025.0])


def test_missing_column_names_the_file(tmp_path):
    path = tmp_path / "timings.csv"
    path.write_text("stage,scene,seconds\ningest,a,1\n")
    with pytest.raises(InputError, match=r"timings\.csv.*'peak_mib'"):
        read_timings(path)
    path.write_text("stage,scene,seconds,peak_mib\ningest,a,soon,1\n")
    with pytest.raises(InputError, match=r"timings\.csv.*'seconds', row 1: 'soon'"):
        read_timings(path)
    with pytest.raises(InputError, match="failures.csv"):
        read_failures(tmp_path / "failures.csv")


def test_run_json_written_and_read_back(tmp_path):
    run = RunFolder(tmp_path)
    classes = ClassTable((ObjectClass(1, "Roof", "#c0392b"), ObjectClass(2, "Pond", "#2e86c1")))
    record = {"config": Config().to_dict(), "classes": classes.to_records(), "labels": {"kind": "vector"},
              "split": {"train": ["s1"], "held_out": ["s2"]}, "versions": {"sattag": "0.1.0"},
              "scenes": ["s1", "s2"], "data": tmp_path / "data", "started": "2024-05-01T10:00:00+00:00",
              "finished": None}
    back = read_run_json(write_run_json(run.run_json, record))
    assert back == json.loads(json.dumps({**record, "data": str(tmp_path / "data")}))  # a path as its text
    assert back["split"] == record["split"] and back["finished"] is None
    assert recorded_classes(back) == classes
    assert recorded_classes({"config": {}}) == DSTL_CLASSES  # a run that predates the class record
    run.run_json.write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="not hold a JSON object"):
        read_run_json(run.run_json)
    run.run_json.write_text("{not json")
    with pytest.raises(InputError, match=r"run\.json.*cannot read"):
        read_run_json(run.run_json)

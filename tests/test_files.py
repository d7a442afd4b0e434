"""Atomic writes: a temporary name, then a rename; a killed writer's temporaries are swept."""
from __future__ import annotations

import pytest

from sattag._files import atomic_path, sweep_temporaries


def test_failed_write_leaves_nothing(tmp_path):
    final = tmp_path / "out" / "x.tif"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert not final.exists() and list((tmp_path / "out").iterdir()) == []


def test_killed_writer_temporaries_are_swept(tmp_path):
    final = tmp_path / "figures" / "scene_clusters.png"
    writer = atomic_path(final)
    tmp = writer.__enter__()  # the process dies here: no __exit__, no rename, no clean-up
    tmp.write_bytes(b"half a png")
    keep = tmp_path / ".hidden.tmp"
    keep.write_text("not ours")
    done = tmp_path / "done.csv"
    with atomic_path(done) as t:
        t.write_text("a,b\n")
    assert sweep_temporaries(tmp_path) == 1
    assert not tmp.exists() and not final.exists()
    assert keep.exists() and done.read_text() == "a,b\n"

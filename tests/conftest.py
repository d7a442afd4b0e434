"""Shared fixtures: small DSTL-format data made by the generator, real files on disk."""
from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "worldview-paris"


@pytest.fixture(scope="session")
def small_dstl(tmp_path_factory) -> Path:
    """A small generated DSTL-format dataset: 4 scenes, 3 of them with training polygons."""
    from sattag.synth import generate_dataset

    out = tmp_path_factory.mktemp("dstl") / "data"
    generate_dataset(out, n_scenes=4, n_train=3, size=600, seed=11)
    return out


@pytest.fixture(scope="session")
def rotterdam_dir() -> Path:
    """The real WorldView chips over Rotterdam (SpaceNet 6) shipped in shared/, in a folder named
    worldview-paris for historical reasons (skips when absent)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real sample imagery not found at {REAL_DATA}")
    return REAL_DATA

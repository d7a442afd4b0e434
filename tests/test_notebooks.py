"""The two workflow notebooks execute from top to bottom on small generated data, with nbclient.

Notebook 01 (explore + train) runs first and leaves models in the run folder; notebook 02 (predict on
a LocalCluster) uses them. Paths and small sizes reach the notebooks through the environment variables
of their parameter cells. A cell that raises fails the test (nbclient raises CellExecutionError).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NB01 = NOTEBOOKS / "01_explore_and_train.ipynb"
NB02 = NOTEBOOKS / "02_predict_on_a_cluster.ipynb"

#: Small enough that both notebooks run in about a minute on 2 cores.
SMALL = {
    "SATTAG_NB_SIZE": "400",
    "SATTAG_NB_SCENES": "3",
    "SATTAG_NB_TRAIN": "2",
    "SATTAG_NB_SAMPLES": "3000",
    "SATTAG_NB_TREES": "10",
    "SATTAG_NB_DEPTH": "6",
    "SATTAG_NB_WORKERS": "2",
}


def execute(path: Path, cwd: Path, timeout: int = 300):
    """Run every cell of the notebook at ``path`` in a fresh ``python3`` kernel; return the notebook."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def outputs_text(nb) -> str:
    """All text a notebook showed: stream output and the text/plain + text/html of results."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                for kind in ("text/plain", "text/html"):
                    value = out["data"].get(kind, "")
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def n_images(nb) -> int:
    return sum(1 for cell in nb.cells for out in cell.get("outputs", [])
               if "image/png" in out.get("data", {}))


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    """DATA generated here (so the notebook finds a DSTL layout), RUN empty, small sizes; env restored after."""
    from sattag.synth import generate_dataset

    root = tmp_path_factory.mktemp("notebooks")
    data, run = root / "data", root / "run"
    generate_dataset(data, n_scenes=int(SMALL["SATTAG_NB_SCENES"]), n_train=int(SMALL["SATTAG_NB_TRAIN"]),
                     size=int(SMALL["SATTAG_NB_SIZE"]), seed=3)
    env = {**SMALL, "SATTAG_NB_DATA": str(data), "SATTAG_NB_RUN": str(run)}
    saved = {k: os.environ.get(k) for k in [*env, "SATTAG_NB_SCHEDULER", "SATTAG_NB_SCENE_IDS"]}
    os.environ.update(env)
    os.environ.pop("SATTAG_NB_SCHEDULER", None)
    os.environ.pop("SATTAG_NB_SCENE_IDS", None)
    try:
        yield {"root": root, "data": data, "run": run}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_notebooks_are_committed_without_outputs():
    for path in (NB01, NB02):
        nb = json.loads(path.read_text())
        assert nb["nbformat"] == 4
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
        tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
        assert any("parameters" in t for t in tags), f"{path.name} has no parameters cell"


@pytest.fixture(scope="module")
def executed_01(notebook_env):
    return execute(NB01, notebook_env["root"])


def test_explore_and_train_notebook(notebook_env, executed_01):
    run = notebook_env["run"]
    text = outputs_text(executed_01)
    # the AUC table was printed, with a plausible mean over the classes that have a model
    assert "mean validation AUC" in text and "Buildings" in text
    mean_auc = float(text.split("mean validation AUC ")[1].split()[0])
    assert 0.5 < mean_auc <= 1.0
    # offsets of the ingested scene were shown; the figures were drawn (bands, masks, overlay,
    # thumbnails, histograms)
    assert "correlation" in text
    assert n_images(executed_01) >= 5
    # models saved where notebook 02 and `sattag predict --models` look for them
    card = json.loads((run / "models" / "card.json").read_text())
    assert card["bands"][:4] == ["R", "G", "B", "P"]
    assert list((run / "models").glob("class_*.ubj"))
    assert (run / "auc.csv").exists()
    assert len(list((run / "stacks").glob("*.tif"))) == int(SMALL["SATTAG_NB_TRAIN"])


def test_predict_on_a_cluster_notebook(notebook_env, executed_01):
    run = notebook_env["run"]
    models_before = (run / "models" / "card.json").stat().st_mtime_ns
    nb = execute(NB02, notebook_env["root"])
    text = outputs_text(nb)
    n = int(SMALL["SATTAG_NB_SCENES"])
    assert "2 worker(s)" in text
    assert "models from RUN/models reused" in text
    assert (run / "models" / "card.json").stat().st_mtime_ns == models_before  # not retrained
    assert len(list((run / "masks").glob("*.tif"))) == n
    assert len(list((run / "polygons").glob("*.geojson"))) == n
    assert (run / "polygons.parquet").exists() and (run / "submission.csv").exists()
    assert (run / "scores.csv").exists() and (run / "report.html").exists()
    assert "0 failure(s)" in text
    assert "report.html" in text
    assert n_images(nb) >= 3  # masks (predicted, truth) and the polygon map at least

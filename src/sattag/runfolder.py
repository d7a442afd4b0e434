"""The layout of a run folder: one place that names every output, so stages and engine agree."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    """Paths of everything a run writes under ``root``.

    ``shared``: another run folder whose stacks and truth this one reads instead of its own (the folds
    of a cross-validation share their parent's ingest and labels); default: ``root`` itself.
    """

    root: Path
    shared: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        if self.shared is not None:
            object.__setattr__(self, "shared", Path(self.shared))

    @property
    def inputs(self) -> Path:
        """The folder holding the stacks and truth this run reads."""
        return self.shared if self.shared is not None else self.root

    # ingest
    def stack(self, scene_id: str) -> Path:
        return self.inputs / "stacks" / f"{scene_id}.tif"

    @property
    def offsets_csv(self) -> Path:
        return self.root / "offsets.csv"

    @property
    def failures_csv(self) -> Path:
        return self.root / "failures.csv"

    # labels / explore
    def truth_masks(self, scene_id: str) -> Path:
        return self.inputs / "truth_masks" / f"{scene_id}.tif"

    def truth_polygons(self, scene_id: str) -> Path:
        return self.inputs / "truth_polygons" / f"{scene_id}.parquet"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def histograms(self) -> Path:
        return self.root / "histograms.npz"

    # learn
    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def auc_csv(self) -> Path:
        return self.root / "auc.csv"

    # segment / predict
    def clusters(self, scene_id: str) -> Path:
        return self.root / "clusters" / f"{scene_id}.tif"

    def cluster_table(self, scene_id: str) -> Path:
        return self.root / "clusters" / f"{scene_id}.parquet"

    def probabilities(self, scene_id: str) -> Path:
        return self.root / "probabilities" / f"{scene_id}.parquet"

    def masks(self, scene_id: str) -> Path:
        return self.root / "masks" / f"{scene_id}.tif"

    # vectorize / evaluate
    def polygons_geojson(self, scene_id: str) -> Path:
        return self.root / "polygons" / f"{scene_id}.geojson"

    @property
    def submission_csv(self) -> Path:
        return self.root / "submission.csv"

    @property
    def polygons_parquet(self) -> Path:
        return self.root / "polygons.parquet"

    @property
    def scores_csv(self) -> Path:
        return self.root / "scores.csv"

    # engine
    @property
    def timings_csv(self) -> Path:
        return self.root / "timings.csv"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

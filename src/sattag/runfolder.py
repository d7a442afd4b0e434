"""The layout of a run folder: one place that names every output, so stages and engine agree.

Each file has one owner, the stage whose data it holds: a writer and a reader side by side in that
stage's package. Every path below names them, so a reader of the tree finds the owner from the path;
the owner's module docstring gives the columns and their dtypes.
"""
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
        """The scene's stack, what every stage reads (:func:`sattag.ingest.read_stack` and the other
        readers): :meth:`stack_vrt` when that file is there (a scene stacked in parts), else
        :meth:`stack_tif`."""
        vrt = self.stack_vrt(scene_id)
        return vrt if vrt.is_file() else self.stack_tif(scene_id)

    def stack_tif(self, scene_id: str) -> Path:
        """``stacks/<scene>.tif``: a scene's stack written in one task (:func:`sattag.ingest.ingest_scene`)."""
        return self.inputs / "stacks" / f"{scene_id}.tif"

    def stack_vrt(self, scene_id: str) -> Path:
        """``stacks/<scene>.vrt``: the stack of a scene stacked in parts, a GDAL VRT over its part
        files in ``stacks/<scene>.parts/`` (:mod:`sattag.ingest.parts`)."""
        return self.inputs / "stacks" / f"{scene_id}.vrt"

    @property
    def offsets_csv(self) -> Path:
        """``offsets.csv``: :func:`sattag.ingest.write_offsets` / :func:`sattag.ingest.read_offsets`."""
        return self.root / "offsets.csv"

    # labels / explore
    def truth_masks(self, scene_id: str) -> Path:
        """``truth_masks/<scene>.tif``: :func:`sattag.labels.write_masks` /
        :func:`sattag.labels.read_masks`."""
        return self.inputs / "truth_masks" / f"{scene_id}.tif"

    def truth_polygons(self, scene_id: str) -> Path:
        """``truth_polygons/<scene>.parquet``: :func:`sattag.labels.write_truth_polygons` /
        :func:`sattag.labels.read_truth_polygons`."""
        return self.inputs / "truth_polygons" / f"{scene_id}.parquet"

    @property
    def figures(self) -> Path:
        """``figures/``: PNGs drawn by ``sattag.viz.explore`` and ``sattag.viz.clusters``; read (embedded)
        by ``sattag.viz.report``."""
        return self.root / "figures"

    @property
    def histograms(self) -> Path:
        """``histograms.npz``: :func:`sattag.labels.write_histograms` /
        :func:`sattag.labels.read_histograms`."""
        return self.root / "histograms.npz"

    # learn
    @property
    def models(self) -> Path:
        """``models/`` (+ ``card.json``): :meth:`sattag.learn.ModelSet.save` / :func:`sattag.learn.load_models`
        (the split alone: :func:`sattag.learn.read_card_split`)."""
        return self.root / "models"

    def object_rows(self, scene_id: str) -> Path:
        """``object_rows/<scene>.npy``: a labelled scene's cluster rows for object-level models while
        they train (:func:`sattag.features.objects.write_object_rows` /
        :func:`sattag.features.objects.read_object_rows`); removed once the models are saved."""
        return self.root / "object_rows" / f"{scene_id}.npy"

    @property
    def auc_csv(self) -> Path:
        """``auc.csv``: :func:`sattag.learn.write_auc` / :func:`sattag.learn.read_auc`."""
        return self.root / "auc.csv"

    # segment / predict
    def clusters(self, scene_id: str) -> Path:
        """``clusters/<scene>.tif``: :func:`sattag.segment.write_cluster_ids` /
        :func:`sattag.segment.read_cluster_ids`."""
        return self.root / "clusters" / f"{scene_id}.tif"

    def cluster_table(self, scene_id: str) -> Path:
        """``clusters/<scene>.parquet``: :func:`sattag.segment.write_cluster_table` /
        :func:`sattag.segment.read_cluster_table`."""
        return self.root / "clusters" / f"{scene_id}.parquet"

    def probabilities(self, scene_id: str) -> Path:
        """``probabilities/<scene>.parquet``: :func:`sattag.predict.write_probabilities` /
        :func:`sattag.predict.read_probabilities`."""
        return self.root / "probabilities" / f"{scene_id}.parquet"

    def rules_csv(self, scene_id: str) -> Path:
        """``probabilities/<scene>_rules.csv``: :func:`sattag.predict.write_rules` /
        :func:`sattag.predict.read_rules`."""
        return self.root / "probabilities" / f"{scene_id}_rules.csv"

    def masks(self, scene_id: str) -> Path:
        """``masks/<scene>.tif``: :func:`sattag.labels.write_masks` / :func:`sattag.labels.read_masks` (the
        one mask format, truth and predicted alike)."""
        return self.root / "masks" / f"{scene_id}.tif"

    # vectorize / evaluate
    def polygons_geojson(self, scene_id: str) -> Path:
        """``polygons/<scene>.geojson``: :func:`sattag.vectorize.write_geojson` /
        :func:`sattag.vectorize.read_geojson_polygons`."""
        return self.root / "polygons" / f"{scene_id}.geojson"

    @property
    def submission_csv(self) -> Path:
        """``submission.csv`` (a DSTL WKT CSV: :mod:`sattag.wkt_csv`):
        :func:`sattag.vectorize.write_submission_csv` / :func:`sattag.evaluate.read_submission_csv`."""
        return self.root / "submission.csv"

    @property
    def polygons_parquet(self) -> Path:
        """``polygons.parquet``: :func:`sattag.vectorize.write_geoparquet` /
        :func:`sattag.vectorize.read_geoparquet`."""
        return self.root / "polygons.parquet"

    @property
    def scores_csv(self) -> Path:
        """``scores.csv``: :func:`sattag.evaluate.write_scores` / :func:`sattag.evaluate.read_scores`."""
        return self.root / "scores.csv"

    @property
    def cv_scores_csv(self) -> Path:
        """``cv_scores.csv``: :func:`sattag.evaluate.write_cv_scores` /
        :func:`sattag.evaluate.read_cv_scores`."""
        return self.root / "cv_scores.csv"

    @property
    def cv_summary_csv(self) -> Path:
        """``cv_summary.csv``: :func:`sattag.evaluate.write_cv_summary` /
        :func:`sattag.evaluate.read_cv_summary`."""
        return self.root / "cv_summary.csv"

    # engine
    @property
    def failures_csv(self) -> Path:
        """``failures.csv``: :func:`sattag.engine.records.write_failures` /
        :func:`sattag.engine.records.read_failures`."""
        return self.root / "failures.csv"

    @property
    def timings_csv(self) -> Path:
        """``timings.csv``: :func:`sattag.engine.records.write_timings` /
        :func:`sattag.engine.records.read_timings`."""
        return self.root / "timings.csv"

    @property
    def run_json(self) -> Path:
        """``run.json``: :func:`sattag.engine.records.write_run_json` /
        :func:`sattag.engine.records.read_run_json` (its class table: ``recorded_classes``)."""
        return self.root / "run.json"

    @property
    def report_html(self) -> Path:
        """``report.html``: :func:`sattag.viz.report.write_report` (the end product: read by people)."""
        return self.root / "report.html"

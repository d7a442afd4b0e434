"""`sattag ...`: the command line, on top of the engine.

Every command prints a SattagError in one line and exits 1; a multi-scene command whose scenes
partly failed finishes the others, lists the failures and exits 1 as well.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sattag.classes import DSTL_CLASSES, ClassTable, read_class_table
from sattag.config import Config, check_classes, load_config
from sattag.errors import ConfigError, SattagError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find and outline objects on multispectral satellite scenes.")
console = Console(stderr=True)
out = Console()

# Options shared by the commands that run over scenes.
SchedulerOpt = typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler, tcp://HOST:PORT.")
WorkersOpt = typer.Option(None, "--workers", help="Workers of the embedded LocalCluster (default: one per core); 0 runs in this process without Dask.")
ScenesOpt = typer.Option(None, "--scenes", help="Comma-separated scene ids (default: every scene found).")
ConfigOpt = typer.Option(None, "--config", help="TOML file overriding configuration defaults.", exists=False)
ClassesOpt = typer.Option(None, "--classes", help="CSV class table id,name,colour (default: DSTL's 10 classes).")
LabelsOpt = typer.Option(None, "--labels", help="A vector file of your own labels (any OGR format, any CRS).")
ClassColumnOpt = typer.Option(None, "--class-column", help="Column of --labels holding class ids or names.")
UnlabelledOpt = typer.Option(False, "--unlabelled-is-empty",
                             help="A scene the labels do not cover has none of the classes (default: it is "
                                  "not a training scene and is not scored).")
HoldoutOpt = typer.Option(None, "--holdout", min=0.0, max=0.99,
                          help="Share of the labelled scenes held out of training and scored as unseen "
                               "(default: 20 % when there are 4 or more labelled scenes, else 0; 0: train on all).")
HoldoutScenesOpt = typer.Option(None, "--holdout-scenes", help="Comma-separated labelled scenes to hold out (wins over --holdout).")
QuietOpt = typer.Option(False, "--quiet", help="No progress bars.")
WaitOpt = typer.Option(False, "--wait", help="If another run is writing the run folder, wait for it to end "
                       "(default: stop with an error naming it).")
FeaturesOpt = typer.Option(None, "--features", help="What the models see of a pixel: 'context' (default: bands, "
                           "spectral indices, local statistics at several scales) or 'spectra' (the band values alone).")

ModelOpt = typer.Option(None, "--model", help="What the models learn from and predict: 'cluster' (default: one "
                        "row per spectral cluster: its features' mean and spread, shape, contrast to its neighbours) "
                        "or 'pixel' (balanced pixel samples; a cluster gets the mean of its pixels' probabilities).")


def _config(config: Optional[Path], scheduler: Optional[str], workers: Optional[int],
            features: Optional[str] = None, model: Optional[str] = None) -> Config:
    cfg = load_config(config)
    if features is not None:
        cfg = cfg.replace("features", set=features)
    if model is not None:
        cfg = cfg.replace("model", level=model)
    if scheduler is not None:
        cfg = cfg.replace("engine", scheduler=scheduler)
    if workers:
        cfg = cfg.replace("engine", workers=workers)
    return cfg


def _classes(path: Optional[Path]) -> ClassTable:
    return read_class_table(path) if path else DSTL_CLASSES


def _quiet_dask_client_logs() -> None:
    """The CLI reports a lost cluster in one line (ClusterLostError); Dask's client would also log
    each failed reconnection with a traceback. Only the command line changes this, not the library."""
    import logging

    import distributed  # noqa: F401 - it sets its loggers' levels when imported; ours comes after

    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    # A comm cut while Ctrl-C stops the embedded cluster mid-send logs its traceback here (seen once
    # in a CI-like run): the interruption already has its one line.
    logging.getLogger("distributed.batched").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """One line per error, non-zero exit.

    A :class:`SattagError` is the user's to fix: its one line says what and where. Anything else is a
    bug of sattag's or of a library: one line with its type and message, and the path of a file
    holding the full traceback (for a bug report), not 40 lines of it.
    """
    try:
        yield
    except SattagError as e:
        # soft_wrap: one line even when the path is long, so that it can be copied and grepped
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print(f"[bold red]interrupted:[/] sattag {' '.join(sys.argv[1:2])} stopped; finished scenes "
                      "and files are kept: run the same command again to resume", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as e:  # the last resort: never a bare traceback on the terminal
        where = _write_traceback(e)
        first = (str(e).strip().splitlines() or [""])[0]
        console.print(f"[bold red]error:[/] unexpected {type(e).__name__}: {escape(first)} "
                      f"(full traceback: {where})", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _write_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s traceback to a new file in the temporary folder; return its path."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="sattag-traceback-", suffix=".txt")
    with open(fd, "w") as f:
        f.write(f"sattag {' '.join(sys.argv[1:])}\n\n")
        f.write("".join(traceback.format_exception(exc)))
    return Path(name)


@contextlib.contextmanager
def _over_scenes(data: Path, run: Path, scenes: Optional[str], config: Config, workers: Optional[int],
                 quiet: bool, classes: Optional[Path] = None, labels: Optional[Path] = None,
                 class_column: Optional[str] = None, unlabelled_is_empty: bool = False,
                 holdout: Optional[float] = None, holdout_scenes: Optional[str] = None,
                 config_path: Optional[Path] = None, wait: bool = False):
    """The scenes of ``data`` (optionally a subset) and an open engine session over them.

    The label source is resolved here, once, for the whole run. On leaving, notes and failures are
    printed, and the command exits 1 when a scene failed.
    """
    from sattag.engine import open_session, select_scenes
    from sattag.engine.progress import rich_progress
    from sattag.labels import LabelSource

    # Absolute before anything is sent to a worker: a worker started elsewhere resolves relative paths
    # against its own working directory.
    data, run = data.expanduser().resolve(), run.expanduser().resolve()
    table = _classes(classes)
    # Rules or thresholds naming a class the table lacks stop the run before any scene is touched.
    check_classes(config, table, config_path)
    found = select_scenes(data, _scene_ids(scenes))
    source = LabelSource.resolve(data, labels, class_column, unlabelled_is_empty)
    held = tuple(_scene_ids(holdout_scenes) or ())
    if held and holdout is not None:
        raise ConfigError("give --holdout or --holdout-scenes, not both")
    missing = sorted(set(held) - {s.id for s in found})
    if missing:
        raise ConfigError(f"--holdout-scenes: no scene {', '.join(missing)} in {data}")
    if held or holdout is not None:
        config = config.replace("split", holdout=holdout, holdout_scenes=held)
    if workers != 0:
        _quiet_dask_client_logs()
    with rich_progress(not quiet) as progress, open_session(
            data, run, config, table, progress=progress, local=(workers == 0), labels=source, wait=wait,
            say=lambda text: console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)) as session:
        if session.client is not None:
            console.print(f"Dask dashboard: {session.client.dashboard_link}", highlight=False, soft_wrap=True)
        yield session, found
        _finish(session)


def _finish(session) -> None:
    """Print the run's notes, then failures (if any); exit non-zero when a scene failed."""
    for note in dict.fromkeys(session.notes):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if not session.failures:
        return
    t = Table(title=f"{len(session.failures)} failure(s) — {session.run.failures_csv}", show_lines=False)
    for col in ("scene", "stage", "error"):
        t.add_column(col, overflow="fold")
    for f in session.failures:
        t.add_row(f.scene, f.stage, f.error)
    console.print(t)
    raise typer.Exit(1)


def _scene_ids(scenes: Optional[str]) -> Optional[list[str]]:
    return [s.strip() for s in scenes.split(",") if s.strip()] if scenes else None


SCORE_COLUMNS = ["split", "kind", "class_id", "class", "jaccard"]


def _print_scores(table) -> None:
    """The Jaccard table, one row per class, held-out columns first (what a user should trust)."""
    if table is None:
        return
    if "split" not in table:
        _print_table("Jaccard", table, [c for c in SCORE_COLUMNS if c in table])
        return
    wide = table.set_index(["class_id", "class", "split", "kind"])["jaccard"].unstack(["split", "kind"])
    wide.columns = [f"{split} {kind}" for split, kind in wide.columns]
    wide = wide.reset_index()
    # the mean row (class_id 0) last, as in scores.csv
    wide = wide.iloc[wide["class_id"].eq(0).to_numpy().argsort(kind="stable")]
    scenes = table.groupby("split")["scenes"].max().to_dict()
    title = "Jaccard by class: " + "; ".join(f"{s} = {n} scene(s) " + (
        "the models never saw" if s == "held-out" else "they trained on") for s, n in scenes.items())
    _print_table(title, wide, list(wide.columns))


def _print_table(title: str, frame, columns: list[str]) -> None:
    from pandas.api.types import is_numeric_dtype

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if is_numeric_dtype(frame[c]) and frame[c].dtype != bool else "left")
    for _, r in frame.iterrows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r[columns]])
    out.print(t)


def _print_auc(path: Path) -> None:
    from sattag.learn import read_auc

    _print_table("AUC (in-sample: 90/10 pixel split of the training scenes, neighbouring pixels leak; "
                 "held-out: scenes the models never saw)", read_auc(path),
                 ["split", "class_id", "class", "n_in", "n_out", "auc"])


@app.command()
def generate(out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the dataset into."),
             scenes: int = typer.Option(450, "--scenes", help="Number of scenes (DSTL: 450)."),
             train: int = typer.Option(25, "--train", help="Number of them with training polygons (DSTL: 25)."),
             size: Optional[int] = typer.Option(None, "--size", help="Width in px of the RGB/P files (default full size, ~3391); every file scales in proportion."),
             seed: int = typer.Option(0, "--seed"),
             quiet: bool = QuietOpt):
    """Write a dataset in the DSTL layout (look-alike scenes, polygons, grid sizes, misaligned bands)."""
    from sattag.engine.progress import rich_progress
    from sattag.synth import generate_dataset

    with _errors(), rich_progress(not quiet) as progress:
        bar = progress.stage("generate", scenes)
        generate_dataset(out_dir, n_scenes=scenes, n_train=train, size=size, seed=seed,
                         progress=lambda n=1: bar.advance(n))
        bar.close()
    out.print(f"wrote {scenes} scenes ({train} with polygons) to {out_dir}")


@app.command()
def ingest(data: Path = typer.Argument(..., help="DSTL-layout folder, or a folder with scenes.csv."),
           run: Path = typer.Option(..., "--out", help="Run folder."),
           scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
           workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt, wait: bool = WaitOpt,
           quiet: bool = QuietOpt):
    """Aligned band stacks of every scene (RUN/stacks/*.tif; *.vrt over parts for a scene larger than a predict tile) and RUN/offsets.csv."""
    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, config_path=config, wait=wait) as (session, found):
            res = engine.ingest(session, found)
            out.print(f"{len(res.results)} of {len(found)} scenes stacked in {session.run.root / 'stacks'}")


@app.command()
def explore(data: Path = typer.Argument(...), run: Path = typer.Option(..., "--out"),
            scene: Optional[str] = typer.Option(None, "--scene", help="Scene to show band by band (default: the first labelled one)."),
            scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
            workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt,
            classes: Optional[Path] = ClassesOpt, labels: Optional[Path] = LabelsOpt,
            class_column: Optional[str] = ClassColumnOpt, wait: bool = WaitOpt, quiet: bool = QuietOpt):
    """Class masks, thumbnails, band images, overlays and per-class histograms (RUN/figures/)."""
    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, classes, labels, class_column, config_path=config, wait=wait) as (session, found):
            engine.ingest(session, found)
            res = engine.explore(session, found, figure_scene=scene)
            out.print(f"{len(res.labelled)} labelled scene(s) ({session.labels.describe()}); "
                      f"figures in {session.run.figures}")


@app.command()
def train(data: Path = typer.Argument(...), run: Path = typer.Option(..., "--out"),
          trees: Optional[int] = typer.Option(None, "--trees", help="Trees per model (default 100)."),
          depth: Optional[int] = typer.Option(None, "--depth", help="Max tree depth (default 15)."),
          samples: Optional[int] = typer.Option(None, "--samples", help="Pixels in and out of each class (default 200000 each)."),
          device: Optional[str] = typer.Option(None, "--device", help="cpu (default) or cuda."),
          scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
          workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt,
          classes: Optional[Path] = ClassesOpt, labels: Optional[Path] = LabelsOpt,
          class_column: Optional[str] = ClassColumnOpt, unlabelled_is_empty: bool = UnlabelledOpt,
          holdout: Optional[float] = HoldoutOpt, holdout_scenes: Optional[str] = HoldoutScenesOpt,
          features: Optional[str] = FeaturesOpt, model: Optional[str] = ModelOpt, wait: bool = WaitOpt, quiet: bool = QuietOpt):
    """One model per class from balanced pixel samples of the training scenes: RUN/models/, RUN/auc.csv."""
    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers, features, model)
        model = {k: v for k, v in dict(n_trees=trees, max_depth=depth, device=device).items() if v is not None}
        if model:
            cfg = cfg.replace("model", **model)
        if samples:
            cfg = cfg.replace("sample", n_in=samples, n_out=samples)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, classes, labels, class_column,
                          unlabelled_is_empty, holdout, holdout_scenes, config_path=config, wait=wait) as (session, found):
            engine.ingest(session, found)
            explored = engine.explore(session, found)
            engine.split(session, explored)
            model_set = engine.train(session, found, explored)
            if model_set is None:
                out.print(f"models already in {session.run.models}; delete it to retrain")
            else:
                _print_auc(session.run.auc_csv)


@app.command()
def predict(data: Path = typer.Argument(...), run: Path = typer.Option(..., "--out"),
            models: Optional[Path] = typer.Option(None, "--models", help="Models folder (default RUN/models)."),
            scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
            workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt,
            classes: Optional[Path] = ClassesOpt, wait: bool = WaitOpt, quiet: bool = QuietOpt):
    """Clusters, class masks and polygons of every scene (GeoJSON, WKT CSV, GeoParquet)."""
    import shutil

    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, classes, config_path=config, wait=wait) as (session, found):
            if models is not None and models.resolve() != session.run.models.resolve():
                if not (models / "card.json").exists():
                    raise SattagError("no card.json: not a sattag models folder", models)
                shutil.copytree(models, session.run.models, dirs_exist_ok=True)
            engine.ingest(session, found)
            engine.predict(session, found)
            out.print(f"masks in {session.run.root / 'masks'}, polygons in {session.run.submission_csv}")


@app.command()
def score(run: Path = typer.Argument(..., help="Run folder with predictions."),
          truth: Optional[Path] = typer.Option(None, "--truth", help="DSTL data folder, or a vector label file "
                                               "(with --class-column); default: the run's own labels."),
          class_column: Optional[str] = ClassColumnOpt,
          classes: Optional[Path] = typer.Option(None, "--classes", help="CSV class table (default: the run's)."),
          unlabelled_is_empty: bool = UnlabelledOpt):
    """DSTL Jaccard per class (and mean) and pixel Jaccard, held-out apart from in-sample: RUN/scores.csv."""
    from sattag.engine.rescore import score_run
    from sattag.labels import LabelSource

    with _errors():
        source = LabelSource.resolve(None, truth, class_column, unlabelled_is_empty) if truth else None
        table = score_run(run, source, read_class_table(classes) if classes else None)
        _print_scores(table)


@app.command()
def report(run: Path = typer.Argument(..., help="Run folder.")):
    """RUN/report.html: one self-contained page of the run."""
    from sattag.viz.report import write_report

    with _errors():
        path = write_report(run)
        out.print(f"report: {path}")


@app.command("run")
def run_cmd(data: Path = typer.Argument(...), run: Path = typer.Option(..., "--out"),
            scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
            workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt,
            classes: Optional[Path] = ClassesOpt, labels: Optional[Path] = LabelsOpt,
            class_column: Optional[str] = ClassColumnOpt, unlabelled_is_empty: bool = UnlabelledOpt,
            holdout: Optional[float] = HoldoutOpt, holdout_scenes: Optional[str] = HoldoutScenesOpt,
            features: Optional[str] = FeaturesOpt, model: Optional[str] = ModelOpt, wait: bool = WaitOpt, quiet: bool = QuietOpt):
    """The whole workflow: ingest, labels, split, train, predict, vectorize, score, report.

    The labelled scenes are split by scene: models train on some and the others are scored as unseen
    (held-out), apart from the training scenes' (in-sample) scores.
    """
    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers, features, model)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, classes, labels, class_column,
                          unlabelled_is_empty, holdout, holdout_scenes, config_path=config, wait=wait) as (session, found):
            result = engine.run_all(session, found)
            if session.run.auc_csv.exists():
                _print_auc(session.run.auc_csv)
            _print_scores(result.scores)
            out.print(f"report: {session.run.report_html}")


@app.command()
def evaluate(data: Path = typer.Argument(..., help="DSTL-layout folder, or a folder with scenes.csv."),
             run: Path = typer.Option(..., "--out", help="Run folder (the folds go to RUN/folds/)."),
             folds: int = typer.Option(5, "--folds", help="Folds of labelled scenes; each is held out once."),
             scenes: Optional[str] = ScenesOpt, scheduler: Optional[str] = SchedulerOpt,
             workers: Optional[int] = WorkersOpt, config: Optional[Path] = ConfigOpt,
             classes: Optional[Path] = ClassesOpt, labels: Optional[Path] = LabelsOpt,
             class_column: Optional[str] = ClassColumnOpt, unlabelled_is_empty: bool = UnlabelledOpt,
             features: Optional[str] = FeaturesOpt, model: Optional[str] = ModelOpt, wait: bool = WaitOpt, quiet: bool = QuietOpt):
    """K-fold cross-validation by scene: each class's held-out Jaccard, mean and spread over folds."""
    from sattag import engine

    with _errors():
        cfg = _config(config, scheduler, workers, features, model)
        with _over_scenes(data, run, scenes, cfg, workers, quiet, classes, labels, class_column,
                          unlabelled_is_empty, config_path=config, wait=wait) as (session, found):
            summary = engine.cross_validate(session, found, folds)
            _print_table(f"held-out Jaccard over {folds} folds by scene (mean, spread = standard deviation; "
                         "pooled = sums over all folds)", summary,
                         ["kind", "class_id", "class", "mean", "std", "min", "max", "pooled"])
            out.print(f"per fold: {session.run.cv_scores_csv}; summary: {session.run.cv_summary_csv}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

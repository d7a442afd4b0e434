"""Whole runs: the stages composed over scenes, on Dask, resumable and fault-isolated.

Every stage function takes a :class:`Session` (where to run, what to report to) and returns
nothing big: outputs live in the run folder. A stage that finds a scene's outputs complete skips
the work, so the same command started again after an interruption redoes only unfinished scenes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from sattag import __version__
from sattag._files import sweep_temporaries
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.config import Config, pairs_for
from sattag.errors import SattagError
from sattag.engine.cluster import open_client
from sattag.engine.contracts import ClusterRows, Explored, Predicted, RunContext, RunResult, join_cluster_rows
from sattag.engine.lock import run_lock
from sattag.engine.progress import NULL_PROGRESS, Progress
from sattag.engine.records import write_failures, write_run_json, write_timings
from sattag.engine.scenes import (Failure, PendingStage, StageResult, Timing, gather_scenes, map_scenes, peak_rss_mib,
                                  submit_scenes)
from sattag.engine.stages import stage_named, stage_priority
from sattag.engine import tasks
from sattag.features import FeatureSet
from sattag.labels.source import LabelSource
from sattag.learn.split import HELD_OUT, IN_SAMPLE, SceneSplit, split_for
from sattag.runfolder import RunFolder
from sattag.scene import Scene



@dataclass
class Session:
    """Where a run executes and what it has recorded so far.

    ``client``: a dask.distributed Client, or None to run every task here, one after another.
    ``labels``: the run's one label source (resolved from ``data_dir`` when not given).
    ``split``: the training / held-out scenes (``config.split`` says how), set by :func:`split`
    once :func:`explore` has found the labelled scenes.
    ``notes``: things said once to the user (e.g. scenes the labels do not cover).
    """

    data_dir: Path
    run: RunFolder
    config: Config = field(default_factory=Config)
    classes: ClassTable = DSTL_CLASSES
    client: object | None = None
    progress: Progress = NULL_PROGRESS
    labels: LabelSource | None = None
    split: SceneSplit | None = None
    failures: list[Failure] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.labels is None:
            self.labels = LabelSource.resolve(self.data_dir)

    @property
    def context(self) -> RunContext:
        """What every task of this run is handed (:class:`~sattag.engine.contracts.RunContext`)."""
        return RunContext(run=self.run, config=self.config, classes=self.classes, labels=self.labels)

    def record(self, result: StageResult) -> StageResult:
        """Keep a stage's failures and timings, and write them out so far (atomically)."""
        self.failures.extend(result.failures)
        self.timings.extend(result.timings)
        self.write_records()
        return result

    def map(self, stage: str, fn, scenes: Sequence[Scene], per_scene: dict | None = None) -> StageResult:
        """``fn(scene, ctx)`` (or ``fn(scene, per_scene[scene.id], ctx)``) for every scene, ``ctx`` this
        run's :attr:`context`: :func:`map_scenes` on this session's client, progress and ``[engine]
        no_workers_timeout``, its failures and timings recorded. ``stage``: a per-scene stage of
        :data:`sattag.engine.stages.STAGES`."""
        if stage_named(stage).per != "scene":
            raise ValueError(f"stage {stage!r} runs once per run, not per scene")
        return self.record(map_scenes(self.client, stage, fn, scenes, self.context, per_scene=per_scene,
                                      progress=self.progress,
                                      no_workers_timeout=self.config.engine.no_workers_timeout))

    def submit(self, stage: str, fn, scenes: Sequence[Scene], per_scene: dict | None = None,
               after: PendingStage | None = None) -> PendingStage:
        """Submit a per-scene stage as :meth:`map` runs it, without waiting (:func:`submit_scenes`):
        each scene's task waits only for its own task of ``after``, an earlier stage submitted so;
        the stage's place in the run gives its tasks' priority (:func:`stage_priority`).
        :meth:`gather` waits for it."""
        if stage_named(stage).per != "scene":
            raise ValueError(f"stage {stage!r} runs once per run, not per scene")
        return submit_scenes(self.client, stage, fn, scenes, self.context, per_scene=per_scene, after=after,
                             priority=stage_priority(stage), progress=self.progress)

    def gather(self, pending: PendingStage) -> StageResult:
        """Wait for a stage from :meth:`submit`; its failures and timings recorded. A scene that failed
        at an earlier stage is not run again (no client) and not recorded again (its chained task
        failed with it)."""
        return self.record(gather_scenes(self.client, pending, skip=self.failed,
                                         no_workers_timeout=self.config.engine.no_workers_timeout))

    def map_tiles(self, stage: str, fn, tiles: Sequence, per_tile: dict | None = None) -> StageResult:
        """``fn(tile, ctx)`` (or ``fn(tile, per_tile[tile.id], ctx)``) for every tile
        (:class:`sattag.engine.tiles.Tile`, or a part of a stack, :class:`tasks.StackPart`), as
        :meth:`map` does for scenes. Results and timings are keyed by tile id; a failed tile is
        recorded as a failure of its scene, naming the tile (``tile r0c1: ...``, ``part rows0-512: ...``)."""
        if stage_named(stage).per != "tile":
            raise ValueError(f"stage {stage!r} does not run per tile")
        # A tile of a prediction or a part of a stack (its kind), named by the last part of its id.
        return self._map_pieces(stage, fn, tiles, per_tile,
                                lambda t: f"{getattr(t, 'kind', 'tile')} {t.id.split('/')[-1]}")

    def map_parts(self, stage: str, fn, parts: Sequence, per_part: dict | None = None) -> StageResult:
        """``fn(part, ctx)`` (or ``fn(part, per_part[part.id], ctx)``) for every part of a scene's
        assembly (:class:`sattag.engine.tiles.ScenePart`), all submitted at once, as :meth:`map_tiles`
        does for tiles: results and timings keyed by part id, a failed part recorded as a failure of
        its scene, naming the part."""
        if stage_named(stage).per != "part":
            raise ValueError(f"stage {stage!r} does not run per part of a scene")
        return self._map_pieces(stage, fn, parts, per_part, lambda p: p.name)

    def _map_pieces(self, stage: str, fn, pieces: Sequence, per_piece: dict | None, label) -> StageResult:
        res = map_scenes(self.client, stage, fn, pieces, self.context, per_scene=per_piece, progress=self.progress,
                         no_workers_timeout=self.config.engine.no_workers_timeout)
        by_id = {p.id: p for p in pieces}
        res.failures = [Failure(by_id[f.scene].scene.id, f.stage, f"{label(by_id[f.scene])}: {f.error}")
                        for f in res.failures]
        return self.record(res)

    def failed(self, scene_id: str) -> bool:
        return any(f.scene == scene_id for f in self.failures)

    def write_records(self) -> None:
        """``failures.csv`` and ``timings.csv`` as recorded so far (:mod:`sattag.engine.records`)."""
        write_failures(self.run.failures_csv, self.failures)
        write_timings(self.run.timings_csv, self.timings)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Record a client-side step (training, scoring, report) in the timings when it ends.
        ``stage``: a per-run stage of :data:`sattag.engine.stages.STAGES`."""
        if stage_named(stage).per != "run":
            raise ValueError(f"stage {stage!r} runs per scene: run it with Session.map")
        t0 = time.perf_counter()
        yield
        self.timings.append(Timing(stage, "*", time.perf_counter() - t0, peak_rss_mib()))
        self.write_records()


@contextlib.contextmanager
def open_session(data_dir: str | Path, out: str | Path, config: Config | None = None,
                 classes: ClassTable = DSTL_CLASSES, progress: Progress = NULL_PROGRESS,
                 local: bool = False, labels: LabelSource | None = None, wait: bool = False,
                 say: Callable[[str], None] | None = None) -> Iterator[Session]:
    """Open a run: its folder, and a Dask client (``local=True``: no Dask, tasks run in-process).

    ``labels``: the run's label source (default: the DSTL labels of ``data_dir``, if any).
    The run folder is locked for the session (:mod:`sattag.engine.lock`): another run into it stops
    with :class:`~sattag.engine.lock.RunLockedError` naming the holder, or waits (``wait``);
    ``say`` is told about a stale lock taken over or the wait.
    Paths are made absolute here, before anything is sent to a worker.
    """
    config = config or Config()
    run = RunFolder(Path(out).expanduser().resolve())
    run.root.mkdir(parents=True, exist_ok=True)
    with run_lock(run.root, wait=wait, say=say):
        # A run killed mid-write leaves hidden temporaries; its finished files are whole, so only these
        # go (the lock says no other run is writing here).
        sweep_temporaries(run.root)
        data_dir = Path(data_dir).expanduser().resolve()
        common = dict(data_dir=data_dir, run=run, config=config, classes=classes, progress=progress,
                      labels=labels or LabelSource.resolve(data_dir))
        yield from _sessions(config, local, common)


def _sessions(config: Config, local: bool, common: dict) -> Iterator[Session]:
    if local:
        yield Session(client=None, **common)
        return
    if not config.engine.scheduler:
        # Each worker of the embedded cluster holds threads_per_worker cores: GDAL keeps to them too.
        common["config"] = config.replace("ingest", gdal_threads=config.engine.threads_per_worker)
    with open_client(config.engine) as client:
        if config.engine.scheduler:
            check_workers_see(client, [common["data_dir"], common["run"].root])
        yield Session(client=client, **common)


def check_workers_see(client, folders: Sequence[Path]) -> None:
    """Raise :class:`SattagError` naming the folder and the worker when a worker of ``client`` cannot
    see one of ``folders`` (a worker on another machine without the shared file system): one cheap
    task per worker, before any stage runs."""
    import os

    for folder in folders:
        seen = client.run(os.path.isdir, str(folder))
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise SattagError(f"Dask worker {blind[0]} cannot see this folder"
                              + (f" (nor can {len(blind) - 1} other worker(s))" if len(blind) > 1 else "")
                              + ": workers need the same paths on a shared file system", folder)


def select_scenes(data_dir: str | Path, scene_ids: Sequence[str] | None = None) -> list[Scene]:
    """The scenes of a data folder (DSTL layout or a user's ``scenes.csv``), optionally a subset; their
    band files by absolute path, so that they mean the same on any worker."""
    from sattag.ingest import discover_scenes

    return discover_scenes(Path(data_dir).expanduser().resolve(), list(scene_ids) if scene_ids else None)


def _ok(session: Session, scenes: Sequence[Scene]) -> list[Scene]:
    return [s for s in scenes if not session.failed(s.id)]


# --------------------------------------------------------------------------------------- stages
def ingest(session: Session, scenes: Sequence[Scene]) -> StageResult:
    """Aligned stacks for every scene, plus ``offsets.csv``.

    A scene larger than ``[predict] tile_px`` on a side (the scenes predicted in tiles) is stacked in
    parts (:mod:`sattag.ingest.parts`), its parts spread over the workers; the others one task each.
    Returns the ``ingest`` stage's result with the scenes stacked in parts added to its results."""
    whole, parted = _ingest_by_size(session, scenes)
    return _finish_ingest(session, session.submit("ingest", tasks.ingest_task, whole), parted)


def _finish_ingest(session: Session, submitted: PendingStage, parted: Sequence[Scene]) -> StageResult:
    """Wait for the scenes stacked in one task each (``submitted``), stack the ``parted`` ones in
    parts, write ``offsets.csv``: the :func:`ingest` stage's result."""
    from sattag.ingest import write_offsets

    res = session.gather(submitted)
    if parted:
        res.results.update(_ingest_in_parts(session, parted))
    write_offsets(session.run.offsets_csv, [r for sid in sorted(res.results) for r in res.results[sid]])
    return res


def _reference_side(scene: Scene) -> int | None:
    """The longer side (px) of a scene's reference file, which is its stack's grid, from the file's
    header; None when the header cannot be read (the ingest task then reports it)."""
    from sattag.errors import SattagError
    from sattag.ingest.bands import raster_info

    try:
        info = raster_info(scene.files[0], scene.id)
    except SattagError:
        return None
    return max(info.height, info.width)


def _ingest_by_size(session: Session, scenes: Sequence[Scene]) -> tuple[list[Scene], list[Scene]]:
    """The scenes stacked in one task each and those stacked in parts: larger than ``[predict]
    tile_px`` on a side (from the reference file's header), unless a complete stack is there (the
    one task then only reads its header). A header that cannot be read: one task, which reports it."""
    from sattag.ingest import stack_is_complete

    limit = session.config.predict.tile_px
    whole, parted = [], []
    for s in scenes:
        side = _reference_side(s)
        big = side is not None and side > limit and not stack_is_complete(session.run.stack(s.id))
        (parted if big else whole).append(s)
    return whole, parted


def _ingest_in_parts(session: Session, scenes: Sequence[Scene]) -> dict[str, list[tuple]]:
    """Stack scenes in parts (:mod:`sattag.ingest.parts`): each scene's offsets fitted (one task per
    scene), its parts written (one task per part, all scenes' parts over all workers), then joined (one
    task per scene). Parts of about ``[predict] tile_px`` squared pixels each. Returns scene id ->
    offsets rows (failed scenes absent, recorded)."""
    from sattag.ingest.parts import part_rows

    fits = session.map("ingest offsets", tasks.ingest_offsets_task, scenes).results
    rows = {sid: part_rows(fit.grid.height, fit.grid.width, session.config.predict.tile_px)
            for sid, fit in fits.items()}
    parts = [tasks.StackPart(s, r) for s in scenes if s.id in fits for r in rows[s.id]]
    session.map_tiles("ingest parts", tasks.ingest_part_task, parts, per_tile={p.id: fits[p.scene.id] for p in parts})
    done = [s for s in scenes if s.id in fits and not session.failed(s.id)]
    return session.map("ingest join", tasks.ingest_join_task, done,
                       per_scene={s.id: (fits[s.id], rows[s.id]) for s in done}).results


def explore(session: Session, scenes: Sequence[Scene], figure_scene: str | None = None) -> Explored:
    """Truth of the labelled scenes (clipped polygons + class masks), per-class histograms, figures.

    Returns the labelled and unlabelled scenes, their pixel counts and histograms (:class:`Explored`).
    A scene the label source does not cover is *unlabelled*: not trained on, not scored (said once
    in ``session.notes``). Resumable: a scene whose truth files exist is read, not rewritten, and
    figures that exist are kept.
    """
    labels = _submit_labels(session, _ok(session, scenes))
    explored, figures = _explore(session, scenes, [labels] if labels else [], figure_scene)
    if figures is not None:
        session.gather(figures)
    return explored


def _submit_labels(session: Session, scenes: Sequence[Scene], after: PendingStage | None = None) -> PendingStage | None:
    """The ``labels`` tasks of ``scenes`` submitted (each after its own task of ``after``, when given);
    None when the run has no label source."""
    if not session.labels.exists:
        return None
    return session.submit("labels", tasks.labels_task, scenes, after=after)


def _explore(session: Session, scenes: Sequence[Scene], labels: Sequence[PendingStage],
             figure_scene: str | None = None) -> tuple[Explored, PendingStage | None]:
    """:func:`explore` from its submitted ``labels`` tasks: waits for them, writes the histograms and
    the exploration figures here, and submits the one scene's ``figures`` task without waiting for it
    (returned, None when its figures exist): the caller gathers it, so that it runs beside later work."""
    from sattag.labels import write_histograms
    from sattag.viz.explore import write_explore_figures

    out = Explored()
    if not labels:
        return out, None
    res = StageResult()
    for pending in labels:
        res.results.update(session.gather(pending).results)
    scenes = _ok(session, scenes)
    labelled = {sid: r for sid, r in res.results.items() if r is not None}
    out.labelled = sorted(labelled)
    out.unlabelled = sorted(sid for sid, r in res.results.items() if r is None)
    out.counts = {s: labelled[s].counts for s in out.labelled}
    if out.unlabelled and session.labels.kind == "vector":
        shown = ", ".join(out.unlabelled[:5]) + (", ..." if len(out.unlabelled) > 5 else "")
        session.notes.append(f"{len(out.unlabelled)} scene(s) not covered by {session.labels.path.name} "
                             f"(not trained on, not scored): {shown}")
    if not labelled:
        return out, None
    ids = out.labelled
    # Partial histograms add up: the same sum whatever worker computed each scene.
    hist = sum(labelled[s].histograms for s in ids)
    bands = labelled[ids[0]].bands
    out.histograms = hist
    background = sum(labelled[s].background for s in ids)
    figures = session.run.figures / "explore"
    first = figure_scene if figure_scene in labelled else ids[0]
    overlay = None
    if not (figures / f"overlay_{first}.png").exists():
        # Submitted before this process draws its own figures, so that a worker can draw these meanwhile.
        scene = next(s for s in scenes if s.id == first)
        overlay = session.submit("figures", tasks.explore_figures_task, [scene])
    if not session.run.histograms.exists():
        write_histograms(session.run.histograms, hist, bands, session.classes, background=background)
    if not (figures / "histograms.png").exists():
        with session.timed("explore"):
            write_explore_figures(figures, classes=session.classes,
                                  thumbnails={s: labelled[s].thumbnail for s in ids},
                                  hist=hist, bands=bands, background=background)
    return out, overlay


def split(session: Session, explored: Explored) -> SceneSplit:
    """Split the labelled scenes (of those that did not fail) into training and held-out scenes.

    Uses the split of the models' card when models exist (a resumed run keeps its split), else
    the configuration's ``[split]``. Sets and returns ``session.split``.
    """
    from sattag.learn import read_card_split

    labelled = [s for s in explored.labelled if not session.failed(s)]
    if (session.run.models / "card.json").exists():
        session.split = read_card_split(session.run.models, labelled)
    else:
        session.split = split_for(labelled, session.config.split)
    if labelled and not session.split.held_out:
        session.notes.append(f"all {len(labelled)} labelled scene(s) train the models: every score is "
                             "in-sample (hold scenes out with --holdout or --holdout-scenes)")
    return session.split


def train(session: Session, scenes: Sequence[Scene], explored: Explored) -> "object | None":
    """One model per class (and per configured pair) from the training scenes, ``models/`` and ``auc.csv``.

    The rows are the training scenes' clusters (``[model] level = "cluster"``: every cluster, its
    object features) or balanced pixel samples (``"pixel"``). Only ``session.split.train`` scenes
    train; the held-out scenes then give each model's AUC
    on scenes it never saw (``auc.csv`` rows ``split=held-out``), beside the 90/10 pixel-split AUC
    of the training scenes (``split=in-sample``: neighbouring pixels leak, so it flatters).
    With ``[predict] tune_thresholds`` and two or more training scenes, the training scenes are
    split into ``[split] tuning_folds`` folds by scene; per fold a first model set trained without
    the fold's scenes predicts them, and each class's threshold is the one with the best Jaccard
    over all folds together (:mod:`sattag.learn.thresholds`). With one training scene and object-level
    models, strips of it are the folds (``[split] tune_on_strips``). The final models train on all
    training scenes and carry the thresholds in their card. Skips training when ``models/card.json`` is already there (a
    resumed run).
    """
    from sattag.ingest import read_stack_metadata
    from sattag.learn import (auc_table, cap_samples, samples_auc, tune_cluster_thresholds, tune_thresholds,
                              tuning_folds, write_auc)

    models_dir = session.run.models
    if (models_dir / "card.json").exists():
        return None
    if session.split is None:
        split(session, explored)
    train_ids = [s for s in session.split.train if not session.failed(s)]
    if not train_ids:
        raise SattagError("no labelled scene to train on", session.labels.path or session.data_dir)
    bands = read_stack_metadata(session.run.stack(train_ids[0])).bands
    held = [s for s in session.split.held_out if not session.failed(s)]
    objects = None
    if session.config.model.level == "cluster":
        # Every training and held-out scene's clusters once: the rows of the models, of the tuning
        # and of the held-out AUC. The rows stay in the run folder (~65 MB per full-size scene, times
        # 1 + relit_copies for a training scene), memory-mapped: a model reads only the rows drawn
        # for it. The client holds the clusters' shares, sizes and centres (~1/10 of the rows).
        objects = {**_cluster_rows(session, scenes, train_ids, "cluster rows", session.config.model.relit_copies),
                   **_cluster_rows(session, scenes, held, "cluster rows held-out", 0)}
        train_ids = [s for s in train_ids if s in objects]
        held = [s for s in held if s in objects]
    thresholds = None
    sc = session.config.split
    folds = tuning_folds(train_ids, sc.tuning_folds, sc.validation, sc.seed)
    tune = session.config.predict.tune_thresholds
    # Thresholds are tuned on the validation scenes' clusters as recorded, like the scenes they will
    # be applied to, not on their relit copies (which only the models learn from).
    lights = 1 + session.config.model.relit_copies
    if tune and not folds and objects is not None and len(train_ids) == 1 and sc.tune_on_strips:
        parts = _strip_parts(session, scenes, explored, objects[train_ids[0]], bands, lights)
        with session.timed("tune thresholds"):
            thresholds = tune_cluster_thresholds(parts).assign(validation_scenes=1, folds=len(parts))
        del parts
    if tune and folds:
        # Per fold, a first model set that does not see the fold's scenes predicts them; the
        # thresholds are chosen on all folds' counts together.
        parts = []
        for fold in folds:
            if objects is not None:
                validation = join_cluster_rows([objects[s].recorded(lights) for s in fold.held_out])
                parts.append(_cluster_fold(session, scenes, explored, objects, fold.train, validation, bands))
            else:
                first = _fit(session, scenes, explored, fold.train, bands, "train (for thresholds)",
                             most=sc.tuning_pixels)
                totals = {cid: tuple(int(v) for v in sum(explored.counts[s][i] for s in fold.held_out))
                          for i, cid in enumerate(session.classes.ids)}
                parts.append((first, _evaluation_sample(session, scenes, explored, fold.held_out,
                                                        "sample validation"), totals))
        with session.timed("tune thresholds"):
            thresholds = tune_cluster_thresholds(parts) if objects is not None else tune_thresholds(parts)
            thresholds = thresholds.assign(validation_scenes=sum(len(f.held_out) for f in folds),
                                           folds=len(folds))
        del parts
    model_set = _fit(session, scenes, explored, train_ids, bands, "train",
                     pairs=pairs_for(session.config.model, session.classes), objects=objects)
    model_set.split = session.split
    model_set.thresholds = thresholds
    held_table = None
    if held:
        with session.timed("held-out AUC"):
            if objects is not None:
                most = session.config.split.auc_pixels
                rows = cap_samples(_object_samples(session, objects, held), most, most, session.config.sample.seed)
            else:
                rows = _evaluation_sample(session, scenes, explored, held, "sample held-out")
            held_table = samples_auc(model_set, rows)
    model_set.save(models_dir)
    write_auc(session.run.auc_csv, auc_table(model_set), held_table)
    if objects is not None:  # the rows were only needed to train
        shutil.rmtree(session.run.object_rows(train_ids[0]).parent, ignore_errors=True)
    return model_set


def _fit(session: Session, scenes: Sequence[Scene], explored: Explored, ids: Sequence[str], bands, stage: str,
         most: int | None = None, pairs: Sequence[tuple[int, int]] = (), objects: dict | None = None):
    """Models trained on balanced samples of the scenes ``ids`` (``config.sample``, at most ``most``
    pixels in and out of each class), or on their clusters (``objects``: :func:`_cluster_rows`, for
    object-level models), and pairwise models for ``pairs`` on the same rows."""
    from sattag.learn import allocate_quotas, cap_samples, train_models, train_pairs

    level = "cluster" if objects is not None else "pixel"
    n = session.config.sample
    if most is not None:
        n = dataclasses.replace(n, n_in=min(n.n_in, most), n_out=min(n.n_out, most))
    if objects is not None:
        samples = cap_samples(_object_samples(session, objects, ids), n.n_in, n.n_out, n.seed)
    else:
        samples = _sample(session, scenes, allocate_quotas({s: explored.counts[s] for s in ids}, n))
    with session.timed(stage):
        bar = session.progress.stage(stage, len(session.classes))
        model_set = train_models(samples, bands, session.classes, session.config, client=session.client,
                                 progress=lambda n=1: bar.advance(n),
                                 feature_set=FeatureSet.from_config(session.config.features), level=level)
        bar.close()
    if pairs:
        with session.timed(f"{stage} pairs"):
            bar = session.progress.stage(f"{stage} pairs", len(pairs))
            train_pairs(model_set, samples, pairs, client=session.client, progress=lambda n=1: bar.advance(n))
            bar.close()
    return model_set


def _strip_parts(session: Session, scenes: Sequence[Scene], explored: Explored, one: ClusterRows, bands,
                 lights: int) -> list:
    """The threshold-tuning parts of a single training scene cut in strips (:func:`sattag.learn.scene_strips`,
    ``[split] tuning_folds`` of them, at least 2): per strip, a first model set trained on the other
    strips' clusters under all ``lights``, and this strip's rows, shares and sizes as recorded."""
    from sattag.learn import scene_strips

    k = max(2, session.config.split.tuning_folds)
    recorded = one.recorded(lights)
    strip = scene_strips(recorded.centres, k)
    every = np.tile(strip, lights)  # the copies list the clusters in the same order
    return [_cluster_fold(session, scenes, explored, {"other strips": one.take(every != i)}, ["other strips"],
                          recorded.take(strip == i), bands) for i in range(k)]


def _cluster_fold(session: Session, scenes: Sequence[Scene], explored: Explored, objects: dict[str, ClusterRows],
                  train_ids: Sequence[str], held: ClusterRows, bands) -> tuple:
    """One part of the threshold tuning of object-level models: models trained on the rows of
    ``train_ids`` in ``objects`` (at most ``[split] tuning_pixels`` in and out of each class), and the
    rows, shares and sizes of ``held``, which they did not see
    (:func:`sattag.learn.tune_cluster_thresholds`)."""
    first = _fit(session, scenes, explored, train_ids, bands, "train (for thresholds)",
                 most=session.config.split.tuning_pixels, objects=objects)
    return first, held.rows, held.shares, held.sizes


def _evaluation_sample(session: Session, scenes: Sequence[Scene], explored: Explored, ids: Sequence[str],
                       stage: str) -> dict:
    """A balanced sample of the scenes ``ids`` to measure models on, at most ``[split] auc_pixels``
    pixels in and out of each class."""
    from sattag.learn import allocate_quotas

    n, most = session.config.sample, session.config.split.auc_pixels
    asked = dataclasses.replace(n, n_in=min(n.n_in, most), n_out=min(n.n_out, most))
    return _sample(session, scenes, allocate_quotas({s: explored.counts[s] for s in ids}, asked), stage)


def _cluster_rows(session: Session, scenes: Sequence[Scene], ids: Sequence[str], stage: str,
                  relit_copies: int) -> dict[str, ClusterRows]:
    """scene id -> its clusters' object rows, shares and sizes (:func:`tasks.cluster_rows_task`, on
    the workers), with ``relit_copies`` more rows per cluster under other light (training scenes;
    held-out scenes get none: they are scored as they are); a scene that fails is recorded and left out."""
    chosen = [s for s in scenes if s.id in set(ids)]
    if not chosen:
        return {}
    from sattag.features.objects import read_object_rows

    res = session.map(stage, tasks.cluster_rows_task, chosen, per_scene={s.id: relit_copies for s in chosen})
    # The rows stay on disk, memory-mapped: only the rows drawn for a model are read (ClusterRows).
    return {s: dataclasses.replace(r, rows=read_object_rows(r.rows)) for s, r in res.results.items()}


def _object_samples(session: Session, objects: dict[str, ClusterRows], ids: Sequence[str]) -> dict:
    """The rows of object-level models from the clusters of the scenes ``ids``, per class: one table
    of rows that every class shares, each with its own labels (:func:`sattag.learn.cluster_samples`)."""
    from sattag.learn import cluster_samples

    chosen = [objects[s] for s in sorted(ids) if s in objects]
    if not chosen:
        return {}
    joined = join_cluster_rows(chosen)
    return cluster_samples(joined.rows, joined.shares, session.classes.ids)


def _sample(session: Session, scenes: Sequence[Scene], quotas: dict, stage: str = "sample") -> dict:
    """Balanced samples of the scenes in ``quotas`` (drawn on the workers), joined per class."""
    from sattag.learn import concat_samples

    chosen = [s for s in scenes if s.id in quotas]
    res = session.map(stage, tasks.sample_task, chosen, per_scene=quotas)
    return concat_samples([res.results[s] for s in sorted(res.results)])


def predict(session: Session, scenes: Sequence[Scene], figure_scenes: int | None = None) -> Predicted:
    """Clusters, probabilities, masks and polygons of every scene; the submission CSV and GeoParquet.

    Cluster figures are drawn for the first ``figure_scenes`` scenes (default: the configuration's
    ``[figures] cluster_figure_scenes``).

    Returns every scene's polygons and, for scenes with truth, pixel counts (:class:`Predicted`).
    """
    return _predict(session, scenes, figure_scenes)


def _cluster_figures(session: Session, scenes: Sequence[Scene], figure_scenes: int | None) -> dict[str, bool]:
    """scene id -> whether its predict task draws cluster figures: the first ``figure_scenes`` scenes
    (default ``[figures] cluster_figure_scenes``)."""
    if figure_scenes is None:
        figure_scenes = session.config.figures.cluster_figure_scenes
    first = {s.id for s in scenes[:figure_scenes]}
    return {s.id: s.id in first for s in scenes}


def _submit_predict(session: Session, scenes: Sequence[Scene], figures: dict[str, bool],
                    after: PendingStage | None) -> PendingStage | None:
    """The ``predict`` tasks of the scenes predicted whole, submitted before their stacks exist, each
    after its own scene's task of ``after`` (its labels, or its ingest): a scene is predicted as soon
    as it is ready, whatever the other scenes' state. Whole: its stack's grid, which is its reference
    file's (header), is at most ``[predict] tile_px`` on a side; the others are left to :func:`predict`.
    ``figures``: scene id -> whether its task draws cluster figures (:func:`_cluster_figures`).
    None when there are no trained models yet (they are trained between)."""
    if not (session.run.models / "card.json").exists():
        return None
    limit = session.config.predict.tile_px
    whole = [s for s in scenes if (side := _reference_side(s)) is not None and side <= limit]
    return session.submit("predict", tasks.predict_task, whole, per_scene={s.id: figures[s.id] for s in whole},
                          after=after)


def _predict(session: Session, scenes: Sequence[Scene], figure_scenes: int | None = None,
             submitted: PendingStage | None = None) -> Predicted:
    """:func:`predict`; ``submitted``: the predict tasks of some of the scenes, already submitted
    (:func:`_submit_predict`), waited for here instead of being submitted again."""
    import shapely

    from sattag.vectorize import write_geoparquet, write_submission_csv

    models_dir = session.run.models
    if not (models_dir / "card.json").exists():
        raise SattagError("no trained models (card.json missing): run `sattag train` first", models_dir)
    results = {}
    if submitted is not None:
        results.update(session.gather(submitted).results)
        done = {s.id for s in submitted.scenes}
        scenes = [s for s in scenes if s.id not in done]
    scenes = _ok(session, scenes)
    with_figures = _cluster_figures(session, scenes, figure_scenes)
    whole, tiled = _by_size(session, scenes)
    if whole:
        res = session.map("predict", tasks.predict_task, whole, per_scene={s.id: with_figures[s.id] for s in whole})
        results.update(res.results)
    if tiled:
        results.update(_predict_tiled(session, tiled))
    polygons = {(sid, cid): shapely.from_wkb(wkb)
                for sid in sorted(results) for cid, wkb in results[sid].polygons.items()}
    pixel = {sid: r.pixel for sid, r in results.items() if r.pixel is not None}
    polygon = {sid: r.polygon for sid, r in results.items() if r.polygon is not None}
    with session.timed("write"):
        sample = session.data_dir / "sample_submission.csv"
        if sample.exists():
            # The DSTL submission holds the rows of sample_submission.csv (the test scenes) in its
            # order; the writer leaves other scenes (training-only) out: they are in the GeoJSON
            # and GeoParquet.
            write_submission_csv(session.run.submission_csv, polygons, sample_submission=sample,
                                 classes=session.classes)
        else:
            write_submission_csv(session.run.submission_csv, polygons, scene_ids=sorted(results),
                                 classes=session.classes)
        crs = _scene_crs(session, sorted(results))
        write_geoparquet(session.run.polygons_parquet, polygons, crs=crs, classes=session.classes)
    return Predicted(polygons=polygons, pixel=pixel, polygon=polygon)


def _by_size(session: Session, scenes: Sequence[Scene]) -> tuple[list[Scene], list[Scene]]:
    """The scenes predicted whole (one task each) and those larger than ``[predict] tile_px`` on a
    side (predicted in tiles), from their stacks' headers."""
    from sattag.ingest import read_stack_metadata

    tile_px = session.config.predict.tile_px
    whole, tiled = [], []
    for s in scenes:
        grid = read_stack_metadata(session.run.stack(s.id)).grid
        (tiled if max(grid.height, grid.width) > tile_px else whole).append(s)
    return whole, tiled


def _predict_tiled(session: Session, scenes: Sequence[Scene]) -> dict:
    """Predict scenes larger than a tile, tile by tile (:mod:`sattag.engine.tiles`): tile tasks over
    all workers, the seams stitched here from small summaries. Returns scene id -> ScenePrediction
    (failed scenes absent, recorded)."""
    from sattag.engine import tiles as tl
    from sattag.features import FeatureSet, feature_halo
    from sattag.ingest import read_stack_metadata
    from sattag.learn import read_card
    from sattag.segment import tolerance_units

    config = session.config
    card = read_card(session.run.models)
    tl.check_tile_size(config.predict.tile_px,
                       tl.CLUSTER_MARGIN_PX + feature_halo(FeatureSet.from_dict(card.get("features") or {})))
    if config.cluster.merge != "simultaneous":
        session.notes.append(f"{len(scenes)} scene(s) larger than [predict] tile_px = {config.predict.tile_px} "
                             "were predicted in tiles with the sequential cluster merge, which is not local: "
                             "their clusters differ from a whole-scene run's; [cluster] merge = \"simultaneous\" "
                             "makes tiles agree with it (README)")
    spreads = session.map("spread", tl.scene_spread_task, scenes).results
    plans = {}
    for s in scenes:
        if s.id in spreads:
            grid = read_stack_metadata(session.run.stack(s.id)).grid
            plans[s.id] = tl.plan_tiles(s, grid.height, grid.width, config.predict.tile_px)
    all_tiles = [t for ts in plans.values() for t in ts]
    seams = session.map_tiles("predict tiles", tl.predict_tile_task, all_tiles,
                              per_tile={t.id: spreads[t.scene.id] for t in all_tiles}).results
    joins, merged = {}, {}
    with session.timed("stitch"):
        for sid, ts in plans.items():
            if session.failed(sid):
                continue
            nb = len(read_stack_metadata(session.run.stack(sid)).bands)
            tol = tolerance_units(config.cluster.tolerance, config.cluster.tolerance_of, spreads[sid], nb)
            scene_joins, merged[sid] = tl.stitch(ts, {t.id: seams[t.id] for t in ts}, tol)
            joins.update(scene_joins)
    paint_tiles = [t for sid, ts in plans.items() if sid in merged for t in ts]
    painted = session.map_tiles("paint tiles", tl.paint_tile_task, paint_tiles, per_tile=joins).results
    done = [s for s in scenes if s.id in merged and not session.failed(s.id)]
    # A dense class's seam pieces are unioned band by band on all workers first (its polygons part
    # would otherwise be the one long task the others wait for).
    bands = {s.id: tl.plan_seam_bands(plans[s.id], session.classes, {t.id: painted[t.id][1] for t in plans[s.id]})
             for s in done}
    seams = [tl.ScenePart(s, "seams", cid, rows=rows) for s in done for cid, rs in bands[s.id].items() for rows in rs]
    if seams:
        session.map_parts("join seams", tl.join_seams_task, seams)
        done = [s for s in done if not session.failed(s.id)]
    # Every part of every scene at once: one scene's tables, images and classes on all workers.
    parts = [p for s in done
             for p in tl.plan_parts(s, session.classes, sum(painted[t.id][0] for t in plans[s.id]), bands[s.id])]
    res = session.map_parts("assemble parts", tl.assemble_part_task, parts,
                            per_part={p.id: merged[p.scene.id] if p.kind == "tables" else None for p in parts})
    done = [s for s in done if not session.failed(s.id)]
    pixel = {s.id: res.results[tl.ScenePart(s, "masks").id] for s in done}
    return session.map("assemble", tl.assemble_task, done, per_scene=pixel).results


def _scene_crs(session: Session, scene_ids: Sequence[str]) -> str | None:
    from sattag.ingest import read_stack_metadata

    for sid in scene_ids:
        return read_stack_metadata(session.run.stack(sid)).grid.crs
    return None


def score(session: Session, predicted: Predicted) -> "object | None":
    """DSTL Jaccard (polygons) and pixel Jaccard of the labelled scenes, held-out apart from in-sample.

    Truth is the run's own (``truth_polygons/``, ``truth_masks/``: the label source read once and
    clipped to each scene by :func:`explore`); each scene's overlay with it ran in its predict task,
    so scoring here only adds up counts. A scene the models trained on is *in-sample*; any other
    labelled scene is *held-out*. Writes ``scores.csv`` (:mod:`sattag.evaluate.scores`, held-out
    first) and returns its table; None when no predicted scene has truth.
    """
    from sattag.evaluate import write_scores

    if not predicted.polygon:
        return None
    with session.timed("score"):
        table = score_tables(predicted, trained_on(session.run), session.classes)
        write_scores(session.run.scores_csv, table)
    return table


def trained_on(run: RunFolder) -> set[str]:
    """The scenes the run's models were trained on (from their card; empty without models)."""
    from sattag.learn import read_card_split

    if not (run.models / "card.json").exists():
        return set()
    return set(read_card_split(run.models).train)


def score_tables(predicted: Predicted, train_ids: set[str], classes: ClassTable):
    """Score tables of the scenes with truth (``predicted.polygon``): held-out and in-sample apart,
    polygon and pixel.

    ``predicted``: the scenes' per-class intersections and unions (:class:`Predicted`: polygon areas
    and pixel counts); ``train_ids``: the scenes the models trained on.
    """
    import pandas as pd

    from sattag.evaluate import score_table

    tables = []
    for side in (HELD_OUT, IN_SAMPLE):
        ids = [s for s in sorted(predicted.polygon) if (s in train_ids) == (side == IN_SAMPLE)]
        if not ids:
            continue
        for kind, per_scene in (("polygon", predicted.polygon), ("pixel", predicted.pixel)):
            counts = [per_scene[s] for s in ids if s in per_scene]
            if counts:
                # Intersections and unions add up over scenes, then the ratio: the DSTL metric's rule.
                inter = sum(np.asarray(c[0], np.float64) for c in counts)
                union = sum(np.asarray(c[1], np.float64) for c in counts)
                tables.append(score_table(classes, inter, union).assign(split=side, kind=kind, scenes=len(counts)))
    table = pd.concat(tables, ignore_index=True)
    first = ["split", "kind", "scenes"]
    return table[first + [c for c in table.columns if c not in first]]


def report(session: Session) -> Path:
    """``report.html``: one self-contained page of the run."""
    from sattag.viz.report import write_report

    with session.timed("report"):
        return write_report(session.run.root, session.classes)


def record_run(session: Session, scenes: Sequence[Scene], started: str, finished: str | None = None) -> None:
    """The run describes itself in ``run.json`` (:func:`sattag.engine.records.write_run_json`):
    configuration, class table, label source, split, versions, scenes."""
    write_run_json(session.run.run_json, {
        "config": session.config.to_dict(),
        "classes": session.classes.to_records(),
        "labels": session.labels.to_dict(),
        "split": session.split.to_dict() if session.split else None,
        "versions": library_versions(),
        "scenes": [s.id for s in scenes],
        "data": str(session.data_dir),
        "started": started,
        "finished": finished,
    })


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of sattag and the libraries whose behaviour shapes a run's results (``run.json``)."""
    import importlib.metadata as md

    out = {"sattag": __version__, "python": platform.python_version()}
    for name in ("numpy", "rasterio", "shapely", "geopandas", "opencv-python-headless", "numba", "xgboost",
                 "dask", "distributed"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    try:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    except Exception:
        pass
    return out


def run_all(session: Session, scenes: Sequence[Scene]) -> RunResult:
    """ingest -> labels + explore -> split -> train -> predict (+ vectorize) -> score -> report.

    Each scene's stages are chained on the workers, not run stage by stage over all scenes: a scene's
    labels start when its own stack is written, and, when the models are already trained (a resumed
    run, or models copied in), its prediction when its labels are done, while other scenes still
    ingest and this process draws the exploration figures. The figures of one labelled scene are
    drawn on a worker beside the predictions. Scenes too large to stack or predict whole go stage by
    stage, as do the predictions when the models are trained in this run (training needs every
    training scene's labels first).
    """
    started = now()
    record_run(session, scenes, started)
    whole, parted = _ingest_by_size(session, scenes)
    stacks = session.submit("ingest", tasks.ingest_task, whole)
    labels = _submit_labels(session, whole, after=stacks)
    predicting = _submit_predict(session, whole, _cluster_figures(session, scenes, None), after=labels or stacks)
    _finish_ingest(session, stacks, parted)
    parted_labels = _submit_labels(session, _ok(session, parted)) if parted else None
    explored, figures = _explore(session, scenes, [p for p in (labels, parted_labels) if p is not None])
    split(session, explored)
    record_run(session, scenes, started)
    if session.split.train or (session.run.models / "card.json").exists():
        train(session, scenes, explored)
    predicted = _predict(session, scenes, submitted=predicting)
    if figures is not None:
        session.gather(figures)
    scores = score(session, predicted)
    record_run(session, scenes, started, now())
    report(session)
    return RunResult(explored=explored, predicted=predicted, scores=scores)

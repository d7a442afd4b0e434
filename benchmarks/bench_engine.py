"""engine: whole runs over generated DSTL-format scenes, training excluded; 1 vs 2 workers; H2O's per-pixel cost.

sattag: ``engine.run_all`` on a LocalCluster (``Config.engine.workers`` = 1, then 2), each on a fresh
run folder that starts with the same trained ``models/`` (so ``train`` is skipped): ingest (read,
resample, align, cache the stack), labels (+ histograms and figures) on the labelled scenes, predict
(clusters, per-cluster probabilities, masks, polygons), score and report. Per-stage seconds per scene
and the workers' peak memory come from the run's own ``timings.csv``; wall time is the whole
``open_session`` + ``run_all`` call (LocalCluster start included), divided by the number of scenes.

Peer in the same run: the seed engine's approach, an H2O GBM (``ntrees=100, max_depth=15``, trained
on a small sample of one class) predicting EVERY pixel of one scene for that class; its time is
extrapolated to 10 classes x 450 scenes. The H2O frame import (Parquet) is timed apart and not
counted, which favours the peer.

Data: ``quick``: 2 scenes 400 px wide (generated into a temporary folder). Full: 3 full-size scenes
(~3400 px) generated once into ``bench-out/engine-data`` and reused. 2 scenes are labelled in both.
Models are trained once per data folder with small settings (below) and reused: training is not what
this benchmark measures.
"""
from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"
DSTL_SCENES = 450
DSTL_TRAIN = 25
SEED = 21

#: quick / full: scenes, width (None = full size), model training settings (samples per side, trees, depth)
SETTINGS = {
    True: {"scenes": 2, "size": 400, "samples": 3_000, "trees": 10, "depth": 8, "h2o_sample": 500,
           "h2o_trees": 10, "h2o_px": 20_000},
    False: {"scenes": 4, "size": None, "samples": 50_000, "trees": 100, "depth": 15, "h2o_sample": 20_000,
            "h2o_trees": 100, "h2o_px": None},
}


# ------------------------------------------------------------------------------------- data + models
def make_data(data: str, n_scenes: int, size: int | None) -> str:
    """Generate the dataset unless a complete one is already there (``generator_truth.csv`` is written last)."""
    from sattag.synth import generate_dataset

    data = Path(data)
    complete = (data / "generator_truth.csv").exists() and \
        len(list((data / "three_band").glob("*.tif"))) == n_scenes
    if not complete:
        if data.exists():
            shutil.rmtree(data)
        generate_dataset(data, n_scenes=n_scenes, n_train=2, size=size, seed=SEED)
    return str(data)


def _config(samples: int, trees: int, depth: int, workers: int = 1):
    from sattag.config import Config

    return (Config().replace("sample", n_in=samples, n_out=samples)
            .replace("model", n_trees=trees, max_depth=depth)
            .replace("engine", workers=workers))


def train_once(data: str, out: str, samples: int, trees: int, depth: int) -> dict:
    """Models from the labelled scenes into ``out/models`` with the stage functions (no engine), once."""
    from sattag.classes import DSTL_CLASSES
    from sattag.ingest import discover_scenes, ingest_scene, read_stack
    from sattag.labels import labelled_scene_ids, rasterize_classes, scene_labels
    from sattag.learn import (allocate_quotas, auc_table, class_pixel_counts, concat_samples, sample_scene,
                              train_models, write_auc)
    from sattag.runfolder import RunFolder

    run = RunFolder(Path(out))
    if (run.models / "card.json").exists():
        return {"reused": True, "seconds": 0.0}
    t0 = time.perf_counter()
    cfg = _config(samples, trees, depth)
    labelled = set(labelled_scene_ids(data))
    scenes = [s for s in discover_scenes(data) if s.id in labelled]
    stacks, masks, counts = {}, {}, {}
    for s in scenes:
        st = ingest_scene(s, run.stack(s.id), cfg.ingest) or read_stack(run.stack(s.id))
        m = rasterize_classes(scene_labels(data, s.id, DSTL_CLASSES) or {}, st.grid, DSTL_CLASSES)
        counts[s.id] = class_pixel_counts(m)
        stacks[s.id], masks[s.id] = st, m
    quotas = allocate_quotas(counts, cfg.sample)
    parts = [sample_scene(stacks[s].data, masks[s], quotas[s], cfg.sample.seed, scene_id=s) for s in quotas]
    bands = stacks[scenes[0].id].bands
    del stacks, masks
    models = train_models(concat_samples(parts), bands, DSTL_CLASSES, cfg)
    models.save(run.models)
    write_auc(run.auc_csv, auc_table(models))
    return {"reused": False, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------- sattag
def engine_run(data: str, out: str, models: str, workers: int) -> dict:
    """A fresh run folder with the trained models copied in, then ``open_session`` + ``run_all``."""
    from sattag import engine
    from sattag.config import Config

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(models, out / "models")
    scenes = engine.select_scenes(data)
    t0 = time.perf_counter()
    with engine.open_session(data, out, Config().replace("engine", workers=workers)) as session:
        t_open = time.perf_counter() - t0
        engine.run_all(session, scenes)
    wall = time.perf_counter() - t0
    with open(out / "timings.csv", newline="") as f:
        timings = list(csv.DictReader(f))
    with open(out / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    return {"wall": wall, "open": t_open, "timings": timings, "failures": failures, "n": len(scenes)}


def _per_scene(timings: list[dict], stage: str, scenes: set[str] | None = None) -> tuple[float, int]:
    """Mean seconds per scene of one per-scene stage (over ``scenes`` when given), and its number of tasks."""
    secs = [float(t["seconds"]) for t in timings if t["stage"] == stage and t["scene"] != "*"
            and (scenes is None or t["scene"] in scenes)]
    return (sum(secs) / len(secs) if secs else float("nan")), len(secs)


# ------------------------------------------------------------------------------------------- peer
def h2o_per_pixel(data: str, scene_id: str, sample: int, tmp: str, ntrees: int = 100,
                  max_px: int | None = None) -> dict:
    """H2O GBM (``ntrees``, depth 15) trained on ``sample`` px in + out of one class, predicting every pixel
    of a scene (the first ``max_px`` pixels when given: quick mode)."""
    import h2o
    import numpy as np
    import pandas as pd
    from h2o.estimators import H2OGradientBoostingEstimator

    from sattag.classes import DSTL_CLASSES
    from sattag.config import IngestConfig
    from sattag.ingest import build_stack
    from sattag.ingest import discover_scenes
    from sattag.labels import rasterize_classes, scene_labels

    scene = discover_scenes(data, [scene_id])[0]
    stack = build_stack(scene, IngestConfig())
    masks = rasterize_classes(scene_labels(data, scene_id, DSTL_CLASSES) or {}, stack.grid, DSTL_CLASSES)
    # The class with most pixels inside, so that its sample is balanced.
    k = int(np.argmax(masks.reshape(len(DSTL_CLASSES), -1).sum(axis=1)))
    bands = list(stack.bands)
    n_px = stack.data.shape[1] * stack.data.shape[2]
    X = stack.data.reshape(len(bands), -1).T
    y = masks[k].reshape(-1)
    rng = np.random.default_rng(0)
    inside, outside = np.flatnonzero(y), np.flatnonzero(y == 0)
    idx = np.concatenate([rng.choice(inside, min(sample, inside.size), replace=False),
                          rng.choice(outside, min(sample, outside.size), replace=False)])
    train = pd.DataFrame(X[idx], columns=bands).assign(y=y[idx].astype(str))
    every = Path(tmp) / "pixels.parquet"
    if max_px:
        X = X[:max_px]
    pd.DataFrame(X, columns=bands).to_parquet(every, index=False)
    del X, masks, stack

    h2o.init(nthreads=-1, max_mem_size="8G", verbose=False)
    h2o.no_progress()
    try:
        frame = h2o.H2OFrame(train, column_types={**{b: "real" for b in bands}, "y": "enum"})
        t0 = time.perf_counter()
        gbm = H2OGradientBoostingEstimator(ntrees=ntrees, max_depth=15, seed=0)
        gbm.train(x=bands, y="y", training_frame=frame)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        pixels = h2o.import_file(str(every))
        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = gbm.predict(pixels)
        n_pred = pred.nrow
        t_predict = time.perf_counter() - t0
    finally:
        h2o.cluster().shutdown()
    return {"class": DSTL_CLASSES.classes[k].name, "n_px": n_pred, "scene_px": n_px, "ntrees": ntrees, "n_pred": n_pred, "train_rows": len(idx),
            "t_train": t_train, "t_import": t_import, "t_predict": t_predict}


# ------------------------------------------------------------------------------------------- run
def _say(text: str) -> None:
    """Figures as they come (stderr), so a long full run shows its results before the table."""
    print(f"[bench engine] {text}", file=sys.stderr, flush=True)


def run(quick: bool) -> list[dict]:
    s = SETTINGS[quick]
    tmpdir = tempfile.TemporaryDirectory(prefix="bench-engine-") if quick else None
    base = Path(tmpdir.name) if tmpdir else OUT
    try:
        data = base / ("engine-data" if not quick else "data")
        make_data(str(data), s["scenes"], s["size"])
        models_run = base / "engine-models"
        trained, t_train, _ = measure(train_once, str(data), str(models_run), s["samples"], s["trees"], s["depth"])
        _say(f"models {'reused' if trained['reused'] else 'trained'} in {t_train:.0f} s")
        results = {}
        for workers in (1, 2):
            results[workers], _, _ = measure(engine_run, str(data), str(base / f"engine-run-w{workers}"),
                                                       str(models_run / "models"), workers)
            r = results[workers]
            _say(f"{workers} worker(s): wall {r['wall']:.1f} s for {r['n']} scenes; failures {len(r['failures'])}; "
                 + ", ".join(f"{st} {_per_scene(r['timings'], st)[0]:.1f} s" for st in ("ingest", "labels", "predict")))
        from sattag.labels import labelled_scene_ids

        labelled = labelled_scene_ids(data)
        peer_scene = labelled[0]
        with tempfile.TemporaryDirectory(prefix="bench-h2o-") as tmp:
            peer, _, peer_client_peak = measure(h2o_per_pixel, str(data), peer_scene, s["h2o_sample"], tmp,
                                               s["h2o_trees"], s["h2o_px"])
            _say(f"h2o: {peer}")
    finally:
        if tmpdir:
            tmpdir.cleanup()
    return _rows(quick, s, results, trained, t_train, peer, peer_client_peak, labelled)


def _rows(quick, s, results, trained, t_train, peer, peer_client_peak, labelled) -> list[dict]:
    size = f"{s['size']} px" if quick else "full size (~3400 px)"
    n = results[1]["n"]
    what = f"{n} scenes {size}, 2 labelled"
    rows = []
    model_note = (f"models: {s['samples']} px in + out per class, {s['trees']} trees depth {s['depth']}, "
                  + ("reused" if trained["reused"] else f"trained once in {trained['seconds']:.0f} s") + ", not timed below")
    r1, r2 = results[1], results[2]
    for res in (r1, r2):
        if res["failures"]:
            rows.append(row("engine", "sattag", 0, 0, metric=f"FAILURES: {res['failures']}"))
    peak = {w: max((float(t["peak_mib"]) for t in r["timings"] if t["scene"] != "*"), default=float("nan"))
            for w, r in results.items()}
    # seconds per scene of each per-scene stage (1 worker: no contention between tasks). labels runs on
    # every scene: on a labelled one it rasterizes + histograms, on the others it only finds no labels.
    # predict draws cluster figures for the first 2 scenes only (engine.predict figure_scenes=2).
    ids = sorted({t["scene"] for t in r1["timings"] if t["stage"] == "ingest"})
    figure_ids = set(ids[:2])
    groups = {  # key (stage + spaces): (tool suffix, what, scenes)
        "ingest": ("", "every scene", set(ids)),
        "labels": (", labelled", "labelled scenes", set(labelled)),
        "labels ": (", unlabelled", "unlabelled scenes (no labels found)", set(ids) - set(labelled)),
        "predict": ("", "scenes without cluster figures", set(ids) - figure_ids),
        "predict ": (" + cluster figures", "scenes with cluster figures", figure_ids),
    }
    per = {}
    for key, (suffix, label, which) in groups.items():
        stage = key.strip()
        sec1, k1 = _per_scene(r1["timings"], stage, which)
        sec2, _ = _per_scene(r2["timings"], stage, which)
        per[key] = sec1
        if k1 == 0:
            continue
        rows.append(row("engine", f"sattag {stage}{suffix} (1 worker)", sec1, peak[1] / 1024,
                        metric=f"{sec1:.2f} s/scene, {label} ({k1}); with 2 workers {sec2:.2f} s/task",
                        note=what + ("; predict = clusters, probabilities, rules, masks, polygons"
                                     if stage == "predict" else "")))
    pred = per["predict"] if per["predict"] == per["predict"] else per["predict "]
    unlab = per["labels "] if per["labels "] == per["labels "] else 0.0
    wall = {w: r["wall"] / r["n"] for w, r in results.items()}
    for w, r in results.items():
        rows.append(row("engine", f"sattag run_all, {w} worker(s)", r["wall"], peak[w] / 1024,
                        metric=f"{wall[w]:.2f} s/scene end to end (train excluded)",
                        target="< 15 s per full-size scene on 2 cores" if w == 2 else "",
                        note=f"{what}; includes LocalCluster start ({r['open']:.1f} s), explore figures, score, report; "
                             f"peak_gib = max worker peak_mib in timings.csv"))
    ratio = r1["wall"] / r2["wall"] if r2["wall"] else float("nan")
    ideal = n / -(-n // 2)  # with n scenes on 2 workers, ceil(n/2) rounds at best
    rows.append(row("engine", "sattag scaling 1 -> 2 workers", r2["wall"], peak[2] / 1024,
                    metric=f"{ratio:.2f}x wall time", target=">= 1.7x",
                    note=f"{n} scenes: at most {ideal:.2f}x for the per-scene stages (ceil(n/2) rounds); "
                         "training, explore figures, score and report run once on the client"))
    rows.append(row("engine", "sattag peak memory per worker", 0, max(peak.values()) / 1024,
                    metric=f"{max(peak.values()):.0f} MiB", target="< 4 GiB per worker",
                    note="max peak_mib (worker VmHWM) over every task in timings.csv, 1 and 2 workers"))
    # 450 scenes: every scene ingested and predicted, the 25 labelled also rasterized; 2 workers share them.
    task_hours = (DSTL_SCENES * (per["ingest"] + pred) + DSTL_TRAIN * per["labels"]
                  + (DSTL_SCENES - DSTL_TRAIN) * unlab) / 2 / 3600
    wall_hours = DSTL_SCENES * wall[2] / 3600
    rows.append(row("engine", "sattag 450 DSTL scenes (extrapolated)", wall_hours * 3600, max(peak.values()) / 1024,
                    metric=f"{wall_hours:.2f} h from the measured 2-worker wall time per scene; {task_hours:.2f} h if 2 "
                           f"workers scaled perfectly (1-worker task times: 450 x (ingest + predict) + 25 x labels "
                           f"+ 425 x unlabelled labels task, / 2)",
                    note=model_note + ("; QUICK: small scenes, not full size" if quick else "")))
    # peer: the seed engine predicted every pixel with H2O, one model per class. Prediction cost grows
    # with pixels and trees; quick mode predicts fewer of both and scales up (a smoke test only).
    full_px = 3400 * 3350
    scale = (full_px / peer["n_px"]) * (100 / peer["ntrees"]) if quick else peer["scene_px"] / peer["n_px"]
    per_scene_class = peer["t_predict"] * scale
    h2o_hours = per_scene_class * 10 * DSTL_SCENES / 3600
    rows.append(row("engine", "h2o GBM per-pixel predict (seed engine)", peer["t_predict"], peer_client_peak,
                    metric=f"{peer['n_px'] / peer['t_predict'] / 1e6:.3f} Mpx/s; {peer['n_px']} px, one class, "
                           f"in {peer['t_predict']:.1f} s -> {per_scene_class:.0f} s per full scene and class -> "
                           f"10 classes x 450 scenes = {h2o_hours:.0f} h",
                    note=f"ntrees={peer['ntrees']} max_depth=15 trained on {peer['train_rows']} px of {peer['class']} "
                         f"(train {peer['t_train']:.1f} s, Parquet import {peer['t_import']:.1f} s not counted); "
                         f"H2O on every core; peak_gib: Python client only (JVM max 8G)"
                         + (f"; QUICK: {peer['n_px']} px and {peer['ntrees']} trees, scaled x(px) x(100/trees)" if quick else "")))
    return rows


if __name__ == "__main__":
    import json

    for r in run(quick="--full" not in sys.argv):
        print(json.dumps(r))

"""quality: HELD-OUT tagging quality -- sattag beside two references measured in the same run.

For each dataset and direction (train on some scenes, score scenes the models never saw):

- **trivial**: the class everywhere; pixel Jaccard = true class pixels / scene pixels of the held-out
  scenes. A tagger that does not beat it has learned nothing useful on those scenes.
- **RandomForest**: scikit-learn ``RandomForestClassifier`` (settings in ``RF``), one per class,
  trained per pixel on the very pixels sattag's models train on: the balanced samples that
  ``sattag.learn`` draws from the run's training scenes with the run's ``SampleConfig`` (the same
  quotas, seeds and 90/10 split, re-drawn through sattag's public API from the run folder). It sees
  those pixels' band values, whatever features sattag computes from them, so the reference stays put
  while sattag changes. It predicts every pixel of the held-out scenes, threshold 0.5 -> pixel
  Jaccard; its masks go through sattag's vectorizer and DSTL polygon Jaccard too (full mode), and its
  AUC is measured on the same balanced held-out sample as sattag's.
- **sattag**: ``sattag run DATA --out RUN --workers 0 --quiet --holdout-scenes ID`` (real kits: with
  ``--labels --class-column class --classes``); held-out pixel and polygon Jaccard from
  ``RUN/scores.csv``, held-out AUC from ``RUN/auc.csv``.

Datasets: the two real labelled kits under ``../shared/data/real-labelled`` (both directions each) and
generated DSTL-format data (all 10 classes, some scenes held out). A second part prints the
generator's per-class AUC beside the seed's real-DSTL table (``generator_auc.generator_aucs``, when
that module is there). Every dataset runs in its own processes (``measure``); a failure prints an
error row and the rest goes on. Per-class figures go to ``bench-out/quality.csv`` (and the
generator AUC table to ``bench-out/quality_generator_auc.csv``).

Run: ``.venv/bin/python benchmarks/run.py --only quality [--quick]`` or
``.venv/bin/python benchmarks/bench_quality.py [--quick]``.
"""
from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402

from sattag.config import ModelConfig  # noqa: E402

BENCH = "quality"
REPO = Path(__file__).resolve().parent.parent
#: The real labelled kits (``../shared/data/real-labelled`` beside the repository; or $SATTAG_REAL_LABELLED).
KITS = Path(os.environ.get("SATTAG_REAL_LABELLED", REPO.parent / "shared" / "data" / "real-labelled"))
OUT_DIR = Path("bench-out")

#: RandomForest reference. Fully grown trees, each on a bootstrap of 20 000 of the sample's rows:
#: trees on the whole ~335 000-row Buildings sample took 128 s to fit on the 2-core machine, 20 000
#: rows 10 s; 50 000 rows per tree changed the held-out pixel Jaccard by at most 0.015 (Buildings,
#: Trees, Glacier, Road tried). ``class_weight="balanced"`` gives the 50/50 prior that sattag's
#: ``scale_pos_weight`` gives, so the 0.5 threshold means the same for both.
RF = dict(n_estimators=100, max_samples=20_000, n_jobs=2, random_state=0, class_weight="balanced")
RF_QUICK = dict(RF, n_estimators=20, max_samples=5_000)

FULL = dict(
    real=[("everest-landsat7-glaciers", "everest_west", "everest_east"),
          ("everest-landsat7-glaciers", "everest_east", "everest_west"),
          ("spacenet3-vegas-pan-roads", "vegas_west", "vegas_east"),
          ("spacenet3-vegas-pan-roads", "vegas_east", "vegas_west")],
    generated=dict(n_scenes=6, size=1000, seed=1, n_held=2),
    # As the generator was calibrated: 6 full-size scenes (the AUC of a random pixel split depends on
    # how densely the sample covers a class; see generator_auc.py). ~3 min, 2.6 GiB.
    generator_auc=dict(n_scenes=6, size=None, seed=1),
    config=None, rf=RF, rf_polygons=True,
)
# Quick: one direction per kit, smaller samples (a config file), small generated scenes.
QUICK = dict(
    real=[("everest-landsat7-glaciers", "everest_west", "everest_east"),
          ("spacenet3-vegas-pan-roads", "vegas_west", "vegas_east")],
    generated=dict(n_scenes=3, size=300, seed=1, n_held=1),
    generator_auc=dict(n_scenes=2, size=300, seed=1),
    config="[sample]\nn_in = 20000\nn_out = 20000\n", rf=RF_QUICK,
    rf_polygons=False,  # vectorizing a per-pixel RF mask (speckled) is the slowest part of the references
)

#: Pixels in and out of each class drawn from the held-out scenes for the held-out AUC, where the run's
#: configuration does not say (``[split] auc_pixels``); the engine's default.
HELD_OUT_AUC_PIXELS = 50_000

#: The seed's pipeline, run beside sattag's defaults in the same benchmark: per-pixel models on the
#: band values only, no pairwise models, the models applied once to each cluster's mean spectrum,
#: threshold 0.5, 3 % of the [0, 1] range, small clusters merged one after another, every tree on all
#: rows and all columns.
SEED_CONFIG = ('[features]\nset = "spectra"\n[model]\nlevel = "pixel"\npairs = []\nrows_per_tree = 1.0\n'
               'features_per_split = 1.0\n'
               '[predict]\npixels_per_cluster = 0\ntune_thresholds = false\n[cluster]\ntolerance_of = "range"\n'
               'merge = "sequential"\n')

#: sattag at the model level that is not the default (``--model pixel|cluster``), run beside the
#: default in the same benchmark: the evidence for the default.
DEFAULT_LEVEL = ModelConfig().level
OTHER_LEVEL = "pixel" if DEFAULT_LEVEL == "cluster" else "cluster"
OTHER_CONFIG = f'[model]\nlevel = "{OTHER_LEVEL}"\n'

COLUMNS = ["dataset", "train", "held_out", "class_id", "class", "truth_px", "scene_px", "trivial_pixel",
           "rf_pixel", "rf_polygon", "rf_auc_held_out", "seed_pixel", "seed_polygon", "sattag_pixel",
           "sattag_polygon", "sattag_auc_held_out", "sattag_auc_in_sample", "other_level_pixel",
           "other_level_polygon"]


# ------------------------------------------------------------------------------------------ sattag

def _sattag_exe() -> list[str]:
    exe = Path(sys.executable).parent / "sattag"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("sattag")
    if found:
        return [found]
    return [sys.executable, "-c", "from sattag.cli import app; app()"]


def run_cli(args: list[str], log: Path) -> dict:
    """Run one ``sattag`` command (in a child process of this one): exit code, wall seconds, peak RSS."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(_sattag_exe() + args, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    return {"rc": rc, "seconds": seconds, "peak_gib": peak}


def generate(data: Path, n_scenes: int, size: int, seed: int) -> None:
    res = run_cli(["generate", str(data), "--scenes", str(n_scenes), "--train", str(n_scenes), "--size", str(size),
                   "--seed", str(seed), "--quiet"], data.parent / "generate.log")
    if res["rc"] != 0:
        raise RuntimeError(f"sattag generate exited {res['rc']}: {_tail(data.parent / 'generate.log')}")


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def sattag_scores(run: Path) -> dict:
    """Held-out pixel / polygon Jaccard and AUC per class id from a run folder."""
    import pandas as pd

    scores = pd.read_csv(run / "scores.csv")
    held = scores[scores["split"] == "held-out"]
    out: dict[int, dict] = {}
    for kind in ("pixel", "polygon"):
        for r in held[held["kind"] == kind].itertuples():
            out.setdefault(int(r.class_id), {})[f"sattag_{kind}"] = float(r.jaccard)
    auc = pd.read_csv(run / "auc.csv")
    for side, col in (("held-out", "sattag_auc_held_out"), ("in-sample", "sattag_auc_in_sample")):
        for r in auc[auc["split"] == side].itertuples():
            out.setdefault(int(r.class_id), {})[col] = float(r.auc)
    out["auc_counts"] = {(r.split, int(r.class_id)): (int(r.n_in), int(r.n_out)) for r in auc.itertuples()}
    return out


# ------------------------------------------------------------------------------------------ references

def references(run_dir: Path, rf_params: dict, polygons: bool = True) -> dict:
    """Trivial and RandomForest held-out figures from a finished sattag run folder (own process).

    Draws the run's training samples again through sattag's public API (same config, split, quotas and
    seeds), trains one RandomForest per class on the rows sattag's model trained on (the 90/10 split's
    90), predicts every pixel of the held-out scenes, and scores pixels and polygons like the run does.
    """
    from sklearn.ensemble import RandomForestClassifier

    from sattag.classes import ClassTable
    from sattag.config import config_from_dict
    from sattag.evaluate import dstl_jaccard, pixel_counts
    from sattag.ingest import read_stack
    from sattag.labels import read_masks, read_truth_polygons
    from sattag.learn import (allocate_quotas, class_pixel_counts, concat_samples, roc_auc, sample_scene,
                              split_train_valid)
    from sattag.runfolder import RunFolder
    from sattag.vectorize import masks_to_polygons

    run = RunFolder(run_dir)
    meta = json.loads(run.run_json.read_text())
    config = config_from_dict(meta["config"])
    sc = config.sample
    classes = ClassTable.from_records(meta["classes"])
    train_ids, held_ids = list(meta["split"]["train"]), list(meta["split"]["held_out"])
    if not held_ids:
        raise RuntimeError("the run held no scene out")

    def draw(ids: list[str], asked) -> dict:
        masks = {s: read_masks(run.truth_masks(s))[0] for s in ids}
        quotas = allocate_quotas({s: class_pixel_counts(m) for s, m in masks.items()}, asked)
        parts = [sample_scene(read_stack(run.stack(s)).data, masks[s], quotas[s], sc.seed, scene_id=s)
                 for s in sorted(ids)]
        return concat_samples(parts)

    t0 = time.perf_counter()
    samples = draw(train_ids, sc)
    import dataclasses

    most = getattr(getattr(config, "split", None), "auc_pixels", None) or HELD_OUT_AUC_PIXELS
    held_samples = draw(held_ids, dataclasses.replace(sc, n_in=min(sc.n_in, most), n_out=min(sc.n_out, most)))
    sample_s = time.perf_counter() - t0

    # Held-out scenes: truth masks, truth polygons, pixels as rows.
    held = {}
    for s in held_ids:
        stack = read_stack(run.stack(s))
        held[s] = {"X": stack.data.reshape(stack.data.shape[0], -1).T, "grid": stack.grid,
                   "truth": read_masks(run.truth_masks(s))[0],
                   "truth_poly": read_truth_polygons(run.truth_polygons(s), classes)}
        del stack
    pred = {s: np.zeros_like(h["truth"]) for s, h in held.items()}
    per_class: dict[int, dict] = {}
    fit_s = predict_s = 0.0
    for i, cls in enumerate(classes):
        key = i + 1  # sample_scene's default class ids: 1..C, mask layer i (what the engine draws)
        res = {"n_in": 0, "n_out": 0, "n_train": 0}
        per_class[cls.id] = res
        if key not in samples:
            res["skipped"] = "no sample"
            continue
        X, y = samples[key]
        tr, _ = split_train_valid(y, sc.validation_fraction, sc.seed + cls.id)
        res.update(n_in=int(y.sum()), n_out=int(y.size - y.sum()), n_train=int(tr.size))
        if len(np.unique(y[tr])) < 2:
            res["skipped"] = "one label only"
            continue
        t1 = time.perf_counter()
        params = dict(rf_params, max_samples=min(int(rf_params.get("max_samples") or tr.size), tr.size))
        rf = RandomForestClassifier(**params).fit(X[tr], y[tr])
        t2 = time.perf_counter()
        for s, h in held.items():
            p = np.concatenate([rf.predict_proba(h["X"][j:j + 500_000])[:, 1]
                                for j in range(0, h["X"].shape[0], 500_000)])
            pred[s][i] = (p >= 0.5).reshape(pred[s].shape[1:])
        Xh, yh = held_samples.get(key, (None, None))
        if Xh is not None and 0 < yh.sum() < yh.size:
            res["auc"] = roc_auc(yh, rf.predict_proba(Xh)[:, 1])
            res["held_n"] = (int(yh.sum()), int(yh.size - yh.sum()))
        predict_s += time.perf_counter() - t2
        fit_s += t2 - t1
        del rf
    # Pixel counts (sums over held-out scenes, then the ratio) and polygons of the RF masks.
    inter = np.zeros(len(classes)); union = np.zeros(len(classes))  # noqa: E702
    truth_px = np.zeros(len(classes)); scene_px = 0  # noqa: E702
    t3 = time.perf_counter()
    pred_poly, truth_poly = {}, {}
    for s, h in held.items():
        a, b = pixel_counts(pred[s], h["truth"])
        inter += a
        union += b
        truth_px += (h["truth"].reshape(len(classes), -1) != 0).sum(axis=1)
        scene_px += h["truth"].shape[1] * h["truth"].shape[2]
        if polygons:
            for cid, g in masks_to_polygons(pred[s], h["grid"], classes, config.vectorize).items():
                pred_poly[(s, cid)] = g
            for cid, g in h["truth_poly"].items():
                truth_poly[(s, cid)] = g
    poly = {}
    if polygons:
        poly = dstl_jaccard(pred_poly, truth_poly, classes, scene_ids=held_ids)
        poly = dict(zip(poly["class_id"], poly["jaccard"]))
    vector_s = time.perf_counter() - t3
    for i, cls in enumerate(classes):
        r = per_class[cls.id]
        r["truth_px"] = int(truth_px[i])
        r["scene_px"] = int(scene_px)
        r["trivial_pixel"] = float(truth_px[i] / scene_px)
        r["rf_pixel"] = float(inter[i] / union[i]) if union[i] else float("nan")
        r["rf_polygon"] = float(poly.get(cls.id, float("nan")))
    features = getattr(getattr(config, "features", None), "set", "spectra (band values)")
    return {"classes": meta["classes"], "train": train_ids, "held_out": held_ids, "per_class": per_class,
            "auc_pixels": int(most), "sattag_features": str(features),
            "seconds": {"sample": sample_s, "fit": fit_s, "predict": predict_s, "vectorize+score": vector_s}}


# ------------------------------------------------------------------------------------------ one dataset

def _dataset(name: str, data: Path, run_dir: Path, extra: list[str], held: list[str], p: dict) -> tuple[list[dict], list[dict]]:
    """sattag + references on one dataset/direction: (per-class CSV rows, main-table rows)."""
    def sattag(out: Path, config: str) -> tuple[dict, dict, Path]:
        args = ["run", str(data), "--out", str(out), "--workers", "0", "--quiet", *extra,
                "--holdout-scenes", ",".join(held)]
        if config:
            cfg = out.parent / f"{out.name}.toml"
            cfg.write_text(config)
            args += ["--config", str(cfg)]
        log = out.parent / f"{out.name}.log"
        res, _, _ = measure(run_cli, args, log)
        if not (out / "scores.csv").exists():
            raise RuntimeError(f"sattag run exited {res['rc']} without scores.csv: {_tail(log)}")
        return res, sattag_scores(out), log

    cli, st, log = sattag(run_dir, p["config"] or "")
    seed_cli, seed, _ = sattag(run_dir.parent / f"{run_dir.name}-seed", (p["config"] or "") + SEED_CONFIG)
    other_cli, other, _ = sattag(run_dir.parent / f"{run_dir.name}-{OTHER_LEVEL}", (p["config"] or "") + OTHER_CONFIG)
    ref, ref_s, ref_gib = measure(references, run_dir, p["rf"], p["rf_polygons"])
    table = []
    for c in ref["classes"]:
        cid = int(c["id"])
        r, s = ref["per_class"][cid], st.get(cid, {})
        table.append({"dataset": name, "train": ",".join(ref["train"]), "held_out": ",".join(ref["held_out"]),
                      "class_id": cid, "class": c["name"], "truth_px": r["truth_px"], "scene_px": r["scene_px"],
                      "trivial_pixel": r["trivial_pixel"], "rf_pixel": r["rf_pixel"], "rf_polygon": r["rf_polygon"],
                      "rf_auc_held_out": r.get("auc", float("nan")),
                      "seed_pixel": seed.get(cid, {}).get("sattag_pixel", float("nan")),
                      "seed_polygon": seed.get(cid, {}).get("sattag_polygon", float("nan")),
                      "sattag_pixel": s.get("sattag_pixel", float("nan")),
                      "sattag_polygon": s.get("sattag_polygon", float("nan")),
                      "sattag_auc_held_out": s.get("sattag_auc_held_out", float("nan")),
                      "sattag_auc_in_sample": s.get("sattag_auc_in_sample", float("nan")),
                      "other_level_pixel": other.get(cid, {}).get("sattag_pixel", float("nan")),
                      "other_level_polygon": other.get(cid, {}).get("sattag_polygon", float("nan"))})
        # Check that the references trained on the rows sattag trained on (counts from auc.csv).
        want = st["auc_counts"].get(("in-sample", cid))
        if want is not None and r.get("n_in") is not None and (r["n_in"], r["n_out"]) != want:
            print(f"[quality] WARNING {name} class {cid}: RF sample {r['n_in']}+{r['n_out']} px, "
                  f"sattag's {want[0]}+{want[1]}", file=sys.stderr)
    present = [t for t in table if t["truth_px"] > 0]
    mean = {k: _nanmean([t[k] for t in present])
            for k in ("trivial_pixel", "rf_pixel", "rf_polygon", "rf_auc_held_out", "seed_pixel", "seed_polygon",
                      "sattag_pixel", "sattag_polygon", "sattag_auc_held_out", "sattag_auc_in_sample",
                      "other_level_pixel", "other_level_polygon")}
    table.append({"dataset": name, "train": table[0]["train"], "held_out": table[0]["held_out"], "class_id": 0,
                  "class": f"mean ({len(present)} classes in held-out truth)",
                  "truth_px": sum(t["truth_px"] for t in present), "scene_px": table[0]["scene_px"], **mean})
    _print_table(name, table, cli, ref, ref_s, p)
    title = f"{BENCH}: {name}"
    secs = ref["seconds"]
    sattag_note = f"exit {cli['rc']}" + (f" ({_tail(log, 1)})" if cli["rc"] else "")
    beats = lambda a, b: "yes" if a > b else "NO"  # noqa: E731
    rows = [
        row(title, "trivial (class everywhere)", 0.0, 0.0, f"mean pixel J {mean['trivial_pixel']:.4f}", "",
            f"held out: {table[0]['held_out']}"),
        row(title, "sklearn RandomForest", ref_s, ref_gib,
            f"mean pixel J {mean['rf_pixel']:.4f}, polygon J "
            + (f"{mean['rf_polygon']:.4f}" if p["rf_polygons"] else "not measured (quick)")
            + f", AUC {mean['rf_auc_held_out']:.4f}",
            "", f"fit {secs['fit']:.0f} s, predict {secs['predict']:.0f} s, sample {secs['sample']:.0f} s, "
                f"vectorize+score {secs['vectorize+score']:.0f} s; {_rf_short(p['rf'])}"),
        row(title, "sattag, the seed's pipeline", seed_cli["seconds"], seed_cli["peak_gib"],
            f"mean pixel J {mean['seed_pixel']:.4f}, polygon J {mean['seed_polygon']:.4f}", "",
            "band values only, models on each cluster's mean spectrum, threshold 0.5"),
        row(title, f"sattag --model {OTHER_LEVEL}", other_cli["seconds"], other_cli["peak_gib"],
            f"mean pixel J {mean['other_level_pixel']:.4f}, polygon J {mean['other_level_polygon']:.4f}", "",
            f"the other model level (default: {DEFAULT_LEVEL})"),
        row(title, "sattag", cli["seconds"], cli["peak_gib"],
            f"mean pixel J {mean['sattag_pixel']:.4f}, polygon J {mean['sattag_polygon']:.4f}, "
            f"AUC {mean['sattag_auc_held_out']:.4f}",
            "pixel J > trivial's and RF's",
            f"beats trivial: {beats(mean['sattag_pixel'], mean['trivial_pixel'])}, "
            f"beats RF: {beats(mean['sattag_pixel'], mean['rf_pixel'])}, polygon J vs the seed's "
            f"{mean['sattag_polygon'] - mean['seed_polygon']:+.4f}; `sattag run` {sattag_note}"),
    ]
    return table, rows


def _nanmean(values: list) -> float:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def _rf_short(rf: dict) -> str:
    return (f"{rf['n_estimators']} trees, max_samples {rf['max_samples']}, class_weight balanced, "
            f"n_jobs {rf['n_jobs']}, random_state {rf['random_state']}")


def _rf_setting(rf: dict) -> str:
    return (f"RandomForestClassifier(n_estimators={rf['n_estimators']}, max_samples={rf['max_samples']}, "
            f"class_weight='{rf['class_weight']}', n_jobs={rf['n_jobs']}, random_state={rf['random_state']}), "
            "fully grown trees, trained on sattag's own training rows, threshold 0.5")


def _fmt(v) -> str:
    try:
        return "-" if v is None or np.isnan(v) else f"{v:.4f}"
    except TypeError:
        return str(v)


def _print_table(name: str, table: list[dict], cli: dict, ref: dict, ref_s: float, p: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"quality: {name} -- train {table[0]['train']}, held out {table[0]['held_out']}")
    cols = [("class", "class"), ("truth px", "truth_px"), ("trivial pixel J", "trivial_pixel"),
            ("RF pixel J", "rf_pixel"), ("RF polygon J", "rf_polygon"), ("seed pixel J", "seed_pixel"),
            ("seed polygon J", "seed_polygon"), ("sattag pixel J", "sattag_pixel"),
            ("sattag polygon J", "sattag_polygon"), (f"--model {OTHER_LEVEL} pixel J", "other_level_pixel"),
            (f"--model {OTHER_LEVEL} polygon J", "other_level_polygon"), ("sattag AUC held-out", "sattag_auc_held_out"),
            ("RF AUC held-out", "rf_auc_held_out"), ("sattag AUC in-sample", "sattag_auc_in_sample")]
    for head, _ in cols:
        t.add_column(head, justify="left" if head == "class" else "right")
    for r in table:
        t.add_row(*[str(r[k]) if k in ("class", "truth_px") else _fmt(r[k]) for _, k in cols])
    console = Console(width=200)
    console.print(t)
    console.print(f"  sattag run {cli['seconds']:.0f} s (exit {cli['rc']}, peak {cli['peak_gib']:.2f} GiB); "
                  f"references {ref_s:.0f} s; {_rf_setting(p['rf'])}; RF sees the band values of those pixels "
                  f"(sattag's features in this run: {ref['sattag_features']}). Held-out AUC: the same balanced sample "
                  f"of the held-out scenes for both (<= {ref['auc_pixels']} px in and out per class, the engine's); "
                  "in-sample AUC: sattag's 90/10 pixel split of training pixels. Mean row: classes present in the "
                  "held-out truth.",
                  soft_wrap=True)


def _error(name: str, e: BaseException) -> tuple[list[dict], list[dict]]:
    msg = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    print(f"[quality] {name} FAILED: {e}", file=sys.stderr)
    return ([{"dataset": name, "class_id": "", "class": f"ERROR {msg}"}],
            [row(f"{BENCH}: {name}", "error", 0.0, 0.0, msg[:200], "", "this dataset failed; the others went on")])


# ------------------------------------------------------------------------------------------ generator AUC

def _generator_auc(out_dir: Path, n_scenes: int, size: int, seed: int):
    from generator_auc import generator_aucs

    return generator_aucs(out_dir, n_scenes=n_scenes, n_train=n_scenes, size=size, seed=seed, workers=0)


def _generator_part(p: dict, tmp: Path) -> list[dict]:
    title = f"{BENCH}: generator AUC vs the seed's table"
    g = p["generator_auc"]
    try:
        import importlib.util

        if importlib.util.find_spec("generator_auc") is None:
            raise ImportError("benchmarks/generator_auc.py not found")
    except ImportError as e:
        print(f"\ngenerator AUC vs the seed's table (target: each within 0.02): not available ({e})")
        return [row(title, "seed-default models", 0.0, 0.0, "not available", "each class within 0.02", str(e))]
    try:
        table, secs, gib = measure(_generator_auc, tmp / "generator-auc", g["n_scenes"], g["size"], g["seed"])
    except Exception as e:
        print(f"\ngenerator AUC vs the seed's table (target: each within 0.02): FAILED ({e})", file=sys.stderr)
        return _error("generator AUC vs the seed's table", e)[1]
    import pandas as pd

    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(f"\ngenerator AUC vs the seed's table (target: each within 0.02); {g['n_scenes']} generated labelled "
              f"scenes, size {g['size']}, seed {g['seed']}, seed-default models, 90/10 pixel split:")
        print(table.to_string(index=False))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT_DIR / "quality_generator_auc.csv", index=False)
    d = table["diff"].abs()
    within = int((d <= 0.02).sum())
    return [row(title, "seed-default models", secs, gib,
                f"{within} of {len(table)} classes within 0.02 (max |diff| {np.nanmax(d):.4f})",
                "each class within 0.02",
                f"{g['n_scenes']} scenes, size {g['size']}, seed {g['seed']}; table in bench-out/quality_generator_auc.csv")]


# ------------------------------------------------------------------------------------------ run

def run(quick: bool) -> list[dict]:
    p = QUICK if quick else FULL
    rows: list[dict] = []
    per_class: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="sattag-bench-quality-") as tmp:
        tmp = Path(tmp)
        for kit, train, held in p["real"]:
            name = f"{kit} {train} -> {held}"
            try:
                k = KITS / kit
                if not (k / "scenes.csv").exists():
                    raise FileNotFoundError(f"kit not found: {k}")
                extra = ["--labels", str(k / "labels.gpkg"), "--class-column", "class", "--classes",
                         str(k / "classes.csv")]
                t, r = _dataset(name, k, tmp / f"run-{train}", extra, [held], p)
            except Exception as e:
                t, r = _error(name, e)
            per_class += t
            rows += r
        g = p["generated"]
        name = f"generated (seed {g['seed']}, {g['n_scenes']} labelled scenes, size {g['size']})"
        try:
            data = tmp / "generated" / "data"
            data.parent.mkdir()
            _, gen_s, _ = measure(generate, data, g["n_scenes"], g["size"], g["seed"])
            import pandas as pd

            ids = sorted(set(pd.read_csv(data / "train_wkt_v4.csv", usecols=["ImageId"])["ImageId"]))
            held = ids[-g["n_held"]:]
            t, r = _dataset(name, data, tmp / "generated" / "run", [], held, p)
            r[-1]["note"] += f"; {gen_s:.0f} s to generate the data (not timed above)"
        except Exception as e:
            traceback.print_exc()
            t, r = _error(name, e)
        per_class += t
        rows += r
        rows += _generator_part(p, tmp)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "quality.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in per_class:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"\nper-class figures -> {OUT_DIR / 'quality.csv'}")
    return rows


if __name__ == "__main__":
    import pandas as pd

    pd.set_option("display.width", 250, "display.max_colwidth", 120, "display.max_columns", 20)
    print(pd.DataFrame(run("--quick" in sys.argv)).to_string(index=False))

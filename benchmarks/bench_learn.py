"""learn: one-vs-all gradient-boosted trees per class — sattag (XGBoost hist) vs H2O GBM vs scikit-learn.

All three train on the same rows: balanced samples (seed defaults: 200 000 in-class + 200 000
out-of-class pixels per class, fewer where a class has fewer pixels) drawn by ``sattag.learn`` from
generated DSTL-format training scenes (generate + ingest + rasterize), the same stratified 90/10 split
per class, 100 trees of depth 15, 2 threads each. Validation AUC is computed by the same function for
all. Each tool runs in its own fresh process (``measure``) for time and peak memory; H2O's peak adds
the peak RSS of its Java process, polled with psutil every 0.2 s, to the Python client's.

Run: ``.venv/bin/python benchmarks/bench_learn.py [--quick]``.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402

BENCH = "learn: one-vs-all GBT per class"
THREADS = 2
# Full run: training scenes of the generator; moderate size so generate + ingest take ~1-2 min.
FULL = dict(n_scenes=4, size=1600, n_in=200_000, n_out=200_000, n_trees=100, max_depth=15, classes=tuple(range(1, 11)))
QUICK = dict(n_scenes=1, size=400, n_in=2000, n_out=2000, n_trees=10, max_depth=6, classes=(5, 6))


# ------------------------------------------------------------------------------------------ data

def _prepare(p: dict, workdir: Path) -> tuple[Path, str]:
    """Generate + ingest + rasterize training scenes, draw the balanced samples; save them to .npz."""
    from sattag.classes import DSTL_CLASSES
    from sattag.config import Config
    from sattag.learn import sample_scenes

    cfg = Config().replace("sample", n_in=p["n_in"], n_out=p["n_out"])
    try:
        from sattag.ingest import build_stack, discover_scenes
        from sattag.labels import rasterize_classes, scene_labels
        from sattag.synth import generate_dataset

        data_dir = workdir / "data"
        generate_dataset(data_dir, n_scenes=p["n_scenes"], n_train=p["n_scenes"], size=p["size"], seed=1)
        scenes, bands = {}, None
        for scene in discover_scenes(data_dir):
            polygons = scene_labels(data_dir, scene.id, DSTL_CLASSES)
            stack = build_stack(scene, cfg.ingest)
            scenes[scene.id] = (stack.data, rasterize_classes(polygons, stack.grid, DSTL_CLASSES))
            bands = stack.bands
        note = f"generated data: {len(scenes)} training scenes at size {p['size']} (generate+ingest+rasterize)"
    except ImportError as e:  # a stage not there yet: fall back to a synthetic image
        scenes, bands = _synthetic_scenes(p)
        note = f"synthetic image ({e})"
    samples = sample_scenes(scenes, cfg.sample)
    path = workdir / "samples.npz"
    arrays = {}
    for cid in p["classes"]:
        X, y = samples[cid]
        arrays[f"X{cid}"], arrays[f"y{cid}"] = X, y
    np.savez(path, bands=np.array(bands), **arrays)
    return path, note


def _synthetic_scenes(p: dict):
    from sattag.config import DSTL_BANDS

    rng = np.random.default_rng(0)
    h = w = p["size"]
    spectra = rng.uniform(0.1, 0.9, (11, 20)).astype(np.float32)
    scenes = {}
    for s in range(p["n_scenes"]):
        lab = rng.integers(0, 11, (h // 20, w // 20)).repeat(20, 0).repeat(20, 1)
        data = spectra[lab].transpose(2, 0, 1) + rng.normal(0, 0.2, (20, h, w)).astype(np.float32)
        masks = np.stack([(lab == c).astype(np.uint8) for c in range(1, 11)])
        scenes[f"syn{s}"] = (np.clip(data, 0, 1).astype(np.float32), masks)
    return scenes, DSTL_BANDS


def _load(path: Path, cid: int):
    z = np.load(path)
    return z[f"X{cid}"], z[f"y{cid}"], tuple(str(b) for b in z["bands"])


def _split(y: np.ndarray, cid: int):
    # the split train_models makes: stratified, seed = sample seed (0) + class id
    from sattag.learn import split_train_valid

    return split_train_valid(y, 0.1, 0 + cid)


# ------------------------------------------------------------------------------------------ tools

def run_sattag(path: Path, classes: tuple[int, ...], n_trees: int, max_depth: int) -> dict:
    from sattag.classes import DSTL_CLASSES, ClassTable
    from sattag.config import Config
    from sattag.learn import train_models

    cfg = Config().replace("model", n_trees=n_trees, max_depth=max_depth)
    samples, bands = {}, None
    for cid in classes:
        X, y, bands = _load(path, cid)
        samples[cid] = (X, y)
    # all classes in one call, as the pipeline does (classes in parallel, one thread each)
    ms = train_models(samples, bands, ClassTable(tuple(DSTL_CLASSES.by_id(c) for c in classes)), cfg)
    return {cid: {"auc": r.auc, "seconds": r.seconds, "n_in": r.n_in, "n_out": r.n_out}
            for cid, r in ms.results.items()}


def run_sklearn(path: Path, classes: tuple[int, ...], n_trees: int, max_depth: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from sattag.learn import roc_auc

    out = {}
    for cid in classes:
        X, y, _ = _load(path, cid)
        tr, va = _split(y, cid)
        t0 = time.perf_counter()
        # early_stopping off: all 100 iterations, like the other two tools
        clf = HistGradientBoostingClassifier(max_iter=n_trees, max_depth=max_depth, early_stopping=False,
                                             random_state=0)
        clf.fit(X[tr], y[tr])
        score = clf.predict_proba(X[va])[:, 1]
        out[cid] = {"auc": roc_auc(y[va], score), "seconds": time.perf_counter() - t0}
    return out


class _RssPoller:
    """Peak RSS of one process (the H2O JVM), polled in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.proc, self.every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_h2o(path: Path, classes: tuple[int, ...], n_trees: int, max_depth: int) -> dict:
    import h2o
    import pandas as pd
    import psutil
    from h2o.estimators import H2OGradientBoostingEstimator

    from sattag.learn import roc_auc

    out: dict = {}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        h2o.init(nthreads=THREADS, port=54321 + (os.getpid() % 1000) * 2)
        h2o.no_progress()
    java = [p for p in psutil.Process().children(recursive=True) if "java" in p.name().lower()]
    if not java:
        raise RuntimeError("H2O's JVM is not a child of this process: cannot measure its memory")
    poller = _RssPoller(java[0].pid)
    try:
        for cid in classes:
            X, y, bands = _load(path, cid)
            tr, va = _split(y, cid)
            cols = list(bands)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                ftr = h2o.H2OFrame(pd.DataFrame(X[tr], columns=cols).assign(y=y[tr]))
                ftr["y"] = ftr["y"].asfactor()  # binary classification, not regression
                fva = h2o.H2OFrame(pd.DataFrame(X[va], columns=cols))
            t1 = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                gbm = H2OGradientBoostingEstimator(ntrees=n_trees, max_depth=max_depth, seed=0)
                gbm.train(x=cols, y="y", training_frame=ftr)
            t2 = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                pred = gbm.predict(fva).as_data_frame(use_multi_thread=False)
            score = pred["p1"].to_numpy()
            out[cid] = {"auc": roc_auc(y[va], score), "seconds": t2 - t1 + (time.perf_counter() - t2),
                        "upload_seconds": t1 - t0}
            if os.environ.get("SATTAG_BENCH_LOG"):  # per-class progress for long runs
                with open(os.environ["SATTAG_BENCH_LOG"], "a") as f:
                    f.write(f"h2o class {cid} {out[cid]}\n")
            h2o.remove_all()
    finally:
        jvm_peak = poller.stop()
        with contextlib.redirect_stdout(sink), contextlib.suppress(Exception):
            h2o.cluster().shutdown()
    out["jvm_peak_gib"] = jvm_peak / 2**30
    return out


# ------------------------------------------------------------------------------------------ run

def _log(text: str) -> None:
    if os.environ.get("SATTAG_BENCH_LOG"):
        with open(os.environ["SATTAG_BENCH_LOG"], "a") as f:
            f.write(text + "\n")


def run(quick: bool) -> list[dict]:
    from sattag.classes import DSTL_CLASSES

    p = QUICK if quick else FULL
    rows = []
    with tempfile.TemporaryDirectory(prefix="sattag-bench-learn-") as tmp:
        # In its own process too: a spawned child's ru_maxrss starts at its parent's peak RSS (Linux
        # keeps the pre-exec high-water mark), so the scenes must never be in this process.
        (path, data_note), prep_s, _ = measure(_prepare, p, Path(tmp))
        args = (path, p["classes"], p["n_trees"], p["max_depth"])
        st, st_s, st_gib = measure(run_sattag, *args)
        _log(f"sattag {st_s:.1f} s {st_gib:.2f} GiB {st}")
        sk, sk_s, sk_gib = measure(run_sklearn, *args)
        _log(f"sklearn {sk_s:.1f} s {sk_gib:.2f} GiB {sk}")
        try:
            import h2o  # noqa: F401

            h2, h2_s, h2_gib = measure(run_h2o, *args)
            h2_gib += h2.pop("jvm_peak_gib")
        except ImportError:
            if not quick:
                raise
            h2 = None
    setting = (f"{p['n_in']}+{p['n_out']} px/class, {p['n_trees']} trees, depth {p['max_depth']}, "
               f"{THREADS} threads; {data_note}; data prep {prep_s:.0f} s (not timed below)")
    cls = p["classes"]
    mean = lambda d: float(np.nanmean([d[c]["auc"] for c in cls]))  # noqa: E731
    train_s = lambda d: sum(d[c]["seconds"] for c in cls)  # noqa: E731
    rows.append(row(BENCH, "sattag (XGBoost hist)", st_s, st_gib, f"mean AUC {mean(st):.4f}; training {train_s(st):.1f} s",
                    f"all {len(cls)} classes < 180 s on 2 cores", setting))
    if h2 is not None:
        upload = sum(h2[c]["upload_seconds"] for c in cls)
        rows.append(row(BENCH, "H2O GBM", h2_s, h2_gib, f"mean AUC {mean(h2):.4f}; training {train_s(h2):.1f} s",
                        "", f"includes JVM start and {upload:.0f} s upload of frames; peak = Python + JVM RSS"))
    rows.append(row(BENCH, "sklearn HistGradientBoosting", sk_s, sk_gib,
                    f"mean AUC {mean(sk):.4f}; training {train_s(sk):.1f} s", "",
                    "max_iter=100, max_depth=15, early_stopping=False (its default max_leaf_nodes=31)"))
    for c in cls:
        s = st[c]
        name = DSTL_CLASSES.by_id(c).name
        metric = f"AUC {s['auc']:.4f} (sklearn {sk[c]['auc']:.4f}"
        note = f"n_in {s['n_in']}, n_out {s['n_out']}; sklearn {sk[c]['seconds']:.1f} s"
        if h2 is not None:
            metric += f", H2O {h2[c]['auc']:.4f}"
            speed = h2[c]["seconds"] / max(s["seconds"], 1e-9)
            ok = speed >= 2 and s["auc"] >= h2[c]["auc"] - 0.002
            note = f"H2O {h2[c]['seconds']:.1f} s -> {speed:.1f}x {'met' if ok else 'NOT met'}; " + note
        metric += ")"
        rows.append(row(f"{BENCH}: class {c} {name}", "sattag", s["seconds"], st_gib, metric,
                        ">= 2x faster than H2O at AUC >= H2O's - 0.002", note))
    return rows


if __name__ == "__main__":
    import pandas as pd

    pd.set_option("display.width", 250, "display.max_colwidth", 120, "display.max_columns", 20)
    print(pd.DataFrame(run("--quick" in sys.argv)).to_string(index=False))

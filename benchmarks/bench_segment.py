"""segment + predict: spectral clustering of a full-size 20-band scene, and per-cluster vs per-pixel
prediction of 10 classes.

Data: one generated DSTL-format scene (``generate_dataset(size=None)``: 3391-px R grid), ingested
with ``build_stack`` into its aligned (20, H, W) float32 stack, truth masks from its polygons. Made
once and kept under ``bench-out/cache_segment/`` (making it is not measured).

Clustering: ``sattag.segment.cluster_pixels`` (tolerance 3 %, min size 50) beside scikit-image's
``slic`` (all 20 bands, ``channel_axis=0``) and ``felzenszwalb`` (R, G, B only: on 20 bands it runs
~3.5x longer, ~4 min on this scene) on the same scene in the same run. Every measurement is a fresh
process (``_common.measure``); seconds are those of the call alone (timed inside the child, after the
stack is loaded and numba's on-disk cache warmed), peak is the child's whole peak RSS (stack included).

Prediction: 10 one-vs-all xgboost models (100 trees, max depth 15, hist, 2 threads; 20k in + 20k out
pixels each; quick: 10 trees depth 6, 5k + 5k), sampled from the scene's truth; classes without truth pixels on the scene get a
stand-in target so that all 10 models have full-size trees). Per-cluster = probabilities of the
cluster means + rules + masks (clusters given); per-pixel = the same models on every pixel + masks.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from _common import measure, row

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / "bench-out" / "cache_segment"
SEED = 5
BANDS_RGB = (0, 1, 2)


# ------------------------------------------------------------------------------------------ data
def _prepare(quick: bool) -> tuple[Path, str]:
    """Stack (.npy) and truth masks (.npy) of one generated scene; returns (folder, note)."""
    size = 600 if quick else None
    folder = CACHE / (f"size{size}" if size else "full")
    stack_npy, masks_npy = folder / "stack.npy", folder / "masks.npy"
    if not (stack_npy.exists() and masks_npy.exists()):
        from sattag.classes import DSTL_CLASSES
        from sattag.config import Config
        from sattag.ingest import build_stack, discover_scenes
        from sattag.synth import generate_dataset
        from sattag.labels import rasterize_classes, scene_labels

        data_dir = folder / "data"
        generate_dataset(data_dir, n_scenes=1, n_train=1, size=size, seed=SEED)
        scene = discover_scenes(data_dir)[0]
        stack = build_stack(scene, Config().ingest)
        polys = scene_labels(data_dir, scene.id, DSTL_CLASSES) or {}
        masks = rasterize_classes(polys, stack.grid, DSTL_CLASSES)
        np.save(folder / ".stack.npy", stack.data)
        os.replace(folder / ".stack.npy", stack_npy)
        np.save(folder / ".masks.npy", masks)
        os.replace(folder / ".masks.npy", masks_npy)
    shape = np.load(stack_npy, mmap_mode="r").shape
    return folder, f"generated scene (seed {SEED}), ingested: {shape[0]} bands x {shape[1]}x{shape[2]} px"


# --------------------------------------------------------------------------- measured (child side)
def _load(folder: str) -> np.ndarray:
    return np.load(Path(folder) / "stack.npy")


def _sattag_cluster(folder: str) -> dict:
    from sattag.segment import cluster_pixels

    data = _load(folder)
    cluster_pixels(data[:, :64, :64])  # numba cache -> memory (compiled once per install)
    t0, c0 = time.perf_counter(), time.process_time()
    labels, table = cluster_pixels(data)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": sec, "cpu": cpu, "k": len(table), "k0": table.initial_clusters,
            "min_size": int(table.sizes.min())}


def _slic(folder: str, n_segments: int, bands: tuple[int, ...] | None) -> dict:
    from skimage.segmentation import slic

    data = _load(folder)
    img = data if bands is None else data[list(bands)]
    t0 = time.perf_counter()
    seg = slic(img, n_segments=n_segments, compactness=0.1, channel_axis=0, start_label=0)
    return {"seconds": time.perf_counter() - t0, "k": int(seg.max()) + 1}


def _felzenszwalb(folder: str, bands: tuple[int, ...]) -> dict:
    from skimage.segmentation import felzenszwalb

    data = _load(folder)
    img = np.moveaxis(data[list(bands)], 0, -1)
    t0 = time.perf_counter()
    seg = felzenszwalb(img, scale=100, sigma=0.5, min_size=50)
    return {"seconds": time.perf_counter() - t0, "k": int(seg.max()) + 1}


class _Boosters:
    """10 xgboost boosters behind ``predict_proba`` (the ``ModelSet`` interface)."""

    def __init__(self, model_dir: str, n_bands: int):
        import xgboost as xgb

        files = sorted(Path(model_dir).glob("class_*.ubj"))
        self.boosters = []
        for f in files:
            b = xgb.Booster()
            b.load_model(f)
            b.set_param({"nthread": 2})
            self.boosters.append(b)
        self.bands = tuple(str(i) for i in range(n_bands))

    def predict_proba(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((len(X), len(self.boosters)), np.float32)
        for j, b in enumerate(self.boosters):
            out[:, j] = b.inplace_predict(X)
        return out


def _train(folder: str, n_trees: int, depth: int, n: int, threads: int) -> dict:
    import xgboost as xgb

    data, masks = _load(folder), np.load(Path(folder) / "masks.npy")
    b = data.shape[0]
    flat = data.reshape(b, -1)
    rng = np.random.default_rng(0)
    out = Path(folder) / f"models_{n_trees}_{depth}"
    out.mkdir(exist_ok=True)
    counts = masks.reshape(masks.shape[0], -1).sum(axis=1)
    present = [j for j in range(masks.shape[0]) if 1000 <= counts[j] <= flat.shape[1] - 1000]
    stand_in = []
    t0 = time.perf_counter()
    for j in range(masks.shape[0]):
        if j in present:
            m = masks[j].ravel().astype(bool)
        else:  # (almost) no truth for this class here: another class's truth as a stand-in target
            m = masks[present[j % len(present)]].ravel().astype(bool)
            stand_in.append(j + 1)
        pos, neg = np.flatnonzero(m), np.flatnonzero(~m)
        idx = np.concatenate([rng.choice(pos, min(n, len(pos)), replace=False),
                              rng.choice(neg, min(n, len(neg)), replace=False)])
        params = {"max_depth": depth, "eta": 0.3, "objective": "binary:logistic", "nthread": threads,
                  "tree_method": "hist", "seed": 0}
        bst = xgb.train(params, xgb.DMatrix(flat[:, idx].T, label=m[idx].astype(np.float32)), n_trees)
        bst.save_model(out / f"class_{j + 1:02d}.ubj")
    return {"seconds": time.perf_counter() - t0, "dir": str(out), "stand_in": stand_in,
            "present": [j + 1 for j in present]}


def _predict_clusters(folder: str, model_dir: str) -> dict:
    from sattag.classes import DSTL_CLASSES
    from sattag.config import Config
    from sattag.predict import apply_rules, class_masks, cluster_probabilities, threshold_flags
    from sattag.segment import cluster_pixels

    data = _load(folder)
    models = _Boosters(model_dir, data.shape[0])

    def predict(labels, table):
        probs = cluster_probabilities(models, table)
        flags, _ = apply_rules(probs, table, Config().predict, DSTL_CLASSES)
        return class_masks(labels, flags), threshold_flags(probs, Config().predict, DSTL_CLASSES)

    predict(*cluster_pixels(data[:, :64, :64]))  # warm-up: numba cache, xgboost and scipy first calls
    t0 = time.perf_counter()
    labels, table = cluster_pixels(data)
    t1 = time.perf_counter()
    masks, raw_flags = predict(labels, table)
    t2 = time.perf_counter()
    # for the agreement check: masks from thresholds alone (the per-pixel side has no rules)
    np.save(Path(folder) / "cluster_masks.npy", class_masks(labels, raw_flags))
    return {"seconds": t2 - t1, "cluster_seconds": t1 - t0, "k": len(table)}


def _predict_pixels(folder: str, model_dir: str, share: float, present: list[int]) -> dict:
    from sattag.classes import DSTL_CLASSES
    from sattag.config import Config
    from sattag.predict import threshold_flags

    data = _load(folder)
    models = _Boosters(model_dir, data.shape[0])
    b, h, w = data.shape
    rows = max(1, int(round(h * share)))
    models.predict_proba(data[:, :8, :8].reshape(b, -1).T)  # warm-up
    t0 = time.perf_counter()
    X = data[:, :rows].reshape(b, -1).T  # (N, B); predict_proba makes it contiguous
    probs = models.predict_proba(X)
    flags = threshold_flags(probs, Config().predict, DSTL_CLASSES)
    masks = np.ascontiguousarray(flags.T.reshape(len(DSTL_CLASSES), rows, w), dtype=np.uint8)
    sec = time.perf_counter() - t0
    cm = np.load(Path(folder) / "cluster_masks.npy", mmap_mode="r")[:, :rows]
    real = [j - 1 for j in present]
    agree = float((cm[real] == masks[real]).mean())  # classes with truth, thresholds only on both sides
    agree_all = float((cm[real] == masks[real]).all(axis=0).mean())
    return {"seconds": sec, "rows": rows, "h": h, "agree": agree, "agree_all": agree_all}


# ------------------------------------------------------------------------------------------- run
def run(quick: bool) -> list[dict]:
    folder, data_note = _prepare(quick)
    f = str(folder)
    rows = []
    res, _, gib = measure(_sattag_cluster, f)
    rows.append(row("segment", "sattag cluster_pixels (numba, tol 3 %, min 50 px, 20 bands)", res["seconds"], gib,
                    metric=f"{res['k']} clusters ({res['k0']} before merge, smallest {res['min_size']} px); "
                           f"cpu {res['cpu']:.2f} s",
                    target="< 3 s, < 3 GiB (2 cores)", note=data_note))
    n_seg = res["k"]
    res, _, gib = measure(_slic, f, n_seg, None)
    rows.append(row("segment", "skimage slic (20 bands, channel_axis=0)", res["seconds"], gib,
                    metric=f"{res['k']} segments (n_segments={n_seg})", note=data_note))
    res, _, gib = measure(_felzenszwalb, f, BANDS_RGB)
    rows.append(row("segment", "skimage felzenszwalb (R,G,B only; scale 100, min 50)", res["seconds"], gib,
                    metric=f"{res['k']} segments", note=data_note + "; 3 of 20 bands (20 bands ~3.5x slower)"))

    n_trees, depth, n, threads = (10, 6, 5_000, 1) if quick else (100, 15, 20_000, 2)
    tr = _train(f, n_trees, depth, n, threads)  # not measured: models for the comparison below
    model_note = (f"10 xgboost models, {n_trees} trees depth {depth}, trained on {n // 1000}k+{n // 1000}k px of the scene"
                  + (f" (stand-in targets for classes {tr['stand_in']} absent here)" if tr["stand_in"] else ""))
    pc, _, gib_c = measure(_predict_clusters, f, tr["dir"])
    share = 1.0 if quick else 0.25
    pp, _, gib_p = measure(_predict_pixels, f, tr["dir"], share, tr["present"])
    pixel_sec = pp["seconds"] * pp["h"] / pp["rows"]  # prediction time is linear in rows
    speedup = pixel_sec / max(pc["seconds"], 1e-9)
    speedup_incl = pixel_sec / max(pc["seconds"] + pc["cluster_seconds"], 1e-9)
    rows.append(row("segment", "sattag per-cluster prediction (10 classes: probabilities+rules+masks)",
                    pc["seconds"], gib_c,
                    metric=f"{pc['k']} clusters; {speedup:.0f}x faster than per-pixel "
                           f"({speedup_incl:.1f}x incl. clustering {pc['cluster_seconds']:.1f} s)",
                    target=">= 50x faster than per-pixel", note=model_note))
    scaled = "" if pp["rows"] == pp["h"] else (f"; timed on the top {pp['rows']} of {pp['h']} rows "
                                               f"({pp['seconds']:.1f} s) and scaled to the scene")
    rows.append(row("segment", "per-pixel prediction (same 10 models on every pixel + masks)", pixel_sec, gib_p,
                    metric=f"masks of the {len(tr['present'])} classes with truth agree with per-cluster on "
                           f"{pp['agree'] * 100:.1f} % of class-pixels ({pp['agree_all'] * 100:.1f} % of pixels in "
                           f"all of them; thresholds only)",
                    note=model_note + scaled))
    return rows


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(r)

"""labels: rasterize all 10 classes of a generated full-size DSTL scene; per-class histograms.

sattag: ``rasterize_classes`` (GDAL scanline fill via ``rasterio.features.rasterize``, pixel-centre
rule, one call per class into the mask's own memory). Peers in the same run: the same call with
``all_touched=True`` (the other GDAL rule) and ``cv2.fillPoly`` on pixel rings (sub-pixel ``shift``),
each scored by pixel IoU against sattag's masks. Histograms: ``scene_histograms`` (one numba pass
over the pixels, compiled before timing) against the obvious ``np.histogram`` on boolean-masked pixels.
Timings cover the work only; reading the labels is reported in the note.
"""
from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402

SCENE_SEED = 3


def _grid(data_dir: Path, scene_id: str):
    import rasterio

    from sattag.scene import dstl_grid

    with open(data_dir / "grid_sizes.csv", newline="") as f:
        sizes = {r[0]: (float(r[1]), float(r[2])) for r in list(csv.reader(f))[1:]}
    with rasterio.open(data_dir / "three_band" / f"{scene_id}.tif") as src:
        return dstl_grid(*sizes[scene_id], src.height, src.width)


def _labels(data_dir: Path, scene_id: str):
    from sattag.labels import scene_labels

    t0 = time.perf_counter()
    polys = scene_labels(data_dir, scene_id)
    return polys, time.perf_counter() - t0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over classes present in either of pixel IoU."""
    out = []
    for x, y in zip(a, b):
        u = np.logical_or(x, y).sum()
        if u:
            out.append(np.logical_and(x, y).sum() / u)
    return float(np.mean(out)) if out else 1.0


def sattag_rasterize(data_dir: str, scene_id: str, all_touched: bool = False) -> dict:
    from sattag.labels import rasterize_classes

    data_dir = Path(data_dir)
    grid = _grid(data_dir, scene_id)
    polys, t_read = _labels(data_dir, scene_id)
    t0 = time.perf_counter()
    masks = rasterize_classes(polys, grid, all_touched=all_touched)
    t = time.perf_counter() - t0
    res = {"t": t, "t_read": t_read, "shape": masks.shape, "share": float(masks.any(axis=0).mean())}
    if all_touched:
        res["iou"] = _iou(masks, rasterize_classes(polys, grid))
    return res


def cv2_fillpoly(data_dir: str, scene_id: str) -> dict:
    import cv2
    import shapely

    from sattag.classes import DSTL_CLASSES
    from sattag.labels import geometry_to_pixel, rasterize_classes

    data_dir = Path(data_dir)
    grid = _grid(data_dir, scene_id)
    polys, t_read = _labels(data_dir, scene_id)
    shift = 4  # 1/16 px vertex precision
    t0 = time.perf_counter()
    masks = np.zeros((len(DSTL_CLASSES), *grid.shape), np.uint8)
    for i, cid in enumerate(DSTL_CLASSES.ids):
        g = polys.get(cid)
        if g is None or g.is_empty:
            continue
        px = geometry_to_pixel(g, grid)
        # Exterior and hole rings of every polygon in one call: fillPoly's even-odd fill keeps holes.
        # cv2 puts pixel centres at integer coordinates, so move rings by -0.5 px.
        rings = [np.round((np.asarray(r.coords) - 0.5) * (1 << shift)).astype(np.int32)
                 for p in shapely.get_parts(px) for r in (p.exterior, *p.interiors)]
        cv2.fillPoly(masks[i], rings, 1, lineType=cv2.LINE_8, shift=shift)
    t = time.perf_counter() - t0
    return {"t": t, "t_read": t_read, "iou": _iou(masks, rasterize_classes(polys, grid))}


def _fake_stack(h: int, w: int, n_bands: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n_bands, h, w), dtype=np.float32) * 0.6


def sattag_histograms(data_dir: str, scene_id: str, bins: int = 256) -> dict:
    from sattag.labels import rasterize_classes
    from sattag.labels import scene_histograms

    grid = _grid(Path(data_dir), scene_id)
    masks = rasterize_classes(_labels(Path(data_dir), scene_id)[0], grid)
    data = _fake_stack(*grid.shape)
    scene_histograms(data[:, :8, :8], masks[:, :8, :8], bins)  # compile (or load the cached machine code)
    t0 = time.perf_counter()
    h = scene_histograms(data, masks, bins)
    return {"t": time.perf_counter() - t0, "sum": int(h.sum())}


def numpy_histograms(data_dir: str, scene_id: str, bins: int = 256) -> dict:
    from sattag.labels import rasterize_classes

    grid = _grid(Path(data_dir), scene_id)
    masks = rasterize_classes(_labels(Path(data_dir), scene_id)[0], grid)
    data = _fake_stack(*grid.shape)
    t0 = time.perf_counter()
    out = np.zeros((masks.shape[0], data.shape[0], bins), np.int64)
    for c in range(masks.shape[0]):
        m = masks[c].astype(bool)
        if not m.any():
            continue
        for b in range(data.shape[0]):
            out[c, b] = np.histogram(data[b][m], bins=bins, range=(0.0, 1.0))[0]
    return {"t": time.perf_counter() - t0, "sum": int(out.sum())}


def run(quick: bool) -> list[dict]:
    from sattag.synth import generate_dataset

    size = 1000 if quick else None
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_labels_") as tmp:
        data = Path(tmp) / "data"
        generate_dataset(data, n_scenes=1, n_train=1, size=size, seed=SCENE_SEED)
        scene_id = next((data / "train_geojson_v3").iterdir()).name
        size_note = "quick 1000 px" if quick else "full size"

        ours, sec, peak = measure(sattag_rasterize, str(data), scene_id)
        h, w = ours["shape"][1:]
        note = (f"{scene_id} {h}x{w} px ({size_note}), labels read in {ours['t_read']:.2f} s, "
                f"{ours['share'] * 100:.0f} % of pixels labelled")
        rows.append(row("labels rasterize 10 classes", "sattag rasterize_classes (GDAL, centre rule)",
                        ours["t"], peak, metric="IoU 1.000 (reference)", target="< 1 s full size", note=note))
        at, _, peak = measure(sattag_rasterize, str(data), scene_id, True)
        rows.append(row("labels rasterize 10 classes", "rasterio.features.rasterize all_touched", at["t"], peak,
                        metric=f"IoU vs sattag {at['iou']:.3f}", note="pixels touched by an edge count as in"))
        cv, _, peak = measure(cv2_fillpoly, str(data), scene_id)
        rows.append(row("labels rasterize 10 classes", "cv2.fillPoly (1/16 px vertices)", cv["t"], peak,
                        metric=f"IoU vs sattag {cv['iou']:.3f}", note="incl. transform to pixel rings"))

        hs, _, peak = measure(sattag_histograms, str(data), scene_id)
        rows.append(row("per-class histograms 20 bands x 256 bins", "sattag scene_histograms (numba, one pass)",
                        hs["t"], peak, note=f"{h}x{w} px, 10 classes"))
        hn, _, peak = measure(numpy_histograms, str(data), scene_id)
        same = "same counts" if hn["sum"] == hs["sum"] else f"counts differ ({hn['sum']} vs {hs['sum']})"
        rows.append(row("per-class histograms 20 bands x 256 bins", "np.histogram on masked pixels",
                        hn["t"], peak, note=same))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)

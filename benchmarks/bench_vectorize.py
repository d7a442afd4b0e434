"""Benchmark: vectorize + simplify + write all 10 class masks of a full-size DSTL scene.

Masks: the generator's labels of a full-size scene (3347 x 3391 px) rasterized, plus a "predicted"
version of the same masks (pixel noise on the outlines and speckle, as per-cluster predictions give:
many small parts, diagonal touches, holes) -- the harder, more realistic input for this stage.

Peers measured in the same run, each in a fresh process:
- sattag: ``masks_to_polygons`` (OpenCV doubled-grid contours, simplify 1 px, min area 4 px) then
  GeoJSON + submission CSV rows + GeoParquet of the scene;
- floor: ``rasterio.features.shapes`` (GDAL polygonize, exact pixel edges) -> ``shapely.geometry.shape``
  per polygon -> MultiPolygon -> the same simplify and transform (no writing).
Seconds are the work only (masks are loaded from an .npy and geopandas/pyarrow imported before the
clock starts).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402

BENCH = "vectorize 10 classes"


def _make_masks(out: Path, size: int | None) -> tuple[Path, float, float]:
    """Generated scene's class masks (clean labels) and a noisy 'predicted' version, saved as .npy."""
    from scipy import ndimage as ndi

    from sattag.synth import generate_scene

    scene = generate_scene("6120_2_2", size=size, seed=0)
    clean = scene.masks()
    rng = np.random.default_rng(0)
    noisy = clean.copy()
    for i in range(len(noisy)):
        m = noisy[i].astype(bool)
        edge = ndi.binary_dilation(m) & ~ndi.binary_erosion(m)
        flip = edge & (rng.random(m.shape) < 0.35)  # ragged outlines: diagonal touches, notches
        speck = rng.random(m.shape) < (0.0005 if i != 5 else 0.002)  # isolated false pixels/holes
        noisy[i] = (m ^ flip ^ speck).astype(np.uint8)
    np.save(out / "clean.npy", clean)
    np.save(out / "noisy.npy", noisy)
    return out, float(scene.xmax), float(scene.ymin)


def sattag_scene(npy: str, xmax: float, ymin: float, out_dir: str) -> dict:
    """Vectorize + simplify + write one scene with sattag; returns timing and sizes."""
    import shapely

    from sattag.classes import DSTL_CLASSES
    from sattag.config import VectorizeConfig
    from sattag.scene import dstl_grid
    from sattag.vectorize import masks_to_polygons, write_geojson, write_geoparquet, write_submission_csv

    import geopandas  # noqa: F401  (imported once per worker in a run; not part of a scene's time)
    import pyarrow.parquet  # noqa: F401

    masks = np.load(npy)
    grid = dstl_grid(xmax, ymin, masks.shape[1], masks.shape[2])
    t0 = time.perf_counter()
    c0 = time.process_time()
    polys = masks_to_polygons(masks, grid, DSTL_CLASSES, VectorizeConfig())
    t1 = time.perf_counter()
    out = Path(out_dir)
    write_geojson(out / "scene.geojson", "6120_2_2", polys, DSTL_CLASSES)
    keyed = {("6120_2_2", c): g for c, g in polys.items()}
    write_submission_csv(out / "submission.csv", keyed, scene_ids=["6120_2_2"])
    write_geoparquet(out / "polygons.parquet", keyed)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_s": time.process_time() - c0, "vectorize_s": t1 - t0, "write_s": t2 - t1,
            "parts": int(sum(len(g.geoms) for g in polys.values())),
            "vertices": int(sum(shapely.get_num_coordinates(g) for g in polys.values())),
            "valid": bool(all(g.is_valid for g in polys.values()))}


def rasterio_scene(npy: str, xmax: float, ymin: float) -> dict:
    """The floor: GDAL polygonize via rasterio.features.shapes, then shapely simplify + transform."""
    import shapely
    from rasterio.features import shapes
    from shapely.geometry import MultiPolygon, shape

    from sattag.scene import dstl_grid

    masks = np.load(npy)
    grid = dstl_grid(xmax, ymin, masks.shape[1], masks.shape[2])
    t0 = time.perf_counter()
    c0 = time.process_time()
    parts = vertices = 0
    valid = True
    t = grid.transform
    for m in masks:
        if not m.any():
            continue
        polys = [shape(g) for g, v in shapes(m, mask=m.astype(bool), connectivity=8)]
        polys = [p for p in polys if p.area >= 4.0]
        mp = shapely.simplify(MultiPolygon(polys), 1.0, preserve_topology=True)
        mp = shapely.transform(mp, lambda xy: np.column_stack((t.a * xy[:, 0] + t.c, t.e * xy[:, 1] + t.f)))
        parts += len(getattr(mp, "geoms", [mp]))
        vertices += shapely.get_num_coordinates(mp)
        valid &= bool(mp.is_valid)
    return {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "parts": int(parts),
            "vertices": int(vertices), "valid": valid}


def run(quick: bool) -> list[dict]:
    """Rows of the benchmark table. ``quick``: a 1000-px scene (smoke test), else full size."""
    rows = []
    size = 1000 if quick else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        folder, xmax, ymin = _make_masks(tmp_p, size)
        shape = np.load(folder / "clean.npy", mmap_mode="r").shape
        for kind in ("clean", "noisy"):
            npy = str(folder / f"{kind}.npy")
            out = tmp_p / f"out_{kind}"
            out.mkdir()
            ours, _, peak = measure(sattag_scene, npy, xmax, ymin, str(out))
            rows.append(row(BENCH, f"sattag ({kind} masks)", ours["seconds"], peak,
                            metric=f"{shape[1]}x{shape[2]} px; {ours['parts']} parts, {ours['vertices']} vertices, "
                                   f"valid={ours['valid']}",
                            target="< 2 s per scene",
                            note=f"vectorize+simplify {ours['vectorize_s']:.2f} s, write GeoJSON+CSV+GeoParquet "
                                 f"{ours['write_s']:.2f} s; CPU {ours['cpu_s']:.2f} s"))
            floor, _, peak = measure(rasterio_scene, npy, xmax, ymin)
            rows.append(row(BENCH, f"rasterio.features.shapes + shapely ({kind} masks)", floor["seconds"], peak,
                            metric=f"{floor['parts']} parts, {floor['vertices']} vertices, valid={floor['valid']}",
                            target="floor", note=f"no writing; CPU {floor['cpu_s']:.2f} s"))
    return rows


if __name__ == "__main__":
    import json

    quick = "--quick" in sys.argv
    for r in run(quick):
        print(json.dumps(r))

"""Writing generated scenes in the DSTL layout: the four GeoTIFFs per scene, GeoJSON label layers,
``train_wkt_v4.csv``, ``grid_sizes.csv``, ``sample_submission.csv`` and ``generator_truth.csv``."""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import MultiPolygon, box, mapping

from sattag._files import atomic_path, check_free_space, write_csv
from sattag.dstl import ALL_IDS, GROUP_BANDS, REAL_TRAIN_IDS
from sattag.synth.render import gdal_cache_bytes, set_gdal_cache_bytes
from sattag.synth.scene import TILE, GeneratedScene, ScenePlan
from sattag.synth.sensor import NOMINAL_FULL_WIDTH
from sattag.synth.shapes import as_multipolygon


PLACEHOLDER_WKT = "MULTIPOLYGON (((0 0, 0.0001 0, 0.0001 -0.0001, 0 -0.0001, 0 0)))"


def dataset_scene_ids(n_scenes: int = 450, n_train: int = 25, seed: int = 0) -> tuple[list[str], list[str]]:
    """The ImageIds of a generated dataset: (all ids, training ids); training ids come first.

    Training ids are the real training ids (in ``REAL_TRAIN_IDS`` order) while they last, then random
    ones; the rest are drawn from the 450 real ids with ``seed``.
    """
    if not 1 <= n_scenes <= len(ALL_IDS):
        raise ValueError(f"n_scenes must be 1..{len(ALL_IDS)}, got {n_scenes}")
    if not 0 <= n_train <= n_scenes:
        raise ValueError(f"n_train must be 0..n_scenes ({n_scenes}), got {n_train}")
    rng = np.random.default_rng([seed, 7919])
    train = list(REAL_TRAIN_IDS[:n_train])
    rest = [i for i in ALL_IDS if i not in train]
    rest = [rest[k] for k in rng.permutation(len(rest))]
    train += rest[: n_train - len(train)]
    rest = rest[max(0, n_train - len(REAL_TRAIN_IDS)):]
    others = rest[: n_scenes - n_train]
    return train + others, train


def _tif_profile(count: int, h: int, w: int, georef: tuple[float, float, float]) -> dict:
    x0, y0, px = georef
    return dict(driver="GTiff", height=h, width=w, count=count, dtype="uint16", crs="EPSG:32631",
                transform=Affine(px, 0, x0, 0, -px, y0), compress="deflate", predictor=2, zlevel=1)


def _description(count: int) -> dict[str, str]:
    return {"TIFFTAG_IMAGEDESCRIPTION": ",".join(str(i) for i in range(1, count + 1))}


def _write_tif(path: Path, arr: np.ndarray, georef: tuple[float, float, float]) -> None:
    """Write a uint16 (bands, h, w) GeoTIFF atomically, with a plausible UTM georeference."""
    count, h, w = arr.shape
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **_tif_profile(count, h, w, georef)) as dst:
            dst.write(arr)
            dst.update_tags(**_description(count))


def _scene_files(out: Path, sid: str, w: int, shapes: dict[str, tuple[int, int]]) -> dict[str, tuple[Path, tuple]]:
    """group -> (file, georef) of a scene whose R grid is ``w`` px wide."""
    # a plausible UTM 31N position per grid square; the pixel size follows the generated size
    g, r, c = (int(v) for v in sid.split("_"))
    px = 0.31 * NOMINAL_FULL_WIDTH / w
    x0 = 440000.0 + (g - 6000) * 120.0 + c * 1050.0
    y0 = 5450000.0 - r * 1040.0
    names = {"R": out / "three_band" / f"{sid}.tif", "P": out / "sixteen_band" / f"{sid}_P.tif",
             "M": out / "sixteen_band" / f"{sid}_M.tif", "A": out / "sixteen_band" / f"{sid}_A.tif"}
    return {grp: (path, (x0, y0, px * w / shapes[grp][1])) for grp, path in names.items()}


def write_scene(out: str | Path, scene: GeneratedScene, with_labels: bool = False) -> None:
    """Write one scene's four GeoTIFFs (and, with ``with_labels``, its GeoJSON layers) under ``out``."""
    out = Path(out)
    files = _scene_files(out, scene.scene_id, scene.shape[1], {g: a.shape[1:] for g, a in scene.bands.items()})
    for grp, (path, georef) in files.items():
        _write_tif(path, scene.bands[grp], georef)
    if with_labels:
        _write_geojson(out / "train_geojson_v3" / scene.scene_id, scene)


#: GDAL's block cache while a scene is written window by window. rasterio hands an integer
#: ``GDAL_CACHEMAX`` to GDAL as bytes (not MB), so this is 64 *bytes*: every block is flushed to its
#: file as soon as it is written instead of piling up in memory. (The name is kept for callers.)
WRITE_CACHE_MB = 64


@contextlib.contextmanager
def _write_cache():
    """GDAL's block cache at ``WRITE_CACHE_MB`` inside, and back to what it was after: rasterio leaves
    an inner Env's cache size behind when an outer Env is open, and a tiny cache slows everything
    GDAL does later (rasterizing most)."""
    before = gdal_cache_bytes()
    try:
        with rasterio.Env(GDAL_CACHEMAX=WRITE_CACHE_MB):
            yield
    finally:
        if before is not None and gdal_cache_bytes() != before:
            set_gdal_cache_bytes(before)


def write_plan(out: str | Path, plan: ScenePlan, tile: int = TILE) -> None:
    """Write one scene's four GeoTIFFs under ``out`` window by window: a row of windows at a time is
    rendered and written into each file (the same files as :func:`write_scene`), so memory is bounded by
    ``tile`` x the scene's width in counts plus one window's rendering, whatever the scene's size."""
    out = Path(out)
    files = _scene_files(out, plan.scene_id, plan.W, plan.shapes)
    tiles = plan.tiles(tile)
    rows = sorted({(y0, y1) for y0, y1, _, _ in tiles})
    with contextlib.ExitStack() as stack:
        stack.enter_context(_write_cache())
        dsts = {}
        for grp, (path, georef) in files.items():
            tmp = stack.enter_context(atomic_path(path))
            h, w = plan.shapes[grp]
            dsts[grp] = stack.enter_context(rasterio.open(tmp, "w", **_tif_profile(len(GROUP_BANDS[grp]), h, w, georef)))
        for y0, y1 in rows:
            bufs = {}
            for grp, dst in dsts.items():
                gy0, gy1, _, _ = plan.group_window(grp, y0, y1, 0, plan.W)
                bufs[grp] = (gy0, np.zeros((dst.count, gy1 - gy0, dst.width), np.uint16))
            for ty0, ty1, x0, x1 in tiles:
                if (ty0, ty1) != (y0, y1):
                    continue
                for grp, ((gy0, gy1, gx0, gx1), arr) in plan.render_tile(y0, y1, x0, x1).items():
                    bufs[grp][1][:, :, gx0:gx1] = arr
            for grp, (gy0, buf) in bufs.items():
                if buf.shape[1]:
                    dsts[grp].write(buf, window=Window(0, gy0, buf.shape[2], buf.shape[1]))
            del bufs
        for grp, dst in dsts.items():
            dst.update_tags(**_description(dst.count))


def _write_geojson(folder: Path, scene) -> None:
    """One GeoJSON per non-empty label layer plus the ``Grid_`` outline file (``scene``: a
    :class:`GeneratedScene` or anything with its ``scene_id``, ``layers``, ``xmax`` and ``ymin``)."""
    oid = 0
    for layer, geoms in sorted(scene.layers.items()):
        if not geoms:
            continue
        feats = []
        for gm in geoms:
            oid += 1
            feats.append({"type": "Feature", "geometry": mapping(gm),
                          "properties": {"OBJECTID": oid, "IMAGE_ID": scene.scene_id, "LABEL": layer,
                                         "Area": gm.area}})
        _dump_json(folder / f"{layer}.geojson", {"type": "FeatureCollection", "features": feats})
    outline = box(0, scene.ymin, scene.xmax, 0)
    _dump_json(folder / f"Grid_{scene.scene_id}.geojson", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(outline), "properties": {"IMAGE_ID": scene.scene_id}}]})


def _dump_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, separators=(",", ":")))


_TRAILING_ZEROS = re.compile(r"\.(\d*?)0+(?=[ ,)])")
_MINUS_ZERO = re.compile(r"(?<![\d.])-0(?=[ ,)])")


def _wkt(mp: MultiPolygon) -> str:
    """WKT with plain decimals (9 places, ~0.003 px; no exponents), trailing zeros dropped."""
    if mp.is_empty:
        return "MULTIPOLYGON EMPTY"
    # snap to the written precision first, so that what is read back is still valid
    snapped = as_multipolygon(shapely.set_precision(mp, 1e-9))
    txt = shapely.to_wkt(snapped, rounding_precision=9, trim=False)
    txt = _TRAILING_ZEROS.sub(lambda m: "." + m.group(1) if m.group(1) else "", txt)
    return _MINUS_ZERO.sub("0", txt)


@dataclass(frozen=True)
class SceneRecord:
    """What the dataset tables need from one written scene (see :func:`write_generated_scene`)."""

    scene_id: str
    grid_sizes: tuple[str, str]
    offsets: dict[str, tuple[float, float]]
    wkt: tuple[str, ...]  # 10 MultipolygonWKT strings for a training scene, else empty


def scene_bytes(scene_id: str, size: int | None = None, seed: int = 0) -> int:
    """Bytes of a generated scene's four GeoTIFFs at most: every band's uint16 counts, uncompressed
    (the files are deflate-compressed, so this is an upper bound for the check before writing)."""
    shapes = ScenePlan.group_shapes(scene_id, size, seed)
    return sum(len(GROUP_BANDS[g]) * h * w * 2 for g, (h, w) in shapes.items())


def write_generated_scene(out: str | Path, scene_id: str, size: int | None = None, seed: int = 0,
                          offsets: dict[str, tuple[float, float]] | None = None,
                          with_labels: bool = False, tile: int = TILE) -> SceneRecord:
    """Generate one scene and write its GeoTIFFs (and GeoJSON layers when ``with_labels``) under ``out``.

    Rendered and written window by window (``tile`` R px a side, see :func:`write_plan`): memory does
    not grow with ``size`` as a whole scene's arrays would (20000 px: ~32 GB), and the files are the
    same whatever ``tile``. Independent of every other scene, so an engine may map it over scenes in
    parallel and hand the records to :func:`write_dataset_tables`.
    """
    check_free_space(out, scene_bytes(scene_id, size, seed), f"generated scene {scene_id} (size {size or 'full'})")
    plan = ScenePlan(scene_id, size=size, seed=seed, offsets=offsets)
    write_plan(out, plan, tile)
    wkt = ()
    if with_labels:
        layers, polygons = plan.labels()
        _write_geojson(Path(out) / "train_geojson_v3" / scene_id,
                       SimpleNamespace(scene_id=scene_id, layers=layers, xmax=plan.xmax, ymin=plan.ymin))
        wkt = tuple(_wkt(polygons[cid]) for cid in range(1, 11))
    return SceneRecord(scene_id, plan.grid_sizes, dict(plan.offsets), wkt)


def write_dataset_tables(out: str | Path, records: list[SceneRecord], train: list[str], seed: int = 0) -> None:
    """Write grid_sizes.csv, train_wkt_v4.csv, sample_submission.csv and generator_truth.csv."""
    out = Path(out)
    train_set = set(train)
    rng = np.random.default_rng([seed, 104729])
    # grid_sizes.csv rows are not sorted in the real file
    order = rng.permutation(len(records))
    write_csv(out / "grid_sizes.csv", ["", "Xmax", "Ymin"],
              [(records[i].scene_id, *records[i].grid_sizes) for i in order])
    write_csv(out / "train_wkt_v4.csv", ["ImageId", "ClassType", "MultipolygonWKT"],
              [(r.scene_id, cid, w) for r in records if r.scene_id in train_set
               for cid, w in enumerate(r.wkt, start=1)])
    # test set: every non-training scene plus a few training ones (4 of 25 in the real data)
    n_overlap = min(len(train), round(4 * len(train) / 25))
    test = [r.scene_id for r in records if r.scene_id not in train_set] + list(train[:n_overlap])
    test = [test[k] for k in rng.permutation(len(test))]
    write_csv(out / "sample_submission.csv", ["ImageId", "ClassType", "MultipolygonWKT"],
              [(sid, cid, PLACEHOLDER_WKT) for sid in test for cid in range(1, 11)])
    write_csv(out / "generator_truth.csv", ["scene", "group", "dx", "dy"],
              [(r.scene_id, g, repr(float(r.offsets[g][0])), repr(float(r.offsets[g][1])))
               for r in records for g in ("P", "M", "A")])


def generate_dataset(out: str | Path, n_scenes: int = 450, n_train: int = 25, size: int | None = None,
                     seed: int = 0, offsets: dict[str, tuple[float, float]] | None = None,
                     progress: Callable[[int], None] | None = None, tile: int = TILE) -> Path:
    """Write a DSTL-format dataset under ``out`` and return ``out``.

    ``n_scenes`` ImageIds from the 450 real ones, the first ``n_train`` of them training scenes (with
    polygons in ``train_wkt_v4.csv`` and ``train_geojson_v3/``). ``size``: nominal width in px of the
    R/P files (None = full size ~3391-3403; M is ~1/4, A ~1/25, at least 8 px); real widths vary by a
    few px per scene and so do generated ones. ``offsets``: group -> (dx, dy) in R px of the generated
    size, forced for every scene (else drawn per scene like the real ones, scaled to the size). Also
    writes ``grid_sizes.csv``, ``sample_submission.csv`` and ``generator_truth.csv``. ``progress`` is
    called with 1 after each scene. Same arguments, same bytes (whatever ``tile``, the window scenes
    are rendered and written in: memory follows it, not ``size``). Serial; for parallel runs map
    :func:`write_generated_scene` over :func:`dataset_scene_ids` and finish with
    :func:`write_dataset_tables`.
    """
    out = Path(out)
    ids, train = dataset_scene_ids(n_scenes, n_train, seed)
    # All scenes at once, before the first is written: a dataset that cannot fit is not begun.
    check_free_space(out, sum(scene_bytes(sid, size, seed) for sid in ids),
                     f"{len(ids)} generated scene(s) (size {size or 'full'})")
    out.mkdir(parents=True, exist_ok=True)
    train_set = set(train)
    records = []
    for sid in ids:
        records.append(write_generated_scene(out, sid, size=size, seed=seed, offsets=offsets,
                                             with_labels=sid in train_set, tile=tile))
        if progress is not None:
            progress(1)
    write_dataset_tables(out, records, train, seed)
    return out

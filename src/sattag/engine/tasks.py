"""The per-scene tasks the engine runs on workers.

Each reads its inputs from files, writes its outputs to the run folder (atomically, by the stage
writers) and returns only something small: offsets rows, pixel counts, histograms, polygons as WKB.
A task whose outputs are complete returns what it would have returned without redoing the work,
which is what makes an interrupted run resumable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sattag.classes import ClassTable
from sattag.config import Config
from sattag.runfolder import RunFolder
from sattag.scene import Scene


def ingest_task(scene: Scene, run_root: str, config: Config) -> list[tuple]:
    """Build (or find complete) the scene's stack; return its offsets rows."""
    from sattag.ingest import ingest_scene, offsets_rows, read_stack_metadata

    path = RunFolder(run_root).stack(scene.id)
    stack = ingest_scene(scene, path, config.ingest)
    return offsets_rows(stack if stack is not None else read_stack_metadata(path))


def labels_task(scene: Scene, data_dir: str, run_root: str, classes: ClassTable, bins: int,
                labels_file: str | None, class_column: str | None) -> dict | None:
    """Rasterize the scene's labels onto its stack grid; return pixel counts and histograms.

    None when the scene has no labels (it is then not a training scene).
    """
    from sattag.ingest import read_stack, read_stack_metadata
    from sattag.labels import rasterize_classes, write_masks
    from sattag.learn import class_pixel_counts
    from sattag.viz.explore import band_histograms, scene_histograms, scene_thumbnail

    run = RunFolder(run_root)
    # Most scenes of a dataset have no labels (425 of DSTL's 450): find out before reading pixels.
    grid = read_stack_metadata(run.stack(scene.id)).grid
    polygons = _scene_polygons(scene, grid, data_dir, classes, labels_file, class_column)
    if polygons is None:
        return None
    stack = read_stack(run.stack(scene.id))
    masks = rasterize_classes(polygons, stack.grid, classes, source=labels_file or data_dir, scene_id=scene.id)
    write_masks(run.masks_true(scene.id), masks, stack.grid, classes)
    return {
        "counts": class_pixel_counts(masks),
        "histograms": scene_histograms(stack.data, masks, bins),
        "background": band_histograms(stack.data, bins),
        "thumbnail": scene_thumbnail(stack.data, stack.bands),
        "bands": stack.bands,
    }


def sample_task(scene: Scene, quotas: np.ndarray, run_root: str, seed: int) -> dict:
    """Draw the scene's share of the balanced per-class pixel samples."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.learn import sample_scene

    run = RunFolder(run_root)
    stack = read_stack(run.stack(scene.id))
    masks = read_masks(run.masks_true(scene.id))[0]
    return sample_scene(stack.data, masks, quotas, seed=seed, scene_id=scene.id)


def predict_task(scene: Scene, figures: bool, run_root: str, config: Config, classes: ClassTable) -> dict:
    """Cluster, predict, apply the rules, write masks and polygons; return polygons and pixel counts."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.learn import load_models
    from sattag.predict import predict_scene, write_prediction
    from sattag.vectorize import masks_to_polygons, read_geojson_polygons, write_geojson

    run = RunFolder(run_root)
    geojson = run.polygons_geojson(scene.id)
    masks_path = run.masks(scene.id)
    if geojson.exists() and masks_path.exists():
        polygons = read_geojson_polygons(geojson, classes)
        masks = read_masks(masks_path)[0]
    else:
        stack = read_stack(run.stack(scene.id))
        models = load_models(run.models, stack.bands, classes)
        result = predict_scene(stack.data, models, config, classes)
        write_prediction(run, scene.id, result, stack.grid, classes)
        if figures:
            from sattag.viz.clusters import write_cluster_figures

            write_cluster_figures(run.figures / "clusters", scene.id, stack, result, classes)
        polygons = masks_to_polygons(result.masks, stack.grid, classes, config.vectorize)
        write_geojson(geojson, scene.id, polygons, classes, crs=stack.grid.crs)
        masks = result.masks
    out = {"polygons": {cid: g.wkb for cid, g in polygons.items()}, "pixel": None}
    truth = run.masks_true(scene.id)
    if truth.exists():
        from sattag.evaluate import pixel_counts

        out["pixel"] = pixel_counts(masks, read_masks(truth)[0])
    return out


def explore_figures_task(scene: Scene, run_root: str, data_dir: str, classes: ClassTable,
                         labels_file: str | None, class_column: str | None) -> list[str]:
    """Write one scene's exploration figures: every band, its class masks, RGB with polygons overlaid."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.viz.explore import write_explore_figures

    run = RunFolder(run_root)
    stack = read_stack(run.stack(scene.id))
    masks = read_masks(run.masks_true(scene.id))[0]
    polygons = _scene_polygons(scene, stack.grid, data_dir, classes, labels_file, class_column)
    written = write_explore_figures(run.figures / "explore", classes=classes, stack_data=stack.data,
                                    bands=stack.bands, scene_id=scene.id, masks=masks, polygons=polygons,
                                    grid=stack.grid)
    return [str(p) for p in written.values()]


def _scene_polygons(scene: Scene, grid, data_dir: str, classes: ClassTable, labels_file: str | None,
                    class_column: str | None) -> dict | None:
    """The scene's label polygons in its own coordinates: a user's vector file (only the features
    over this scene are read) or the DSTL labels of the data folder; None when it has none."""
    from sattag.labels import grid_bounds, read_vector_labels, scene_labels

    if labels_file:
        return read_vector_labels(labels_file, class_column, grid.crs, classes, scene_id=scene.id,
                                  bounds=grid_bounds(grid))
    return scene_labels(data_dir, scene.id, classes)

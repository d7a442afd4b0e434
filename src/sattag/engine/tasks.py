"""The per-scene tasks the engine runs on workers.

Each takes the scene and the run's :class:`~sattag.engine.contracts.RunContext`, reads its inputs
from files, writes its outputs to the run folder (atomically, by the stage writers) and returns only
something small, typed in :mod:`sattag.engine.contracts`: offsets rows, pixel counts, histograms,
cluster rows, polygons as WKB.
A task whose outputs are complete returns what it would have returned without redoing the work,
which is what makes an interrupted run resumable.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sattag.engine.contracts import ClusterRows, RunContext, ScenePrediction, SceneTruth
from sattag.features import FeatureSet
from sattag.scene import Scene


def ingest_task(scene: Scene, ctx: RunContext) -> list[tuple]:
    """Build (or find complete) the scene's stack; return its offsets rows."""
    from sattag.ingest import ingest_scene, offsets_rows, read_stack_metadata, stack_is_complete

    found = ctx.run.stack(scene.id)
    if stack_is_complete(found):  # whichever way it was written (one task, or in parts)
        return offsets_rows(read_stack_metadata(found))
    path = ctx.run.stack_tif(scene.id)
    stack = ingest_scene(scene, path, ctx.config.ingest)
    if found != path:  # a stack in parts that lost a part, now stacked whole: the VRT must not shadow it
        found.unlink(missing_ok=True)
    return offsets_rows(stack if stack is not None else read_stack_metadata(path))


@dataclass(frozen=True)
class StackPart:
    """One part of a scene stacked in parts (:mod:`sattag.ingest.parts`): the stack's rows ``rows =
    (r0, r1)``, the full width. ``id`` names it in progress, timings and failures."""

    scene: Scene
    rows: tuple[int, int]
    kind: ClassVar[str] = "part"

    @property
    def id(self) -> str:
        return f"{self.scene.id}/rows{self.rows[0]}-{self.rows[1]}"


def ingest_offsets_task(scene: Scene, ctx: RunContext):
    """A scene to be stacked in parts: its offsets, spreads, band names and grid
    (:func:`sattag.ingest.parts.fit_scene`, a ``SceneFit``; saved beside the parts for a rerun)."""
    from sattag.ingest.parts import fit_scene

    return fit_scene(scene, ctx.run.stack_vrt(scene.id), ctx.config.ingest)


def ingest_part_task(part: StackPart, fit, ctx: RunContext) -> None:
    """Render and write one part of a scene's stack with the scene's ``fit``
    (:func:`sattag.ingest.parts.write_part`); a finished part is left as it is."""
    from sattag.ingest.parts import write_part

    write_part(part.scene, fit, part.rows, ctx.run.stack_vrt(part.scene.id), ctx.config.ingest)


def ingest_join_task(scene: Scene, fit_and_parts: tuple, ctx: RunContext) -> list[tuple]:
    """Join a scene's finished parts into its stack (:func:`sattag.ingest.parts.join_parts`);
    ``fit_and_parts``: its ``SceneFit`` and its parts' rows. Returns its offsets rows."""
    from sattag.ingest import offsets_rows
    from sattag.ingest.parts import join_parts

    fit, parts = fit_and_parts
    return offsets_rows(join_parts(scene, fit, list(parts), ctx.run.stack_vrt(scene.id), ctx.config.ingest))


def labels_task(scene: Scene, ctx: RunContext) -> SceneTruth | None:
    """The scene's truth from the run's label source, clipped to the scene, as polygons and class
    masks on its stack grid; returns pixel counts, histograms and a thumbnail.

    None when the label source does not cover the scene (it is then neither trained on nor scored).
    A scene whose truth files exist is read back, not rewritten (a resumed run). Window by window
    (``[ingest] tile_px``): each window's masks are burnt and written, and its stack read once for
    the counts, histograms and thumbnail, so memory follows the window, not the scene.
    """
    from sattag.ingest import read_stack_metadata, read_stack_window
    from sattag.ingest.thumbnail import ThumbnailWindows
    from sattag.labels import (band_histograms, grid_windows, rasterize_windows, read_masks_metadata,
                               read_masks_window, scene_histograms, write_masks_windows, write_truth_polygons)
    from sattag.learn import class_pixel_counts

    run, source, classes, config = ctx.run, ctx.labels, ctx.classes, ctx.config
    bins, tile = config.figures.histogram_bins, config.ingest.tile_px
    stack_path = run.stack(scene.id)
    masks_path, polygons_path = run.truth_masks(scene.id), run.truth_polygons(scene.id)
    meta = read_stack_metadata(stack_path)
    grid, bands = meta.grid, tuple(meta.bands)
    n_cls, n_bands = len(classes), len(bands)
    counts = np.zeros((n_cls, 2), np.int64)
    histograms = np.zeros((n_cls, n_bands, bins), np.int64)
    background = np.zeros((n_bands, bins), np.int64)
    thumbnail = ThumbnailWindows(grid.height, grid.width, bands)

    def summed(pieces):
        """Add each window's counts and histograms (they add up exactly to the scene's) as it passes."""
        nonlocal counts, histograms, background
        for row0, col0, masks in pieces:
            h, w = masks.shape[1:]
            data = read_stack_window(stack_path, (row0, row0 + h), (col0, col0 + w), config.ingest.gdal_threads)
            counts += class_pixel_counts(masks)
            histograms += scene_histograms(data, masks, bins)
            background += band_histograms(data, bins)
            thumbnail.add(row0, col0, data)
            del data
            yield row0, col0, masks

    if masks_path.exists() and polygons_path.exists():
        mask_grid = read_masks_metadata(masks_path)[0]
        for _ in summed((r0, c0, read_masks_window(masks_path, (r0, r1), (c0, c1)))
                        for r0, r1, c0, c1 in grid_windows(mask_grid.height, mask_grid.width, tile)):
            pass
    else:
        # Most scenes of a dataset have no labels (425 of DSTL's 450): find out before reading pixels.
        polygons = source.scene_polygons(scene.id, grid, classes)
        if polygons is None:
            return None
        write_masks_windows(masks_path, summed(rasterize_windows(polygons, grid, classes, tile, source=source.path,
                                                                 scene_id=scene.id)), grid, classes)
        # Polygons last: both files present means the scene's truth is complete.
        write_truth_polygons(polygons_path, polygons, classes, crs=grid.crs)
    return SceneTruth(counts=counts, histograms=histograms, background=background, thumbnail=thumbnail.image,
                      bands=bands)


def sample_task(scene: Scene, quotas: np.ndarray, ctx: RunContext) -> dict:
    """Draw the scene's share of the balanced per-class pixel samples (``quotas``: pixels in and out
    of each class, :func:`sattag.learn.allocate_quotas`): class id -> (features (n, F), labels (n,))
    of the drawn pixels, the run's feature set. Reads the masks and the stack window by window
    (``[ingest] tile_px``, :func:`sattag.learn.sample.sample_scene_windows`): the same pixels as
    :func:`sattag.learn.sample_scene` on the whole arrays."""
    from sattag.ingest import read_stack_metadata, read_stack_window
    from sattag.labels import read_masks_metadata, read_masks_window
    from sattag.learn.sample import sample_scene_windows

    config = ctx.config
    stack_path, masks_path = ctx.run.stack(scene.id), ctx.run.truth_masks(scene.id)
    meta = read_stack_metadata(stack_path)
    read_masks_metadata(masks_path)  # a missing or foreign masks file fails here, naming it
    threads = config.ingest.gdal_threads
    return sample_scene_windows(
        meta.grid.shape,
        lambda rows, cols, layers: read_masks_window(masks_path, rows, cols, layers),
        lambda rows, cols: read_stack_window(stack_path, rows, cols, threads),
        quotas, seed=config.sample.seed, tile_px=config.ingest.tile_px, scene_id=scene.id, bands=meta.bands,
        feature_set=FeatureSet.from_config(config.features))


def bbox_centres(bbox: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Centres (row, col) of bounding boxes ``(row0, col0, row1, col1)`` (K, 4), moved by ``offset``
    (a window's first row and column in the scene): float32 (K, 2), scene px."""
    b = np.asarray(bbox, dtype=np.float32).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2 + offset[0], (b[:, 1] + b[:, 3]) / 2 + offset[1]], axis=1)


def relit_object_rows(cluster_ids: np.ndarray, table, stack_data: np.ndarray, bands, feature_set: FeatureSet,
                      lights, core: tuple[slice, slice] = (slice(None), slice(None))) -> list[np.ndarray]:
    """The object rows (``sattag.features.objects``) of the clusters ``cluster_ids`` / ``table`` under
    each of ``lights`` (:class:`sattag.learn.Relight`; None: the stack as recorded), one float32 (K, F)
    array per light. ``stack_data`` (B, H, W) may carry a halo around the clustered window ``core``
    (the features' context); the feature maps are cut to it."""
    from sattag.features import feature_maps
    from sattag.features.objects import object_features

    out = []
    for light in lights:
        lit = stack_data if light is None else light.apply(stack_data)
        rows, _ = object_features(cluster_ids, len(table), ((n, m[core]) for n, m in feature_maps(lit, bands, feature_set)),
                                  table.neighbour_ptr, table.neighbour_ids)
        out.append(rows)
        del lit
    return out


def cluster_rows_task(scene: Scene, relit_copies: int, ctx: RunContext) -> ClusterRows:
    """A labelled scene's clusters as rows of object-level models (:class:`ClusterRows`), followed by
    the same clusters' rows under ``relit_copies`` other lights (:func:`sattag.learn.draw_relights`:
    the clusters are those of the scene as recorded, their features those of the relit stack); a
    scene larger than ``[predict] tile_px`` tile by tile (:func:`sattag.engine.tiles.tiled_cluster_rows`).
    The rows go to ``object_rows/<scene>.npy`` in the run folder, their path in ``ClusterRows.rows``."""
    from sattag.features.objects import cluster_class_shares, write_object_rows
    from sattag.ingest import read_stack, read_stack_metadata
    from sattag.labels import read_masks
    from sattag.learn import draw_relights
    from sattag.segment import cluster_pixels

    run, config = ctx.run, ctx.config
    head = read_stack_metadata(run.stack(scene.id))
    lights = draw_relights(scene.id, len(head.bands), relit_copies, config.model.seed)
    if max(head.grid.height, head.grid.width) > config.predict.tile_px:  # too large to hold whole: tile by tile
        from sattag.engine.tiles import tiled_cluster_rows

        copies, shares, sizes, centres = tiled_cluster_rows(scene, ctx, config.predict.tile_px, lights)
    else:
        stack = read_stack(run.stack(scene.id), config.ingest.gdal_threads)
        cc = config.cluster
        cluster_ids, table = cluster_pixels(stack.data, cc.tolerance, cc.min_size, cc.tolerance_of, merge=cc.merge)
        copies = relit_object_rows(cluster_ids, table, stack.data, stack.bands, FeatureSet.from_config(config.features),
                                   [None, *lights])
        shares = cluster_class_shares(cluster_ids, len(table), read_masks(run.truth_masks(scene.id))[0])
        sizes, centres = table.sizes, bbox_centres(table.bbox)
    n = len(copies)
    path = run.object_rows(scene.id)
    write_object_rows(path, copies)  # the client reads only the rows it draws (ClusterRows)
    return ClusterRows(rows=path, shares=np.concatenate([shares] * n),
                       sizes=np.concatenate([sizes] * n), centres=np.concatenate([centres] * n))


def predict_task(scene: Scene, figures: bool, ctx: RunContext) -> ScenePrediction:
    """Cluster (segment), predict on the clusters, apply the rules, write masks and polygons (and the
    cluster figures when ``figures``); return polygons and pixel counts."""
    from sattag.engine.tiles import predict_window, worker_models
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.predict import write_prediction
    from sattag.vectorize import masks_to_polygons, read_geojson_polygons, write_geojson

    run, config, classes = ctx.run, ctx.config, ctx.classes
    geojson = run.polygons_geojson(scene.id)
    masks_path = run.masks(scene.id)
    if geojson.exists() and masks_path.exists():
        polygons = read_geojson_polygons(geojson, classes)
        masks = read_masks(masks_path)[0]
    else:
        stack = read_stack(run.stack(scene.id), config.ingest.gdal_threads)
        models = worker_models(ctx, stack.bands)  # loaded once per worker process, not once per scene
        # The whole scene as one window (sattag.engine.tiles does the same tile by tile).
        result = predict_window(stack.data, (slice(None), slice(None)), stack.bands, models, config, classes)
        write_prediction(run, scene.id, result, stack.grid, classes)
        if figures:
            from sattag.viz.clusters import write_cluster_figures

            write_cluster_figures(run.figures / "clusters", scene.id, stack, result, classes)
        polygons = masks_to_polygons(result.masks, stack.grid, classes, config.vectorize)
        write_geojson(geojson, scene.id, polygons, classes, crs=stack.grid.crs)
        masks = result.masks
    pixel = polygon = None
    if run.truth_masks(scene.id).exists() and run.truth_polygons(scene.id).exists():
        from sattag.evaluate import pixel_counts, polygon_counts
        from sattag.labels import read_truth_polygons

        # The scene's share of the scores, here where its polygons are: only 4 C numbers go back.
        pixel = pixel_counts(masks, read_masks(run.truth_masks(scene.id))[0])
        polygon = polygon_counts(polygons, read_truth_polygons(run.truth_polygons(scene.id), classes), classes)
    return ScenePrediction(polygons={cid: g.wkb for cid, g in polygons.items()}, pixel=pixel, polygon=polygon)


def explore_figures_task(scene: Scene, ctx: RunContext) -> list[str]:
    """Write one labelled scene's exploration figures: every band, its class masks, RGB with its truth
    polygons overlaid (read from the run folder, where :func:`labels_task` put them).

    A scene larger than ``[predict] tile_px`` on a side is drawn from every n-th row and column of its
    stack and masks (n: the smallest that brings it within a tile, named in the figures' titles), read
    a band of rows at a time, so memory follows the tile as in every other stage."""
    from affine import Affine

    from sattag.ingest import read_stack, read_stack_metadata, read_stack_sample
    from sattag.labels import read_masks, read_masks_sample, read_truth_polygons
    from sattag.scene import Grid
    from sattag.viz.explore import write_explore_figures

    run, classes = ctx.run, ctx.classes
    stack_path, masks_path = run.stack(scene.id), run.truth_masks(scene.id)
    polygons = read_truth_polygons(run.truth_polygons(scene.id), classes)
    meta = read_stack_metadata(stack_path)
    grid, bands = meta.grid, tuple(meta.bands)
    step = -(-max(grid.height, grid.width) // ctx.config.predict.tile_px)
    title = scene.id
    if step == 1:
        data, truth_masks = read_stack(stack_path).data, read_masks(masks_path)[0]
    else:
        data, truth_masks = read_stack_sample(stack_path, step), read_masks_sample(masks_path, step)
        # The sample's own grid: its pixels are step x step of the scene's, so polygons land on them.
        grid = Grid(data.shape[1], data.shape[2], grid.transform @ Affine.scale(step), grid.crs)
        title = f"{scene.id} (sampled 1:{step} per side)"
    written = write_explore_figures(run.figures / "explore", classes=classes, stack_data=data, bands=bands,
                                    scene_id=scene.id, masks=truth_masks, polygons=polygons, grid=grid,
                                    title=title)
    return [str(p) for p in written.values()]

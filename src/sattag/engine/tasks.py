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

import numpy as np

from sattag.config import Config
from sattag.engine.contracts import ClusterRows, RunContext, ScenePrediction, SceneTruth
from sattag.features import FeatureSet
from sattag.scene import Scene


def ingest_task(scene: Scene, ctx: RunContext) -> list[tuple]:
    """Build (or find complete) the scene's stack; return its offsets rows."""
    from sattag.ingest import ingest_scene, offsets_rows, read_stack_metadata

    path = ctx.run.stack(scene.id)
    stack = ingest_scene(scene, path, ctx.config.ingest)
    return offsets_rows(stack if stack is not None else read_stack_metadata(path))


def labels_task(scene: Scene, ctx: RunContext) -> SceneTruth | None:
    """The scene's truth from the run's label source, clipped to the scene, as polygons and class
    masks on its stack grid; returns pixel counts, histograms and a thumbnail.

    None when the label source does not cover the scene (it is then neither trained on nor scored).
    A scene whose truth files exist is read back, not rewritten (a resumed run).
    """
    from sattag.ingest import read_stack, read_stack_metadata, scene_thumbnail
    from sattag.labels import (band_histograms, rasterize_classes, read_masks, scene_histograms, write_masks,
                               write_truth_polygons)
    from sattag.learn import class_pixel_counts

    run, source, classes, bins = ctx.run, ctx.labels, ctx.classes, ctx.config.figures.histogram_bins
    masks_path, polygons_path = run.truth_masks(scene.id), run.truth_polygons(scene.id)
    if masks_path.exists() and polygons_path.exists():
        truth_masks = read_masks(masks_path)[0]
        stack = read_stack(run.stack(scene.id))
    else:
        # Most scenes of a dataset have no labels (425 of DSTL's 450): find out before reading pixels.
        grid = read_stack_metadata(run.stack(scene.id)).grid
        polygons = source.scene_polygons(scene.id, grid, classes)
        if polygons is None:
            return None
        stack = read_stack(run.stack(scene.id))
        truth_masks = rasterize_classes(polygons, stack.grid, classes, source=source.path, scene_id=scene.id)
        write_masks(masks_path, truth_masks, stack.grid, classes)
        # Polygons last: both files present means the scene's truth is complete.
        write_truth_polygons(polygons_path, polygons, classes, crs=stack.grid.crs)
    return SceneTruth(counts=class_pixel_counts(truth_masks),
                      histograms=scene_histograms(stack.data, truth_masks, bins),
                      background=band_histograms(stack.data, bins),
                      thumbnail=scene_thumbnail(stack.data, stack.bands), bands=tuple(stack.bands))


def sample_task(scene: Scene, quotas: np.ndarray, ctx: RunContext) -> dict:
    """Draw the scene's share of the balanced per-class pixel samples (``quotas``: pixels in and out
    of each class, :func:`sattag.learn.allocate_quotas`): class id -> (features (n, F), labels (n,))
    of the drawn pixels, the run's feature set."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.learn import sample_scene

    stack = read_stack(ctx.run.stack(scene.id))
    truth_masks = read_masks(ctx.run.truth_masks(scene.id))[0]
    return sample_scene(stack.data, truth_masks, quotas, seed=ctx.config.sample.seed, scene_id=scene.id,
                        bands=stack.bands, feature_set=FeatureSet.from_config(ctx.config.features))


def scene_objects(stack, config: Config, feature_set: FeatureSet):
    """Cluster a stack (segment stage) and compute each cluster's object features:
    ``(cluster_ids int32 (H, W), ClusterTable, rows float32 (K, F))``."""
    from sattag.features import feature_maps
    from sattag.features.objects import object_features
    from sattag.segment import cluster_pixels

    cluster_ids, table = cluster_pixels(stack.data, config.cluster.tolerance, config.cluster.min_size,
                                        config.cluster.tolerance_of)
    rows, _ = object_features(cluster_ids, len(table), feature_maps(stack.data, stack.bands, feature_set),
                              table.neighbour_ptr, table.neighbour_ids)
    return cluster_ids, table, rows


def cluster_rows_task(scene: Scene, ctx: RunContext) -> ClusterRows:
    """A labelled scene's clusters as rows of object-level models (:class:`ClusterRows`)."""
    from sattag.features.objects import cluster_class_shares
    from sattag.ingest import read_stack
    from sattag.labels import read_masks

    run, config = ctx.run, ctx.config
    stack = read_stack(run.stack(scene.id), config.ingest.gdal_threads)
    cluster_ids, table, rows = scene_objects(stack, config, FeatureSet.from_config(config.features))
    shares = cluster_class_shares(cluster_ids, len(table), read_masks(run.truth_masks(scene.id))[0])
    return ClusterRows(rows=rows, shares=shares, sizes=table.sizes)


def predict_task(scene: Scene, figures: bool, ctx: RunContext) -> ScenePrediction:
    """Cluster (segment), predict on the clusters, apply the rules, write masks and polygons (and the
    cluster figures when ``figures``); return polygons and pixel counts."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks
    from sattag.learn import load_models
    from sattag.features import cluster_features, pixel_features
    from sattag.predict import (cluster_probabilities, mean_by_cluster, pair_decider, predict_clusters,
                                sample_cluster_pixels, with_tuned_thresholds, write_prediction)
    from sattag.segment import cluster_pixels
    from sattag.vectorize import masks_to_polygons, read_geojson_polygons, write_geojson

    run, config, classes = ctx.run, ctx.config, ctx.classes
    geojson = run.polygons_geojson(scene.id)
    masks_path = run.masks(scene.id)
    if geojson.exists() and masks_path.exists():
        polygons = read_geojson_polygons(geojson, classes)
        masks = read_masks(masks_path)[0]
    else:
        stack = read_stack(run.stack(scene.id), config.ingest.gdal_threads)
        models = load_models(run.models, stack.bands, classes)
        if models.level == "cluster":
            cluster_ids, cluster_table, object_rows = scene_objects(stack, config, models.feature_set)
        else:
            cluster_ids, cluster_table = cluster_pixels(stack.data, config.cluster.tolerance,
                                                        config.cluster.min_size, config.cluster.tolerance_of)
        # The thresholds tuned when the models were trained, unless the configuration fixes them.
        config = dataclasses.replace(config, predict=with_tuned_thresholds(config.predict, models.tuned_thresholds(),
                                                                           classes))
        k = len(cluster_table)
        if models.level == "cluster":
            rows, owner = object_rows, np.arange(k)
            probs = np.asarray(models.predict_proba(rows), np.float32)
        elif config.predict.pixels_per_cluster > 0:
            index, owner = sample_cluster_pixels(cluster_ids, k, config.predict.pixels_per_cluster)
            rows = pixel_features(stack.data, stack.bands, models.feature_set, index)
            probs = mean_by_cluster(models.predict_proba(rows), owner, k)
        else:
            rows = cluster_features(stack.data, stack.bands, models.feature_set, cluster_ids, k,
                                    band_means=cluster_table.means)
            owner = np.arange(k)
            probs = cluster_probabilities(models, cluster_table, features=rows)
        result = predict_clusters(cluster_ids, cluster_table, models, config.predict, classes,
                                  probabilities=probs, pairs=tuple(models.pairs),
                                  decide_pair=pair_decider(models, rows, owner, k))
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
    polygons overlaid (read from the run folder, where :func:`labels_task` put them)."""
    from sattag.ingest import read_stack
    from sattag.labels import read_masks, read_truth_polygons
    from sattag.viz.explore import write_explore_figures

    run, classes = ctx.run, ctx.classes
    stack = read_stack(run.stack(scene.id))
    truth_masks = read_masks(run.truth_masks(scene.id))[0]
    polygons = read_truth_polygons(run.truth_polygons(scene.id), classes)
    written = write_explore_figures(run.figures / "explore", classes=classes, stack_data=stack.data,
                                    bands=stack.bands, scene_id=scene.id, masks=truth_masks, polygons=polygons,
                                    grid=stack.grid)
    return [str(p) for p in written.values()]

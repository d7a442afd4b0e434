"""A scene larger than ``[predict] tile_px`` predicted tile by tile, the tiles spread over the workers.

Three passes, each a set of small tasks; the client only ever holds the cluster pieces on seams
(ids, mean spectra, sizes, decisions: a few thousand rows per tile) and the polygons:

1. **predict tiles** (one task per tile): read the tile's window of the stack with the halo its
   features need (:func:`sattag.features.feature_halo`), cluster the tile's core with the scene's
   band spread (so every tile applies one rule), compute the features, predict, apply thresholds,
   pairwise models and rules. Written to ``tiles/<scene>/px<tile_px>/r<i>c<j>.npz``; returned: the ids along the
   core's four edges and the seam pieces' means, sizes and decisions.
2. **stitch** (client): pieces facing each other across a seam are joined when their means pass the
   growing rule (:func:`sattag.segment.stitch_groups`); each joined cluster gets one id (its smallest)
   and one decision, the one of the majority of its pixels (:func:`sattag.predict.group_flags`).
3. **paint tiles** (one task per tile): the tile's masks and scene-wide cluster ids with the joined
   decisions; its polygons, split into complete ones and seam pieces
   (:func:`sattag.vectorize.tile_pixel_polygons`); those no seam or other tile can come near are
   finished there (:func:`sattag.vectorize.settle_tile_polygons`). Written to
   ``tiles/<scene>/px<tile_px>/r<i>c<j>.paint.npz``.
4. **assemble parts** (one task per part of a scene, all parts of all scenes at once, so that one
   scene's assembly is spread over the workers; :class:`ScenePart`): the masks COG (and the pixel
   counts against truth) and the cluster-id COG, each written piece by piece; the probability and
   cluster tables streamed tile by tile, with the rules CSV; and per class, its polygons with the
   seam pieces unioned and finished (and their overlay with the truth), kept in
   ``tiles/<scene>/px<tile_px>/polygons-<class>.npz``. A class with many seam pieces has them
   unioned first in bands of tile rows, side by side (**join seams**, :func:`plan_seam_bands`). Then **assemble** (one small task per
   scene): the scene's GeoJSON from its classes' polygons, and its share of the scores.

Each tile file and each part's file is written atomically and read back by a rerun, so an
interrupted run resumes tile by tile and part by part. With ``[cluster] merge = "simultaneous"`` (the
default) what differs from predicting the scene whole is confined to clusters reaching more than the
margin past a tile's edge; with the seed's sequential
merge, clustering is not local and a tile's clusters differ from a whole-scene run's throughout.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sattag._files import atomic_path
from sattag.engine.contracts import RunContext, ScenePrediction
from sattag.errors import ConfigError
from sattag.scene import Scene

__all__ = ["ScenePart", "Tile", "TileSeams", "plan_parts", "plan_seam_bands", "plan_tiles", "predict_window", "tile_folder",
           "check_tile_size"]

_SIDES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Tile:
    """One tile of a scene: ``index`` (row, column) in the tile grid and its core window, ``rows`` and
    ``cols`` (reference px, end exclusive). ``id`` names it in progress, timings and failures."""

    scene: Scene
    index: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    scene_shape: tuple[int, int]

    @property
    def id(self) -> str:
        return f"{self.scene.id}/r{self.index[0]}c{self.index[1]}"

    @property
    def name(self) -> str:
        return f"r{self.index[0]}c{self.index[1]}"


@dataclass(frozen=True)
class TileSeams:
    """What pass 1 returns of a tile: ``n_clusters``; ``sides``: side -> the cluster ids (tile-local)
    along that edge of the core; ``ids`` int32 (M,): the tile-local ids of the clusters on any edge,
    with their ``means`` float32 (M, B), ``sizes`` int64 (M,), ``flags`` bool (M, C) and
    ``probabilities`` float32 (M, C)."""

    n_clusters: int
    sides: dict[str, np.ndarray]
    ids: np.ndarray
    means: np.ndarray
    sizes: np.ndarray
    flags: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class TileJoins:
    """What pass 3 needs of the stitch for one tile: its first scene-wide id (``offset``: tile-local id
    ``k`` is ``offset + k``), and for its pieces of joined clusters: tile-local ``ids``, the joined
    cluster's scene-wide ``group`` id and its ``flags`` bool (m, C)."""

    offset: int
    ids: np.ndarray
    group: np.ndarray
    flags: np.ndarray


@dataclass(frozen=True)
class JoinedClusters:
    """The clusters of a scene that seams cut, joined (one row each, for the scene's tables):
    scene-wide ``group`` ids, and the pieces' pixels summed (``sizes``), size-weighted means of the
    spectra (``means``) and probabilities, and the joined ``flags``."""

    group: np.ndarray
    sizes: np.ndarray
    means: np.ndarray
    probabilities: np.ndarray
    flags: np.ndarray


def plan_tiles(scene: Scene, height: int, width: int, tile_px: int) -> list[Tile]:
    """The tiles of an (H, W) scene, ``tile_px`` a side (the last row and column of tiles smaller),
    in raster order."""
    out = []
    for i, r0 in enumerate(range(0, height, tile_px)):
        for j, c0 in enumerate(range(0, width, tile_px)):
            out.append(Tile(scene, (i, j), (r0, min(height, r0 + tile_px)), (c0, min(width, c0 + tile_px)),
                            (height, width)))
    return out


def check_tile_size(tile_px: int, halo: int, where: str = "[predict] tile_px") -> None:
    """A one-line :class:`ConfigError` when tiles of ``tile_px`` are too small for the ``halo`` read
    around each (clustering margin and the features' context): below 4 halos a side, a task would
    read more of the scene around its tile than the tile itself."""
    if tile_px < 4 * halo:
        raise ConfigError(f"configuration: {where} = {tile_px} is too small for the {halo}-px halo read "
                          f"around each tile (clustering margin and feature context): use at least {4 * halo}")


def tile_folder(ctx: RunContext, scene_id: str) -> Path:
    """Where a scene's tile files are: ``<run>/tiles/<scene>/px<tile_px>`` (a run resumed with another
    tile size does not pick up tiles of the old one)."""
    return Path(ctx.run.root) / "tiles" / scene_id / f"px{ctx.config.predict.tile_px}"


def _save(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------------ the prediction core
def predict_window(data: np.ndarray, core: tuple[slice, slice], bands, models, config, classes,
                   spread: np.ndarray | None = None):
    """Cluster and predict the core of a window of a stack: the segment, features and predict stages
    on one window.

    ``data``: float32 (B, h, w), the window with the context the features need around ``core`` (the
    rows and columns within ``data`` to cluster and predict; the whole window for a scene predicted
    whole);
    ``models``: a ``sattag.learn.ModelSet``; ``config``: the run's configuration; ``spread``: the
    scene's band spread (``None``: measured on the core, as for a scene predicted whole).
    Returns the ``sattag.predict.PredictResult`` of the core's clusters: cluster ids (hc, wc), cluster
    table, probabilities, flags after thresholds, pairwise models and rules, masks, rule counts.
    """
    from sattag.features import cluster_features, feature_maps, pixel_features
    from sattag.features.objects import object_features
    from sattag.predict import (mean_by_cluster, pair_decider, predict_clusters, sample_cluster_pixels,
                                with_tuned_thresholds)
    from sattag.segment import cluster_pixels

    rs, cs = core
    whole = (rs.start in (0, None) and rs.stop in (None, data.shape[1]) and cs.start in (0, None)
             and cs.stop in (None, data.shape[2]))
    cc = config.cluster
    cluster_ids, table = cluster_pixels(data if whole else data[:, rs, cs], cc.tolerance, cc.min_size,
                                        cc.tolerance_of, spread=spread, merge=cc.merge)
    k = len(table)
    fs = models.feature_set
    if models.level == "cluster":
        maps = feature_maps(data, bands, fs) if whole else ((n, m[rs, cs]) for n, m in feature_maps(data, bands, fs))
        rows, _ = object_features(cluster_ids, k, maps, table.neighbour_ptr, table.neighbour_ids)
        owner = np.arange(k)
        probs = np.asarray(models.predict_proba(rows), np.float32)
    elif config.predict.pixels_per_cluster > 0:
        index, owner = sample_cluster_pixels(cluster_ids, k, config.predict.pixels_per_cluster)
        if not whole:  # core flat index -> window flat index
            wc = cluster_ids.shape[1]
            index = (index // wc + rs.start) * data.shape[2] + (index % wc + cs.start)
        rows = pixel_features(data, bands, fs, index)
        probs = mean_by_cluster(models.predict_proba(rows), owner, k)
    else:
        if whole:
            rows = cluster_features(data, bands, fs, cluster_ids, k, band_means=table.means)
        else:
            # The halo belongs to no core cluster: give it an extra id, then drop its row.
            ids = np.full(data.shape[1:], k, np.int32)
            ids[rs, cs] = cluster_ids
            rows = cluster_features(data, bands, fs, ids, k + 1)[:k]
        owner = np.arange(k)
        probs = np.asarray(models.predict_proba(rows), np.float32)
    predict_config = with_tuned_thresholds(config.predict, models.tuned_thresholds(), classes)
    result = predict_clusters(cluster_ids, table, models, predict_config, classes, probabilities=probs,
                              pairs=tuple(models.pairs), decide_pair=pair_decider(models, rows, owner, k))
    return result


_MODELS: dict = {}


def worker_models(ctx: RunContext, bands):
    """The run's models, loaded once per worker process (a scene or tile task would otherwise spend
    seconds reading them again); reloaded when the card changes."""
    from sattag.learn import load_models

    card = Path(ctx.run.models) / "card.json"
    key = (str(card), card.stat().st_mtime_ns if card.exists() else 0, tuple(bands), tuple(ctx.classes.ids))
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_models(ctx.run.models, bands, ctx.classes)
    return _MODELS[key]


# ----------------------------------------------------------------------------------------- tasks
def scene_spread_task(scene: Scene, ctx: RunContext) -> np.ndarray | None:
    """The band spread of a scene to be tiled (every tile clusters with it), from a strided read of
    its stack: the same values :func:`sattag.segment.band_spread` gives on the whole stack. None when
    the tolerance is a share of the bands' range (no spread needed)."""
    from sattag.ingest import read_band_percentiles, read_stack_metadata, read_stack_sample
    from sattag.segment import band_spread, spread_from_percentiles, spread_step

    if ctx.config.cluster.tolerance_of != "spread":
        return None
    path = ctx.run.stack(scene.id)
    recorded = read_band_percentiles(path)
    if recorded is not None:  # measured when the stack was built, on the same pixels
        return spread_from_percentiles(*recorded)
    grid = read_stack_metadata(path).grid
    return band_spread(read_stack_sample(path, spread_step(grid.height, grid.width)), step=1)


def _seams(z: dict) -> TileSeams:
    ids = z["cluster_ids"]
    sides = {"top": ids[0].copy(), "bottom": ids[-1].copy(), "left": ids[:, 0].copy(), "right": ids[:, -1].copy()}
    edge = np.unique(np.concatenate(list(sides.values())))
    return TileSeams(n_clusters=int(z["sizes"].shape[0]), sides=sides, ids=edge.astype(np.int32),
                     means=z["means"][edge], sizes=z["sizes"][edge], flags=z["flags"][edge],
                     probabilities=z["probabilities"][edge])


#: Pixels of the scene clustered around a tile's core beyond it. With the local small-cluster merge
#: (``[cluster] merge = "simultaneous"``) a change moves clusters ~50 px away at most (README), so a
#: tile clustered with this margin has, in its core, the clusters of the whole scene, and sees every
#: cluster that crosses its edge whole, unless that cluster reaches further than the margin.
CLUSTER_MARGIN_PX = 64


def _tile_window(tile: Tile, stack_path: Path, halo: int, ctx: RunContext):
    """Read what a tile task works on: ``(data, (q0, q1, p0, p1), core)``: the stack's window float32
    (B, h, w) covering the tile, :data:`CLUSTER_MARGIN_PX` around it (the clustered region, scene rows
    ``q0:q1``, columns ``p0:p1``) and ``halo`` around that, clipped to the scene; ``core``: the
    clustered region's slices within ``data``."""
    from sattag.ingest import read_stack_window

    (r0, r1), (c0, c1), (H, W) = tile.rows, tile.cols, tile.scene_shape
    m = CLUSTER_MARGIN_PX
    q0, q1, p0, p1 = max(0, r0 - m), min(H, r1 + m), max(0, c0 - m), min(W, c1 + m)
    R0, R1, C0, C1 = max(0, q0 - halo), min(H, q1 + halo), max(0, p0 - halo), min(W, p1 + halo)
    data = read_stack_window(stack_path, (R0, R1), (C0, C1), ctx.config.ingest.gdal_threads)
    return data, (q0, q1, p0, p1), (slice(q0 - R0, q1 - R0), slice(p0 - C0, p1 - C0))


def tiled_cluster_rows(scene: Scene, ctx: RunContext, tile_px: int, lights: Sequence = ()):
    """A labelled scene larger than ``tile_px`` as rows of object-level models, one tile at a time:
    ``(copies, shares (K, C), sizes (K,), centres (K, 2))``, ``copies`` a list of float32 (K, F) rows,
    the scene as recorded first, then under each of ``lights`` (:class:`sattag.learn.Relight`), for
    :func:`sattag.engine.tasks.cluster_rows_task` to join.

    Each tile is clustered with :data:`CLUSTER_MARGIN_PX` around it, like a tile being predicted, and
    keeps the clusters whose first pixel (raster order) lies in it: a cluster crossing a tile's edge
    is one row, from the tile that sees it whole (with the local merge). Memory follows the tile.
    """
    from sattag.engine.tasks import bbox_centres, relit_object_rows
    from sattag.features import FeatureSet, feature_halo
    from sattag.features.objects import cluster_class_shares
    from sattag.ingest import read_stack_metadata
    from sattag.labels import read_masks_window
    from sattag.segment import cluster_pixels

    config, run = ctx.config, ctx.run
    stack_path = run.stack(scene.id)
    head = read_stack_metadata(stack_path)
    fs = FeatureSet.from_config(config.features)
    halo = feature_halo(fs)
    spread = scene_spread_task(scene, ctx)
    cc = config.cluster

    every = [None, *lights]
    out_rows, out_shares, out_sizes, out_centres = [[] for _ in every], [], [], []
    for tile in plan_tiles(scene, head.grid.height, head.grid.width, tile_px):
        data, (q0, q1, p0, p1), (rs, cs) = _tile_window(tile, stack_path, halo, ctx)
        ids, table = cluster_pixels(data[:, rs, cs], cc.tolerance, cc.min_size, cc.tolerance_of, spread=spread,
                                    merge=cc.merge)
        # Ids run in raster order of first pixel: np.unique's first indices are those pixels.
        _, first = np.unique(ids.ravel(), return_index=True)
        fr, fc = first // ids.shape[1] + q0, first % ids.shape[1] + p0
        own = (fr >= tile.rows[0]) & (fr < tile.rows[1]) & (fc >= tile.cols[0]) & (fc < tile.cols[1])
        for i, rows in enumerate(relit_object_rows(ids, table, data, head.bands, fs, every, (rs, cs))):
            out_rows[i].append(rows[own])
        del data
        shares = cluster_class_shares(ids, len(table), read_masks_window(run.truth_masks(scene.id), (q0, q1), (p0, p1)))
        out_shares.append(shares[own])
        out_sizes.append(table.sizes[own])
        out_centres.append(bbox_centres(table.bbox[own], (q0, p0)))
    return ([np.concatenate(copy) for copy in out_rows], np.concatenate(out_shares), np.concatenate(out_sizes),
            np.concatenate(out_centres))


def predict_tile_task(tile: Tile, spread: np.ndarray | None, ctx: RunContext) -> TileSeams:
    """Pass 1 for one tile (module docstring); a tile whose file exists is read back, not redone.

    The tile is clustered and predicted with :data:`CLUSTER_MARGIN_PX` of the scene around its core
    (and the features' halo around that), then cut to its core: a cluster crossing the tile's edge is
    decided from the whole of it, as in a scene predicted whole.
    """
    from sattag.features import feature_halo
    from sattag.ingest import read_stack_metadata

    path = tile_folder(ctx, tile.scene.id) / f"{tile.name}.npz"
    if not path.exists():
        stack_path = ctx.run.stack(tile.scene.id)
        bands = read_stack_metadata(stack_path).bands
        models = worker_models(ctx, bands)
        halo = feature_halo(models.feature_set)
        (r0, r1), (c0, c1) = tile.rows, tile.cols
        data, (q0, q1, p0, p1), core = _tile_window(tile, stack_path, halo, ctx)
        result = predict_window(data, core, bands, models, ctx.config, ctx.classes, spread)
        del data
        # Cut to the core; the clusters with a pixel there, renumbered 0..k-1 in order of id.
        ids = result.cluster_ids[r0 - q0:r1 - q0, c0 - p0:c1 - p0]
        present = np.flatnonzero(np.bincount(ids.ravel(), minlength=len(result.cluster_table)))
        new = np.full(len(result.cluster_table), -1, np.int64)
        new[present] = np.arange(present.size)
        ids = new[ids].astype(np.int32)
        bbox = result.cluster_table.bbox[present].astype(np.int64)
        # The box within the clustered window, clipped to the core, in core px.
        bbox = np.column_stack([np.clip(bbox[:, 0] - (r0 - q0), 0, r1 - r0), np.clip(bbox[:, 1] - (c0 - p0), 0, c1 - c0),
                                np.clip(bbox[:, 2] - (r0 - q0), 0, r1 - r0), np.clip(bbox[:, 3] - (c0 - p0), 0, c1 - c0)])
        _save(path, cluster_ids=ids, probabilities=result.probabilities[present].astype(np.float32),
              flags=result.flags[present].astype(bool), sizes=np.bincount(ids.ravel(), minlength=present.size),
              means=result.cluster_table.means[present].astype(np.float32), bbox=bbox.astype(np.int32),
              rules=np.frombuffer(result.rule_counts.to_csv(index=False).encode(), np.uint8))
    return _seams(_load(path))


def stitch(tiles: list[Tile], seams: dict[str, TileSeams], tolerance: np.ndarray
           ) -> tuple[dict[str, TileJoins], JoinedClusters]:
    """Pass 2 (client): join the pieces of clusters across the seams of one scene's ``tiles``.

    ``seams``: tile id -> :class:`TileSeams`; ``tolerance`` float (B,) in band units
    (:func:`sattag.segment.tolerance_units`). Returns each tile's :class:`TileJoins` and the joined
    clusters' merged rows.
    """
    from sattag.predict import group_flags
    from sattag.segment import seam_pairs, stitch_groups

    offsets, total = {}, 0
    for t in tiles:
        offsets[t.id] = total
        total += seams[t.id].n_clusters
    by_index = {t.index: t for t in tiles}
    pairs = []
    for t in tiles:
        s, off = seams[t.id], offsets[t.id]
        right = by_index.get((t.index[0], t.index[1] + 1))
        if right is not None:
            pairs.append(seam_pairs(s.sides["right"].astype(np.int64) + off,
                                    seams[right.id].sides["left"].astype(np.int64) + offsets[right.id]))
        below = by_index.get((t.index[0] + 1, t.index[1]))
        if below is not None:
            pairs.append(seam_pairs(s.sides["bottom"].astype(np.int64) + off,
                                    seams[below.id].sides["top"].astype(np.int64) + offsets[below.id]))
    ids = np.concatenate([seams[t.id].ids.astype(np.int64) + offsets[t.id] for t in tiles])
    means = np.concatenate([seams[t.id].means for t in tiles])
    sizes = np.concatenate([seams[t.id].sizes for t in tiles])
    flags = np.concatenate([seams[t.id].flags for t in tiles])
    probs = np.concatenate([seams[t.id].probabilities for t in tiles])
    pairs = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
    group = stitch_groups(pairs, ids, means, tolerance)
    joined = group_flags(group, sizes, flags)
    # Only pieces of clusters that were actually joined change.
    uniq, inv, count = np.unique(group, return_inverse=True, return_counts=True)
    multi = count[inv] > 1
    joins = {}
    start = 0
    for t in tiles:
        m = seams[t.id].ids.size
        sel = np.flatnonzero(multi[start:start + m]) + start
        joins[t.id] = TileJoins(offset=offsets[t.id], ids=(ids[sel] - offsets[t.id]).astype(np.int32),
                                group=group[sel], flags=joined[sel])
        start += m
    # Merged rows of the joined clusters (size-weighted means; their bounding boxes come from the tile
    # files, in assemble_task).
    sel = np.flatnonzero(multi)
    g, gi = np.unique(group[sel], return_inverse=True)
    w = sizes[sel].astype(np.float64)
    gsize = np.bincount(gi, weights=w)

    def wmean(values):
        return np.stack([np.bincount(gi, weights=w * values[sel, j], minlength=g.size) / gsize
                         for j in range(values.shape[1])], axis=1).astype(np.float32) if values.shape[1] else \
            np.zeros((g.size, 0), np.float32)

    first = np.zeros(g.size, np.int64)
    first[gi[::-1]] = sel[::-1]
    merged = JoinedClusters(group=g, sizes=gsize.astype(np.int64), means=wmean(means), probabilities=wmean(probs),
                            flags=joined[first])
    return joins, merged


def paint_tile_task(tile: Tile, joins: TileJoins, ctx: RunContext) -> np.ndarray:
    """Pass 3 for one tile (module docstring): its masks, scene-wide cluster ids and polygons with the
    joined decisions. Returns the bytes of the tile's polygons (WKB) per class, int64 (2, C): all of
    them (what each class's ``polygons`` part will have to read, :func:`plan_parts`) and its seam
    pieces (what will have to be unioned, :func:`plan_seam_bands`)."""
    from sattag.predict import class_masks
    from sattag.vectorize import settle_tile_polygons, tile_pixel_polygons

    folder = tile_folder(ctx, tile.scene.id)
    out = folder / f"{tile.name}.paint.npz"
    if out.exists():
        p = _paint(folder, tile, "wkb_ends", "wkb_class", "wkb_kind")
        return _class_bytes(p["wkb_ends"], p["wkb_class"], p["wkb_kind"], len(ctx.classes))
    z = _load(folder / f"{tile.name}.npz")
    flags = z["flags"].copy()
    flags[joins.ids] = joins.flags
    local = z["cluster_ids"]
    scene_ids = np.arange(flags.shape[0], dtype=np.int64) + joins.offset
    scene_ids[joins.ids] = joins.group
    masks = class_masks(local, flags)
    H, W = tile.scene_shape
    geoms, cls, kind = [], [], []
    for j in range(masks.shape[0]):
        whole, cut = tile_pixel_polygons(masks[j], tile.rows[0], tile.cols[0], H, W)
        # Most polygons are finished here, in parallel; assemble joins the seams and finishes the rest.
        settled, rest = settle_tile_polygons(whole, cut, tile.rows, tile.cols, H, W, ctx.config.vectorize)
        for code, part in enumerate((settled, rest, cut)):
            geoms.extend(part)
            cls.extend([j] * len(part))
            kind.extend([code] * len(part))
    polygons = _wkb_arrays("wkb", np.array(geoms, dtype=object))
    cls, kind = np.array(cls, np.int16), np.array(kind, np.int8)
    _save(out, masks=masks, cluster_ids=scene_ids[local].astype(np.int32), flags=flags,
          scene_ids=scene_ids, **polygons, wkb_class=cls, wkb_kind=kind)
    return _class_bytes(polygons["wkb_ends"], cls, kind, len(ctx.classes))


#: ``wkb_kind`` of a seam piece in a paint file (0: settled in the tile, 1: the tile's other complete
#: polygons, 2: pieces cut by a seam).
_SEAM = 2


def _class_bytes(ends: np.ndarray, cls: np.ndarray, kind: np.ndarray, n_classes: int) -> np.ndarray:
    """Bytes of WKB per class of polygons ending at ``ends`` (cumulative) of classes ``cls`` and kinds
    ``kind``: int64 (2, C), all of them and the seam pieces."""
    lengths = np.diff(np.concatenate([[0], ends])).astype(np.int64)
    cls = cls.astype(np.int64)
    seam = kind == _SEAM
    return np.stack([np.bincount(cls, weights=lengths, minlength=n_classes),
                     np.bincount(cls[seam], weights=lengths[seam], minlength=n_classes)]).astype(np.int64)


@dataclass(frozen=True)
class ScenePart:
    """One part of a tiled scene's assembly (pass 4), a task of its own so that the parts of a scene
    run side by side on all workers: ``kind`` is "tables" (probability and cluster tables, rules
    CSV), "clusters" (the cluster-id COG), "masks" (the class-mask COG and the pixel counts against
    truth) or "polygons" (the polygons of the class ``class_id``: seam pieces unioned, finished,
    scored); or, before those, "seams" (the seam pieces of the class ``class_id`` in the tiles of the
    band of pixel ``rows``, unioned: :func:`join_seams_task`). A "polygons" part's ``bands`` are the
    rows of its class's "seams" parts (none: it unions its seam pieces itself). ``id`` names it in
    progress, timings and failures."""

    scene: Scene
    kind: str
    class_id: int | None = None
    rows: tuple[int, int] | None = None
    bands: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        if self.kind == "seams":
            return f"seams {self.class_id} rows {self.rows[0]}-{self.rows[1]}"
        return f"polygons {self.class_id}" if self.kind == "polygons" else self.kind

    @property
    def id(self) -> str:
        return f"{self.scene.id}/{self.name}"


def plan_parts(scene: Scene, classes, polygon_bytes: np.ndarray | None = None,
               bands: dict[int, tuple[tuple[int, int], ...]] | None = None) -> list[ScenePart]:
    """The parts of a tiled scene's assembly, in the order to start them: one part per class of
    ``classes`` for its polygons, the masks, the cluster image and the tables.

    ``polygon_bytes``: int64 (C,), the WKB bytes of each class's polygons over the scene's tiles
    (:func:`paint_tile_task`), or None. The class with the most goes first, then the two images, the
    tables and the other classes by size: a dense class's seam unions are the longest part (12 s of
    26 on a 6000-px scene), and started last they would leave the other workers idle at the end.
    ``bands``: class id -> the rows of its "seams" parts (:func:`plan_seam_bands`), done before.
    """
    order = list(range(len(classes))) if polygon_bytes is None else \
        list(np.argsort(-np.asarray(polygon_bytes), kind="stable"))
    bands = bands or {}
    polygons = [ScenePart(scene, "polygons", classes.ids[j], bands=bands.get(classes.ids[j], ())) for j in order]
    return [*polygons[:1], ScenePart(scene, "masks"), ScenePart(scene, "clusters"), ScenePart(scene, "tables"),
            *polygons[1:]]


#: A class whose seam pieces over a scene come to more WKB than this has them unioned in bands of
#: tile rows, one "seams" part each, side by side on the workers, before its polygons part joins the
#: bands (:func:`sattag.vectorize.join_band_seams`). A 20 000-px scene's crops: 43 s to union in
#: one task, 2 bands at this size (the scale benchmark); a 10 000-px scene's: 25 MB, 13 s, left whole (the join across bands costs a
#: few seconds more work). Set by the data, not by the workers: a scene's polygons do not depend on
#: how many workers there are.
SEAM_BAND_BYTES = 48 << 20


def plan_seam_bands(tiles: Sequence[Tile], classes, seam_bytes: dict[str, np.ndarray],
                    band_bytes: int | None = None) -> dict[int, tuple[tuple[int, int], ...]]:
    """class id -> the pixel rows of its bands, for the classes of ``classes`` whose seam pieces over
    ``tiles`` (one scene's) exceed ``band_bytes``: ``ceil(bytes / band_bytes)`` bands (at most one per
    row of tiles) of whole rows of tiles, cut where the class's seam bytes are shared about evenly.
    ``seam_bytes``: tile id -> int64 (C,), the tile's seam-piece bytes per class (:func:`paint_tile_task`);
    ``band_bytes``: default :data:`SEAM_BAND_BYTES`."""
    band_bytes = SEAM_BAND_BYTES if band_bytes is None else band_bytes
    starts = sorted({t.rows for t in tiles})
    if len(starts) < 2:
        return {}
    per_row = np.array([sum(np.asarray(seam_bytes[t.id], np.int64) for t in tiles if t.rows == r) for r in starts])
    out = {}
    for j, cid in enumerate(classes.ids):
        col = per_row[:, j].astype(np.float64)
        k = min(len(starts), int(np.ceil(col.sum() / band_bytes)))
        if k < 2:
            continue
        # cut before the row of tiles where the running total passes each k-th of the whole
        share = np.cumsum(col) / col.sum()
        cuts = sorted({int(np.searchsorted(share, q, side="left")) + 1 for q in np.arange(1, k) / k})
        cuts = [c for c in cuts if 0 < c < len(starts)]
        if cuts:  # (one band would only add the join to the union)
            edges = [0, *cuts, len(starts)]
            out[cid] = tuple((starts[a][0], starts[b - 1][1]) for a, b in zip(edges, edges[1:]))
    return out


def seams_piece(ctx: RunContext, scene_id: str, class_id: int, rows: tuple[int, int]) -> Path:
    """Where a "seams" part keeps its band's unioned seam pieces: ``<tile folder>/seams-<class>-rows<r0>-<r1>.npz``."""
    return tile_folder(ctx, scene_id) / f"seams-{class_id}-rows{rows[0]}-{rows[1]}.npz"


def _wkb_arrays(prefix: str, geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Geometries as one WKB byte array and the cumulative ends of each: ``{prefix, prefix_ends}``."""
    import shapely

    blobs = shapely.to_wkb(geoms) if len(geoms) else []
    return {prefix: np.frombuffer(b"".join(blobs), np.uint8),
            f"{prefix}_ends": np.cumsum([len(b) for b in blobs]).astype(np.int64)}


def _from_wkb(z: dict, prefix: str, sel: np.ndarray | None = None) -> np.ndarray:
    """The geometries :func:`_wkb_arrays` kept under ``prefix`` (only those at indices ``sel``: the
    others are not decoded)."""
    import shapely

    ends = np.asarray(z[f"{prefix}_ends"], np.int64)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    sel = np.arange(len(ends)) if sel is None else np.asarray(sel)
    if not len(sel):
        return np.empty(0, dtype=object)
    blob = np.asarray(z[prefix]).tobytes()
    return shapely.from_wkb(np.array([blob[starts[i]:ends[i]] for i in sel], dtype=object))


def join_seams_task(part: ScenePart, ctx: RunContext) -> None:
    """A "seams" part (:class:`ScenePart`): the seam pieces of its class in the tiles of its band of
    rows, unioned (:func:`sattag.vectorize.join_band_seams`), kept in :func:`seams_piece` for the
    class's polygons part. A part whose file exists is not redone."""
    from sattag.vectorize import join_band_seams

    out = seams_piece(ctx, part.scene.id, part.class_id, part.rows)
    if out.exists():
        return None
    grid, _, tiles, folder = _tiles_of(part.scene, ctx)
    (r0, r1), j = part.rows, ctx.classes.index(part.class_id)
    cut = [_tile_polygons(folder, t, j, (_SEAM,))[0] for t in tiles if r0 <= t.rows[0] and t.rows[1] <= r1]
    closed, open_ = join_band_seams(cut, part.rows, grid.height)
    _save(out, **_wkb_arrays("closed", closed), **_wkb_arrays("open", open_))
    return None


def _tile_polygons(folder: Path, tile: Tile, j: int, kinds: Sequence[int] = (0, 1, _SEAM)) -> list[np.ndarray]:
    """A tile's polygons of the class at index ``j``, one array per kind of ``kinds`` (0: settled,
    1: the tile's other complete polygons, 2: seam pieces); only those are decoded."""
    p = _paint(folder, tile, "wkb", "wkb_ends", "wkb_class", "wkb_kind")
    sel = np.flatnonzero((p["wkb_class"] == j) & np.isin(p["wkb_kind"], kinds))
    geoms, kind = _from_wkb(p, "wkb", sel), p["wkb_kind"][sel]
    return [geoms[kind == code] for code in kinds]


def _tiles_of(scene: Scene, ctx: RunContext):
    """``(grid, bands, tiles, folder)`` of a tiled scene: its stack's grid and band names, its tiles
    and their folder."""
    from sattag.ingest import read_stack_metadata

    stack = read_stack_metadata(ctx.run.stack(scene.id))
    tiles = plan_tiles(scene, stack.grid.height, stack.grid.width, ctx.config.predict.tile_px)
    return stack.grid, stack.bands, tiles, tile_folder(ctx, scene.id)


def _paint(folder: Path, tile: Tile, *keys: str) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of a tile's paint file (only those are read: an npz member is read on access)."""
    with np.load(folder / f"{tile.name}.paint.npz", allow_pickle=False) as z:
        return {k: z[k] for k in keys}


def _truth(ctx: RunContext, scene_id: str) -> Path | None:
    """The scene's truth masks when it has truth (masks and polygons), else None: what it is scored on."""
    run = ctx.run
    masks, polygons = run.truth_masks(scene_id), run.truth_polygons(scene_id)
    return masks if masks.exists() and polygons.exists() else None


def polygons_piece(ctx: RunContext, scene_id: str, class_id: int) -> Path:
    """Where a ``polygons`` part keeps one class's finished polygons (and its polygon counts against
    truth) for the scene's final ``assemble``: ``<tile folder>/polygons-<class id>.npz``."""
    return tile_folder(ctx, scene_id) / f"polygons-{class_id}.npz"


def assemble_part_task(part: ScenePart, merged: JoinedClusters | None, ctx: RunContext):
    """Pass 4, one part of a scene (:class:`ScenePart`), from its tile files; a part whose file exists
    is not redone. ``merged``: the scene's joined clusters (the ``tables`` part's rows; None for the
    others). Returns the masks part's pixel counts against truth (two int64 (C,) arrays, None without
    truth); None for the other parts."""
    if part.kind == "tables":
        return _tables_part(part.scene, merged, ctx)
    if part.kind == "clusters":
        return _clusters_part(part.scene, ctx)
    if part.kind == "masks":
        return _masks_part(part.scene, ctx)
    if part.kind == "polygons":
        return _polygons_part(part.scene, part.class_id, ctx, part.bands)
    raise ValueError(f"no scene part {part.kind!r}")


def _tables_part(scene: Scene, merged: JoinedClusters, ctx: RunContext) -> None:
    """The probability and cluster tables (parquet, streamed tile by tile, then one row per joined
    cluster) and the rules CSV (the tiles' counts summed)."""
    import pandas as pd

    from sattag.predict.files import probability_frame, write_rules
    from sattag.segment import ClusterTable

    run, classes = ctx.run, ctx.classes
    paths = (run.probabilities(scene.id), run.cluster_table(scene.id), run.rules_csv(scene.id))
    if all(p.exists() for p in paths):
        return None
    _, bands, tiles, folder = _tiles_of(scene, ctx)
    prob_writer = table_writer = None
    rules = None
    bbox_lo = np.full((merged.group.size, 2), np.iinfo(np.int32).max, np.int64)
    bbox_hi = np.full((merged.group.size, 2), -1, np.int64)
    gpos = {g: i for i, g in enumerate(merged.group.tolist())}
    with atomic_path(paths[0]) as ptmp, atomic_path(paths[1]) as ctmp:
        for t in tiles:
            z, p = _load(folder / f"{t.name}.npz"), _paint(folder, t, "scene_ids", "flags")
            ids = p["scene_ids"]
            keep = ~np.isin(ids, merged.group)
            bbox = z["bbox"].astype(np.int64) + np.array([t.rows[0], t.cols[0], t.rows[0], t.cols[0]])
            for k in np.flatnonzero(~keep):
                i = gpos[int(ids[k])]
                bbox_lo[i] = np.minimum(bbox_lo[i], bbox[k, :2])
                bbox_hi[i] = np.maximum(bbox_hi[i], bbox[k, 2:])
            table = ClusterTable(ids=ids[keep].astype(np.int32), sizes=z["sizes"][keep], means=z["means"][keep],
                                 bbox=bbox[keep].astype(np.int32), neighbour_ptr=np.zeros(1, np.int64),
                                 neighbour_ids=np.zeros(0, np.int32))
            prob_writer = _write_rows(prob_writer, ptmp, probability_frame(table, z["probabilities"][keep], classes,
                                                                           p["flags"][keep]))
            table_writer = _write_rows(table_writer, ctmp, table.to_frame(bands))
            r = pd.read_csv(io.BytesIO(z["rules"].tobytes()), keep_default_na=False)
            if rules is None:
                rules = r
            else:
                rules[["clusters", "pixels"]] += r[["clusters", "pixels"]].to_numpy()
        if merged.group.size:
            bbox = np.concatenate([bbox_lo, bbox_hi], axis=1).astype(np.int32)
            table = ClusterTable(ids=merged.group.astype(np.int32), sizes=merged.sizes, means=merged.means,
                                 bbox=bbox, neighbour_ptr=np.zeros(1, np.int64), neighbour_ids=np.zeros(0, np.int32))
            prob_writer = _write_rows(prob_writer, ptmp, probability_frame(table, merged.probabilities, classes,
                                                                           merged.flags))
            table_writer = _write_rows(table_writer, ctmp, table.to_frame(bands))
        prob_writer.close()
        table_writer.close()
    write_rules(paths[2], rules)
    return None


def _clusters_part(scene: Scene, ctx: RunContext) -> None:
    """The scene-wide cluster ids as one int32 COG, written tile by tile."""
    from sattag._files import write_cog_windows

    path = ctx.run.clusters(scene.id)
    if path.exists():
        return None
    grid, _, tiles, folder = _tiles_of(scene, ctx)
    write_cog_windows(path, ((t.rows[0], t.cols[0], _paint(folder, t, "cluster_ids")["cluster_ids"]) for t in tiles),
                      count=1, height=grid.height, width=grid.width, dtype="int32", transform=grid.transform,
                      crs=grid.crs, compress="deflate", predictor=True)
    return None


def _masks_part(scene: Scene, ctx: RunContext) -> tuple[np.ndarray, np.ndarray] | None:
    """The class masks as one COG, written tile by tile, and their per-class pixel (intersections,
    unions) with the truth masks, tile by tile (None without truth). A rerun that finds the COG only
    counts, from the same tile masks."""
    from sattag.evaluate import pixel_counts
    from sattag.labels import read_masks_window, write_masks_windows

    path = ctx.run.masks(scene.id)
    truth = _truth(ctx, scene.id)
    if path.exists() and truth is None:
        return None
    grid, _, tiles, folder = _tiles_of(scene, ctx)
    inter = np.zeros(len(ctx.classes), np.int64)
    union = np.zeros(len(ctx.classes), np.int64)

    def pieces():
        for t in tiles:
            masks = _paint(folder, t, "masks")["masks"]
            if truth is not None:
                i, u = pixel_counts(masks, read_masks_window(truth, t.rows, t.cols))
                inter[:] += i
                union[:] += u
            yield t.rows[0], t.cols[0], masks

    if path.exists():
        for _ in pieces():
            pass
    else:
        write_masks_windows(path, pieces(), grid, ctx.classes)
    return (inter, union) if truth is not None else None


def _polygons_part(scene: Scene, class_id: int, ctx: RunContext, bands: Sequence[tuple[int, int]] = ()) -> None:
    """One class's polygons: those finished in the tiles, and the others finished here with the seam
    pieces unioned (:func:`sattag.vectorize.join_seams`, :func:`sattag.vectorize.finish_polygons`);
    with truth, their (intersection, union) areas with the class's truth polygons. Kept in
    :func:`polygons_piece` (the MultiPolygon as WKB, scene coordinates) for the final ``assemble``.
    ``bands``: the rows of the class's "seams" parts, done before: their unions are joined across the
    bands (:func:`sattag.vectorize.join_bands`) instead of the tiles' seam pieces being unioned here."""
    from sattag.evaluate import polygon_counts
    from sattag.labels import read_truth_polygons
    from sattag.vectorize import finish_polygons, join_bands, join_seams

    out = polygons_piece(ctx, scene.id, class_id)
    if out.exists():
        return None
    classes = ctx.classes
    j = classes.index(class_id)
    grid, _, tiles, folder = _tiles_of(scene, ctx)
    settled, rest, cut = [], [], []
    for t in tiles:
        for bucket, geoms in zip((settled, rest, cut), _tile_polygons(folder, t, j)):
            bucket.append(geoms)
    if bands:
        opened = []
        for rows in bands:
            z = _load(seams_piece(ctx, scene.id, class_id, rows))
            rest.append(_from_wkb(z, "closed"))
            opened.append(_from_wkb(z, "open"))
        rest.append(join_bands(opened))
        cut = []
    geom = finish_polygons(join_seams(rest, cut), grid.transform, ctx.config.vectorize, settled=settled)
    del settled, rest, cut
    arrays = {"wkb": np.frombuffer(geom.wkb, np.uint8)}
    if _truth(ctx, scene.id) is not None:
        truth = read_truth_polygons(ctx.run.truth_polygons(scene.id), classes)
        inter, union = polygon_counts({class_id: geom}, {class_id: truth[class_id]}, classes)
        arrays.update(inter=inter[j], union=union[j])
    _save(out, **arrays)
    return None


class _ClassPolygons(dict):
    """class id -> WKB bytes that hands out geometries (``get``), decoding one class at a time: a
    scene's GeoJSON is written class by class, so only one class is ever decoded at once."""

    def get(self, class_id, default=None):
        import shapely

        wkb = super().get(class_id)
        return default if wkb is None else shapely.from_wkb(wkb)


def assemble_task(scene: Scene, pixel: tuple[np.ndarray, np.ndarray] | None, ctx: RunContext) -> ScenePrediction:
    """Pass 4's end for one scene, once its parts (:func:`assemble_part_task`) are done: its GeoJSON from
    the classes' polygons, one class decoded at a time, and its scores gathered. ``pixel``: the masks
    part's pixel counts (None without truth). Returns its :class:`ScenePrediction`."""
    from sattag.vectorize import write_geojson

    run, classes = ctx.run, ctx.classes
    pieces = {cid: _load(polygons_piece(ctx, scene.id, cid)) for cid in classes.ids}
    polygons = _ClassPolygons({cid: p["wkb"].tobytes() for cid, p in pieces.items()})
    geojson = run.polygons_geojson(scene.id)
    if not geojson.exists():
        from sattag.ingest import read_stack_metadata

        write_geojson(geojson, scene.id, polygons, classes, crs=read_stack_metadata(run.stack(scene.id)).grid.crs)
    polygon = None
    if pixel is not None:
        if all("inter" in p for p in pieces.values()):
            polygon = (np.array([float(pieces[c]["inter"]) for c in classes.ids]),
                       np.array([float(pieces[c]["union"]) for c in classes.ids]))
        else:  # pieces kept from before the scene had truth: the overlay here, as a whole
            from sattag.evaluate import polygon_counts
            from sattag.labels import read_truth_polygons

            polygon = polygon_counts({c: polygons.get(c) for c in classes.ids},
                                     read_truth_polygons(run.truth_polygons(scene.id), classes), classes)
    return ScenePrediction(polygons=dict(polygons), pixel=pixel, polygon=polygon)


def _write_rows(writer, path: Path, frame):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer

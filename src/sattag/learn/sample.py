"""Balanced pixel samples per class: ``n_in`` pixels inside the class, ``n_out`` outside it.

The work is split so that it runs scene by scene (the engine may put each scene on a cluster
worker) and still gives one sample drawn at random across all training scenes:

1. :func:`class_pixel_counts` on each scene's masks -> how many pixels are in / out of each class;
2. :func:`allocate_quotas` over all scenes' counts -> how many pixels each scene gives each class,
   proportional to what it has, summing exactly to ``min(asked, available)``;
3. :func:`sample_scene` on each scene -> the drawn rows (pixel spectra) and labels;
4. :func:`concat_samples` -> one ``(X, y)`` per class.

Pixels are addressed by flat index into the (H, W) grid; only the drawn pixels' spectra are copied,
never a (H*W, bands) table of a whole scene.
"""
from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

from sattag.config import SampleConfig
from sattag.features import FeatureSet, pixel_features

#: One class's sample: X float32 (n, bands) pixel spectra, y uint8 (n,) 1 = in the class, 0 = not.
Sample = tuple[np.ndarray, np.ndarray]


def class_pixel_counts(masks: np.ndarray) -> np.ndarray:
    """Pixels inside and outside each class.

    Parameters
    ----------
    masks:
        uint8/bool (C, H, W); non-zero = the pixel belongs to class ``i``.

    Returns
    -------
    int64 (C, 2): column 0 = pixels in the class, column 1 = pixels not in it.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (classes, H, W), got shape {masks.shape}")
    n_px = masks.shape[1] * masks.shape[2]
    inside = np.array([np.count_nonzero(m) for m in masks], dtype=np.int64)
    return np.stack([inside, n_px - inside], axis=1)


def _split_total(available: np.ndarray, asked: int) -> np.ndarray:
    """Split ``min(asked, available.sum())`` over entries proportionally to ``available``.

    Largest-remainder rounding: floors first, then one more to the largest fractional parts (ties to
    the earlier entry), so the result sums exactly to the total and never exceeds ``available``
    (an entry with a non-zero fractional part has ``floor < available`` whenever total < sum).
    """
    available = available.astype(np.int64)
    total_available = int(available.sum())
    take = min(int(asked), total_available)
    if take <= 0:
        return np.zeros_like(available)
    if take == total_available:
        return available.copy()
    # Python ints: exact, no overflow for any realistic pixel count.
    products = [take * int(a) for a in available]
    base = np.array([p // total_available for p in products], dtype=np.int64)
    frac = np.array([p % total_available for p in products], dtype=np.int64)
    rest = take - int(base.sum())
    order = np.argsort(-frac, kind="stable")
    base[order[:rest]] += 1
    return base


def allocate_quotas(counts_per_scene: Mapping[str, np.ndarray], config: SampleConfig) -> dict[str, np.ndarray]:
    """How many in-class and out-of-class pixels each scene gives each class.

    Parameters
    ----------
    counts_per_scene:
        scene id -> int (C, 2) from :func:`class_pixel_counts` (same C for every scene).
    config:
        ``n_in`` / ``n_out``: pixels asked per class inside / outside it, over all scenes.

    Returns
    -------
    scene id -> int64 (C, 2) quotas. For every class the column sums are exactly
    ``min(n_in, available in)`` and ``min(n_out, available out)``; each scene's share is proportional
    to the pixels it has (largest remainder), so a class with fewer pixels than asked gets all of them.
    Deterministic: scenes are taken in sorted id order.
    """
    scene_ids = sorted(counts_per_scene)
    if not scene_ids:
        return {}
    counts = np.stack([np.asarray(counts_per_scene[s], dtype=np.int64) for s in scene_ids])  # (S, C, 2)
    if counts.ndim != 3 or counts.shape[2] != 2:
        raise ValueError(f"counts must be (classes, 2) per scene, got {counts.shape[1:]}")
    quotas = np.zeros_like(counts)
    for c in range(counts.shape[1]):
        quotas[:, c, 0] = _split_total(counts[:, c, 0], config.n_in)
        quotas[:, c, 1] = _split_total(counts[:, c, 1], config.n_out)
    return {s: quotas[i] for i, s in enumerate(scene_ids)}


def scene_entropy(seed: int, scene_id: str | None) -> list[int]:
    """Entropy for a scene's random draws: ``seed`` mixed with a stable hash of the scene id.

    Python's ``hash`` changes between processes; blake2b does not, so a scene gets the same draw on any
    worker.
    """
    if scene_id is None:
        return [int(seed)]
    digest = hashlib.blake2b(str(scene_id).encode("utf-8"), digest_size=8).digest()
    return [int(seed), int.from_bytes(digest, "little")]


def _draw(mask_flat: np.ndarray, want: int, available: int, rng: np.random.Generator) -> np.ndarray:
    """``want`` distinct flat indices where ``mask_flat`` is True, uniformly at random, sorted.

    When the wanted pixels are a small share of the available ones (the usual out-of-class case),
    draw uniform candidates over the whole grid and keep the first distinct hits: that is sampling
    without replacement from the set, and it avoids listing millions of indices. Otherwise list the
    set's indices and choose among them.
    """
    if want <= 0:
        return np.empty(0, dtype=np.int64)
    n = mask_flat.size
    if want >= available:
        return np.flatnonzero(mask_flat)
    if want * 8 <= available:
        share = available / n
        chosen = np.empty(0, dtype=np.int64)
        while chosen.size < want:
            need = want - chosen.size
            cand = rng.integers(0, n, size=int(need / share * 1.2) + 64, dtype=np.int64)
            cand = cand[mask_flat[cand]]
            if chosen.size:
                cand = np.concatenate([chosen, cand])
            # first occurrence of each index, in draw order
            _, first = np.unique(cand, return_index=True)
            chosen = cand[np.sort(first)][:want]
        return np.sort(chosen)
    idx = np.flatnonzero(mask_flat)
    return np.sort(rng.choice(idx, size=want, replace=False))


def sample_scene(
    stack_data: np.ndarray,
    masks: np.ndarray,
    quotas: np.ndarray,
    seed: int,
    *,
    scene_id: str | None = None,
    class_ids: Sequence[int] | None = None,
    bands: Sequence[str] | None = None,
    feature_set: FeatureSet | None = None,
) -> dict[int, Sample]:
    """Draw one scene's share of every class's balanced sample.

    Parameters
    ----------
    stack_data:
        float32 (B, H, W) band stack, values in [0, 1].
    masks:
        uint8 (C, H, W) class masks on the same grid; index ``i`` is class ``class_ids[i]``.
    quotas:
        int (C, 2): this scene's (in, out) pixels per class, from :func:`allocate_quotas`. A quota above
        what the scene has is clipped to it.
    seed:
        Base seed (``SampleConfig.seed``); mixed with ``scene_id`` when given (see :func:`scene_entropy`),
        and with the class index, so each class's draw is reproducible on its own.
    scene_id:
        The scene's id, for per-scene random streams.
    class_ids:
        Class id of each mask layer; default ``1..C``.
    bands, feature_set:
        The stack's band names and the features to draw (:mod:`sattag.features`); default: the band
        values themselves. The pixels drawn do not depend on the features.

    Returns
    -------
    class id -> (X float32 (n, F), y uint8 (n,)): in-class rows first (y=1), then out-of-class (y=0).
    Classes with a zero quota give empty arrays.
    """
    stack_data = np.asarray(stack_data)
    masks = np.asarray(masks)
    quotas = np.asarray(quotas, dtype=np.int64)
    n_bands, h, w = stack_data.shape
    n_classes = masks.shape[0]
    if masks.shape[1:] != (h, w):
        raise ValueError(f"masks {masks.shape[1:]} and stack {(h, w)} are on different grids")
    if quotas.shape != (n_classes, 2):
        raise ValueError(f"quotas must be ({n_classes}, 2), got {quotas.shape}")
    if class_ids is None:
        class_ids = range(1, n_classes + 1)
    class_ids = [int(c) for c in class_ids]
    entropy = scene_entropy(seed, scene_id)
    drawn: dict[int, tuple[np.ndarray, int]] = {}
    for i, cid in enumerate(class_ids):
        inside = masks[i].reshape(-1) != 0
        n_inside = int(np.count_nonzero(inside))
        counts = (n_inside, inside.size - n_inside)
        rng = np.random.default_rng(np.random.SeedSequence(entropy + [i]))
        idx_in = _draw(inside, int(quotas[i, 0]), counts[0], rng)
        idx_out = _draw(~inside, int(quotas[i, 1]), counts[1], rng)
        drawn[cid] = (np.concatenate([idx_in, idx_out]), idx_in.size)
    # Features of every drawn pixel at once (each feature map is computed once per scene), then
    # each class takes its rows; only drawn pixels are copied, never a whole-scene table.
    every = np.unique(np.concatenate([idx for idx, _ in drawn.values()])) if drawn else np.zeros(0, np.int64)
    if feature_set is None or feature_set.name == "spectra":
        rows, cols = np.divmod(every, w)
        X_all = np.ascontiguousarray(stack_data[:, rows, cols].T, dtype=np.float32)
    else:
        if bands is None or len(bands) != n_bands:
            raise ValueError(f"features need the stack's {n_bands} band names, got {bands}")
        X_all = pixel_features(stack_data, bands, feature_set, every)
    out: dict[int, Sample] = {}
    for cid, (idx, n_in) in drawn.items():
        X = X_all[np.searchsorted(every, idx)]
        y = np.zeros(idx.size, dtype=np.uint8)
        y[:n_in] = 1
        out[cid] = (X, y)
    return out


def concat_samples(parts: Sequence[Mapping[int, Sample]]) -> dict[int, Sample]:
    """Join per-scene samples into one ``(X, y)`` per class (classes missing from a part are skipped)."""
    ids: list[int] = []
    for p in parts:
        for cid in p:
            if cid not in ids:
                ids.append(cid)
    out: dict[int, Sample] = {}
    for cid in ids:
        xs = [p[cid][0] for p in parts if cid in p]
        ys = [p[cid][1] for p in parts if cid in p]
        out[cid] = (np.concatenate(xs).astype(np.float32, copy=False), np.concatenate(ys).astype(np.uint8, copy=False))
    return out


def sample_scenes(
    scenes: Mapping[str, tuple[np.ndarray, np.ndarray]],
    config: SampleConfig,
    class_ids: Sequence[int] | None = None,
) -> dict[int, Sample]:
    """All four steps in one process: scene id -> (stack_data (B,H,W), masks (C,H,W)) to samples.

    The engine runs the steps itself to spread them over workers; this is the local, in-memory path.
    """
    counts = {s: class_pixel_counts(m) for s, (_, m) in scenes.items()}
    quotas = allocate_quotas(counts, config)
    parts = [
        sample_scene(data, masks, quotas[s], config.seed, scene_id=s, class_ids=class_ids)
        for s, (data, masks) in sorted(scenes.items())
    ]
    return concat_samples(parts)


def sample_counts(samples: Mapping[int, Sample]) -> dict[int, tuple[int, int]]:
    """class id -> (n_in, n_out) actually drawn."""
    return {cid: (int(np.count_nonzero(y)), int(y.size - np.count_nonzero(y))) for cid, (_, y) in samples.items()}


def cluster_samples(rows: np.ndarray, shares: np.ndarray, class_ids: Sequence[int],
                    min_share: float = 0.5) -> dict[int, Sample]:
    """Training rows of an object-level (per-cluster) model: every cluster, for every class.

    ``rows``: float32 (K, F) object features of a scene's clusters (``sattag.features.objects``);
    ``shares``: float32 (K, C) the share of each cluster inside each class mask, columns in
    ``class_ids`` order. A cluster is in a class (y = 1) when at least ``min_share`` of it lies in
    the class mask. Unlike pixels, clusters are few (thousands per scene), so all are kept; the
    training weights in-class rows to balance (``sattag.learn.train``).
    """
    rows = np.ascontiguousarray(rows, np.float32)
    shares = np.asarray(shares)
    if shares.shape != (rows.shape[0], len(class_ids)):
        raise ValueError(f"cluster_samples: shares of shape {shares.shape} for {rows.shape[0]} clusters and "
                         f"{len(class_ids)} classes")
    return {cid: (rows, (shares[:, j] >= min_share).astype(np.uint8)) for j, cid in enumerate(class_ids)}


def cap_samples(samples: Mapping[int, Sample], n_in: int, n_out: int, seed: int) -> dict[int, Sample]:
    """At most ``n_in`` rows in and ``n_out`` rows out of each class, drawn at random without
    replacement (per class, from ``seed`` and the class id), in their original order.

    For the rows of object-level models: a full-size DSTL scene has ~130 000 clusters, so 25 scenes
    give millions of rows; the pixel sample's sizes (``[sample] n_in / n_out``) bound them the same way.
    """
    out: dict[int, Sample] = {}
    for cid, (X, y) in samples.items():
        rng = np.random.default_rng([seed, cid])
        keep = []
        for label, most in ((1, n_in), (0, n_out)):
            idx = np.flatnonzero(y == label)
            keep.append(idx if idx.size <= most else rng.choice(idx, size=most, replace=False))
        idx = np.sort(np.concatenate(keep))
        out[cid] = (X[idx], y[idx]) if idx.size < y.size else (X, y)
    return out

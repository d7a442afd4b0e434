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
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from sattag.config import SampleConfig
from sattag.features import FeatureSet, feature_halo, feature_names, pixel_features


@dataclass(frozen=True, eq=False)
class TakenRows:
    """Some rows of tables that several classes' samples share: the tables are held once (or stay
    on disk, memory-mapped: :func:`sattag.features.objects.read_object_rows`), each class keeps only
    its row numbers, and rows are copied out when a model reads them (``rows[key]``, or
    ``np.asarray(rows)`` for all of them).

    Object-level samples are every cluster of every training scene, the same rows for all 10 classes
    with other labels; a copy per class of their capped rows would hold ~10 times the rows
    (measured: 2 full-size training scenes with 2 relit copies peaked at 6.1 GiB, mostly these).
    ``parts``: float32 (K_i, F) tables, numbered one after the other (part 0's rows first);
    ``index``: int64 (n,) row numbers in that numbering.
    """

    parts: tuple
    index: np.ndarray

    @classmethod
    def all_of(cls, parts: Sequence[np.ndarray]) -> "TakenRows":
        """Every row of ``parts``, in order."""
        return cls(tuple(parts), np.arange(sum(len(p) for p in parts), dtype=np.int64))

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.index), self.parts[0].shape[1])

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self):
        return self.parts[0].dtype

    def __len__(self) -> int:
        return len(self.index)

    def take(self, idx) -> "TakenRows":
        """The rows ``idx`` (integer or boolean index into this selection), still not copied."""
        return TakenRows(self.parts, self.index[idx])

    def __getitem__(self, key) -> np.ndarray:
        """The rows ``key`` (integer or boolean index into this selection; a tuple also picks
        columns) as a new array."""
        if isinstance(key, tuple):
            return np.asarray(self)[key]
        return self._gather(self.index[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._gather(self.index)
        return out if dtype is None else out.astype(dtype, copy=False)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64).reshape(-1)
        if len(self.parts) == 1:
            return np.asarray(self.parts[0][rows])
        starts = np.cumsum([0] + [len(p) for p in self.parts])
        which = np.searchsorted(starts, rows, side="right") - 1
        out = np.empty((len(rows), self.parts[0].shape[1]), self.parts[0].dtype)
        for k in np.unique(which):
            sel = which == k
            out[sel] = self.parts[k][rows[sel] - starts[k]]
        return out


#: One class's sample: X float32 (n, bands) pixel spectra (or object rows, possibly
#: :class:`TakenRows` of a table shared with other classes), y uint8 (n,) 1 = in the class, 0 = not.
Sample = tuple[Union[np.ndarray, TakenRows], np.ndarray]


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


#: How a draw of ``want`` pixels among ``available`` is made (see :func:`_draw_steps`).
NONE, ALL, REJECT, CHOOSE = "none", "all", "reject", "choose"


def _draw_mode(want: int, available: int) -> str:
    """Which way :func:`_draw_steps` draws ``want`` pixels among ``available``: none; all of them;
    by rejection (uniform candidates over the grid; wanted pixels a small share of the available);
    or by choosing among the listed pixels."""
    if want <= 0:
        return NONE
    if want >= available:
        return ALL
    return REJECT if want * 8 <= available else CHOOSE


def _draw_steps(want: int, available: int, n: int, rng: np.random.Generator, listed: np.ndarray | None):
    """``want`` distinct flat indices among the ``available`` pixels of a set on a grid of ``n``
    pixels, uniformly at random, sorted: a generator that asks for what it needs to know of the set.

    It yields int64 candidate indices and is sent back bool, whether each is in the set (REJECT
    mode); its return value (``StopIteration.value``) is the draw. ``listed``: the set's indices,
    sorted, needed only in ALL and CHOOSE modes (:func:`_draw_mode`), where there are fewer than
    ``8 * want`` of them. So the draw is the same whether the set is a whole-scene array
    (:func:`_draw`) or a file read window by window (:func:`sample_scene_windows`).

    When the wanted pixels are a small share of the available ones (the usual out-of-class case),
    draw uniform candidates over the whole grid and keep the first distinct hits: that is sampling
    without replacement from the set, and it avoids listing millions of indices. Otherwise list the
    set's indices and choose among them. Candidates are asked for in chunks of at most
    ``_LOOKUP_CHUNK`` (numpy's bounded integers come out the same in one call or several), so the
    memory of a draw follows the draw, not the grid.
    """
    mode = _draw_mode(want, available)
    if mode == NONE:
        return np.empty(0, dtype=np.int64)
    if mode == ALL:
        return np.asarray(listed, dtype=np.int64)
    if mode == CHOOSE:
        return np.sort(rng.choice(np.asarray(listed, dtype=np.int64), size=want, replace=False))
    share = available / n
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < want:
        need = want - chosen.size
        size = int(need / share * 1.2) + 64
        hits = []
        for start in range(0, size, _LOOKUP_CHUNK):
            cand = rng.integers(0, n, size=min(_LOOKUP_CHUNK, size - start), dtype=np.int64)
            inside = yield cand
            hits.append(cand[inside])
        cand = np.concatenate(hits) if len(hits) > 1 else hits[0]
        if chosen.size:
            cand = np.concatenate([chosen, cand])
        # first occurrence of each index, in draw order
        _, first = np.unique(cand, return_index=True)
        chosen = cand[np.sort(first)][:want]
    return np.sort(chosen)


#: Most candidate pixels a draw asks about at once (int64: 16 MB), and asked about in one pass
#: over the masks' windows (:func:`sample_scene_windows`).
_LOOKUP_CHUNK = 1 << 21


def _draw(mask_flat: np.ndarray, want: int, available: int, rng: np.random.Generator) -> np.ndarray:
    """``want`` distinct flat indices where ``mask_flat`` (bool (n,)) is True, uniformly at random,
    sorted (:func:`_draw_steps` answered from the array)."""
    mode = _draw_mode(want, available)
    steps = _draw_steps(want, available, mask_flat.size, rng,
                        np.flatnonzero(mask_flat) if mode in (ALL, CHOOSE) else None)
    try:
        cand = next(steps)
        while True:
            cand = steps.send(mask_flat[cand])
    except StopIteration as done:
        return done.value


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
    return _split_samples(X_all, every, drawn)


def _split_samples(X_all: np.ndarray, every: np.ndarray, drawn: dict) -> dict[int, Sample]:
    """Each class's sample from the rows of all drawn pixels: ``X_all`` float32 (n, F), row i for flat
    pixel index ``every[i]`` (sorted); ``drawn``: class id -> (flat indices, in-class first; n_in)."""
    out: dict[int, Sample] = {}
    for cid, (idx, n_in) in drawn.items():
        X = X_all[np.searchsorted(every, idx)]
        y = np.zeros(idx.size, dtype=np.uint8)
        y[:n_in] = 1
        out[cid] = (X, y)
    return out


#: Reads a window of a scene's masks: (rows (r0, r1), cols (c0, c1), layers) -> uint8 (len(layers), h, w).
MasksReader = Callable[[tuple[int, int], tuple[int, int], Sequence[int]], np.ndarray]
#: Reads a window of a scene's stack: (rows (r0, r1), cols (c0, c1)) -> float32 (B, h, w).
StackReader = Callable[[tuple[int, int], tuple[int, int]], np.ndarray]


def _windows(height: int, width: int, tile_px: int) -> list[tuple[int, int, int, int]]:
    return [(r0, min(height, r0 + tile_px), c0, min(width, c0 + tile_px))
            for r0 in range(0, height, tile_px) for c0 in range(0, width, tile_px)]


def _by_window(flat: np.ndarray, width: int, tile_px: int, n_cols: int):
    """Group flat indices by the window holding them: (order, window id of each in order, rows,
    cols); ``order`` sorts them by window, stably."""
    rows, cols = np.divmod(flat, width)
    win = (rows // tile_px) * n_cols + cols // tile_px
    order = np.argsort(win, kind="stable")
    return order, win[order], rows, cols


def sample_scene_windows(
    shape: tuple[int, int],
    read_masks: MasksReader,
    read_stack: StackReader,
    quotas: np.ndarray,
    seed: int,
    *,
    tile_px: int,
    scene_id: str | None = None,
    class_ids: Sequence[int] | None = None,
    bands: Sequence[str] | None = None,
    feature_set: FeatureSet | None = None,
) -> dict[int, Sample]:
    """:func:`sample_scene` reading the scene window by window: the same pixels drawn, and the same
    features, with memory that follows ``tile_px`` and the quotas, not the scene.

    Parameters
    ----------
    shape:
        (H, W) of the scene's grid, pixels.
    read_masks, read_stack:
        readers of a window of the class masks (uint8 (layers, h, w), layers 0-based in mask order)
        and of the band stack (float32 (B, h, w)); rows and cols are ``(start, end)`` pixels, end
        exclusive (:func:`sattag.labels.read_masks_window`, :func:`sattag.ingest.read_stack_window`).
    tile_px:
        window side, pixels (``[ingest] tile_px``).
    quotas, seed, scene_id, class_ids, bands, feature_set:
        as :func:`sample_scene`; ``class_ids`` default ``1..C`` with C = ``len(quotas)``.

    How: one pass over the masks counts each class's pixels; a second lists the pixels of the draws
    that choose among fewer than 8x what they want (as :func:`sample_scene` lists them); the draws
    by rejection then ask, in rounds, whether their candidates are in their class, each round one
    pass over the windows that hold candidates. Every class keeps its own random stream, so serving
    them in rounds changes nothing. Features are computed per window with a margin of
    :func:`sattag.features.feature_halo` px (clipped at the scene's border), and only the drawn
    pixels' rows are kept.

    Equality with :func:`sample_scene`: the drawn pixels, labels and row order are the same, and so
    are band values. Context features may differ in the last bit (at most 1 float32 ulp) on a few
    pixels: OpenCV's box filter keeps running sums in float64 that start at the window's edge, and
    sums of maps whose values are not on a coarse binary grid (edge strengths, spreads) round
    differently there.
    """
    h, w = (int(v) for v in shape)
    n = h * w
    tile_px = int(tile_px)
    if tile_px < 1:
        raise ValueError(f"sample_scene_windows: tile_px must be >= 1, got {tile_px}")
    quotas = np.asarray(quotas, dtype=np.int64)
    n_classes = quotas.shape[0]
    if quotas.shape != (n_classes, 2):
        raise ValueError(f"quotas must be (classes, 2), got {quotas.shape}")
    class_ids = [int(c) for c in (class_ids if class_ids is not None else range(1, n_classes + 1))]
    if len(class_ids) != n_classes:
        raise ValueError(f"{len(class_ids)} class ids for quotas of {n_classes} classes")
    windows = _windows(h, w, tile_px)
    n_cols = -(-w // tile_px)
    layers = list(range(n_classes))

    # Pass 1: pixels in each class.
    inside = np.zeros(n_classes, dtype=np.int64)
    for r0, r1, c0, c1 in windows:
        m = read_masks((r0, r1), (c0, c1), layers)
        inside += np.count_nonzero(m.reshape(n_classes, -1), axis=1)
    available = np.stack([inside, n - inside], axis=1)  # (C, 2): in, out
    modes = [[_draw_mode(int(quotas[i, k]), int(available[i, k])) for k in (0, 1)] for i in range(n_classes)]

    # Pass 2: the pixels of the draws that list them (fewer than 8x what they want: bounded by the quotas).
    listed: dict[tuple[int, int], list[np.ndarray]] = {}
    for i in range(n_classes):
        for k in (0, 1):
            if modes[i][k] in (ALL, CHOOSE):
                listed[(i, k)] = []
    if listed:
        need = sorted({i for i, _ in listed})
        for r0, r1, c0, c1 in windows:
            m = read_masks((r0, r1), (c0, c1), need)
            for (i, k), parts in listed.items():
                layer = m[need.index(i)]
                lr, lc = np.nonzero(layer if k == 0 else layer == 0)
                parts.append((lr + r0).astype(np.int64) * w + (lc + c0))
    lists = {key: np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)
             for key, parts in listed.items()}

    # The draws: each class's in-draw then out-draw from its own stream, as sample_scene does.
    entropy = scene_entropy(seed, scene_id)

    drawn: dict[int, tuple[np.ndarray, int]] = {}
    pending: dict[int, tuple] = {}  # class index -> (generator, k, candidates asked about)
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(n_classes)}
    streams = {}
    for i in range(n_classes):
        rng = np.random.default_rng(np.random.SeedSequence(entropy + [i]))
        streams[i] = rng
        _advance(i, 0, None, quotas, available, n, rng, lists, pending, results)
    while pending:
        # One round: the pending candidates (up to about _LOOKUP_CHUNK in all, at least one draw's)
        # looked up in one pass over the windows that hold them.
        served, total = [], 0
        for i in sorted(pending):
            size = pending[i][2].size
            if served and total + size > _LOOKUP_CHUNK:
                break
            served.append(i)
            total += size
        answers = _lookup(read_masks, windows, w, tile_px, n_cols, [(i, pending[i][1], pending[i][2]) for i in served])
        for i, hits in zip(served, answers):
            gen, k, _ = pending.pop(i)
            _advance(i, k, (gen, hits), quotas, available, n, streams[i], lists, pending, results)
    for i, cid in enumerate(class_ids):
        idx_in, idx_out = results[i]
        drawn[cid] = (np.concatenate([idx_in, idx_out]), idx_in.size)

    # Features of every drawn pixel, window by window.
    every = np.unique(np.concatenate([idx for idx, _ in drawn.values()])) if drawn else np.zeros(0, np.int64)
    spectra = feature_set is None or feature_set.name == "spectra"
    halo = 0 if spectra else feature_halo(feature_set)
    X_all = None
    if every.size:
        order, win, rows, cols = _by_window(every, w, tile_px, n_cols)
        bounds = np.searchsorted(win, np.arange(len(windows) + 1))
        for wi, (r0, r1, c0, c1) in enumerate(windows):
            sel = order[bounds[wi]:bounds[wi + 1]]
            if not sel.size:
                continue  # no drawn pixel here: the window is not read
            R0, R1, C0, C1 = max(0, r0 - halo), min(h, r1 + halo), max(0, c0 - halo), min(w, c1 + halo)
            data = read_stack((R0, R1), (C0, C1))
            lr, lc = rows[sel] - R0, cols[sel] - C0
            if spectra:
                X = np.ascontiguousarray(data[:, lr, lc].T, dtype=np.float32)
            else:
                if bands is None or len(bands) != data.shape[0]:
                    raise ValueError(f"features need the stack's {data.shape[0]} band names, got {bands}")
                X = pixel_features(data, bands, feature_set, lr * (C1 - C0) + lc)
            if X_all is None:
                X_all = np.empty((every.size, X.shape[1]), dtype=np.float32)
            X_all[sel] = X
            del data
    if X_all is None:  # nothing drawn: no rows, but the columns sample_scene would give
        names = bands if bands is not None else [""] * read_stack((0, 1), (0, 1)).shape[0]
        X_all = np.empty((0, len(names) if spectra else len(feature_names(names, feature_set))), np.float32)
    return _split_samples(X_all, every, drawn)


def _advance(i, k, sent, quotas, available, n, rng, lists, pending, results) -> None:
    """Run class ``i``'s draws on until they ask about candidates (then put in ``pending``) or end.

    ``k``: 0 for the in-class draw, 1 for the out-of-class one; ``sent``: None to start draw ``k``,
    or (its generator, the answer to its last question)."""
    while k < 2:
        if sent is None:
            gen = _draw_steps(int(quotas[i, k]), int(available[i, k]), n, rng, lists.get((i, k)))
            step = lambda g=gen: next(g)  # noqa: E731
        else:
            gen, hits = sent
            step = lambda g=gen, a=hits: g.send(a)  # noqa: E731
        try:
            cand = step()
        except StopIteration as done:
            results[i].append(done.value)
            k, sent = k + 1, None
            continue
        pending[i] = (gen, k, cand)
        return


def _lookup(read_masks: MasksReader, windows, width: int, tile_px: int, n_cols: int,
            asks: list[tuple[int, int, np.ndarray]]) -> list[np.ndarray]:
    """Answer draws' questions in one pass over the windows: for each ``(class index, k, candidates)``,
    bool per candidate, whether it is in the class (k = 0) or out of it (k = 1)."""
    layers = sorted({i for i, _, _ in asks})
    grouped = []
    hold = np.zeros(len(windows), dtype=bool)
    for i, k, cand in asks:
        order, win, rows, cols = _by_window(cand, width, tile_px, n_cols)
        bounds = np.searchsorted(win, np.arange(len(windows) + 1))
        hold |= bounds[1:] > bounds[:-1]
        grouped.append((order, bounds, rows, cols))
    answers = [np.zeros(cand.size, dtype=bool) for _, _, cand in asks]
    for wi in np.flatnonzero(hold):
        r0, r1, c0, c1 = windows[wi]
        m = read_masks((r0, r1), (c0, c1), layers)
        for (i, k, _), (order, bounds, rows, cols), ans in zip(asks, grouped, answers):
            sel = order[bounds[wi]:bounds[wi + 1]]
            if sel.size:
                ans[sel] = (m[layers.index(i), rows[sel] - r0, cols[sel] - c0] != 0) ^ bool(k)
    return answers


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

    ``rows``: float32 (K, F) object features of a scene's clusters (``sattag.features.objects``), or
    :class:`TakenRows` of them (left as they are: not read);
    ``shares``: float32 (K, C) the share of each cluster inside each class mask, columns in
    ``class_ids`` order. A cluster is in a class (y = 1) when at least ``min_share`` of it lies in
    the class mask. Every cluster is kept here (a full-size DSTL scene has ~130 000; :func:`cap_samples`
    bounds them); the
    training weights in-class rows to balance (``sattag.learn.train``).
    """
    if not isinstance(rows, TakenRows):
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
    A capped class's rows are :class:`TakenRows` of its ``X`` (no copy: classes that share one table
    keep sharing it).
    """
    out: dict[int, Sample] = {}
    for cid, (X, y) in samples.items():
        rng = np.random.default_rng([seed, cid])
        keep = []
        for label, most in ((1, n_in), (0, n_out)):
            idx = np.flatnonzero(y == label)
            keep.append(idx if idx.size <= most else rng.choice(idx, size=most, replace=False))
        idx = np.sort(np.concatenate(keep))
        if idx.size == y.size:
            out[cid] = (X, y)
        else:
            out[cid] = (X.take(idx) if isinstance(X, TakenRows) else TakenRows((X,), idx), y[idx])
    return out

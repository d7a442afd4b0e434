"""Feature maps of a band stack, one (H, W) float32 map at a time, and what the stages keep of them."""
from __future__ import annotations

from typing import Iterator, Sequence

import cv2
import numba
import numpy as np

from sattag.features.spec import FeatureSet, feature_names, present_indices


def _box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` window (reflected border): (H, W) float32."""
    if size <= 1:
        return img
    return cv2.boxFilter(img, cv2.CV_32F, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)


def feature_halo(feature_set: FeatureSet) -> int:
    """Pixels of context a window needs on each side so that :func:`feature_maps` of the window,
    cropped to its core, equals the whole scene's maps there: the largest box filter's radius, plus
    1 for the 3x3 Sobel under the edge maps (0 for ``spectra``). At the scene's border the window is
    clipped, and BORDER_REFLECT then mirrors the same pixels as on the whole scene."""
    if feature_set.name == "spectra":
        return 0
    return max((int(s) // 2 for s in feature_set.scales), default=0) + 1


def feature_maps(stack_data: np.ndarray, bands: Sequence[str], feature_set: FeatureSet
                 ) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, map)`` for every feature of ``feature_set``, in :func:`feature_names` order.

    ``stack_data``: float32 (B, H, W) in [0, 1], bands named ``bands``. Each map is (H, W) float32;
    a band's map is a view of the stack (no copy). Maps depend only on the stack, so the same pixel
    gets the same value whether a whole scene or a sample of it is wanted.
    """
    stack_data = np.asarray(stack_data)
    if stack_data.ndim != 3 or stack_data.shape[0] != len(bands):
        raise ValueError(f"stack of shape {stack_data.shape} does not match {len(bands)} band names")
    for i, b in enumerate(bands):
        yield b, stack_data[i]
    if feature_set.name == "spectra":
        return
    index = {b: i for i, b in enumerate(bands)}
    ndvi = None
    for name, a, b in present_indices(bands):
        x, y = stack_data[index[a]], stack_data[index[b]]
        with np.errstate(divide="ignore", invalid="ignore"):
            nd = ((x - y) / np.maximum(x + y, 1e-6)).astype(np.float32)
        if name == "NDVI":
            ndvi = nd
        yield name, nd
    # Brightness: the mean of the bands (a panchromatic scene: its one band).
    bright = np.mean(stack_data, axis=0, dtype=np.float32)
    yield "brightness", bright
    gy = cv2.Sobel(bright, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(bright, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    edges = cv2.magnitude(gx, gy)
    del gx, gy
    square = bright * bright
    for s in feature_set.scales:
        mean = _box_mean(bright, s)
        yield f"brightness_mean_{s}", mean
        var = _box_mean(square, s) - mean * mean
        yield f"brightness_sd_{s}", np.sqrt(np.maximum(var, 0.0, out=var), out=var)
        del mean, var
        yield f"edges_{s}", _box_mean(edges, s)
        # Brighter or darker than the surroundings, as a ratio: unlike the local mean itself, it
        # does not move with the scene's illumination (a road against its verges, a shadow).
        yield f"brightness_rel_{s}", bright / np.maximum(_box_mean(bright, s), 1e-6)
        if ndvi is not None:
            yield f"NDVI_mean_{s}", _box_mean(ndvi, s)


def pixel_features(stack_data: np.ndarray, bands: Sequence[str], feature_set: FeatureSet,
                   flat_index: np.ndarray) -> np.ndarray:
    """The features of chosen pixels: float32 (n, F), rows in ``flat_index`` order.

    ``flat_index``: int (n,) flat indices into the (H, W) grid (row * W + col).
    """
    names = feature_names(bands, feature_set)
    flat_index = np.asarray(flat_index, dtype=np.int64)
    out = np.empty((flat_index.size, len(names)), dtype=np.float32)
    for j, (_, fmap) in enumerate(feature_maps(stack_data, bands, feature_set)):
        out[:, j] = fmap.reshape(-1)[flat_index]
    return out


@numba.njit(cache=True, nogil=True)
def _cluster_sums(ids, fmap, out):  # pragma: no cover - compiled
    for i in range(ids.size):
        out[ids[i]] += fmap[i]


def cluster_features(stack_data: np.ndarray, bands: Sequence[str], feature_set: FeatureSet,
                     cluster_ids: np.ndarray, n_clusters: int, band_means: np.ndarray | None = None) -> np.ndarray:
    """Each cluster's mean of every feature: float32 (K, F), row k = cluster k.

    ``cluster_ids``: int (H, W), values ``0..n_clusters-1`` (``sattag.segment.cluster_pixels``).
    ``band_means``: the clusters' mean spectra (K, B) when already known (``ClusterTable.means``):
    the band columns are then taken from it instead of summed again.
    """
    names = feature_names(bands, feature_set)
    ids = np.ascontiguousarray(np.asarray(cluster_ids).reshape(-1), dtype=np.int64)
    sizes = np.bincount(ids, minlength=n_clusters)[:n_clusters].astype(np.float64)
    sizes[sizes == 0] = 1.0
    out = np.empty((n_clusters, len(names)), dtype=np.float32)
    sums = np.empty(n_clusters, dtype=np.float64)
    nb = len(bands)
    for j, (_, fmap) in enumerate(feature_maps(stack_data, bands, feature_set)):
        if band_means is not None and j < nb:
            out[:, j] = band_means[:, j]
            continue
        sums[:] = 0.0
        _cluster_sums(ids, np.ascontiguousarray(fmap).reshape(-1), sums)
        out[:, j] = sums / sizes
    return out

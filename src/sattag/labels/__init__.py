"""labels stage: read vector labels (DSTL WKT CSV / GeoJSON, any OGR file), map them onto a scene's
grid, burn them into uint8 class masks (classes, H, W), and per-class band histograms under them.
Masks are rasterized, written and read whole or window by window (``rasterize_windows``,
``write_masks_windows``, ``read_masks_window``): the same pixels and file, memory bounded by the window."""
from sattag.labels.rasterize import (check_overlap, grid_windows, rasterize_classes, rasterize_windows, read_masks,
                                     read_masks_metadata, read_masks_sample, read_masks_window, write_masks, write_masks_windows)
from sattag.labels.readers import (
    DSTL_LAYERS,
    GEOJSON_DIR,
    WKT_CSV,
    LabelReport,
    LabelWarning,
    labelled_scene_ids,
    labels_bounds,
    polygonal_parts,
    read_geojson_folder,
    read_vector_labels,
    read_wkt_csv,
    scene_labels,
)
from sattag.labels.source import LabelSource, clip_to_bounds
from sattag.labels.stats import band_histograms, histogram_edges, read_histograms, scene_histograms, write_histograms
from sattag.labels.truth import read_truth_polygons, write_truth_polygons
from sattag.labels.transform import (
    dstl_to_pixel,
    geometry_to_grid,
    geometry_to_pixel,
    grid_bounds,
    grid_to_pixel,
    pixel_to_dstl,
    pixel_to_grid,
)

__all__ = [
    "LabelSource",
    "clip_to_bounds",
    "band_histograms",
    "histogram_edges",
    "read_histograms",
    "scene_histograms",
    "write_histograms",
    "read_truth_polygons",
    "write_truth_polygons",
    "DSTL_LAYERS",
    "GEOJSON_DIR",
    "WKT_CSV",
    "LabelReport",
    "LabelWarning",
    "check_overlap",
    "dstl_to_pixel",
    "geometry_to_grid",
    "geometry_to_pixel",
    "grid_bounds",
    "grid_to_pixel",
    "labelled_scene_ids",
    "labels_bounds",
    "pixel_to_dstl",
    "pixel_to_grid",
    "polygonal_parts",
    "rasterize_classes",
    "read_geojson_folder",
    "read_masks",
    "read_vector_labels",
    "read_wkt_csv",
    "scene_labels",
    "write_masks",
    "grid_windows",
    "rasterize_windows",
    "read_masks_metadata",
    "read_masks_sample",
    "read_masks_window",
    "write_masks_windows",
]

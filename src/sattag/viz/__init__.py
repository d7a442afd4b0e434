"""viz stage: exploration figures (thumbnails, bands, class masks, label overlays, histograms)."""
from sattag.viz._style import save_figure, stretch, stretch_rgb
from sattag.viz.explore import (
    band_histograms,
    bands_figure,
    choose_window,
    histogram_edges,
    histogram_figure,
    masks_figure,
    overlay_figure,
    read_histograms,
    rgb_image,
    scene_histograms,
    scene_thumbnail,
    thumbnails_figure,
    write_explore_figures,
    write_histograms,
)

__all__ = [
    "band_histograms",
    "bands_figure",
    "choose_window",
    "histogram_edges",
    "histogram_figure",
    "masks_figure",
    "overlay_figure",
    "read_histograms",
    "rgb_image",
    "save_figure",
    "scene_histograms",
    "scene_thumbnail",
    "stretch",
    "stretch_rgb",
    "thumbnails_figure",
    "write_explore_figures",
    "write_histograms",
]

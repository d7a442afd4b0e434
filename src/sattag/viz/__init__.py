"""viz: draws only -- exploration figures (thumbnails, bands, class masks, label overlays, histograms),
cluster figures and the report. What it draws is computed by the stages that own the data."""
from sattag.viz._style import save_figure, stretch, stretch_rgb
from sattag.viz.explore import (
    bands_figure,
    choose_window,
    histogram_figure,
    masks_figure,
    overlay_figure,
    rgb_image,
    thumbnails_figure,
    write_explore_figures,
)

__all__ = [
    "bands_figure",
    "choose_window",
    "histogram_figure",
    "masks_figure",
    "overlay_figure",
    "rgb_image",
    "save_figure",
    "stretch",
    "stretch_rgb",
    "thumbnails_figure",
    "write_explore_figures",
]

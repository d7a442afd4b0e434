"""A small colour view of a stack: its display bands, every n-th pixel.

Computed where the stack is (a worker), cheap to send back: the engine makes one per labelled scene
and ``sattag.viz.thumbnails_figure`` brightens and draws them. Values are the stack's own; the
stretch that makes them readable is the figure's business.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["display_bands", "scene_thumbnail"]

#: Band trios shown as red, green, blue, in order of preference: the RGB file, else the M bands
#: closest to red, green and blue.
DISPLAY_TRIOS: tuple[tuple[str, str, str], ...] = (("R", "G", "B"), ("M5", "M3", "M2"))


def display_bands(bands: Sequence[str]) -> tuple[list[int], str]:
    """Indices of the bands shown as red, green, blue, and their name for titles.

    ``R G B`` when present, else ``M5 M3 M2`` (named ``"M5-M3-M2"``), else the first band three times
    (a grey image, named ``"band <name>"``).
    """
    bands = list(bands)
    for trio in DISPLAY_TRIOS:
        if all(b in bands for b in trio):
            return [bands.index(b) for b in trio], "RGB" if trio[0] == "R" else "-".join(trio)
    return [0, 0, 0], f"band {bands[0]}" if bands else "image"


def scene_thumbnail(stack_data: np.ndarray, bands: Sequence[str], size: int = 256) -> np.ndarray:
    """The display bands (:func:`display_bands`) of a stack (B, H, W), every n-th pixel so that the
    longer side is at most ``size`` px: float32 (3, h, w), values as in the stack."""
    idx, _ = display_bands(bands)
    step = max(1, math.ceil(max(np.shape(stack_data)[-2:]) / max(1, int(size))))
    return np.ascontiguousarray(np.asarray(stack_data)[idx, ::step, ::step], dtype=np.float32)

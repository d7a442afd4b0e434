"""A small colour view of a stack: its display bands, every n-th pixel.

Computed where the stack is (a worker), cheap to send back: the engine makes one per labelled scene
and ``sattag.viz.thumbnails_figure`` brightens and draws them. Values are the stack's own; the
stretch that makes them readable is the figure's business.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["ThumbnailWindows", "display_bands", "scene_thumbnail", "thumbnail_step"]

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


def thumbnail_step(height: int, width: int, size: int = 256) -> int:
    """Every how many pixels a thumbnail takes one, so that its longer side is at most ``size`` px."""
    return max(1, math.ceil(max(height, width) / max(1, int(size))))


def scene_thumbnail(stack_data: np.ndarray, bands: Sequence[str], size: int = 256) -> np.ndarray:
    """The display bands (:func:`display_bands`) of a stack (B, H, W), every n-th pixel so that the
    longer side is at most ``size`` px: float32 (3, h, w), values as in the stack."""
    idx, _ = display_bands(bands)
    step = thumbnail_step(*np.shape(stack_data)[-2:], size=size)
    return np.ascontiguousarray(np.asarray(stack_data)[idx, ::step, ::step], dtype=np.float32)


class ThumbnailWindows:
    """:func:`scene_thumbnail` gathered from the windows of a stack that a stage reads anyway: the
    same array, without the whole stack in memory or a read of its own.

    ``ThumbnailWindows(H, W, bands, size)``, then :meth:`add` every window (any tiling; each pixel
    of the thumbnail is taken from the window holding it), then :attr:`image` float32 (3, h, w).
    """

    def __init__(self, height: int, width: int, bands: Sequence[str], size: int = 256):
        self.idx, _ = display_bands(bands)
        self.step = thumbnail_step(height, width, size)
        self.image = np.zeros((3, -(-height // self.step), -(-width // self.step)), np.float32)

    def add(self, row0: int, col0: int, window_data: np.ndarray) -> None:
        """Take the thumbnail's pixels out of a window: float (B, h, w) of the stack at ``row0, col0``."""
        s = self.step
        # The first sampled row/col (a multiple of the step) at or after the window's start.
        dr, dc = -row0 % s, -col0 % s
        part = np.asarray(window_data)[self.idx, dr::s, dc::s]
        r, c = (row0 + dr) // s, (col0 + dc) // s
        self.image[:, r:r + part.shape[1], c:c + part.shape[2]] = part

"""Small synthetic images shared by the tests (not a test module)."""
from __future__ import annotations

import cv2
import numpy as np


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """float32 (h, w) in [0, 1] with structure at several scales (2, 6 and 20 px blurs of noise):
    enough for phase correlation and ECC to lock onto, cheap to make."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for sigma, amp in ((2, 0.3), (6, 0.5), (20, 1.0)):
        img += amp * cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), sigma)
    return (img - img.min()) / (img.max() - img.min())

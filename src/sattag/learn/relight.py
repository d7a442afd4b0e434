"""Training scenes under other light: copies of a stack as another day's sun, sensor and haze would
have recorded it, for models that must tag scenes taken in light they never saw.

A scene's band values move with its illumination (sun elevation, season), each band's calibration
and the haze's path radiance, while its objects stay what they are. Models trained on a few scenes
learn their light along with their objects; rows of the same clusters under drawn light teach them
which differences do not matter. The ranges are those of real imagery from one sensor: sun and
season change the light by about a fifth either way, calibration by a few percent per band, and haze
adds up to a few percent of the range to a band.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

#: Scene-wide illumination factor, drawn uniformly (sun elevation and season).
LIGHT = (0.8, 1.25)
#: Standard deviation of each band's calibration gain, drawn around 1.
BAND_GAIN_SD = 0.03
#: Each band's added path radiance (haze), drawn uniformly, as a share of the band's [0, 1] range.
HAZE = (0.0, 0.02)


@dataclass(frozen=True)
class Relight:
    """One drawn light: ``gains`` (B,) multiply the bands (illumination times calibration), ``haze``
    (B,) is added; values are clipped to [0, 1] like a stored band."""

    gains: np.ndarray
    haze: np.ndarray

    def apply(self, stack_data: np.ndarray) -> np.ndarray:
        """``stack_data`` float32 (B, H, W) in [0, 1] -> the same scene under this light, a new
        float32 (B, H, W) array in [0, 1]."""
        g = self.gains.astype(np.float32)[:, None, None]
        h = self.haze.astype(np.float32)[:, None, None]
        out = stack_data * g
        out += h
        return np.clip(out, 0.0, 1.0, out=out)


def draw_relights(scene_id: str, n_bands: int, copies: int, seed: int = 0) -> list[Relight]:
    """``copies`` lights for the scene ``scene_id`` with ``n_bands`` bands. The draws depend only on
    the scene id and ``seed``, so every tile of a scene, every worker and every rerun gets the same."""
    rng = np.random.default_rng(zlib.crc32(scene_id.encode()) + int(seed))
    out = []
    for _ in range(int(copies)):
        gains = rng.uniform(*LIGHT) * rng.normal(1.0, BAND_GAIN_SD, n_bands)
        haze = rng.uniform(*HAZE, n_bands)
        out.append(Relight(gains=gains, haze=haze))
    return out

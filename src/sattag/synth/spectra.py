"""Materials and their reflectance over 400-2400 nm, sampled over each DSTL band's range."""
from __future__ import annotations

import numpy as np

from sattag.dstl import BAND_RANGES
from sattag.synth.sensor import GAIN


#: Wavelength anchors (nm) of the reflectance curves below.
WL = np.array([400, 480, 550, 620, 670, 710, 760, 850, 1000, 1200, 1600, 1700, 2200, 2300], float)
#: Materials: name -> reflectance at ``WL``. Index in this dict = value in the material map.
MATERIALS: dict[str, tuple[float, ...]] = {
    "soil": (.06, .09, .12, .16, .19, .21, .23, .26, .28, .31, .36, .37, .33, .30),
    "grass": (.03, .04, .09, .06, .045, .12, .30, .34, .35, .30, .22, .20, .11, .10),
    "crop_green": (.03, .045, .11, .07, .05, .17, .42, .48, .48, .38, .25, .23, .12, .11),
    "crop_mid": (.04, .06, .12, .10, .09, .20, .37, .42, .43, .37, .28, .26, .17, .15),
    "crop_ripe": (.05, .07, .14, .17, .16, .22, .33, .37, .38, .36, .33, .32, .24, .22),
    "tree": (.02, .03, .06, .04, .025, .09, .36, .42, .43, .33, .18, .15, .07, .06),
    "road": (.09, .10, .11, .115, .12, .125, .13, .14, .15, .17, .21, .22, .23, .23),
    "track": (.10, .14, .18, .22, .25, .27, .29, .31, .33, .36, .41, .41, .38, .36),
    "water": (.06, .07, .065, .05, .04, .035, .025, .015, .01, .005, .003, .003, .002, .002),
    "pond": (.05, .07, .09, .07, .05, .045, .04, .03, .02, .01, .005, .005, .003, .003),
    "roof_grey": (.18, .20, .22, .23, .235, .24, .25, .26, .27, .30, .34, .35, .33, .32),
    "roof_red": (.06, .07, .08, .13, .24, .29, .31, .33, .35, .38, .42, .42, .40, .39),
    "roof_dark": (.06, .065, .07, .07, .075, .08, .085, .09, .10, .13, .20, .21, .22, .22),
    "paved": (.14, .16, .18, .19, .20, .20, .21, .22, .23, .26, .30, .31, .29, .28),
    "structure": (.25, .28, .30, .31, .32, .32, .33, .34, .35, .37, .40, .40, .38, .37),
    "car_white": (.45, .50, .52, .53, .53, .53, .53, .53, .53, .52, .45, .43, .35, .33),
    "car_dark": (.04, .04, .04, .04, .04, .04, .05, .05, .06, .07, .08, .08, .08, .08),
    "car_red": (.05, .05, .06, .10, .35, .40, .42, .44, .45, .45, .40, .38, .30, .28),
    "truck": (.35, .40, .42, .43, .43, .43, .43, .44, .44, .44, .40, .38, .30, .29),
}
MAT = {name: i for i, name in enumerate(MATERIALS)}
MATERIAL_NAMES: tuple[str, ...] = tuple(MATERIALS)
REFL = np.array(list(MATERIALS.values()), float)  # (materials, anchors)

# Per-material texture amplitudes (relative brightness): fine (pixel), mid (~3 m), row stripes.
TEX = {
    "soil": (0.05, 0.08, 0.0), "grass": (0.05, 0.06, 0.0), "crop_green": (0.04, 0.05, 0.07),
    "crop_mid": (0.04, 0.05, 0.08), "crop_ripe": (0.04, 0.05, 0.09), "tree": (0.16, 0.12, 0.0),
    "road": (0.02, 0.03, 0.0), "track": (0.04, 0.06, 0.0), "water": (0.01, 0.02, 0.0),
    "pond": (0.015, 0.03, 0.0), "roof_grey": (0.03, 0.03, 0.0), "roof_red": (0.03, 0.03, 0.0),
    "roof_dark": (0.03, 0.03, 0.0), "paved": (0.04, 0.05, 0.0), "structure": (0.03, 0.02, 0.0),
    "car_white": (0.02, 0.0, 0.0), "car_dark": (0.02, 0.0, 0.0), "car_red": (0.02, 0.0, 0.0),
    "truck": (0.02, 0.0, 0.0),
}
VEG = {"grass": 0.12, "crop_green": 0.15, "crop_mid": 0.12, "crop_ripe": 0.08, "tree": 0.15}


def band_reflectance(band: str) -> np.ndarray:
    """Mean reflectance of every material over ``band``'s wavelength range: (materials,) float."""
    lo, hi = BAND_RANGES[band]
    wl = np.linspace(lo, hi, 32)
    return np.array([np.interp(wl, WL, r).mean() for r in REFL])


def path_radiance(band: str, bits: int) -> float:
    """Atmospheric path radiance in counts: strong at short wavelengths, none in the SWIR."""
    lo, hi = BAND_RANGES[band]
    centre = (lo + hi) / 2
    return 0.06 * GAIN[bits] * (450.0 / centre) ** 4 if centre < 1100 else 0.0

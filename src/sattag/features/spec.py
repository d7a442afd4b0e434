"""Named feature sets and the feature names they give for a stack's bands."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sattag.config import FeaturesConfig

#: The named feature sets (``--features``).
FEATURE_SETS = ("spectra", "context")

#: Normalised-difference indices: name -> (band a, band b), (a - b) / (a + b), for the first pair of
#: band names the stack has (DSTL's WorldView-3 names first, then common user names).
INDICES: dict[str, tuple[tuple[str, str], ...]] = {
    # vegetation: near-infrared against red
    "NDVI": (("M7", "M5"), ("NIR", "R"), ("N", "R"), ("B4", "B3")),
    # water: green against near-infrared (McFeeters)
    "NDWI": (("M3", "M7"), ("G", "NIR"), ("G", "N")),
    # built-up: SWIR-1 (1.6 um) against near-infrared
    "NDBI": (("A3", "M7"), ("SWIR1", "NIR")),
    # WorldView-3 SWIR: clay/carbonate absorption (2.2 um) against the 1.6 um shoulder; roofs, soil
    "SWIR-CLAY": (("A2", "A6"),),
    # WorldView-3 SWIR: the 2.3 um shoulder against 2.2 um: asphalt and plastics vs minerals
    "SWIR-HC": (("A8", "A6"),),
}


@dataclass(frozen=True)
class FeatureSet:
    """What the models see: ``name`` (``"spectra"`` or ``"context"``) and, for context, the window
    sizes in pixels of the local statistics (``scales``)."""

    name: str = FeaturesConfig.set
    scales: tuple[int, ...] = FeaturesConfig.scales

    def __post_init__(self):
        if self.name not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {self.name!r} (known: {', '.join(FEATURE_SETS)})")
        if any(int(s) < 1 for s in self.scales):
            raise ValueError(f"feature scales must be >= 1 px, got {self.scales}")

    @classmethod
    def from_config(cls, config: FeaturesConfig) -> "FeatureSet":
        return cls(config.set, tuple(int(s) for s in config.scales))

    def to_dict(self) -> dict:
        return {"name": self.name, "scales": list(self.scales)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSet":
        return cls(str(d.get("name", "spectra")), tuple(int(s) for s in d.get("scales", ())))

    def describe(self) -> str:
        return self.name if self.name == "spectra" else f"{self.name} (scales {', '.join(map(str, self.scales))} px)"


def present_indices(bands: Sequence[str]) -> list[tuple[str, str, str]]:
    """The indices the bands allow: (name, band a, band b), in :data:`INDICES` order."""
    have = set(bands)
    out = []
    for name, pairs in INDICES.items():
        for a, b in pairs:
            if a in have and b in have:
                out.append((name, a, b))
                break
    return out


def feature_names(bands: Sequence[str], feature_set: FeatureSet) -> tuple[str, ...]:
    """Names of the features, in model column order, of ``feature_set`` on a stack with ``bands``."""
    names = list(bands)
    if feature_set.name == "spectra":
        return tuple(names)
    indices = [n for n, _, _ in present_indices(bands)]
    names += indices + ["brightness"]
    vegetation = "NDVI" in indices
    for s in feature_set.scales:
        names += [f"brightness_mean_{s}", f"brightness_sd_{s}", f"edges_{s}", f"brightness_rel_{s}"]
        if vegetation:
            names += [f"NDVI_mean_{s}"]
    return tuple(names)

"""Facts of the DSTL satellite-imagery dataset, written once.

Everything here is a fact of the real layout (``/work/shared/dstl-format.md``): band groups and their
files, band names and order, bit depths, band wavelength ranges, the label layers of every class, the
ImageIds and the ``grid_sizes.csv`` coordinate formula (the format of its WKT CSVs is
:mod:`sattag.wkt_csv`'s). The readers (``sattag.ingest``, ``sattag.labels``, ``sattag.evaluate``) and
the generator (``sattag.synth``) take them from here.
"""
from __future__ import annotations

from affine import Affine

__all__ = [
    "ALL_IDS", "BAND_RANGES", "BIT_DEPTH", "CLASS_LAYERS", "DSTL_BANDS", "EXTRA_LAYERS", "GRID_SQUARES",
    "GROUP_BANDS", "GROUP_FILES", "LAYER_CLASS", "REAL_TRAIN_IDS", "dstl_transform",
]

# --------------------------------------------------------------------------------------------- bands

#: Band names per file group, in file order: the 3-band RGB file (``R``), panchromatic ``P``,
#: multispectral ``M`` (8 bands) and SWIR ``A`` (8 bands).
GROUP_BANDS: dict[str, tuple[str, ...]] = {
    "R": ("R", "G", "B"),
    "P": ("P",),
    "M": tuple(f"M{i}" for i in range(1, 9)),
    "A": tuple(f"A{i}" for i in range(1, 9)),
}

#: File of each group relative to the data folder (``{id}``: the ImageId).
GROUP_FILES: dict[str, str] = {
    "R": "three_band/{id}.tif",
    "P": "sixteen_band/{id}_P.tif",
    "M": "sixteen_band/{id}_M.tif",
    "A": "sixteen_band/{id}_A.tif",
}

#: Band order of a DSTL stack: the RGB file, then P, M and A.
DSTL_BANDS: tuple[str, ...] = tuple(b for g in ("R", "P", "M", "A") for b in GROUP_BANDS[g])

#: Bits per value of each group's file (uint16 files; RGB, P and M are 11-bit, the SWIR A file 14-bit).
BIT_DEPTH: dict[str, int] = {"R": 11, "P": 11, "M": 11, "A": 14}

#: Wavelength range (nm) of every band, in ``DSTL_BANDS`` order (WorldView-3; RGB of the pan-sharpened
#: 3-band file as the visible bands).
BAND_RANGES: dict[str, tuple[float, float]] = {
    "R": (620, 690), "G": (500, 580), "B": (440, 510), "P": (450, 800),
    "M1": (400, 450), "M2": (450, 510), "M3": (510, 580), "M4": (585, 625),
    "M5": (630, 690), "M6": (705, 745), "M7": (770, 895), "M8": (860, 1040),
    "A1": (1195, 1225), "A2": (1550, 1590), "A3": (1640, 1680), "A4": (1710, 1750),
    "A5": (2145, 2185), "A6": (2185, 2225), "A7": (2235, 2285), "A8": (2295, 2365),
}

# --------------------------------------------------------------------------------------------- labels

#: GeoJSON layer files (``train_geojson_v3/<ImageId>/<layer>.geojson``) of each scored ClassType.
CLASS_LAYERS: dict[int, tuple[str, ...]] = {
    1: ("001_MM_L3_RESIDENTIAL_BUILDING", "001_MM_L2_LARGE_BUILDING", "001_MM_L3_NON_RESIDENTIAL_BUILDING"),
    2: ("001_MM_L5_MISC_SMALL_STRUCTURE",),
    3: ("002_TR_L3_GOOD_ROADS",),
    4: ("002_TR_L4_POOR_DIRT_CART_TRACK", "002_TR_L6_FOOTPATH_TRAIL"),
    5: ("006_VEG_L5_GROUP_TREES", "006_VEG_L2_WOODLAND", "006_VEG_L3_HEDGEROWS", "006_VEG_L5_STANDALONE_TREES"),
    6: ("007_AGR_L6_ROW_CROP", "007_AGR_L2_CONTOUR_PLOUGHING_CROPLAND"),
    7: ("008_WTR_L3_WATERWAY",),
    8: ("008_WTR_L2_STANDING_WATER",),
    9: ("003_VH_L4_LARGE_VEHICLE",),
    10: ("003_VH_L5_SMALL_VEHICLE", "003_VH_L6_MOTORBIKE"),
}
#: Layer file stem -> ClassType. Layers not listed are not scored.
LAYER_CLASS: dict[str, int] = {layer: cid for cid, layers in CLASS_LAYERS.items() for layer in layers}
#: Some of the unscored layers of the real folders (readers ignore them; the generator writes these).
EXTRA_LAYERS: tuple[str, ...] = ("001_MM_L4_BRIDGE", "004_UPI_L5_PYLONS", "007_AGR_L2_ORCHARD")

# --------------------------------------------------------------------------------------------- ids

#: Grid squares of the dataset; each is cut 5 x 5 into ImageIds ``GGGG_r_c`` (row, column 0..4).
GRID_SQUARES: tuple[str, ...] = tuple(str(g) for g in range(6010, 6181, 10))
#: The 450 ImageIds.
ALL_IDS: tuple[str, ...] = tuple(f"{g}_{r}_{c}" for g in GRID_SQUARES for r in range(5) for c in range(5))
#: The 25 training images.
REAL_TRAIN_IDS: tuple[str, ...] = (
    "6010_1_2", "6040_2_2", "6100_1_3", "6120_2_2", "6170_4_1", "6010_4_2", "6010_4_4", "6040_1_0",
    "6040_1_3", "6040_4_4", "6060_2_3", "6070_2_3", "6090_2_0", "6100_2_2", "6100_2_3", "6110_1_2",
    "6110_3_1", "6110_4_0", "6120_2_0", "6140_1_2", "6140_3_1", "6150_2_3", "6160_2_1", "6170_0_4",
    "6170_2_4",
)

# --------------------------------------------------------------------------------------------- grid


def dstl_transform(xmax: float, ymin: float, height: int, width: int) -> Affine:
    """Affine pixel (col, row) -> DSTL grid units for a raster of ``height`` x ``width`` pixels.

    ``grid_sizes.csv`` gives (Xmax, Ymin) per image; W' = W*W/(W+1), H' = H*H/(H+1),
    x_px = x*W'/Xmax, y_px = y*H'/Ymin; this is the inverse, x = x_px*Xmax/W', y = y_px*Ymin/H'.
    """
    w_ = width * width / (width + 1)
    h_ = height * height / (height + 1)
    return Affine(xmax / w_, 0.0, 0.0, 0.0, ymin / h_, 0.0)

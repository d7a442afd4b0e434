"""What each kind of object is made of: the material choices behind the classes' confusions.

:mod:`sattag.synth.dress` asks here for the surface of every object it paints; the answer is a
:class:`Paint`: a primary material, a secondary one and the secondary's share (sub-pixel mixtures:
grass between the ruts of a track, soil between young plants, gaps in a canopy, dry patches in a
meadow), and a brightness factor (age, dirt, moisture). Materials are shared between classes as on the ground
(see :mod:`sattag.synth.spectra`), and within a class objects differ: several roof materials, some
close to roads and concrete; crop fields at every stage from ploughed soil to stubble; dirt, grassy
and gravel tracks; clear, turbid and green water. The shares in the tables below (with the amounts of
bushes, walls and fences in :mod:`~sattag.synth.layout` / :mod:`~sattag.synth.dress`) are what
``benchmarks/generator_auc.py`` was calibrated with: per-pixel models on generated data score within
0.02 of their AUC on the real data for every class.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sattag.synth.spectra import CROP_STAGES, Conditions


class Paint(NamedTuple):
    """One object as the renderer paints it: ``mat`` with ``frac`` of ``mat2`` mixed in, x ``tint``;
    ``grain``: how much that share varies from pixel to pixel (sparse cover: single plants, tufts,
    ruts, gaps between crowns). ``vigour``: how well its plants grow (more near-infrared, less red
    and SWIR), relative, about -1..1; each field, meadow and tree has its own."""

    geom: object
    mat: str
    mat2: str
    frac: float
    tint: float
    grain: float = 0.0
    vigour: float = 0.0


def _pick(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = list(table)
    p = np.array([table[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


#: Roof materials per building kind; ``asphalt`` = bitumen felt, ``concrete`` and ``gravel`` = flat roofs.
ROOFS: dict[str, dict[str, float]] = {
    "residential": {"roof_tile": 0.26, "roof_slate": 0.12, "roof_metal": 0.14, "roof_rust": 0.08,
                    "concrete": 0.17, "asphalt": 0.11, "gravel": 0.05, "thatch": 0.07},
    "non_residential": {"roof_metal": 0.28, "concrete": 0.28, "asphalt": 0.2, "roof_rust": 0.1,
                        "roof_tile": 0.07, "roof_slate": 0.04, "gravel": 0.03},
    "large": {"concrete": 0.33, "roof_metal": 0.33, "asphalt": 0.2, "gravel": 0.09, "roof_rust": 0.05},
    # small structures: sheds, huts, walls, tanks, silos, pads, containers
    "shed": {"roof_metal": 0.2, "roof_rust": 0.16, "roof_tile": 0.1, "roof_slate": 0.07, "concrete": 0.12,
             "asphalt": 0.08, "timber": 0.15, "thatch": 0.12},
    "wall": {"concrete": 0.45, "roof_tile": 0.25, "timber": 0.2, "roof_metal": 0.1},
    "structure": {"concrete": 0.3, "roof_metal": 0.26, "roof_rust": 0.12, "timber": 0.1, "asphalt": 0.06,
                  "gravel": 0.06, "thatch": 0.1},
}
#: Roofs with two sloping faces (one lit by the sun, one turned away); the others are flat.
PITCHED: frozenset[str] = frozenset({"roof_tile", "roof_slate", "roof_metal", "roof_rust", "thatch"})


def roof(rng: np.random.Generator, kind: str, geom) -> Paint:
    """A roof (or a wall, a tank, a pad) of ``kind`` (a key of ``ROOFS``), weathered in patches."""
    mat = _pick(rng, ROOFS[kind])
    if mat == "gravel":
        return gravel(rng, geom)
    mat2 = {"roof_metal": "roof_rust", "roof_tile": "roof_slate", "concrete": "asphalt_old"}.get(mat, mat)
    return Paint(geom, mat, mat2, float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.8, 1.2)))


#: Road surfaces: main roads, streets.
ROADS = {"main": {"asphalt": 0.6, "asphalt_old": 0.3, "concrete": 0.1},
         "street": {"asphalt_old": 0.45, "asphalt": 0.32, "concrete": 0.18, "gravel": 0.05}}


def road(rng: np.random.Generator, kind: str, geom) -> Paint:
    """A main road or a street: asphalt, old asphalt, concrete (a few streets gravel), some dirt."""
    mat = _pick(rng, ROADS[kind])
    if mat == "gravel":
        return gravel(rng, geom)
    return Paint(geom, mat, "soil" if mat != "concrete" else "asphalt_old", float(rng.uniform(0.0, 0.12)),
                 float(rng.uniform(0.85, 1.15)))


# ---- surfaces shared by several kinds of object (and so by several classes)


def bare(rng: np.random.Generator, geom) -> Paint:
    """Bare ground of the local soil with tufts of grass: dirt tracks and footpaths, fallow fields,
    building plots, field margins."""
    return Paint(geom, "soil", "grass", float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.85, 1.2)),
                 float(rng.uniform(0.1, 0.35)))


def ploughed(rng: np.random.Generator, geom) -> Paint:
    """Ploughed or harrowed soil: crop fields before they grow, fallow fields, tramlines."""
    return Paint(geom, "soil_ploughed", "soil", float(rng.uniform(0.0, 0.6)), float(rng.uniform(0.85, 1.15)))


def sward(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """Grass, greener or drier with the season: meadows, gardens, verges, grassed-over tracks."""
    return Paint(geom, "grass", "grass_dry", float(abs(rng.normal(0, 0.2))), float(rng.uniform(0.85, 1.15)),
                 float(rng.uniform(0.0, 0.2)))


def worn(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """Grass worn down to the soil here and there: grassed-over tracks, paths across meadows."""
    return Paint(geom, "grass", "soil", float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.85, 1.15)),
                 float(rng.uniform(0.2, 0.4)))


def weeds(rng: np.random.Generator, geom) -> Paint:
    """Dry weeds on thin soil: rough fallow, grassy tracks, waste ground."""
    return Paint(geom, "grass_dry", "soil", float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.9, 1.1)),
                 float(rng.uniform(0.1, 0.3)))


def canopy(rng: np.random.Generator, c: Conditions, geom, gaps: float = 0.3) -> Paint:
    """Tree crowns (broadleaf, bare in winter, or conifer) with gaps of grass between them: woods,
    tree groups, single trees and bushes too small for a label alike."""
    u = rng.random()
    grain = float(rng.uniform(0.3, 0.7))  # leaves and holes: crowns are clumped
    if u < 0.6 * c.leaf_off:
        return Paint(geom, "tree_bare", "grass", float(rng.uniform(0.0, gaps)), float(rng.uniform(0.85, 1.15)), grain)
    if u < 0.8:
        return Paint(geom, "tree", "grass", float(rng.uniform(0.0, gaps)), float(rng.uniform(0.8, 1.2)), grain)
    return Paint(geom, "conifer", "grass", float(rng.uniform(0.0, gaps)), float(rng.uniform(0.85, 1.15)), grain)


def gravel(rng: np.random.Generator, geom) -> Paint:
    """Gravel: tracks, yards, unpaved streets, flat gravel roofs."""
    return Paint(geom, "gravel", "soil", float(rng.uniform(0.0, 0.4)), float(rng.uniform(0.85, 1.15)))


#: Cart tracks and footpaths: bare ruts of the local soil, grassed-over or weedy tracks, tracks
#: across ploughed land, gravel, and faint ones that look like the land around them.
TRACKS = {"bare": 0.27, "worn": 0.25, "weeds": 0.14, "ploughed": 0.08, "gravel": 0.08, "faint": 0.18}


def track(rng: np.random.Generator, c: Conditions, geom, footpath: bool = False) -> Paint | None:
    """A track's surface, or None for a faint one (nothing of its own is painted)."""
    kind = _pick(rng, TRACKS)
    if kind == "gravel" and footpath:
        kind = "bare"
    if kind == "faint":
        return None
    if kind == "worn":
        return worn(rng, c, geom)
    return {"bare": bare, "weeds": weeds, "ploughed": ploughed, "gravel": gravel}[kind](rng, geom)


def crop_field(rng: np.random.Generator, c: Conditions, geom) -> tuple[Paint, str]:
    """A crop field at one of the season's stages; returns (paint, stage material)."""
    stage = CROP_STAGES[int(rng.choice(len(CROP_STAGES), p=np.asarray(c.crop_stage)))]
    if stage == "soil_ploughed":
        return ploughed(rng, geom), stage
    mat2, frac = {
        "crop_young": ("crop_green", rng.uniform(0.0, 0.5)),
        "crop_green": ("crop_young", rng.uniform(0.0, 0.4)),
        "crop_ripe": ("crop_green", rng.uniform(0.0, 0.35)),
        "stubble": ("soil", rng.uniform(0.0, 0.5)),
    }[stage]
    return Paint(geom, stage, mat2, float(frac), float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.05, 0.25))), stage


def meadow(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """Grassland (most) or a fallow field: bare or ploughed soil, or weeds; never a crop."""
    u = rng.random()
    if u < 0.62:
        return sward(rng, c, geom)
    if u < 0.75:
        return ploughed(rng, geom)
    if u < 0.88:
        return bare(rng, geom)
    return weeds(rng, geom)


def settlement_ground(rng: np.random.Generator, c: Conditions, p_paved: float, geom) -> Paint:
    """The ground of a settlement block: gardens, paved blocks, or a bare building plot."""
    u = rng.random()
    if u < p_paved:
        mat = _pick(rng, {"concrete": 0.4, "asphalt_old": 0.35, "gravel": 0.25})
        if mat == "gravel":
            return gravel(rng, geom)
        return Paint(geom, mat, "soil", float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.85, 1.15)))
    if u < p_paved + 0.12:
        return bare(rng, geom)
    return Paint(geom, "grass", "soil", float(rng.uniform(0.05, 0.45)), float(rng.uniform(0.85, 1.15)))


#: Yards and car parks beside large buildings.
YARDS = {"asphalt": 0.35, "concrete": 0.35, "asphalt_old": 0.15, "gravel": 0.15}


def yard(rng: np.random.Generator, geom) -> Paint:
    """A yard, car park, patio or drive: the road and flat-roof materials."""
    mat = _pick(rng, YARDS)
    if mat == "gravel":
        return gravel(rng, geom)
    return Paint(geom, mat, "soil", float(rng.uniform(0.0, 0.2)), float(rng.uniform(0.85, 1.15)))


def woodland(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """A wood: crowns with gaps of grass between them."""
    return canopy(rng, c, geom, gaps=0.4)


def tree(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """A single tree or a group."""
    return canopy(rng, c, geom, gaps=0.35)


def hedge(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """A hedgerow: shrubs and small trees along a field edge."""
    if rng.random() < 0.5:
        return canopy(rng, c, geom, gaps=0.4)
    return Paint(geom, "hedge", "grass_dry", float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.85, 1.15)))


def scrub(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """Bushes and young trees too small for a tree label: crowns like the labelled ones."""
    if rng.random() < 0.75:
        return canopy(rng, c, geom, gaps=0.4)
    return Paint(geom, "scrub", "grass", float(rng.uniform(0.0, 0.4)), float(rng.uniform(0.8, 1.2)))


def water(rng: np.random.Generator, c: Conditions, geom, river: bool) -> Paint:
    """A river (the scene's turbidity, some algae) or a pond (clear, turbid or green)."""
    if river:
        return Paint(geom, "water_turbid", "water_algae", float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.9, 1.1)))
    mat = _pick(rng, {"water": 0.4, "water_turbid": 0.35, "water_algae": 0.25})
    return Paint(geom, mat, "water", float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.85, 1.15)))


def fence(rng: np.random.Generator, c: Conditions, geom) -> Paint:
    """A fence: posts and wire over the field's own ground, which fills most of each pixel."""
    return Paint(geom, _pick(rng, {"timber": 0.6, "roof_metal": 0.2, "concrete": 0.2}), "grass",
                 float(rng.uniform(0.55, 0.9)), float(rng.uniform(0.85, 1.15)), 0.15)


#: Car and truck paints.
CARS = {"car_white": 0.28, "car_black": 0.32, "car_silver": 0.26, "car_red": 0.07, "car_blue": 0.07}
TRUCKS = {"truck_white": 0.4, "truck_silver": 0.3, "truck_colour": 0.3}


def vehicle(rng: np.random.Generator, geom, large: bool) -> Paint:
    """A car (white, black, silver, red, blue: dark and grey ones close to asphalt and concrete) or a lorry."""
    mat = _pick(rng, TRUCKS if large else CARS)
    return Paint(geom, mat, mat, 0.0, float(rng.uniform(0.85, 1.15)))

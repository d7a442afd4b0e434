"""Materials, their reflectance over 400-2400 nm, and the per-scene conditions that change them.

Reflectance comes from a few **end-members** (green leaf canopy, conifer needles, dry vegetation,
light, dark and red soils, bark, fresh and aged asphalt, concrete, gravel, clay tile, slate, metal,
car paints, clear, turbid and algal water), each a curve over 400-2400 nm with the features WorldView-3's
bands see: the chlorophyll wells and the red edge, leaf water in the SWIR, cellulose near 2100 nm,
clay (Al-OH) near 2200 nm, carbonate near 2330 nm, hydrocarbons of asphalt near 1730 and 2310 nm.

A **material** (the values of the material map) is a mix of end-members, and several classes share
materials as they do on the ground: asphalt in roads, car parks and bitumen roofs; concrete in roads,
yards, flat roofs and small structures; the scene's soil in tracks, ploughed crop fields, fallow
fields, building plots and tramlines; green leaf in trees, crops, grass and scrub. The mix of some
materials depends on the scene's :class:`Conditions` (season, soil, water), drawn per scene with its
illumination and atmosphere, so scenes differ from one another as real ones do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sattag.dstl import BAND_RANGES, DSTL_BANDS

#: Wavelength anchors (nm) of the end-member curves.
WL = np.array([400, 450, 500, 550, 600, 650, 680, 700, 720, 750, 800, 900, 1000, 1210, 1570, 1660, 1730,
               2165, 2205, 2260, 2330, 2400], float)

#: End-members: name -> reflectance at ``WL``.
ENDMEMBERS: dict[str, tuple[float, ...]] = {
    # vegetation
    "leaf": (.030, .035, .045, .100, .060, .040, .035, .080, .200, .380, .440, .460, .450, .380, .260, .250,
             .220, .120, .120, .100, .080, .070),
    "needle": (.020, .025, .030, .060, .035, .025, .022, .050, .130, .250, .300, .310, .300, .250, .150, .150,
               .130, .060, .060, .050, .040, .040),
    "dry_veg": (.070, .090, .120, .170, .220, .250, .260, .280, .300, .320, .340, .370, .390, .430, .420, .430,
                .400, .280, .300, .280, .260, .240),
    "bark": (.050, .060, .070, .090, .110, .130, .140, .150, .170, .200, .230, .260, .280, .320, .330, .330,
             .310, .240, .240, .230, .210, .200),
    # soils
    "soil_light": (.100, .130, .160, .200, .240, .270, .280, .290, .300, .310, .320, .340, .360, .400, .440,
                   .450, .450, .400, .370, .390, .370, .350),
    "soil_dark": (.040, .050, .065, .080, .100, .115, .120, .125, .130, .135, .145, .160, .170, .190, .220,
                  .230, .230, .200, .190, .200, .190, .180),
    "soil_red": (.050, .060, .080, .120, .200, .260, .280, .290, .300, .305, .310, .300, .320, .380, .420,
                 .430, .430, .400, .370, .380, .360, .350),
    # man-made surfaces
    "asphalt": (.040, .045, .050, .055, .060, .065, .065, .067, .068, .070, .075, .080, .085, .095, .110, .110,
                .100, .110, .110, .110, .100, .100),
    "asphalt_old": (.080, .100, .115, .130, .140, .150, .155, .160, .162, .165, .170, .180, .190, .210, .240,
                    .250, .230, .240, .240, .240, .220, .220),
    "concrete": (.180, .240, .280, .310, .320, .330, .330, .335, .340, .340, .350, .360, .370, .380, .390, .390,
                 .380, .360, .350, .340, .300, .320),
    "gravel": (.150, .190, .220, .250, .270, .290, .290, .300, .300, .310, .310, .320, .330, .350, .380, .380,
               .370, .350, .330, .340, .300, .310),
    "tile": (.050, .060, .070, .090, .180, .280, .310, .320, .330, .340, .360, .380, .400, .450, .500, .500,
             .490, .450, .420, .440, .430, .420),
    "slate": (.070, .075, .080, .082, .084, .085, .086, .087, .088, .090, .092, .095, .100, .110, .130, .135,
              .135, .140, .140, .140, .140, .140),
    "metal": (.350, .380, .400, .410, .410, .410, .410, .410, .410, .410, .410, .400, .390, .370, .330, .320,
              .310, .270, .260, .260, .250, .250),
    "rust": (.060, .070, .080, .110, .190, .250, .270, .280, .290, .300, .320, .300, .310, .340, .360, .360,
             .350, .320, .310, .310, .300, .300),
    # car paints (clear coat: polymer features in the SWIR)
    "paint_white": (.600, .750, .800, .810, .820, .820, .820, .820, .820, .820, .810, .780, .750, .650, .550,
                    .520, .450, .350, .330, .300, .280, .270),
    "paint_black": (.040, .040, .040, .040, .040, .040, .040, .040, .042, .045, .050, .060, .070, .080, .090,
                    .090, .080, .070, .070, .070, .060, .060),
    "paint_silver": (.300, .320, .330, .340, .340, .340, .340, .340, .340, .340, .340, .340, .330, .320, .280,
                     .270, .240, .200, .190, .180, .170, .170),
    "paint_red": (.050, .050, .050, .050, .200, .450, .500, .520, .530, .540, .550, .550, .540, .500, .450,
                  .430, .380, .300, .280, .270, .250, .250),
    "paint_blue": (.100, .250, .200, .100, .060, .050, .050, .060, .080, .150, .300, .400, .450, .450, .400,
                   .380, .330, .270, .250, .240, .220, .220),
    # water
    "water": (.060, .070, .065, .050, .035, .025, .020, .018, .015, .012, .008, .004, .002, .001, .001, .001,
              .001, .001, .001, .001, .001, .001),
    "water_turbid": (.060, .080, .100, .120, .110, .090, .080, .075, .070, .060, .040, .020, .010, .004, .002,
                     .002, .002, .001, .001, .001, .001, .001),
    "water_algae": (.030, .035, .045, .070, .045, .035, .040, .060, .070, .080, .070, .040, .020, .006, .003,
                    .003, .003, .002, .002, .002, .002, .002),
}
_E = {k: np.array(v, float) for k, v in ENDMEMBERS.items()}

#: Materials (values of the material map, in this order). What each is made of: :func:`material_curves`.
MATERIAL_NAMES: tuple[str, ...] = (
    # ground and vegetation
    "soil", "soil_ploughed", "grass", "grass_dry", "scrub", "crop_green", "crop_young", "crop_ripe",
    "stubble", "tree", "conifer", "tree_bare", "hedge",
    # man-made
    "asphalt", "asphalt_old", "concrete", "gravel", "roof_tile", "roof_slate", "roof_metal", "roof_rust", "timber",
    "thatch",
    # water
    "water", "water_turbid", "water_algae",
    # vehicles
    "car_white", "car_black", "car_silver", "car_red", "car_blue", "truck_white", "truck_silver",
    "truck_colour",
)
MAT: dict[str, int] = {name: i for i, name in enumerate(MATERIAL_NAMES)}
#: Materials only roofs (of buildings and small structures) are made of; bitumen, concrete and gravel
#: roofs use ``asphalt``, ``concrete`` and ``gravel`` as roads and yards do.
ROOF_ONLY: tuple[str, ...] = ("roof_tile", "roof_slate", "roof_metal", "roof_rust", "thatch")
#: Tree crowns.
CANOPY: tuple[str, ...] = ("tree", "conifer", "tree_bare", "hedge", "scrub")
#: Road surfaces.
ROAD_SURFACES: tuple[str, ...] = ("asphalt", "asphalt_old", "concrete")
#: Vehicle paints.
VEHICLE_PAINTS: tuple[str, ...] = tuple(n for n in MATERIAL_NAMES if n.startswith(("car_", "truck_")))

# Texture amplitudes per material (relative brightness): fine (pixel), mid (~3 m), crop-row stripes;
# and the spread of the secondary material's share (patchy cover, gaps, wet spots).
TEX: dict[str, tuple[float, float, float, float]] = {
    "soil": (0.09, 0.10, 0.0, 0.12), "soil_ploughed": (0.12, 0.10, 0.12, 0.12),
    "grass": (0.10, 0.10, 0.0, 0.2), "grass_dry": (0.10, 0.10, 0.0, 0.2), "scrub": (0.18, 0.12, 0.0, 0.2),
    "crop_green": (0.09, 0.08, 0.10, 0.15), "crop_young": (0.10, 0.09, 0.12, 0.18),
    "crop_ripe": (0.09, 0.08, 0.10, 0.15), "stubble": (0.10, 0.09, 0.12, 0.15),
    "tree": (0.25, 0.15, 0.0, 0.25), "conifer": (0.25, 0.14, 0.0, 0.2), "tree_bare": (0.2, 0.14, 0.0, 0.2),
    "hedge": (0.22, 0.14, 0.0, 0.2),
    "asphalt": (0.05, 0.06, 0.0, 0.06), "asphalt_old": (0.06, 0.07, 0.0, 0.1), "concrete": (0.06, 0.06, 0.0, 0.08),
    "gravel": (0.09, 0.08, 0.0, 0.12), "roof_tile": (0.06, 0.05, 0.0, 0.08), "roof_slate": (0.06, 0.05, 0.0, 0.06),
    "roof_metal": (0.05, 0.04, 0.0, 0.06), "roof_rust": (0.07, 0.06, 0.0, 0.1), "timber": (0.08, 0.06, 0.0, 0.08),
    "thatch": (0.10, 0.06, 0.0, 0.1),
    "water": (0.02, 0.03, 0.0, 0.10), "water_turbid": (0.02, 0.03, 0.0, 0.10), "water_algae": (0.03, 0.04, 0.0, 0.12),
}
#: Vigour: how much plant vigour (a smooth field plus each object's own) moves a material's
#: near-infrared up and its red and SWIR down (more leaves, more leaf water).
VEG: dict[str, float] = {"grass": 0.12, "grass_dry": 0.06, "scrub": 0.10, "crop_green": 0.15, "crop_young": 0.10,
                         "crop_ripe": 0.06, "tree": 0.15, "conifer": 0.10, "hedge": 0.12}


@dataclass(frozen=True)
class Conditions:
    """What differs from scene to scene besides the land: season, soil, water, sun and atmosphere.

    ``green``: vegetation growth, 0 (dormant, dry season) .. 1 (full leaf). ``dry``: share of dry,
    senescent grass. ``leaf_off``: share of bare branches in deciduous crowns. ``moisture``: soil
    wetness (darker soils). ``soil_red``: iron-rich (red) share of the soil. ``turbid``: sediment in
    river water. ``illum``: sunlight x cos(zenith), relative. ``sun_azimuth`` (radians, image frame),
    ``sun_elevation`` (degrees): shadow direction and length. ``diffuse``: skylight share lighting a
    shadow at 550 nm. ``tau``: aerosol optical depth at 550 nm (haze), ``angstrom``: its wavelength
    exponent. ``band_gain``: per-band calibration factors. ``noise``: sensor noise factor. ``crop_stage``:
    probabilities of the crop stages (ploughed, young, green, ripe, stubble) this season.
    """

    green: float = 0.8
    dry: float = 0.2
    leaf_off: float = 0.0
    moisture: float = 0.2
    soil_red: float = 0.2
    turbid: float = 0.3
    illum: float = 1.0
    sun_azimuth: float = 2.2
    sun_elevation: float = 50.0
    diffuse: float = 0.3
    tau: float = 0.2
    angstrom: float = 1.3
    band_gain: dict[str, float] = field(default_factory=dict)
    noise: float = 1.0
    crop_stage: tuple[float, ...] = (0.15, 0.15, 0.4, 0.2, 0.1)


CROP_STAGES: tuple[str, ...] = ("soil_ploughed", "crop_young", "crop_green", "crop_ripe", "stubble")


def draw_conditions(rng: np.random.Generator) -> Conditions:
    """The conditions of one scene: a season, a soil, a sun and an atmosphere."""
    season = float(rng.uniform(0.0, 1.0))  # 0 spring .. 0.5 summer .. 1 dry season / winter
    green = float(np.clip(1.0 - 0.9 * max(0.0, season - 0.35) / 0.65 + rng.normal(0, 0.08), 0.15, 1.0))
    dry = float(np.clip(0.6 * season + rng.normal(0, 0.1), 0.0, 0.8))
    # crop stages follow the season: ploughed and young early, green in summer, ripe and stubble late
    stage = np.array([
        0.35 * (1 - season) + 0.25 * season,   # ploughed
        0.35 * (1 - season) + 0.05,             # young
        0.6 * math.exp(-((season - 0.4) / 0.3) ** 2) + 0.05,  # green
        0.5 * math.exp(-((season - 0.7) / 0.2) ** 2) + 0.03,  # ripe
        0.4 * max(0.0, season - 0.5) + 0.03,    # stubble
    ])
    stage = stage * rng.uniform(0.6, 1.4, stage.size)
    stage /= stage.sum()
    gains = {b: float(rng.normal(1.0, 0.02)) for b in DSTL_BANDS}
    return Conditions(
        green=green, dry=dry, leaf_off=float(np.clip(rng.normal(0.5 * (1 - green), 0.1), 0.0, 0.6)),
        moisture=float(rng.uniform(0.0, 0.6)), soil_red=float(rng.uniform(0.0, 0.7)),
        turbid=float(rng.uniform(0.0, 1.0)), illum=float(rng.uniform(0.75, 1.2)),
        sun_azimuth=float(rng.uniform(0, 2 * math.pi)), sun_elevation=float(rng.uniform(30, 72)),
        diffuse=float(rng.uniform(0.18, 0.42)), tau=float(rng.uniform(0.05, 0.6)),
        angstrom=float(rng.uniform(0.6, 2.0)), band_gain=gains, noise=float(rng.uniform(0.8, 1.5)),
        crop_stage=tuple(float(p) for p in stage),
    )


def material_curves(c: Conditions) -> np.ndarray:
    """Reflectance at ``WL`` of every material under conditions ``c``: (materials, anchors)."""
    soil = (1 - c.soil_red) * _E["soil_light"] + c.soil_red * _E["soil_red"]
    soil = (1 - c.moisture) * soil + c.moisture * _E["soil_dark"]
    ploughed = 0.55 * soil + 0.45 * _E["soil_dark"]
    # the season's green leaf: less chlorophyll and leaf water when vegetation is dormant
    leaf = c.green * _E["leaf"] + (1 - c.green) * (0.6 * _E["leaf"] + 0.4 * _E["dry_veg"])
    # the season's grass (greener or drier); meadows mix in more dry grass here and there
    grass = (0.75 * (1 - c.dry)) * leaf + (0.1 + 0.75 * c.dry) * _E["dry_veg"] + 0.15 * soil
    curves = {
        "soil": soil,
        "soil_ploughed": ploughed,
        "grass": grass,
        "grass_dry": 0.25 * leaf + 0.55 * _E["dry_veg"] + 0.2 * soil,
        "scrub": 0.45 * leaf + 0.25 * _E["needle"] + 0.1 * _E["bark"] + 0.2 * soil,
        "crop_green": 0.9 * _E["leaf"] + 0.1 * soil,
        "crop_young": 0.4 * _E["leaf"] + 0.6 * ploughed,
        "crop_ripe": 0.75 * _E["dry_veg"] + 0.1 * leaf + 0.15 * soil,
        "stubble": 0.5 * _E["dry_veg"] + 0.5 * soil,
        # crowns: leaves with the shade between them
        "tree": 0.8 * ((1 - c.leaf_off) * leaf + c.leaf_off * (0.6 * _E["bark"] + 0.4 * soil)),
        "conifer": 0.85 * _E["needle"],
        "tree_bare": 0.6 * _E["bark"] + 0.25 * soil + 0.15 * leaf,
        "hedge": 0.85 * ((1 - 0.5 * c.leaf_off) * leaf + 0.5 * c.leaf_off * _E["bark"]),
        "asphalt": _E["asphalt"],
        "asphalt_old": _E["asphalt_old"],
        "concrete": _E["concrete"],
        "gravel": 0.8 * _E["gravel"] + 0.2 * soil,
        "roof_tile": _E["tile"],
        "roof_slate": _E["slate"],
        "roof_metal": _E["metal"],
        "roof_rust": _E["rust"],
        "timber": 0.6 * _E["bark"] + 0.4 * _E["dry_veg"],
        "thatch": 0.8 * _E["dry_veg"] + 0.2 * _E["bark"],
        "water": 0.85 * _E["water"] + 0.15 * _E["water_algae"],
        "water_turbid": (1 - c.turbid) * _E["water"] + c.turbid * _E["water_turbid"],
        "water_algae": _E["water_algae"],
        "car_white": _E["paint_white"],
        "car_black": _E["paint_black"],
        "car_silver": _E["paint_silver"],
        "car_red": _E["paint_red"],
        "car_blue": _E["paint_blue"],
        "truck_white": 0.9 * _E["paint_white"] + 0.1 * _E["metal"],
        "truck_silver": 0.7 * _E["paint_silver"] + 0.3 * _E["metal"],
        "truck_colour": 0.5 * _E["paint_red"] + 0.5 * _E["paint_blue"],
    }
    return np.stack([curves[n] for n in MATERIAL_NAMES])


def band_average(curves: np.ndarray, band: str) -> np.ndarray:
    """Mean of each curve (rows of ``curves``, at ``WL``) over ``band``'s wavelength range."""
    lo, hi = BAND_RANGES[band]
    wl = np.linspace(lo, hi, 32)
    return np.array([np.interp(wl, WL, r).mean() for r in curves])


def band_reflectance(band: str, conditions: Conditions | None = None) -> np.ndarray:
    """Mean reflectance of every material over ``band``'s wavelength range: (materials,) float."""
    return band_average(material_curves(conditions or Conditions()), band)


def band_centre(band: str) -> float:
    lo, hi = BAND_RANGES[band]
    return (lo + hi) / 2


def atmosphere(band: str, c: Conditions) -> tuple[float, float, float]:
    """(transmittance, path reflectance, shadow light) of the scene's atmosphere in ``band``.

    Rayleigh scattering (~lambda^-4) and aerosols (optical depth ``tau`` at 550 nm, ~lambda^-angstrom)
    dim the ground's signal on the way down and up, add path radiance (as an apparent reflectance),
    and light the shadows with skylight, bluer than the sun.
    """
    lam = band_centre(band) / 1000.0
    tau_r = 0.0088 * lam ** -4.05
    tau_a = c.tau * (0.55 / lam) ** c.angstrom
    mu = math.sin(math.radians(c.sun_elevation))
    trans = math.exp(-(tau_r + tau_a) * (1.0 / mu + 1.0) * 0.35)
    path = 0.3 * tau_r + 0.12 * tau_a
    shade = min(1.0, c.diffuse * (0.55 / lam) ** (0.8 + 0.4 * c.angstrom) * (1.0 + 0.8 * c.tau))
    return trans, path, shade

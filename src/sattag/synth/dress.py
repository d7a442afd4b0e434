"""What the land is made of: the painter's list of a laid-out scene under its conditions.

:func:`dress` walks the objects of a :class:`~sattag.synth.layout.Layout` in painting order (ground,
fields, bushes, tracks, water, roads, trees, roofs, structures, vehicles), asks
:mod:`sattag.synth.surfaces` for each one's surface, adds what real scenes have and labels leave
out (tramlines in crop fields, bushes too small for a tree label, the sunlit and the shaded face of
pitched roofs) and lists what casts shadows and how tall it is. It draws from its own random stream,
so the same land can be dressed for another season.
"""
from __future__ import annotations

import math

import numpy as np
import shapely

from sattag.synth import surfaces
from sattag.synth.layout import Layout
from sattag.synth.shapes import circles, polys_of, rot_rects
from sattag.synth.spectra import Conditions
from sattag.synth.surfaces import Paint

#: Share of a settlement block paved, per scene type.
P_PAVED = {"rural": 0.15, "village": 0.2, "suburban": 0.3, "urban": 0.6}
#: Bushes: fpx^2 of ground per bush in meadows, settlements and woods.
BUSH_SPACING = {"meadow": 1600.0, "settlement": 1600.0, "wood": 1000.0}
#: Heights (fpx, min..max) of what casts shadows.
HEIGHTS = {"residential": (16, 30), "non_residential": (16, 40), "large": (25, 60), "shed": (6, 12),
           "wall": (5, 8), "structure": (6, 30), "wood": (30, 60), "hedge": (6, 15), "tree": (15, 50),
           "orchard": (10, 20), "bush": (5, 15), "fringe": (4, 10), "lorry": (10, 13), "car": (4, 6)}


def dress(L: Layout, cond: Conditions, rng: np.random.Generator) -> Layout:
    """Fill ``L.paint`` and ``L.casters`` for the scene's conditions ``cond``; returns ``L``."""
    parts = L.parts
    P: list[Paint] = []
    casters: list[tuple[object, float, bool]] = []

    def cast(geoms, what: str, crown: bool = False) -> None:
        lo, hi = HEIGHTS[what]
        casters.extend((g, float(h), crown) for g, h in zip(geoms, rng.uniform(lo, hi, len(geoms))))

    # ---- ground: meadows and fallow fields, glades of woods, orchards, settlements, yards, patios
    P += [surfaces.meadow(rng, cond, m) for m in parts.meadow]
    P += [surfaces.sward(rng, cond, wc) if rng.random() < 0.6 else surfaces.weeds(rng, wc) for wc in parts.wood_cells]
    P += [surfaces.sward(rng, cond, o) if rng.random() < 0.7 else surfaces.weeds(rng, o) for o in parts.orchards]
    P += [surfaces.settlement_ground(rng, cond, P_PAVED[parts.kind], b) for b in parts.settle_blocks]
    P += [surfaces.yard(rng, y) for y in parts.paved + parts.patios]
    # ---- crop fields, some with tramlines (pairs of wheel marks, bare soil, part of the field)
    for f, ang in parts.crop_fields:
        paint, stage = surfaces.crop_field(rng, cond, f)
        P.append(paint)
        if stage in ("crop_young", "crop_green", "crop_ripe") and rng.random() < 0.6:
            P += [surfaces.ploughed(rng, t) for t in _tramlines(rng, f, ang)]
    # ---- bushes too small for a tree label: along the edges of woods, in meadows, gardens and glades
    no_tree = np.array(polys_of(parts.no_tree), dtype=object)  # where none stands, by its parts
    fringe = []
    for w in parts.woods:
        for ring in polys_of(w.buffer(rng.uniform(6, 16), quad_segs=2)):
            line = ring.exterior
            fringe.append(shapely.get_coordinates(shapely.line_interpolate_point(
                line, np.arange(0, line.length, rng.uniform(25, 60)))))
    if fringe:
        xy = np.concatenate(fringe)
        xy = xy + rng.normal(0, 4, xy.shape)
        _bushes(rng, cond, circles(xy, rng.uniform(3, 9, len(xy)), 2), no_tree, P, cast, "fringe")
    areas = ([(m, BUSH_SPACING["meadow"]) for m in parts.meadow]
             + [(b, BUSH_SPACING["settlement"]) for b in parts.settle_blocks]
             + [(w, BUSH_SPACING["wood"]) for w in parts.wood_cells])
    for area, per in areas:
        n = rng.poisson(area.area / per)
        if n:
            minx, miny, maxx, maxy = area.bounds
            xy = rng.uniform([minx, miny], [maxx, maxy], (n, 2))
            xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
            _bushes(rng, cond, circles(xy, rng.uniform(4, 14, len(xy)), 2), no_tree, P, cast, "bush")
    # ---- unlabelled bare lines, tracks (grass between the ruts of some), footpaths
    P += [surfaces.bare(rng, g) if rng.random() < 0.6 else surfaces.weeds(rng, g) for g in parts.margins]
    P += [t for t in (surfaces.track(rng, cond, g) for g in parts.tracks) if t is not None]
    for ln, hw in parts.track_lines:
        if rng.random() < 0.35:
            P.append(surfaces.sward(rng, cond, ln.buffer(0.3 * hw, quad_segs=1)))
    P += [t for t in (surfaces.track(rng, cond, g, footpath=True) for g in parts.paths) if t is not None]
    # ---- water, roads
    P += [surfaces.water(rng, cond, g, river=True) for g in parts.river]
    P += [surfaces.water(rng, cond, g, river=False) for g in parts.ponds]
    P += [surfaces.road(rng, "main" if main else "street", g) for g, main in parts.roads]
    # ---- trees (crowns may hang over roads and roofs: painted after them)
    P += [surfaces.woodland(rng, cond, p) for p in parts.woods]
    P += [surfaces.hedge(rng, cond, p) for p in parts.hedges]
    P += [surfaces.tree(rng, cond, p) for p in parts.orchard_trees + parts.groups + parts.singles]
    cast(parts.woods, "wood", True)
    cast(parts.hedges, "hedge", True)
    cast(parts.orchard_trees, "orchard", True)
    cast(parts.groups + parts.singles, "tree", True)
    # ---- roofs, with the two faces of pitched roofs; structures, fences, pylons
    for kind, footprints in parts.buildings.items():
        for b in footprints:
            paint = surfaces.roof(rng, kind, b)
            P.append(paint)
            if paint.mat in surfaces.PITCHED and id(b) in parts.rects:
                P += _roof_faces(rng, paint, parts.rects[id(b)], cond)
        cast(footprints, kind)
    for kind, geoms in (("shed", parts.sheds), ("wall", parts.walls), ("structure", parts.structures)):
        P += [surfaces.roof(rng, kind, g) for g in geoms]
        cast(geoms, kind)
    P += [Paint(g, "roof_metal", "roof_rust", float(rng.uniform(0, 0.5)), 1.0) for g in parts.pylons]
    P += [surfaces.fence(rng, cond, g) for g in parts.fences]
    # ---- vehicles
    P += [surfaces.vehicle(rng, g, large=True) for g in parts.large_vehicles]
    P += [surfaces.vehicle(rng, g, large=False) for g in parts.small_vehicles]
    cast(parts.large_vehicles, "lorry")
    cast(parts.small_vehicles, "car")
    # every object's own plant vigour (matters where its materials are plants)
    vig = rng.normal(0.0, 1.0, len(P))
    L.paint = [p._replace(vigour=float(v)) for p, v in zip(P, vig)]
    L.casters = casters
    return L


def _touching(geoms: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """``shapely.intersects(geoms, union of parts)``: each part tested against the geometries near it
    only (a tree of ``geoms``), not every geometry against the whole."""
    hit = np.zeros(len(geoms), bool)
    if len(geoms) and len(parts):
        hit[shapely.STRtree(geoms).query(parts, predicate="intersects")[1]] = True
    return hit


def _bushes(rng, cond, bushes, no_tree, P, cast, what: str) -> None:
    """Paint (and cast) the ``bushes`` that touch none of the polygons ``no_tree``."""
    bushes = list(bushes[~_touching(bushes, no_tree)])
    P += [surfaces.scrub(rng, cond, g) for g in bushes]
    cast(bushes, what, True)


def _tramlines(rng: np.random.Generator, f, ang: float) -> list:
    """Tramlines of a crop field: pairs of wheel marks (~0.55 m wide, 1.8 m apart) every 18-24 m."""
    c = f.centroid
    minx, miny, maxx, maxy = f.bounds
    reach = math.hypot(maxx - minx, maxy - miny) / 2 + 10
    spacing = rng.uniform(58, 78)
    offs = np.arange(-reach, reach, spacing) + rng.uniform(0, spacing)
    offs = np.concatenate([offs - 3.0, offs + 3.0])
    d = np.array([math.cos(ang), math.sin(ang)])
    n = np.array([-d[1], d[0]])
    p0 = np.array([c.x, c.y])[None, :] + offs[:, None] * n[None, :]
    lines = shapely.linestrings(np.stack([p0 - reach * d, p0 + reach * d], 1))
    marks = shapely.intersection(shapely.buffer(lines, 0.9, quad_segs=1, cap_style="flat"), f)
    return [m for m in marks if not m.is_empty]


def _roof_faces(rng: np.random.Generator, paint: Paint, rect: tuple, cond: Conditions) -> list[Paint]:
    """The two faces of a pitched roof over a rectangle, each as bright as the sun makes it."""
    cx, cy, w, h, ang = rect
    if w < h:  # the ridge runs along the long side
        w, h, ang = h, w, ang + math.pi / 2
    pitch = math.radians(rng.uniform(22, 42))
    el = math.radians(cond.sun_elevation)
    out = []
    for side in (1.0, -1.0):
        nx, ny = -math.sin(ang) * side, math.cos(ang) * side  # the face's outward direction
        ox, oy = cx + nx * h / 4, cy + ny * h / 4
        face = rot_rects(ox, oy, w, h / 2, ang)[0].intersection(paint.geom)
        facing = math.cos(cond.sun_azimuth) * nx + math.sin(cond.sun_azimuth) * ny
        light = (math.cos(pitch) * math.sin(el) + math.sin(pitch) * math.cos(el) * facing) / math.sin(el)
        out.append(paint._replace(geom=face, tint=paint.tint * max(light, cond.diffuse)))
    return out

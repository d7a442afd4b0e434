"""DSTL-format look-alike data: scenes that look like land, written in the real DSTL layout.

Not a pipeline stage: the generator makes data for the demo, the tests and the benchmarks. The
layout and the facts it imitates are in ``sattag.dstl`` (and ``/work/shared/dstl-format.md``). A
scene is made in four steps, each in its own module:

1. **Geometry** (:mod:`~sattag.synth.layout`, helpers in :mod:`~sattag.synth.shapes`): fields on a
   jittered, rotated grid, roads, tracks, buildings, walls and fences, small structures, trees,
   water, vehicles, and what labels leave out (fallow fields, yards, orchards); in full-size pixel
   units, so one seed gives the same land at every ``size``.
2. **Materials** (:mod:`~sattag.synth.dress`, :mod:`~sattag.synth.surfaces`,
   :mod:`~sattag.synth.spectra`): what each object is made of. Reflectance curves over 400-2400 nm
   of end-members (leaf, dry vegetation, soils, asphalt, concrete, roofing, paints, water) mixed
   into materials that several classes share, as on the ground; within a class objects differ
   (roofs, crop stages, track surfaces, water); a season, soil, sun and atmosphere drawn per scene
   (:class:`~sattag.synth.spectra.Conditions`).
3. **Radiance** (:mod:`~sattag.synth.render`): material maps drawn on a grid finer than the
   pixels (sub-pixel objects and edges mix), texture, cast shadows and shaded crowns, haze.
4. **Sensor** (:mod:`~sattag.synth.sensor`): the pan-sharpened 3-band product, per band group the
   optics PSF with the group's exact sub-pixel offset, area averaging to the group's grid, noise,
   quantisation to the bit depth.

:mod:`~sattag.synth.scene` puts them together (:class:`ScenePlan`: everything but the pixels, which
it renders for any window of the scene; :func:`generate_scene`: a whole scene in memory);
:mod:`~sattag.synth.write` writes scenes window by window, in memory bounded by the window whatever
the scene's size, and the dataset tables (:func:`generate_dataset`). Every random field is a
function of position (noise drawn per block from seeds of the block's place, coarse lattices drawn
once), so the files do not depend on the window's size. ``benchmarks/generator_auc.py``
measures how hard the result is for the per-pixel models against the real data's table.
"""
from sattag.dstl import CLASS_LAYERS, EXTRA_LAYERS, LAYER_CLASS, REAL_TRAIN_IDS
from sattag.synth.scene import TILE, GeneratedScene, ScenePlan, generate_scene, scene_seed
from sattag.synth.sensor import PSF_SIGMA, draw_offsets
from sattag.synth.spectra import MAT, MATERIAL_NAMES, Conditions, band_reflectance, draw_conditions
from sattag.synth.write import (PLACEHOLDER_WKT, SceneRecord, dataset_scene_ids, generate_dataset,
                                write_dataset_tables, write_generated_scene, write_plan, write_scene)

__all__ = [
    "CLASS_LAYERS", "EXTRA_LAYERS", "LAYER_CLASS", "MAT", "MATERIAL_NAMES", "PLACEHOLDER_WKT", "PSF_SIGMA",
    "REAL_TRAIN_IDS", "TILE", "Conditions", "GeneratedScene", "ScenePlan", "SceneRecord", "band_reflectance", "dataset_scene_ids",
    "draw_conditions", "draw_offsets", "generate_dataset", "generate_scene", "scene_seed", "write_dataset_tables",
    "write_generated_scene", "write_plan", "write_scene",
]

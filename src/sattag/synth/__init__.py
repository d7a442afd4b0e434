"""DSTL-format look-alike data: scenes that look like land, written in the real DSTL layout.

Not a pipeline stage: the generator makes data for the demo, the tests and the benchmarks. The
layout and the facts it imitates are in ``sattag.dstl`` (and ``/work/shared/dstl-format.md``). A
scene is made in three steps:

1. **Geometry** (:mod:`~sattag.synth.layout`): fields on a jittered, rotated grid, roads, tracks,
   buildings, small structures, trees, water and vehicles, in full-size pixel units, so one seed
   gives the same land at every ``size``.
2. **Radiance** (:mod:`~sattag.synth.spectra`, :mod:`~sattag.synth.render`): a material map on the
   R grid; each material has a reflectance curve over 400-2400 nm, sampled over each band's range,
   times texture, shadows and per-object brightness.
3. **Sensor** (:mod:`~sattag.synth.sensor`): per band group the optics PSF with the group's exact
   sub-pixel offset, area averaging to the group's grid, noise, quantisation to the bit depth.

:mod:`~sattag.synth.scene` puts the three together (:func:`generate_scene`);
:mod:`~sattag.synth.write` writes scenes and the dataset tables (:func:`generate_dataset`).
"""
from sattag.dstl import CLASS_LAYERS, EXTRA_LAYERS, LAYER_CLASS, REAL_TRAIN_IDS
from sattag.synth.scene import GeneratedScene, generate_scene, scene_seed
from sattag.synth.sensor import PSF_SIGMA, draw_offsets
from sattag.synth.spectra import MAT, MATERIAL_NAMES, band_reflectance
from sattag.synth.write import (PLACEHOLDER_WKT, SceneRecord, dataset_scene_ids, generate_dataset,
                                write_dataset_tables, write_generated_scene, write_scene)

__all__ = [
    "CLASS_LAYERS", "EXTRA_LAYERS", "LAYER_CLASS", "MAT", "MATERIAL_NAMES", "PLACEHOLDER_WKT", "PSF_SIGMA",
    "REAL_TRAIN_IDS", "GeneratedScene", "SceneRecord", "band_reflectance", "dataset_scene_ids", "draw_offsets",
    "generate_dataset", "generate_scene", "scene_seed", "write_dataset_tables", "write_generated_scene",
    "write_scene",
]

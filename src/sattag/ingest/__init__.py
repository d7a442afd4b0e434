"""ingest stage: find scenes, read band files, align and resample them onto one grid, cache stacks.

Public API:
``discover_scenes``, ``scene_from_files``, ``dstl_grid_sizes``, ``build_stack`` (a stack in memory),
``write_stack``, ``read_stack``, ``stack_is_complete``, ``ingest_scene`` (a scene's stack built and
written window by window, ``[ingest] tile_px``: memory follows the window, not the scene),
``ingest_scene_in_parts`` (the same stack written in parts that several processes can write at
once, joined by a VRT: :mod:`sattag.ingest.parts`),
``offsets_rows`` / ``write_offsets`` /
``read_offsets`` (``offsets.csv``), ``estimate_offset``,
``display_bands``, ``scene_thumbnail`` (a small colour view of a stack), and the data generator's
``generate_dataset`` (it lives in ``sattag.synth``; imported lazily).
"""
from sattag.ingest.align import GroupGeometry, estimate_offset
from sattag.ingest.bands import read_band_file
from sattag.ingest.discover import (DstlScene, discover_scenes, dstl_grid_sizes, dstl_scene,
                                    read_scenes_csv, scene_from_files)
from sattag.ingest.offsets import OFFSETS_COLUMNS, offsets_rows, read_offsets, write_offsets
from sattag.ingest.parts import ingest_scene_in_parts
from sattag.ingest.stack import (build_stack, ingest_scene, read_band_percentiles, read_stack, read_stack_metadata, read_stack_sample,
                                 read_stack_window, stack_is_complete, write_stack)
from sattag.ingest.thumbnail import display_bands, scene_thumbnail

__all__ = [
    "DstlScene", "GroupGeometry", "OFFSETS_COLUMNS", "build_stack", "discover_scenes", "display_bands",
    "dstl_grid_sizes", "dstl_scene", "estimate_offset", "generate_dataset", "ingest_scene", "ingest_scene_in_parts", "offsets_rows",
    "read_band_file", "read_offsets", "read_scenes_csv", "read_band_percentiles", "read_stack", "read_stack_metadata", "read_stack_sample", "read_stack_window", "scene_from_files",
    "scene_thumbnail", "stack_is_complete", "write_offsets", "write_stack",
]


def __getattr__(name):
    if name == "generate_dataset":
        from sattag.synth import generate_dataset

        return generate_dataset
    raise AttributeError(f"module 'sattag.ingest' has no attribute {name!r}")

"""A scene's stack built in parts, so that one large scene keeps several workers busy.

:func:`sattag.ingest.ingest_scene` writes a stack in one process, window by window. A scene much
larger than a DSTL scene is stacked in three steps instead, each a task the engine can spread over
its workers (:func:`sattag.engine.run.ingest`):

1. **fit** (:func:`fit_scene`, one per scene): what the stack records beyond its pixels, as
   :func:`~sattag.ingest.ingest_scene` finds it before its first window: the band groups' offsets
   (and spreads), every non-reference file's bit depth checked, the grid. The free disk is checked
   first. Saved as ``fit.json`` in the scene's parts folder, so a resumed run does not fit again.
2. **parts** (:func:`write_part`, any number at once): a part is a strip of whole rows of the stack,
   the full width, a whole number of 512-px blocks tall (:func:`part_rows`). Its windows are rendered
   by the same function as the one-file stack's (so each holds the same values) and written to a
   GeoTIFF of its own (the stack's format, its own origin), with a ``.npz`` beside it: its share of
   the sample the band percentiles are measured on (the stored counts at every
   :func:`sattag.scene.sample_step`-th row and column of the scene) and its count of reference
   values beyond the bit depth. The ``.npz`` is written first and the GeoTIFF renamed into place
   last: a part whose GeoTIFF is there is finished, and a rerun skips it.
3. **join** (:func:`join_parts`, one per scene): the reference file's bit-depth check over the whole
   file (the parts' counts added up), the band percentiles from the parts' samples (the same values
   as the one-file stack's), and the stack itself: a GDAL VRT over the part files
   (:func:`sattag.ingest.stack.write_stack_vrt`) with the one-file stack's band names, scales and
   tags, written last. ``read_stack``, ``read_stack_window``, ``read_stack_sample``,
   ``read_stack_metadata``, ``read_band_percentiles`` and ``stack_is_complete`` read it unchanged;
   it is complete only while every part file is there.

Why a VRT: GDAL cannot have several processes write one GeoTIFF, and copying the parts into one
file decodes and encodes the whole stack again in one process (measured in the README), while the
VRT costs nothing and reads at the same speed. Why strips of whole rows: band files are often
stripped (the generator's and DSTL's are, one row a strip), and a part of a few columns would decode
whole rows of every strip it reads, as its neighbours would again.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError

from sattag._files import atomic_path, write_text
from sattag.config import IngestConfig
from sattag.errors import InputError, SattagError
from sattag.ingest.bands import check_tallies
from sattag.ingest.stack import (_BLOCK, _check_window_settings, _planned, _profile, check_stack_space,
                                 percentiles_tag, sample_rows, stack_is_complete, write_stack_vrt, write_windows)
from sattag.scene import Grid, Scene, Stack, sample_step

__all__ = ["SceneFit", "part_rows", "parts_folder", "fit_scene", "write_part", "join_parts", "ingest_scene_in_parts"]


@dataclass(frozen=True)
class SceneFit:
    """What a scene's stack records beyond its pixels, found once per scene (:func:`fit_scene`):
    ``bands`` (names, stack order), ``grid`` (the reference grid), ``offsets`` (group -> (dx, dy,
    correlation), reference px) and ``spreads`` (group -> spread, reference px)."""

    scene_id: str
    bands: tuple[str, ...]
    grid: Grid
    offsets: dict[str, tuple[float, float, float]]
    spreads: dict[str, float]

    def header(self) -> Stack:
        """The stack's header (no data), as :func:`sattag.ingest.read_stack_metadata` gives it."""
        return Stack(self.scene_id, None, self.bands, self.grid, dict(self.offsets), dict(self.spreads))

    def to_json(self) -> str:
        g = self.grid
        return json.dumps({"scene": self.scene_id, "bands": list(self.bands), "height": g.height, "width": g.width,
                           "transform": list(g.transform)[:6], "crs": g.crs,
                           "offsets": {k: list(v) for k, v in self.offsets.items()}, "spreads": self.spreads})

    @classmethod
    def from_json(cls, text: str) -> "SceneFit":
        d = json.loads(text)
        grid = Grid(int(d["height"]), int(d["width"]), Affine(*d["transform"]), d["crs"])
        return cls(d["scene"], tuple(d["bands"]), grid, {k: tuple(float(x) for x in v) for k, v in d["offsets"].items()},
                   {k: float(v) for k, v in d["spreads"].items()})


def part_rows(height: int, width: int, part_px: int) -> list[tuple[int, int]]:
    """The rows ``(r0, r1)`` (end exclusive) of each part of an (H, W) stack: strips of the full width
    holding about ``part_px`` x ``part_px`` pixels each, a whole number of 512-px blocks tall (at least
    one), the last one what is left."""
    blocks = max(1, round(part_px * part_px / max(width, 1) / _BLOCK))
    rows = blocks * _BLOCK
    return [(r0, min(height, r0 + rows)) for r0 in range(0, height, rows)]


def parts_folder(path: str | Path) -> Path:
    """Where the parts of the stack at ``path`` go: ``<stem>.parts/`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.parts")


def _part_paths(folder: Path, rows: tuple[int, int]) -> tuple[Path, Path]:
    name = f"rows{rows[0]}-{rows[1]}"
    return folder / f"{name}.tif", folder / f"{name}.npz"


def fit_scene(scene: Scene, path: str | Path, config: IngestConfig | None = None,
              progress: Callable[[int], None] | None = None) -> SceneFit:
    """Step 1 (module docstring) for the stack to be written at ``path``: the scene's offsets, spreads,
    band names and grid; every non-reference file's bit depth checked. The free disk is checked for
    the whole stack first (:func:`sattag.ingest.stack.check_stack_space`); then the fit is read from
    ``fit.json`` in the parts folder when an earlier run saved it there, else fitted and saved. ``progress(1)`` as :func:`sattag.ingest.build_stack` calls it. Errors as
    :func:`sattag.ingest.ingest_scene`'s before its first window."""
    config = config or IngestConfig()
    _check_window_settings(config)
    check_stack_space(scene, path)  # before any part is written, a resumed run's too (a header read)
    saved = parts_folder(path) / "fit.json"
    if saved.is_file():
        fit = SceneFit.from_json(saved.read_text())
        if fit.scene_id == scene.id and fit.bands == scene.bands:
            return fit
    with _planned(scene, config, progress) as plan:
        fit = SceneFit(scene.id, tuple(plan.names), plan.grid, dict(plan.offsets), dict(plan.spreads))
    write_text(saved, fit.to_json())
    return fit


def part_is_complete(path: str | Path, rows: tuple[int, int]) -> bool:
    """True when the part of rows ``rows`` of the stack at ``path`` is finished (both its files there)."""
    tif, npz = _part_paths(parts_folder(path), rows)
    return tif.is_file() and npz.is_file()


def write_part(scene: Scene, fit: SceneFit, rows: tuple[int, int], path: str | Path,
               config: IngestConfig | None = None) -> Path:
    """Step 2 (module docstring): render and write the part of rows ``rows = (r0, r1)`` (reference px,
    from :func:`part_rows`) of the stack to be written at ``path``, with the offsets of ``fit``.
    Nothing is done when the part is finished already. Returns the part's GeoTIFF. Errors as
    :func:`sattag.ingest.ingest_scene`'s (naming the band file and the scene); a part file that
    cannot be written: :class:`SattagError` naming it and the scene."""
    config = config or IngestConfig()
    tif, npz = _part_paths(parts_folder(path), rows)
    if part_is_complete(path, rows):
        return tif
    r0, r1 = rows
    grid = fit.grid
    part_grid = Grid(r1 - r0, grid.width, grid.transform @ Affine.translation(0, r0), grid.crs)
    with _planned(scene, config, None, fitted=(fit.offsets, fit.spreads)) as plan:
        if (plan.height, plan.width) != grid.shape:
            raise InputError(f"reference grid is {plan.height} x {plan.width} px, the scene's fit "
                             f"({parts_folder(path) / 'fit.json'}) says {grid.height} x {grid.width}: files "
                             "changed since; remove the parts folder", scene.files[0].path, scene.id)
        try:
            with atomic_path(tif) as tmp:
                with rasterio.open(tmp, "w", **_profile(part_grid, len(plan.names), config.gdal_threads)) as dst:
                    sample = write_windows(plan, dst, plan.windows(rows), origin=(r0, 0))
                    dst.update_tags(SATTAG_SCENE=scene.id, SATTAG_PART=f"rows {r0}-{r1}")
                bad, top = plan.groups[0].reader.tallied()
                # Before the GeoTIFF is renamed into place: a part whose GeoTIFF is there is whole.
                with atomic_path(npz) as ztmp, open(ztmp, "wb") as f:
                    np.savez(f, sample=sample, bad=bad, top=top)
        except (RasterioError, OSError) as e:
            raise SattagError(f"part rows {r0}-{r1} of the stack not written: {e}", tif, scene.id) from e
    return tif


def join_parts(scene: Scene, fit: SceneFit, parts: list[tuple[int, int]], path: str | Path,
               config: IngestConfig | None = None) -> Stack:
    """Step 3 (module docstring): the stack at ``path`` from its finished ``parts`` (their rows): the
    reference file's bit-depth check over all of them, the band percentiles, the VRT. Returns the
    stack's header. Raises :class:`InputError` naming the part file when a part is missing and the
    reference file when its values pass its bit depth."""
    config = config or IngestConfig()
    folder = parts_folder(path)
    H, W = fit.grid.shape
    edges = [0] + [r for a, b in zip(parts, parts[1:]) for r in (a[1], b[0])] + [H]
    if not parts or [r for rows in parts for r in rows] != edges or any(a >= b for a, b in parts):
        raise ValueError(f"parts {parts} do not cover rows 0-{H} in order")
    step = sample_step(H, W)
    sample = np.empty((len(fit.bands), math.ceil(H / step), math.ceil(W / step)), np.uint16)
    bad = top = None
    files = []
    for rows in parts:
        tif, npz = _part_paths(folder, rows)
        if not part_is_complete(path, rows):
            raise InputError(f"part rows {rows[0]}-{rows[1]} of the stack is missing: ingest the scene again",
                             tif, scene.id)
        with np.load(npz, allow_pickle=False) as z:
            i0, i1 = sample_rows(rows, step)
            sample[:, i0:i1] = z["sample"]
            bad = z["bad"] if bad is None else bad + z["bad"]
            top = z["top"] if top is None else np.maximum(top, z["top"])
        files.append((rows, tif))
    check_tallies(scene.files[0], bad, top, H * W, scene.id, config.max_out_of_range_share)
    write_stack_vrt(path, fit.header(), files, percentiles_tag(sample, step))
    # Parts of another part size (an earlier run's): no longer part of the stack.
    mine = {p.name for rows in parts for p in _part_paths(folder, rows)}
    for stale in folder.glob("rows*-*.*"):
        if stale.name not in mine and stale.suffix in (".tif", ".npz"):
            stale.unlink(missing_ok=True)
    return fit.header()


def ingest_scene_in_parts(scene: Scene, path: str | Path, config: IngestConfig | None = None, part_px: int = 4096,
                          progress: Callable[[int], None] | None = None) -> Stack | None:
    """The stack of ``scene`` written in parts of about ``part_px`` x ``part_px`` px
    (:func:`part_rows`), one after another in this process: the three steps of the module docstring,
    as the engine runs them on its workers. ``path``: the stack (a VRT, e.g. ``stacks/<scene>.vrt``);
    its parts go to :func:`parts_folder`. None (nothing done) when a complete stack is there already;
    else the stack's header. Parts already finished are not written again."""
    if stack_is_complete(path):
        return None
    fit = fit_scene(scene, path, config, progress)
    parts = part_rows(fit.grid.height, fit.grid.width, part_px)
    for rows in parts:
        write_part(scene, fit, rows, path, config)
    return join_parts(scene, fit, parts, path, config)

"""Finding scenes and their band files: the DSTL folder layout, a user's ``scenes.csv``, or Python.

Discovery only lists files and reads small headers: a scene with a fault (a band file missing, an id
absent from grid_sizes.csv) is still listed, and the fault surfaces as an :class:`InputError` naming
the file when that scene is built, so one bad scene never stops the others.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sattag.config import IngestConfig
from sattag.dstl import GROUP_BANDS, GROUP_FILES
from sattag.errors import InputError
from sattag.scene import BandFile, Scene

__all__ = ["DstlScene", "discover_scenes", "dstl_grid_sizes", "dstl_scene", "scene_from_files",
           "read_scenes_csv", "SCENES_CSV"]

#: The file that marks a folder as a user layout.
SCENES_CSV = "scenes.csv"

#: DSTL band groups: (group, file pattern relative to the data folder, band names).
DSTL_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (g, GROUP_FILES[g], GROUP_BANDS[g]) for g in ("R", "P", "M", "A"))


@dataclass(frozen=True)
class DstlScene(Scene):
    """A scene of the DSTL layout: the files' georeferencing is ignored, each file is taken to cover
    the scene's footprint, and the grid comes from ``grid_sizes.csv`` (``dstl_extent``; None when the
    id is missing there, which :func:`sattag.ingest.build_stack` reports naming ``grid_sizes``)."""

    grid_sizes: Path | None = None


def dstl_grid_sizes(data_dir: str | Path) -> dict[str, tuple[float, float]]:
    """``{scene_id: (Xmax, Ymin)}`` from ``data_dir/grid_sizes.csv`` (header ``,Xmax,Ymin``).

    Raises :class:`InputError` when the file is missing or a row is malformed.
    """
    path = Path(data_dir) / "grid_sizes.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"cannot read grid sizes: {e.strerror}", path) from e
    if not rows:
        raise InputError("empty file, expected header ',Xmax,Ymin'", path)
    header = [h.strip() for h in rows[0]]
    if header[1:3] != ["Xmax", "Ymin"]:
        raise InputError(f"header {','.join(rows[0])!r} is not ',Xmax,Ymin'", path)
    sizes: dict[str, tuple[float, float]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            xmax, ymin = float(row[1]), float(row[2])
        except (IndexError, ValueError) as e:
            raise InputError(f"line {n}: expected 'ImageId,Xmax,Ymin', got {','.join(row)!r}", path) from e
        if not (xmax > 0 and ymin < 0):
            raise InputError(f"line {n}: Xmax must be > 0 and Ymin < 0, got {xmax}, {ymin}", path)
        sizes[row[0].strip()] = (xmax, ymin)
    return sizes


def dstl_scene(data_dir: str | Path, scene_id: str,
               grid_sizes: Mapping[str, tuple[float, float]] | None = None,
               config: IngestConfig | None = None) -> DstlScene:
    """The :class:`DstlScene` ``scene_id`` of the DSTL folder ``data_dir`` (files are not opened)."""
    data_dir = Path(data_dir)
    config = config or IngestConfig()
    if grid_sizes is None:
        try:
            grid_sizes = dstl_grid_sizes(data_dir)
        except InputError:
            grid_sizes = {}
    files = tuple(BandFile(g, data_dir / pattern.format(id=scene_id), bands, config.bit_depths.get(g))
                  for g, pattern, bands in DSTL_GROUPS)
    return DstlScene(scene_id, files, grid_sizes.get(scene_id), data_dir / "grid_sizes.csv")


def discover_scenes(data_dir: str | Path, scene_ids: Iterable[str] | None = None,
                    config: IngestConfig | None = None) -> list[Scene]:
    """Scenes of ``data_dir``, sorted by id.

    Layouts: a folder with ``scenes.csv`` (a user's files, see :func:`read_scenes_csv`), else the DSTL
    layout (``three_band/*.tif`` lists the scenes; ``sixteen_band/<id>_{P,M,A}.tif``;
    ``grid_sizes.csv``). ``scene_ids`` restricts the result (an unknown id is an :class:`InputError`).
    Bit depths of DSTL groups come from ``config.bit_depths``.
    """
    data_dir = Path(data_dir)
    config = config or IngestConfig()
    if not data_dir.is_dir():
        raise InputError("data folder not found", data_dir)
    if (data_dir / SCENES_CSV).is_file():
        scenes = read_scenes_csv(data_dir / SCENES_CSV)
    elif (data_dir / "three_band").is_dir():
        # grid_sizes.csv missing or broken: every scene is still listed and fails when built.
        try:
            sizes = dstl_grid_sizes(data_dir)
        except InputError:
            sizes = {}
        # Hidden names are temporaries of an interrupted write, not scenes.
        ids = sorted(p.stem for p in (data_dir / "three_band").glob("*.tif") if not p.name.startswith("."))
        scenes = [dstl_scene(data_dir, i, sizes, config) for i in ids]
    else:
        raise InputError(f"neither {SCENES_CSV} nor a DSTL layout (three_band/, sixteen_band/, "
                         "grid_sizes.csv) found", data_dir)
    if scene_ids is not None:
        wanted = list(dict.fromkeys(scene_ids))
        by_id = {s.id: s for s in scenes}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise InputError(f"scene(s) not found: {', '.join(unknown)}", data_dir)
        scenes = [by_id[i] for i in wanted]
    return sorted(scenes, key=lambda s: s.id)


def _pixel_area(path: Path) -> float:
    """Pixel area of a raster in its CRS units (inf when unreadable: sorts last, fails when built)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return abs(src.transform.determinant)
    except Exception:  # noqa: BLE001 - any fault is reported when the scene is built
        return math.inf


def _band_count(path: Path) -> int | None:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.count
    except Exception:  # noqa: BLE001
        return None


def _default_bands(group: str, path: Path) -> tuple[str, ...]:
    n = _band_count(path)
    if n is None or n == 1:
        return (group,)
    return tuple(f"{group}{i}" for i in range(1, n + 1))


def scene_from_files(scene_id: str, files: Mapping[str, str | Path] | Sequence[BandFile],
                     bit_depths: Mapping[str, int | None] | None = None,
                     bands: Mapping[str, Sequence[str]] | None = None) -> Scene:
    """A :class:`Scene` from a user's band files, for the Python API.

    ``files``: ``{group: path}`` (or ready :class:`BandFile` objects). ``bit_depths``: ``{group: bits}``
    used to scale counts to [0, 1] (missing/None: the file already holds values in [0, 1]).
    ``bands``: ``{group: names}`` (default: the group name for a 1-band file, else group1..groupN).
    The files' own transforms and CRS are used; the group with the finest pixels becomes the
    reference grid (first file).
    """
    bit_depths = dict(bit_depths or {})
    bands = dict(bands or {})
    if isinstance(files, Mapping):
        bfs = []
        for group, path in files.items():
            path = Path(path)
            names = tuple(bands[group]) if group in bands else _default_bands(group, path)
            bfs.append(BandFile(group, path, names, bit_depths.get(group)))
    else:
        bfs = list(files)
    if not bfs:
        raise InputError("a scene needs at least one band file", scene=scene_id)
    groups = [b.group for b in bfs]
    if len(set(groups)) != len(groups):
        raise InputError(f"band group named twice: {groups}", scene=scene_id)
    names = [n for b in bfs for n in b.bands]
    if len(set(names)) != len(names):
        raise InputError(f"band name used twice: {names}", scene=scene_id)
    # Stable sort: among equal pixel sizes the listed order is kept.
    bfs.sort(key=lambda b: _pixel_area(b.path))
    return Scene(scene_id, tuple(bfs), None)


def read_scenes_csv(path: str | Path) -> list[Scene]:
    """Scenes of a user layout: ``scenes.csv`` with columns ``scene,group,path[,bit_depth][,bands]``.

    One row per band file. ``path`` is relative to the CSV's folder (or absolute); ``bit_depth`` is
    the sensor's bits (e.g. 11), empty when the file already holds values in [0, 1]; ``bands`` are
    space-separated names in file order (empty: the group name, or group1..groupN).
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from e
    header = [h.strip() for h in header]
    missing = {"scene", "group", "path"} - set(header)
    if missing:
        raise InputError(f"missing column(s) {', '.join(sorted(missing))}; expected "
                         "scene,group,path[,bit_depth][,bands]", path)
    by_scene: dict[str, dict[str, BandFile]] = {}
    for n, raw in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        scene, group, rel = row["scene"], row["group"], row["path"]
        if not scene or not group or not rel:
            raise InputError(f"line {n}: scene, group and path must not be empty", path)
        bits_text = row.get("bit_depth", "")
        try:
            bits = int(bits_text) if bits_text else None
        except ValueError as e:
            raise InputError(f"line {n}: bit_depth {bits_text!r} is not an integer", path) from e
        if bits is not None and not 1 <= bits <= 32:
            raise InputError(f"line {n}: bit_depth {bits} out of 1..32", path)
        file = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        names = tuple(row.get("bands", "").split()) or _default_bands(group, file)
        groups = by_scene.setdefault(scene, {})
        if group in groups:
            raise InputError(f"line {n}: group {group!r} listed twice for scene {scene}", path)
        groups[group] = BandFile(group, file, names, bits)
    return [scene_from_files(s, list(g.values())) for s, g in by_scene.items()]

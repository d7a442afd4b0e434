"""The class table: id, name and colour of every object class.

DSTL's ten classes are the default; a user may bring their own table as a CSV file with columns
``id,name,colour`` (ids 1..N, colours as ``#rrggbb``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sattag.errors import ConfigError


@dataclass(frozen=True)
class ObjectClass:
    """One class: ``id`` (1-based, as in DSTL's ClassType), ``name``, ``colour`` (``#rrggbb``)."""

    id: int
    name: str
    colour: str


@dataclass(frozen=True)
class ClassTable:
    """An ordered table of classes; index ``i`` of a (classes, H, W) mask is ``classes[i]``."""

    classes: tuple[ObjectClass, ...]

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def by_id(self, class_id: int) -> ObjectClass:
        """The class with DSTL ClassType ``class_id``; ``KeyError`` when there is none."""
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def by_name(self, name: str) -> ObjectClass:
        """The class called ``name`` (exact match); ``KeyError`` when there is none."""
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(name)

    def index(self, class_id: int) -> int:
        """Position of class ``class_id`` along the first axis of a mask stack."""
        for i, c in enumerate(self.classes):
            if c.id == class_id:
                return i
        raise KeyError(class_id)

    def to_records(self) -> list[dict]:
        return [{"id": c.id, "name": c.name, "colour": c.colour} for c in self.classes]

    @classmethod
    def from_records(cls, records: list[dict]) -> "ClassTable":
        return cls(tuple(ObjectClass(int(r["id"]), str(r["name"]), str(r["colour"])) for r in records))


DSTL_CLASSES = ClassTable(
    (
        ObjectClass(1, "Buildings", "#c0392b"),
        ObjectClass(2, "Misc. manmade structures", "#7f8c8d"),
        ObjectClass(3, "Road", "#2c3e50"),
        ObjectClass(4, "Track", "#d35400"),
        ObjectClass(5, "Trees", "#1e8449"),
        ObjectClass(6, "Crops", "#f1c40f"),
        ObjectClass(7, "Waterway", "#2e86c1"),
        ObjectClass(8, "Standing water", "#76d7ea"),
        ObjectClass(9, "Vehicle Large", "#8e44ad"),
        ObjectClass(10, "Vehicle Small", "#e84393"),
    )
)

#: The colour of "no class" in images that colour pixels by their most probable class.
NO_CLASS_COLOUR = "#000000"


def read_class_table(path: str | Path) -> ClassTable:
    """Read a user's class table from a CSV file with columns ``id,name,colour``."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(f"cannot read class table: {e.strerror}", path) from e
    if not rows or not {"id", "name", "colour"} <= set(rows[0]):
        raise ConfigError("class table needs columns id,name,colour", path)
    try:
        table = ClassTable.from_records(rows)
    except ValueError as e:
        raise ConfigError(f"bad class id: {e}", path) from e
    if sorted(table.ids) != list(range(1, len(table) + 1)):
        raise ConfigError(f"class ids must be 1..{len(table)}, got {sorted(table.ids)}", path)
    return table

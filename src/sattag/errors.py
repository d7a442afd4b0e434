"""One exception hierarchy for sattag.

Every error names the file (and the scene, where there is one) and the fault, so that the CLI can
print it in one line and a multi-scene run can record it in ``failures.csv``.
"""
from __future__ import annotations

from pathlib import Path


class SattagError(Exception):
    """Base of every error sattag raises on purpose.

    Parameters
    ----------
    fault:
        What is wrong, in words a user can act on.
    path:
        The file (or folder) at fault, when there is one.
    scene:
        The scene id, when the fault belongs to one scene.
    """

    def __init__(self, fault: str, path: str | Path | None = None, scene: str | None = None):
        self.fault = fault
        self.path = Path(path) if path is not None else None
        self.scene = scene
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.scene is not None:
            where.append(f"scene {self.scene}")
        return f"{': '.join(where)}: {self.fault}" if where else self.fault


class ConfigError(SattagError):
    """A configuration file or option is invalid."""


class InputError(SattagError):
    """An input file is missing, unreadable, or its content contradicts what it claims to be."""


class AlignmentError(SattagError):
    """A band group could not be aligned to the reference grid (failed or implausible fit)."""


class LabelError(SattagError):
    """Vector labels are unreadable, invalid or do not fit the scene."""


class ModelError(SattagError):
    """A model file is unreadable or does not match the data it is applied to."""

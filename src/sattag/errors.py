"""One exception hierarchy for sattag.

Every error names the file (and the scene, where there is one) and the fault, so that the CLI can
print it in one line and a multi-scene run can record it in ``failures.csv``.

Each subclass also derives from the builtin exception a caller would catch for the same fault
without sattag (as rasterio's errors do), so ``except ValueError`` and ``except SattagError`` both
work. The rule: the builtin says *what kind of thing* is at fault.

======================  =====================  ===========================================================
class                   also a                 because the fault is ...
======================  =====================  ===========================================================
``ConfigError``         ``ValueError``         a configuration value (a TOML field, a rule, an option)
``InputError``          ``ValueError``         the input data set: its files' content, or a file it lacks
``LabelError``          ``ValueError``         the vector labels' content
``AlignmentError``      ``RuntimeError``       no fault of a value: a fit that failed or is implausible
``ModelError``          ``OSError``            the stored models (a folder of files, read as a resource)
``ClusterLostError``    ``ConnectionError``    the Dask cluster: its scheduler or every worker went away
``DiskSpaceError``      ``OSError``            the disk an output goes to: too little space left for it
======================  =====================  ===========================================================

A missing or unreadable *input* file is an ``InputError`` (a ``ValueError``), not a
``FileNotFoundError``: sattag judges the input set as a whole, and one ``except`` clause catches
every input fault; the path in the message says which file. The ``OSError`` is kept as the cause.

Misuse of a library function (an array of the wrong shape, a bad argument) is not a
``SattagError``: it raises a plain ``ValueError`` or ``TypeError`` that says what was expected.

The errors pickle with their type, fault, path, scene and notes (Dask sends them from worker to
client). Plain pickle leaves the cause (``raise ... from e``) and context behind. Once
``distributed`` is imported, tblib's reducers (registered for every exception class then defined,
and taking precedence over ``__reduce__``) pickle them too, and one that cannot make the trip would
make the whole error fail, so Dask would deliver only its text. An error therefore replaces such a
link, when it is pickled, by a :class:`CauseText` holding the link's type, message and traceback.
"""
from __future__ import annotations

import pickle
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

    def __reduce__(self):
        _keep_links_picklable(self)
        # The default (type, self.args) would rebuild the error from its message alone, losing path
        # and scene; other attributes (``__notes__``, ones a caller set) travel as state.
        state = {k: v for k, v in self.__dict__.items() if k not in ("fault", "path", "scene")}
        args = (self.fault, None if self.path is None else str(self.path), self.scene)
        return (type(self), args, state or None)

    def __setstate__(self, state):
        self.__dict__.update(state)


class ConfigError(SattagError, ValueError):
    """A configuration file or option is invalid."""


class InputError(SattagError, ValueError):
    """An input file is missing, unreadable, or its content contradicts what it claims to be."""


class AlignmentError(SattagError, RuntimeError):
    """A band group could not be aligned to the reference grid (failed or implausible fit)."""


class LabelError(SattagError, ValueError):
    """Vector labels are unreadable, invalid or do not fit the scene."""


class ClusterLostError(SattagError, ConnectionError):
    """The Dask scheduler (or every worker) went away: a failure of the whole run, not of its scenes."""


class DiskSpaceError(SattagError, OSError):
    """The disk an output goes to has too little space left for it (checked before writing)."""


class ModelError(SattagError, OSError):
    """A model file is unreadable or does not match the data it is applied to."""


class CauseText(Exception):
    """Stands in for a cause or context that cannot be pickled: its type's name and its message.

    Not raised by sattag; it only appears as ``__cause__`` or ``__context__`` of an error that
    travelled between processes.
    """


def _round_trips(link: BaseException) -> bool:
    # dumps alone is not enough: GDAL's errors (rasterio's CPLE_*) pickle but do not unpickle.
    try:
        pickle.loads(pickle.dumps(link))
    except Exception:
        return False
    return True


def _keep_links_picklable(err: BaseException) -> None:
    """Replace ``err.__cause__`` / ``err.__context__`` by a :class:`CauseText` where it cannot be
    pickled and unpickled, keeping its traceback. Mutates ``err``: a reducer registered for the
    class (tblib's) reads the links from the object itself after calling ``__reduce__``."""
    replaced: dict[int, CauseText] = {}
    for name in ("__cause__", "__context__"):
        link = getattr(err, name)
        if link is None or isinstance(link, CauseText):
            continue
        if id(link) not in replaced:
            if _round_trips(link):
                continue
            text = CauseText(f"{type(link).__module__}.{type(link).__qualname__}: {link}")
            replaced[id(link)] = text.with_traceback(link.__traceback__)
        setattr(err, name, replaced[id(link)])

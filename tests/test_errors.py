"""The exception hierarchy: each error is also a builtin, pickles whole, and reads in one line."""
from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from sattag.errors import AlignmentError, ConfigError, InputError, LabelError, ModelError, SattagError

BUILTIN = {ConfigError: ValueError, InputError: ValueError, LabelError: ValueError,
           AlignmentError: RuntimeError, ModelError: OSError}


@pytest.mark.parametrize("cls", list(BUILTIN), ids=lambda c: c.__name__)
def test_each_error_is_also_its_builtin(cls):
    e = cls("bad", "/data/x.tif", "6010_0_0")
    assert isinstance(e, SattagError) and isinstance(e, BUILTIN[cls]) and isinstance(e, Exception)
    with pytest.raises(BUILTIN[cls]):
        raise e
    with pytest.raises(SattagError):
        raise e


def test_issue_pairs():
    assert issubclass(ModelError, OSError) and issubclass(InputError, ValueError)
    assert issubclass(ConfigError, ValueError) and not issubclass(ConfigError, OSError)


@pytest.mark.parametrize("args, text", [
    (("bad bit depth",), "bad bit depth"),
    (("bad bit depth", "/d/a.tif"), "/d/a.tif: bad bit depth"),
    (("bad bit depth", None, "6010_0_0"), "scene 6010_0_0: bad bit depth"),
    (("bad bit depth", "/d/a.tif", "6010_0_0"), "/d/a.tif: scene 6010_0_0: bad bit depth"),
])
def test_message_names_file_scene_and_fault(args, text):
    e = InputError(*args)
    assert str(e) == text and "\n" not in str(e)
    assert e.fault == args[0]
    assert e.path == (Path(args[1]) if len(args) > 1 and args[1] is not None else None)
    assert e.scene == (args[2] if len(args) > 2 else None)


class Unpicklable(Exception):
    """An exception holding a lock: pickling it fails."""

    def __init__(self):
        super().__init__(threading.Lock())


@pytest.mark.parametrize("cls", [SattagError, *BUILTIN], ids=lambda c: c.__name__)
def test_pickles_with_type_fields_and_message_even_from_an_unpicklable_cause(cls):
    with pytest.raises(TypeError):
        pickle.dumps(Unpicklable())
    try:
        try:
            raise Unpicklable()
        except Unpicklable as cause:
            raise cls("cannot fit", "/d/6010_0_0_A.tif", "6010_0_0") from cause
    except SattagError as e:
        err = e
    assert isinstance(err.__cause__, Unpicklable)
    err.add_note("while aligning group A")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (back.fault, back.path, back.scene) == ("cannot fit", Path("/d/6010_0_0_A.tif"), "6010_0_0")
    assert str(back) == str(err) == "/d/6010_0_0_A.tif: scene 6010_0_0: cannot fit"
    assert back.__notes__ == ["while aligning group A"]
    if cls in BUILTIN:
        assert isinstance(back, BUILTIN[cls])


def test_pickle_without_path_or_scene():
    back = pickle.loads(pickle.dumps(ConfigError("configuration: [model] n_trees: must be >= 1, got 0")))
    assert type(back) is ConfigError and back.path is None and back.scene is None
    assert str(back) == "configuration: [model] n_trees: must be >= 1, got 0"


def test_model_error_reads_like_an_oserror_without_errno():
    e = ModelError("no model card here", "/run/models/card.json")
    assert e.errno is None and e.filename is None  # OSError's fields do not change the message
    assert str(e) == "/run/models/card.json: no model card here"

"""The exception hierarchy: each error is also a builtin, pickles whole, and reads in one line."""
from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
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


def _raised_from_unpicklable(cls: type[SattagError]) -> SattagError:
    """An error of ``cls`` raised from an :class:`Unpicklable` cause (also its context)."""
    try:
        try:
            raise Unpicklable()
        except Unpicklable as cause:
            raise cls("cannot fit", "/d/6010_0_0_A.tif", "6010_0_0") from cause
    except SattagError as e:
        return e


@pytest.mark.parametrize("cls", [SattagError, *BUILTIN], ids=lambda c: c.__name__)
def test_pickles_with_type_fields_and_message_even_from_an_unpicklable_cause(cls):
    with pytest.raises(TypeError):
        pickle.dumps(Unpicklable())
    err = _raised_from_unpicklable(cls)
    assert isinstance(err.__cause__, Unpicklable)
    err.add_note("while aligning group A")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (back.fault, back.path, back.scene) == ("cannot fit", Path("/d/6010_0_0_A.tif"), "6010_0_0")
    assert str(back) == str(err) == "/d/6010_0_0_A.tif: scene 6010_0_0: cannot fit"
    assert back.__notes__ == ["while aligning group A"]
    if cls in BUILTIN:
        assert isinstance(back, BUILTIN[cls])


def test_pickles_under_tblib_with_the_cause_as_text():
    # distributed installs tblib's reducers on import; they pickle the cause and context too.
    pickling_support = pytest.importorskip("tblib.pickling_support")
    pickling_support.install()
    err = _raised_from_unpicklable(AlignmentError)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is AlignmentError and back.scene == "6010_0_0"
    assert type(back.__cause__).__name__ == "CauseText"
    assert str(back.__cause__).startswith(f"{__name__}.Unpicklable: ")
    assert back.__cause__.__traceback__ is not None  # where the cause was raised still travels
    # A picklable cause travels whole.
    try:
        try:
            raise OSError(2, "No such file", "/d/a.tif")
        except OSError as cause:
            raise InputError("cannot read", "/d/a.tif") from cause
    except InputError as e:
        back = pickle.loads(pickle.dumps(e))
    assert type(back.__cause__) is FileNotFoundError and back.__cause__.filename == "/d/a.tif"


def test_pickles_in_a_process_that_never_imported_distributed(tmp_path):
    # The other order: no tblib reducers at all, plain pickle. Run where nothing has imported them.
    script = textwrap.dedent("""
        import pickle, sys, threading
        from sattag.errors import LabelError
        assert "distributed" not in sys.modules and "tblib" not in sys.modules
        class Unpicklable(Exception):
            def __init__(self):
                super().__init__(threading.Lock())
        try:
            try:
                raise Unpicklable()
            except Unpicklable as cause:
                raise LabelError("bad ring", "/d/labels.csv", "6010_0_0") from cause
        except LabelError as e:
            e.add_note("while reading")
            back = pickle.loads(pickle.dumps(e))
        assert type(back) is LabelError and back.__notes__ == ["while reading"], back
        print(back)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "/d/labels.csv: scene 6010_0_0: bad ring"


def test_pickle_without_path_or_scene():
    back = pickle.loads(pickle.dumps(ConfigError("configuration: [model] n_trees: must be >= 1, got 0")))
    assert type(back) is ConfigError and back.path is None and back.scene is None
    assert str(back) == "configuration: [model] n_trees: must be >= 1, got 0"


def test_model_error_reads_like_an_oserror_without_errno():
    e = ModelError("no model card here", "/run/models/card.json")
    assert e.errno is None and e.filename is None  # OSError's fields do not change the message
    assert str(e) == "/run/models/card.json: no model card here"

"""Progress of a run over scenes and stages: rich bars in a terminal, nothing elsewhere."""
from __future__ import annotations

import contextlib
from typing import Iterator, Protocol


class Progress(Protocol):
    """What the engine reports: a stage with a number of steps, and steps done."""

    def stage(self, name: str, total: int) -> "StageProgress": ...


class StageProgress(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class _Null:
    def stage(self, name: str, total: int) -> "_Null":
        return self

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


NULL_PROGRESS = _Null()


class _RichStage:
    def __init__(self, bar, task):
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def close(self) -> None:
        self._bar.update(self._task, completed=self._bar.tasks[self._task].total)


class RichProgress:
    """One rich progress display with a bar per stage (scenes, classes, ...)."""

    def __init__(self, bar):
        self._bar = bar

    def stage(self, name: str, total: int) -> _RichStage:
        return _RichStage(self._bar, self._bar.add_task(name, total=max(total, 0)))


@contextlib.contextmanager
def rich_progress(enabled: bool = True) -> Iterator[Progress]:
    """A rich progress display for the duration of the block (a no-op one when disabled)."""
    if not enabled:
        yield NULL_PROGRESS
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    with Bar(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             transient=False) as bar:
        yield RichProgress(bar)

"""Progress of a long ``aml.evaluate``: a callback, or a rich progress bar.

Off by default. ``progress=True`` draws a rich bar on stderr; a callable
receives a :class:`Progress` after every part of the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from academy_ml.exceptions import ParameterError

__all__ = ["Progress", "ProgressCallback", "reporting"]


@dataclass(frozen=True)
class Progress:
    """How far an evaluation is.

    Attributes:
        pipelines_done: Pipelines with all their scores.
        pipelines: Pipelines in the batch.
        folds_done: Folds scored (pipelines done x folds).
        folds: Folds to score in all.
    """

    pipelines_done: int
    pipelines: int
    folds_done: int
    folds: int

    @property
    def finished(self) -> bool:
        """Whether every pipeline is done."""
        return self.pipelines_done == self.pipelines


ProgressCallback = Callable[[Progress], Any]


@contextlib.contextmanager
def reporting(progress: object) -> Iterator[ProgressCallback | None]:
    """The callback ``progress=`` stands for, or None when it is off.

    Args:
        progress: None or False (off), True (a rich bar on stderr, closed on
            exit), or a callable taking a :class:`Progress`.

    Raises:
        ParameterError: If ``progress`` is none of these.
    """
    if progress is None or progress is False:
        yield None
    elif progress is True:
        with _bar() as callback:
            yield callback
    elif callable(progress):
        yield progress
    else:
        raise ParameterError(
            f"progress must be None, a bool or a callable taking a Progress, got {progress!r:.80}"
        )


@contextlib.contextmanager
def _bar() -> Iterator[ProgressCallback]:
    # Imported here: rich is only needed when a bar is asked for.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = (
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pipelines ({task.fields[folds]} folds)"),
        TimeElapsedColumn(),
    )
    with Bar(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("evaluate", total=None, folds="0/?")

        def update(event: Progress) -> None:
            bar.update(
                task,
                completed=event.pipelines_done,
                total=event.pipelines,
                folds=f"{event.folds_done}/{event.folds}",
            )

        yield update

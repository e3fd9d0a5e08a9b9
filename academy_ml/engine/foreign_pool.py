"""Running foreign steps concurrently in worker processes, within a run's thread budget.

Why processes and not threads: scikit-learn's Cython kernels release the
GIL, but the Python between them (HistGradientBoosting's grower, the
forests' per-tree loop, validation, scorers) holds it, so threads
serialise there; and only a process can be killed mid-fit (Ctrl-C, an
interrupt) or die alone (a segfault, ``os._exit`` in a step fails only its
pipelines). Measured with benchmarks/foreign.py on 2 shared, busy cores
(load average 4-11, so indicative only): at 2,000 rows a 2-thread pool
took 49.7 s and these workers 49.6 s (sequential: 39.6 s); at 20,000 rows
the thread pool took 334 s and these workers 121-134 s (sequential on one
thread: 481 s).

How: workers are separate interpreters (``python -m
academy_ml.engine.foreign_worker``, so a user's unguarded ``__main__`` is
never re-run) kept between runs and replaced when one dies. Each fold
matrix is written once into a private run directory as ``.npy`` and
memory-mapped by every task reading it, then deleted when its last task
ends; tasks are ordered by their inputs and each worker holds one task at a
time, so only the matrices of tasks in flight exist on disk at once.
Estimators travel as our own pickles; workers answer with msgpack (a float
or a message), which is all the parent decodes. A task whose estimators a
worker cannot load (a class defined in ``__main__``, a lambda) runs here
instead, after the others.
"""

from __future__ import annotations

import pickle
import shutil
import sys
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType
from typing import Any

import msgpack
import numpy as np
from sklearn.utils import _safe_indexing

from academy_ml.engine.budgets import ForeignBudget, limited
from academy_ml.engine.fallback import StepFailure, fit_and_score
from academy_ml.engine.foreign_workers import Worker, WorkerDied, acquire, release
from academy_ml.engine.scoring import Scorer
from academy_ml.exceptions import RunInterrupted

__all__ = ["Failure", "ForeignTask", "interrupt_foreign_runs", "run_foreign"]

#: Seconds between checks for an interrupt while waiting on workers.
_POLL_S = 0.05

#: Bumped by :func:`interrupt_foreign_runs`; a foreign phase that began under
#: an older value stops (a counter, so later runs are unaffected).
_epoch = 0
_in_flight = 0


@dataclass(frozen=True)
class ForeignTask:
    """One foreign tail to fit and score on one fold.

    Attributes:
        steps: The foreign steps, ``(path, estimator)``, the last one scored.
        x_train: Name of the train matrix, or of the whole X when ``x_test`` is None.
        x_test: Name of the test matrix, or None (rows of X picked by ``train``/``test``).
        y: Name of the whole target.
        train: Train row indices (into y, and into X when ``x_test`` is None).
        test: Test row indices.
        scoring: A scikit-learn scoring name or a callable scorer (ours to pickle).
    """

    steps: Sequence[tuple[str, Any]]
    x_train: Hashable
    x_test: Hashable | None
    y: Hashable
    train: np.ndarray[Any, Any]
    test: np.ndarray[Any, Any]
    scoring: Scorer

    @property
    def inputs(self) -> tuple[Hashable, ...]:
        """The shared values the task reads."""
        return (
            (self.x_train, self.y) if self.x_test is None else (self.x_train, self.x_test, self.y)
        )


@dataclass(frozen=True)
class Failure:
    """Why a task gave no score: a step's message, or its worker's death."""

    message: str


def interrupt_foreign_runs() -> int:
    """Stops every foreign phase in flight in this process; returns how many there were.

    Each kills its workers and raises ``RunInterrupted`` within ``_POLL_S``.
    Safe in a signal handler (no lock, no import).
    """
    global _epoch
    _epoch += 1
    return _in_flight


def run_foreign(
    tasks: Sequence[ForeignTask],
    values: Mapping[Hashable, Callable[[], Any]],
    budget: ForeignBudget,
) -> list[float | Failure]:
    """Scores every task on up to ``budget.workers`` workers; one outcome per task, in order.

    ``values`` gives each input name's value (called when a task first needs it).

    Raises:
        RunInterrupted: If :func:`interrupt_foreign_runs` was called meanwhile.
        KeyboardInterrupt: On Ctrl-C. Either way the workers are killed first.
    """
    global _in_flight
    if not tasks:
        return []
    outcomes: dict[int, float | Failure] = {}
    _in_flight += 1
    try:
        with _Phase(tasks, values, budget) as phase:
            phase.run(outcomes)
        for i in phase.local:
            outcomes[i] = _score_here(tasks[i], values, budget.threads)
    finally:
        _in_flight -= 1
    return [outcomes[i] for i in range(len(tasks))]


def _score_here(
    task: ForeignTask, values: Mapping[Hashable, Callable[[], Any]], threads: int
) -> float | Failure:
    """Scores a task in this process (its estimators cannot reach a worker)."""
    y = values[task.y]()
    if task.x_test is None:
        frame = values[task.x_train]()
        x_train, x_test = _safe_indexing(frame, task.train), _safe_indexing(frame, task.test)
    else:
        x_train, x_test = values[task.x_train](), values[task.x_test]()
    try:
        with limited(threads):
            return fit_and_score(
                task.steps, x_train, y[task.train], x_test, y[task.test], task.scoring
            )
    except StepFailure as exc:
        return Failure(str(exc))


class _Phase:
    """One run's foreign tasks on its checked-out workers, with their shared files."""

    def __init__(
        self,
        tasks: Sequence[ForeignTask],
        values: Mapping[Hashable, Callable[[], Any]],
        budget: ForeignBudget,
    ) -> None:
        self.tasks = tasks
        self.values = values
        self.budget = budget
        self.epoch = _epoch
        self.local: list[int] = []
        self.users = Counter(name for task in tasks for name in task.inputs)
        self.files: dict[Hashable, Path] = {}
        self.written = 0
        self.dir = Path(tempfile.mkdtemp(prefix="academy-ml-foreign-"))
        self.workers: list[Worker] = []
        self.path = list(sys.path)

    def __enter__(self) -> _Phase:
        try:
            self.workers = acquire(min(self.budget.workers, len(self.tasks)))
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                release(self.workers, keep=self.budget.threads)
            else:
                # Interrupted or broken: stop every fit now, leave no process behind.
                for worker in self.workers:
                    worker.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, outcomes: dict[int, float | Failure]) -> None:
        """Feeds the workers one task each until every task has an outcome (or went local)."""
        # Tasks on the same matrices run together, so their files live briefly.
        pending = deque(sorted(range(len(self.tasks)), key=lambda i: _order(self.tasks[i])))
        running: dict[Any, tuple[Worker, int]] = {}
        idle = list(self.workers)
        while pending or running:
            while idle and pending:
                worker, i = idle.pop(), pending.popleft()
                frame = self._frame(i)
                if frame is None:
                    self._local(i)
                    idle.append(worker)
                    continue
                try:
                    worker.send(frame)
                except WorkerDied:
                    # Died while idle (between runs): not this task's doing.
                    pending.appendleft(i)
                    idle.append(self._replace(worker))
                    continue
                running[worker.results] = (worker, i)
            self._check_interrupt()
            for conn in wait(list(running), timeout=_POLL_S):
                worker, i = running.pop(conn)
                try:
                    task_id, score, error, kind = worker.receive()
                    if task_id != i:
                        raise WorkerDied(
                            f"the worker process (pid {worker.pid}) answered task "
                            f"{task_id} instead of {i}"
                        )
                except WorkerDied as exc:
                    outcomes[i] = Failure(f"{exc}; its pipelines fail, the pool replaced it")
                    self._done(i)
                    if pending:
                        idle.append(self._replace(worker))
                    continue
                idle.append(worker)
                if kind == "load":
                    self._local(i)
                    continue
                outcomes[i] = score if score is not None else Failure(str(error))
                self._done(i)

    def _check_interrupt(self) -> None:
        if _epoch != self.epoch:
            raise RunInterrupted(
                "the foreign steps were interrupted: academy_ml.engine.foreign_pool."
                "interrupt_foreign_runs() was called (the process is stopping)"
            )

    def _replace(self, worker: Worker) -> Worker:
        worker.kill()
        fresh = Worker()
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _frame(self, i: int) -> bytes | None:
        """The task's frame, or None when its estimators cannot be pickled."""
        task = self.tasks[i]
        paths = {name: str(self._file(name)) for name in task.inputs}
        try:
            body = pickle.dumps(
                {
                    "steps": task.steps,
                    "x_train": paths[task.x_train],
                    "x_test": None if task.x_test is None else paths[task.x_test],
                    "y": paths[task.y],
                    "train": task.train,
                    "test": task.test,
                    "scoring": task.scoring,
                },
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        except Exception:
            return None
        return bytes(msgpack.packb([i, self.budget.threads_per_task, self.path, body]))

    def _file(self, name: Hashable) -> Path:
        """The file holding input ``name``, written on first use."""
        if name not in self.files:
            value = self.values[name]()
            self.written += 1
            path = self.dir / str(self.written)
            if isinstance(value, np.ndarray) and not value.dtype.hasobject:
                path = path.with_suffix(".npy")
                np.save(path, value, allow_pickle=False)
            else:
                path = path.with_suffix(".pkl")
                path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            self.files[name] = path
        return self.files[name]

    def _local(self, i: int) -> None:
        self.local.append(i)
        self._done(i)

    def _done(self, i: int) -> None:
        """Deletes the files no remaining task reads."""
        for name in self.tasks[i].inputs:
            self.users[name] -= 1
            if self.users[name] == 0 and name in self.files:
                self.files.pop(name).unlink()


def _order(task: ForeignTask) -> tuple[str, ...]:
    return tuple(repr(name) for name in task.inputs)

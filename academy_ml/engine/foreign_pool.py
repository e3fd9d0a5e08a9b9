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

When: beside the run's native plan, not after it. A :class:`ForeignPool`
checks its workers out when the run starts (so their cold start overlaps
the native plan), a dispatcher thread feeds them each task as soon as the
run submits it, and the run's thread moves the split of its ``threads``
between its native plan and the workers (:meth:`ForeignPool.reserve`):
the threads of tasks in flight plus the runtime's pool never exceed them.
"""

from __future__ import annotations

import pickle
import shutil
import sys
import tempfile
import threading
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

from academy_ml.engine.budgets import foreign_budget, limited
from academy_ml.engine.fallback import StepFailure, fit_and_score
from academy_ml.engine.foreign_workers import Worker, WorkerDied, acquire, release
from academy_ml.engine.scoring import Scorer
from academy_ml.exceptions import RunInterrupted

__all__ = ["Failure", "ForeignPool", "ForeignTask", "interrupt_foreign_runs"]

#: Seconds between checks for an interrupt while waiting on workers.
_POLL_S = 0.05

#: Bumped by :func:`interrupt_foreign_runs`; a pool that began under
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
    """Stops every :class:`ForeignPool` in flight in this process; returns how many there were.

    Each kills its workers within ``_POLL_S``; its run raises
    ``RunInterrupted`` once its native stage (if one is running) returns,
    which :func:`academy_ml.deploy.launch.interrupt.interrupt_native_runs`
    (it calls this too) makes prompt. Safe in a signal handler (no lock,
    no import).
    """
    global _epoch
    _epoch += 1
    return _in_flight


class ForeignPool:
    """One run's foreign tasks on worker processes, fed while the run's native plan runs.

    The run's own thread submits tasks as their inputs come to exist and
    says how many of the run's ``threads`` its native plan holds
    (:meth:`reserve`); a dispatcher thread hands pending tasks to workers
    within the rest, and :meth:`finish` gives the run every thread and
    waits for every outcome. Workers are checked out on entry, so their cold
    start (an interpreter importing scikit-learn) passes while the native
    plan runs.

    Args:
        values: Each input name's value, called when a task first needs it
            (looked up only once a task naming it was submitted).
        threads: The run's thread budget, shared with its native plan.
        tasks: How many tasks the run may submit (sizes the worker set).
    """

    def __init__(
        self, values: Mapping[Hashable, Callable[[], Any]], threads: int, tasks: int
    ) -> None:
        self.values = values
        self.threads = threads
        self.epoch = _epoch
        self.workers: list[Worker] = []
        self._wanted = max(1, min(threads, tasks))
        self._path = list(sys.path)
        self._dir = Path(tempfile.mkdtemp(prefix="academy-ml-foreign-"))
        # Shared with the run's thread, under the lock.
        self._lock = threading.Condition()
        self._inbox: list[tuple[Hashable, ForeignTask]] = []
        self._limit = 0  # threads the foreign tasks may use now
        self._used = 0  # threads of the tasks in flight
        self._closed = False  # every task was submitted and the native plan is done
        self._stopped = False
        self._error: BaseException | None = None
        self._done = threading.Event()
        # The dispatcher's own.
        self._ids: list[Hashable] = []
        self._tasks: list[ForeignTask] = []
        self._pending: deque[int] = deque()
        self._running: dict[Any, tuple[Worker, int, int]] = {}
        self._idle: list[Worker] = []
        self._local: list[int] = []
        self._outcomes: dict[int, float | Failure] = {}
        self._users: Counter[Hashable] = Counter()
        self._files: dict[Hashable, Path] = {}
        self._written = 0
        self._thread = threading.Thread(target=self._serve, name="academy-ml-foreign", daemon=True)

    def __enter__(self) -> ForeignPool:
        global _in_flight
        _in_flight += 1
        try:
            self.workers = acquire(self._wanted)
            self._idle = list(self.workers)
            self._thread.start()
        except BaseException:
            self._close(clean=False)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close(clean=exc_type is None and self._error is None)

    def submit(self, tasks: Mapping[Hashable, ForeignTask]) -> None:
        """Queues tasks whose inputs exist now, by the caller's identities for them."""
        with self._lock:
            self._inbox.extend(tasks.items())
            self._lock.notify_all()

    def outstanding(self) -> int:
        """Submitted tasks without an outcome yet (the foreign side's remaining work)."""
        with self._lock:
            return len(self._inbox) + len(self._pending) + len(self._running)

    def reserve(self, native: int) -> int:
        """Gives the native plan up to ``native`` threads (at least one); returns how many.

        The foreign tasks may then use the rest. Those in flight keep their
        threads: the native plan gets no more than what they leave.

        Raises:
            BaseException: What stopped the dispatcher (``RunInterrupted``...).
        """
        self.check()
        with self._lock:
            # While a native plan runs the foreign side stays below `threads`,
            # so at least one thread is free here.
            granted = max(1, min(native, self.threads - self._used))
            self._limit = self.threads - granted
            self._lock.notify_all()
        return granted

    def finish(self) -> dict[Hashable, float | Failure]:
        """Gives the foreign tasks every thread, waits for them; one outcome per identity.

        Tasks no worker could load run here, last.

        Raises:
            RunInterrupted: If :func:`interrupt_foreign_runs` was called meanwhile.
            KeyboardInterrupt: On Ctrl-C (the workers are killed on exit).
        """
        with self._lock:
            self._closed = True
            self._limit = self.threads
            self._lock.notify_all()
        while not self._done.wait(_POLL_S):
            pass
        self.check()
        for i in self._local:
            self._outcomes[i] = _score_here(self._tasks[i], self.values, self.threads)
        return {self._ids[i]: outcome for i, outcome in self._outcomes.items()}

    def check(self) -> None:
        """Raises what stopped the dispatcher, if anything did."""
        if self._error is not None:
            raise self._error

    def _close(self, clean: bool) -> None:
        global _in_flight
        try:
            if not clean:
                self._stop()
            if self._thread.is_alive():
                self._thread.join()
            if clean:
                release(self.workers, keep=self.threads)
            else:
                # Interrupted or broken: stop every fit now, leave no process behind.
                for worker in self.workers:
                    worker.kill()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            _in_flight -= 1

    def _stop(self) -> None:
        """Makes the dispatcher return now: a worker it is writing to dies, so the write ends."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        for worker in list(self.workers):
            worker.signal_kill()

    def _serve(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:
            self._error = exc
            # Interrupted or broken: no fit of this run goes on (the run's
            # thread reaps the workers when it leaves the pool).
            for worker in self.workers:
                worker.signal_kill()
        finally:
            self._done.set()

    def _step(self) -> bool:
        """Takes new tasks, dispatches, waits a little for replies; False once all are done."""
        if _epoch != self.epoch:
            raise RunInterrupted(
                "the foreign steps were interrupted: academy_ml.engine.foreign_pool."
                "interrupt_foreign_runs() was called (the process is stopping)"
            )
        if self._stopped:
            return False
        self._take_inbox()
        self._dispatch()
        if self._running:
            for conn in wait(list(self._running), timeout=_POLL_S):
                self._receive(conn)
            return True
        with self._lock:
            if self._closed and not self._inbox and not self._pending:
                return False
            self._lock.wait(_POLL_S)
        return True

    def _take_inbox(self) -> None:
        with self._lock:
            new, self._inbox = self._inbox, []
        if not new:
            return
        for identity, task in new:
            self._pending.append(len(self._tasks))
            self._ids.append(identity)
            self._tasks.append(task)
            self._users.update(task.inputs)
        # Tasks on the same matrices run together, so their files live briefly.
        self._pending = deque(sorted(self._pending, key=lambda i: _order(self._tasks[i])))

    def _dispatch(self) -> None:
        """Feeds idle workers one task each, within the threads the native plan leaves."""
        while self._idle and self._pending and not self._stopped:
            with self._lock:
                available = self._limit - self._used
                if available < 1:
                    return
                threads = foreign_budget(available, len(self._pending)).threads_per_task
                self._used += threads
            worker, i = self._idle.pop(), self._pending.popleft()
            frame = self._frame(i, threads)
            if frame is None:
                self._give_back(threads)
                self._local.append(i)
                self._done_with(i)
                self._idle.append(worker)
                continue
            try:
                worker.send(frame)
            except WorkerDied:
                # Died while idle (between runs, or stopped): not this task's doing.
                self._give_back(threads)
                self._pending.appendleft(i)
                if not self._stopped:
                    self._idle.append(self._replace(worker))
                continue
            self._running[worker.results] = (worker, i, threads)

    def _receive(self, conn: Any) -> None:
        worker, i, threads = self._running.pop(conn)
        self._give_back(threads)
        try:
            task_id, score, error, kind = worker.receive()
            if task_id != i:
                raise WorkerDied(
                    f"the worker process (pid {worker.pid}) answered task {task_id} instead of {i}"
                )
        except WorkerDied as exc:
            self._outcomes[i] = Failure(f"{exc}; its pipelines fail, the pool replaced it")
            self._done_with(i)
            if not self._stopped and (self._pending or not self._closed):
                self._idle.append(self._replace(worker))
            return
        self._idle.append(worker)
        if kind == "load":
            self._local.append(i)
        else:
            self._outcomes[i] = score if score is not None else Failure(str(error))
        self._done_with(i)

    def _give_back(self, threads: int) -> None:
        with self._lock:
            self._used -= threads
            self._lock.notify_all()

    def _replace(self, worker: Worker) -> Worker:
        worker.kill()
        fresh = Worker()
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _frame(self, i: int, threads: int) -> bytes | None:
        """The task's frame, or None when its estimators cannot be pickled."""
        task = self._tasks[i]
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
        return bytes(msgpack.packb([i, threads, self._path, body]))

    def _file(self, name: Hashable) -> Path:
        """The file holding input ``name``, written on first use."""
        if name not in self._files:
            value = self.values[name]()
            self._written += 1
            path = self._dir / str(self._written)
            if isinstance(value, np.ndarray) and not value.dtype.hasobject:
                path = path.with_suffix(".npy")
                np.save(path, value, allow_pickle=False)
            else:
                path = path.with_suffix(".pkl")
                path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            self._files[name] = path
        return self._files[name]

    def _done_with(self, i: int) -> None:
        """Deletes the files no remaining task reads."""
        for name in self._tasks[i].inputs:
            self._users[name] -= 1
            if self._users[name] == 0 and name in self._files:
                self._files.pop(name).unlink()


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


def _order(task: ForeignTask) -> tuple[str, ...]:
    return tuple(repr(name) for name in task.inputs)

"""``_runtime.interrupt_runs()``: stopping runs on threads that no signal reaches.

A plan of seconds (KNN on many rows, one thread) runs on worker threads;
the test interrupts from the main thread, repeatedly until the run returns,
so it does not depend on when the run entered Rust. The proof is the error
the run raises; the bound only turns a run that ignores the interrupt into
a failure rather than a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor

import academy_ml as aml
from academy_ml import _runtime
from academy_ml.exceptions import AcademyMLError, RunInterrupted

#: Seconds a run may take to stop once interrupted. Cancellation is checked
#: between nodes (a neighbour search here: well under a second idle).
STOP_BOUND_S = 60.0

#: How often the main thread interrupts while a run is alive.
INTERRUPT_EVERY_S = 0.05


def _long_plan() -> aml.Plan:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 16))
    y = X[:, 0] + rng.normal(size=20_000)
    pipelines = [KNeighborsRegressor(n_neighbors=k) for k in range(1, 40)]
    return aml.compile(pipelines, cv=5, X=X, y=y, scoring="r2")


def _short_scores() -> list[list[float]]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    y = X @ np.arange(1.0, 6.0) + rng.normal(size=200)
    report = aml.run(aml.compile([Ridge(alpha=a) for a in (0.1, 1.0)], cv=3, X=X, y=y), threads=1)
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    return [list(r.fold_scores) for r in report.results]


class Worker(threading.Thread):
    """Runs ``body`` and keeps what it returned or raised."""

    def __init__(self, body: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.body = body
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.body()
        except BaseException as error:  # the test inspects it
            self.error = error


def _interrupt_until_done(workers: list[Worker]) -> int:
    """Interrupts until ``workers`` end; returns how many runs the interrupts found in flight.

    Fails if they outlive by STOP_BOUND_S the first interrupt that found a run.
    """
    found = 0
    deadline: float | None = None
    while any(w.is_alive() for w in workers):
        in_flight = _runtime.interrupt_runs()
        found += in_flight
        if in_flight and deadline is None:
            deadline = time.monotonic() + STOP_BOUND_S
        assert deadline is None or time.monotonic() < deadline, "a run outlived its interrupt"
        for worker in workers:
            worker.join(INTERRUPT_EVERY_S / len(workers))
    return found


def test_a_run_on_a_worker_thread_stops_with_a_typed_error() -> None:
    plan = _long_plan()
    worker = Worker(lambda: aml.run(plan, threads=1))
    worker.start()
    assert _interrupt_until_done([worker]) >= 1
    assert isinstance(worker.error, RunInterrupted), worker.error
    assert isinstance(worker.error, AcademyMLError)
    assert not isinstance(worker.error, KeyboardInterrupt)  # ends a batch, not an event loop
    assert "interrupt_runs()" in str(worker.error)


def test_runs_on_many_threads_all_stop_and_later_runs_are_unaffected() -> None:
    plan = _long_plan()
    expected = _short_scores()
    workers = [Worker(lambda: aml.run(plan, threads=1)) for _ in range(4)]
    for worker in workers:
        worker.start()
    assert _interrupt_until_done(workers) >= 1
    assert all(isinstance(w.error, RunInterrupted) for w in workers), [w.error for w in workers]
    # The interrupt is not sticky: runs started afterwards, on any thread, finish.
    after = [Worker(_short_scores) for _ in range(8)]
    for worker in after:
        worker.start()
    for worker in after:
        worker.join()
    assert [w.error for w in after] == [None] * len(after)
    assert all(w.result == expected for w in after)


def test_a_run_on_the_main_thread_is_interrupted_from_another_thread() -> None:
    plan = _long_plan()
    stop = threading.Event()

    def interrupt() -> None:
        while not stop.wait(INTERRUPT_EVERY_S):
            _runtime.interrupt_runs()

    interrupter = threading.Thread(target=interrupt, daemon=True)
    interrupter.start()
    try:
        with pytest.raises(RunInterrupted, match="interrupted"):
            aml.run(plan, threads=1)
    finally:
        stop.set()
        interrupter.join()


def test_with_nothing_in_flight_it_reports_none_and_changes_nothing() -> None:
    assert _runtime.interrupt_runs() == 0
    assert _short_scores() == _short_scores()

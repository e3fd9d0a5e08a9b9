"""Interrupter: native runs stop while it runs, including runs started after it began."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor

import academy_ml as aml
from academy_ml.deploy.launch.interrupt import Interrupter, interrupt_native_runs
from academy_ml.exceptions import RunInterrupted


def _long_plan() -> aml.Plan:
    """KNN over 20,000 rows, 39 neighbour counts, 5 folds: seconds on one thread."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 16))
    y = X[:, 0] + rng.normal(size=20_000)
    pipelines = [KNeighborsRegressor(n_neighbors=k) for k in range(1, 40)]
    return aml.compile(pipelines, cv=5, X=X, y=y, scoring="r2")


def _run_on_a_thread(plan: aml.Plan) -> BaseException | None:
    """Runs ``plan`` on a worker thread; returns what it raised."""
    raised: list[BaseException] = []

    def body() -> None:
        try:
            aml.run(plan, threads=1)
        except BaseException as error:  # the test inspects it
            raised.append(error)

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    return raised[0] if raised else None


def test_runs_started_while_it_runs_are_cut_short_and_not_after_close() -> None:
    plan = _long_plan()
    with Interrupter(period_s=0.05) as interrupter:
        interrupter.start()
        # Started after the first interrupt: the next one catches them.
        for _ in range(3):
            assert isinstance(_run_on_a_thread(plan), RunInterrupted)
    assert interrupter.interrupted >= 3
    small = aml.compile([KNeighborsRegressor(3)], cv=3, X=np.eye(30), y=np.arange(30.0))
    assert aml.run(small, threads=1).results[0].ok  # closed: nothing interrupts any more


def test_starting_twice_starts_one_thread() -> None:
    with Interrupter(period_s=0.05) as interrupter:
        interrupter.start()
        interrupter.start()
        names = [t.name for t in threading.enumerate()]
        assert names.count("academy-ml-interrupter") == 1
    assert "academy-ml-interrupter" not in [t.name for t in threading.enumerate()]


def test_without_the_runtime_loaded_it_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that never loaded the runtime has nothing to stop, and does not load it."""
    monkeypatch.delitem(sys.modules, "academy_ml._runtime")
    assert interrupt_native_runs() == 0
    assert "academy_ml._runtime" not in sys.modules


def test_in_process_with_nothing_running_it_reports_none() -> None:
    assert interrupt_native_runs() == 0

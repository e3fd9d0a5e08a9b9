"""Foreign tails run beside the native plan: overlap, the shared thread budget, stops, failures.

Overlap is shown by handshakes, not by time: a foreign step that waits for
the native plan to finish while a spy around ``_runtime.run_plan`` holds
the native plan back until that step has started. A run that did its two
sides one after the other never completes the handshake (each side gives up
after a bound far above a worker's start, and the test fails).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]
import pytest
from foreign_toys import Crash, FailOn, Sleep
from overlap_toys import Handshake, NativeSpy, Record, peak_threads, read_events
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import academy_ml as aml
from academy_ml import _runtime
from academy_ml.deploy.launch.interrupt import interrupt_native_runs
from academy_ml.engine import foreign_workers
from academy_ml.engine.budgets import native_share
from academy_ml.engine.foreign_pool import interrupt_foreign_runs
from academy_ml.exceptions import RunInterrupted

CV = 3

#: Training rows per fold of KFold(3) over diabetes' 442 rows: 294, 295, 295.
FOLD0_ROWS = 294

#: Seconds a stopped run may take to end and its workers to vanish (idle:
#: well under a second); it only turns a hang into a failure.
STOP_BOUND_S = 60.0

#: Seconds the Ctrl-C child may take to reach its native plan (imports and
#: a worker's start on a loaded machine).
START_BOUND_S = 240.0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> NativeSpy:
    """A spy around the runtime's run_plan, logging to ``tmp_path/events``."""
    spy = NativeSpy(_runtime.run_plan, str(tmp_path / "events"), tmp_path)
    monkeypatch.setattr(_runtime, "run_plan", spy)
    return spy


def _expected(pipelines: list[Any], X: Any, y: Any) -> np.ndarray[Any, Any]:
    return np.array([cross_val_score(p, X, y, cv=CV) for p in pipelines])


def _scores(report: aml.RunReport) -> np.ndarray[Any, Any]:
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    return np.array([r.fold_scores for r in report.results])


def test_tails_on_the_users_x_run_while_the_native_plan_runs(
    diabetes: Any, spy: NativeSpy, tmp_path: Path
) -> None:
    X, y = diabetes
    spy.hold = 0
    batch = [
        make_pipeline(StandardScaler(), Ridge()),
        make_pipeline(Handshake(str(tmp_path)), Ridge()),
    ]

    report = aml.run(aml.compile(batch, cv=CV, X=X, y=y), threads=2)

    assert spy.saw_foreign == [True], "no foreign step started while the native plan ran"
    assert len(spy.calls) == CV, "beside tails, the plan's scores run fold by fold"
    np.testing.assert_allclose(_scores(report), _expected(batch, X, y), rtol=0, atol=1e-9)


def test_tails_on_a_native_prefix_start_once_its_matrices_exist(
    diabetes: Any, spy: NativeSpy, tmp_path: Path
) -> None:
    X, y = diabetes
    spy.hold = 1  # the second native stage: the plan's own scores on fold 0
    batch = [
        make_pipeline(StandardScaler(), Handshake(str(tmp_path)), Ridge()),
        make_pipeline(MinMaxScaler(), KNeighborsRegressor(4)),
    ]

    report = aml.run(aml.compile(batch, cv=CV, X=X, y=y), threads=2)

    assert len(spy.calls) == 1 + CV, "matrices for the tails first, then the scores by fold"
    assert spy.saw_foreign == [True], "no tail started while the native scores were computed"
    np.testing.assert_allclose(_scores(report), _expected(batch, X, y), rtol=0, atol=1e-9)


def test_workers_start_before_the_native_plan_runs(diabetes: Any, spy: NativeSpy) -> None:
    X, y = diabetes
    foreign_workers.shutdown()  # no idle worker left from other tests
    seen: list[int] = []
    real = spy.real

    def counting(*args: Any) -> Any:
        seen.append(len(_foreign_worker_children()))
        return real(*args)

    spy.real = counting
    batch = [
        make_pipeline(StandardScaler(), Ridge()),
        make_pipeline(StandardScaler(), Sleep(), Ridge()),
    ]

    report = aml.run(aml.compile(batch, cv=CV, X=X, y=y), threads=2)

    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert seen, "the native plan ran"
    assert seen[0] >= 1, f"worker processes when the native plan started: {seen}"


def _foreign_worker_children() -> list[psutil.Process]:
    children = []
    for child in psutil.Process().children():
        try:
            if "academy_ml.engine.foreign_worker" in child.cmdline():
                children.append(child)
        except psutil.Error:
            continue
    return children


@pytest.mark.parametrize("threads", [1, 2])
def test_the_two_sides_together_never_exceed_the_threads(
    diabetes: Any, spy: NativeSpy, tmp_path: Path, threads: int
) -> None:
    if threads > _runtime.max_threads():
        pytest.skip(f"this machine has {_runtime.max_threads()} cores")
    X, y = diabetes
    log = spy.log
    batch: list[Any] = []
    for i in range(4):
        batch.append(make_pipeline(StandardScaler(), KNeighborsRegressor(3 + i)))
        batch.append(make_pipeline(Record(log, 0.01 * i), Ridge(alpha=1.0 + i)))
        batch.append(make_pipeline(MinMaxScaler(), Record(log, 0.01 * i), Ridge(alpha=1.0 + i)))

    report = aml.run(aml.compile(batch, cv=CV, X=X, y=y), threads=threads)

    events = read_events(log)  # before the reference scores log their own fits
    np.testing.assert_allclose(_scores(report), _expected(batch, X, y), rtol=0, atol=1e-9)
    foreign = [e for e in events if e[1] == "foreign" and e[2] == "start"]
    assert len(foreign) == 8 * CV
    assert all(t >= 1 for t in spy.calls)
    assert peak_threads(events) <= threads, events
    if threads == 1:
        native_end = max(e[0] for e in events if e[1] == "native")
        assert all(e[0] > native_end for e in foreign), "one thread: the tails wait for the plan"


def _long_native_batch(log_dir: Path) -> list[Any]:
    """Neighbour searches of many seconds on one thread, and two long tails."""
    return [KNeighborsRegressor(n_neighbors=k) for k in range(1, 40)] + [
        make_pipeline(Sleep(600, str(log_dir)), Ridge()) for _ in range(2)
    ]


def _long_data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30_000, 16))
    return X, X[:, 0] + rng.normal(size=30_000)


class _Overlapping:
    """A long run on a thread, caught while a tail and the native plan both run."""

    def __init__(self, spy: NativeSpy, tmp_path: Path) -> None:
        sleeps = tmp_path / "sleeps"
        sleeps.mkdir()
        spy.hold, spy.directory, spy.marker = 0, sleeps, "[0-9]*-*"
        X, y = _long_data()
        plan = aml.compile(_long_native_batch(sleeps), cv=5, X=X, y=y)
        self.errors: list[BaseException] = []
        self.runner = threading.Thread(target=self._body, args=(plan,), daemon=True)
        self.runner.start()
        events = Path(spy.log)
        while not events.exists() and self.runner.is_alive():
            self.runner.join(0.05)
        self.pids = {int(f.name.split("-")[0]) for f in sleeps.glob("[0-9]*-*")}
        assert self.pids, "a tail was running when the native plan started"

    def _body(self, plan: aml.Plan) -> None:
        try:
            aml.run(plan, threads=2)
        except BaseException as exc:  # the test inspects it
            self.errors.append(exc)

    def interrupt_until_done(self) -> None:
        deadline = time.monotonic() + STOP_BOUND_S
        while self.runner.is_alive():
            interrupt_native_runs()
            self.runner.join(0.05)
            assert time.monotonic() < deadline, "the run outlived its interrupt"
        assert len(self.errors) == 1, self.errors
        assert isinstance(self.errors[0], RunInterrupted), self.errors


def test_an_interrupt_during_the_overlap_stops_both_sides(spy: NativeSpy, tmp_path: Path) -> None:
    run = _Overlapping(spy, tmp_path)

    run.interrupt_until_done()

    assert [type(e) for e in spy.raised] == [RunInterrupted], "the native plan itself stopped"
    _assert_gone(run.pids)


def test_interrupting_the_tails_alone_kills_their_workers_at_once(
    spy: NativeSpy, tmp_path: Path
) -> None:
    run = _Overlapping(spy, tmp_path)

    assert interrupt_foreign_runs() == 1
    _assert_gone(run.pids)

    assert run.runner.is_alive(), "the native plan (many seconds) was still running"
    assert spy.raised == []
    run.interrupt_until_done()


def _assert_gone(pids: set[int]) -> None:
    """Waits until none of ``pids`` runs (a killed worker not yet reaped counts as gone)."""
    deadline = time.monotonic() + STOP_BOUND_S
    while alive := [pid for pid in pids if _running(pid)]:
        assert time.monotonic() < deadline, f"workers {alive} outlived the run"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


CHILD = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    from foreign_overlap_test import _long_data, _long_native_batch
    from overlap_toys import NativeSpy
    import academy_ml as aml
    from academy_ml import _runtime

    directory = Path(sys.argv[2])
    spy = NativeSpy(_runtime.run_plan, str(directory / "events"), directory, 0, "[0-9]*-*")
    _runtime.run_plan = spy
    X, y = _long_data()
    try:
        aml.evaluate(_long_native_batch(directory), X, y, cv=5, threads=2)
    except KeyboardInterrupt:
        print("interrupted", *[type(e).__name__ for e in spy.raised], flush=True)
        sys.exit(130)
    print("finished", flush=True)
    """
)


def test_ctrl_c_during_the_overlap_stops_both_sides(tmp_path: Path) -> None:
    here = str(Path(__file__).parent)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, here, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_BOUND_S
        # The spy logs its start once a tail runs, right before the native plan.
        while not (tmp_path / "events").exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the native plan never started beside a tail"
            time.sleep(0.05)
        workers = {int(f.name.split("-")[0]) for f in tmp_path.glob("[0-9]*-*")}
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=STOP_BOUND_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, (out, err)
    assert out.split() == ["interrupted", "KeyboardInterrupt"], (out, err)
    assert workers, "a tail was running"
    assert child.pid not in workers
    _assert_gone(workers)


def test_a_failing_tail_fails_only_its_pipeline_while_the_plan_runs(diabetes: Any) -> None:
    X, y = diabetes
    good = [
        make_pipeline(StandardScaler(), KNeighborsRegressor(5)),
        make_pipeline(StandardScaler(), Sleep(0.01), Ridge()),
        make_pipeline(Sleep(0.01), Ridge()),
        make_pipeline(MinMaxScaler(), Ridge(alpha=3.0)),
    ]
    bad = {
        "fails": make_pipeline(FailOn(FOLD0_ROWS), Ridge()),
        "exits": make_pipeline(StandardScaler(), Crash("exit", FOLD0_ROWS), Ridge()),
        "segfaults": make_pipeline(MinMaxScaler(), Crash("segv", FOLD0_ROWS), Ridge()),
    }
    batch = [good[0], bad["fails"], good[1], bad["exits"], good[2], bad["segfaults"], good[3]]

    report = aml.run(aml.compile(batch, cv=CV, X=X, y=y), threads=2)

    expected = {
        id(bad["fails"]): "step 'failon' (FailOn): RuntimeError: failed on 294 rows",
        id(bad["exits"]): "exited with code 3",
        id(bad["segfaults"]): "killed by SIGSEGV",
    }
    for pipeline, result in zip(batch, report.results, strict=True):
        if id(pipeline) in expected:
            assert result.error is not None
            assert expected[id(pipeline)] in result.error, result.error
            assert np.isnan(result.fold_scores).all()
        else:
            assert result.error is None, result.error
            np.testing.assert_allclose(
                result.fold_scores, cross_val_score(pipeline, X, y, cv=CV), rtol=0, atol=1e-9
            )


@pytest.mark.parametrize(
    ("threads", "native", "foreign", "share"),
    [
        (1, 10, 10, 1),  # one thread: the plan first, the tails after it
        (2, 10, 10, 1),
        (2, 100, 1, 1),  # each side with work keeps a thread
        (2, 1, 100, 1),
        (8, 30, 10, 6),
        (8, 1, 100, 1),
        (8, 5, 0, 8),  # no tails: every thread to the plan
        (8, 0, 5, 0),
    ],
)
def test_the_native_share_follows_the_work_and_leaves_each_side_a_thread(
    threads: int, native: int, foreign: int, share: int
) -> None:
    assert native_share(threads, native, foreign) == share


@pytest.mark.parametrize("bad", [(0, 1, 1), (2, -1, 1), (2, 1, -1)])
def test_a_bad_native_share_request_is_refused(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="must"):
        native_share(*bad)

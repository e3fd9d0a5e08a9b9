"""Foreign tails on worker processes: concurrency, failures, crashes, dedupe, memory, interrupts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]
import pytest
from foreign_toys import CountFits, Crash, FailOn, ReportThreads, SharedFiles, Sleep
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler
from sklearn.tree import ExtraTreeRegressor

import academy_ml as aml
from academy_ml.deploy.launch.interrupt import interrupt_native_runs
from academy_ml.engine import foreign_workers
from academy_ml.engine.foreign_pool import interrupt_foreign_runs
from academy_ml.exceptions import RunInterrupted

CV = 3

#: Training rows per fold of KFold(3) over diabetes' 442 rows: 294, 295, 295.
FOLD0_ROWS = 294


def _tree(seed: int) -> Any:
    # A random-split tree stays on the Python backend (best-split trees are native).
    return ExtraTreeRegressor(max_depth=3, random_state=seed)


def test_many_pipelines_with_failures_sleeps_and_crashes_fail_only_themselves(
    diabetes: Any,
) -> None:
    X, y = diabetes
    good = [make_pipeline(StandardScaler(), Sleep(0.01 * (i % 3)), _tree(i)) for i in range(10)]
    good += [make_pipeline(Sleep(0.02), _tree(100 + i)) for i in range(3)]
    bad = {
        "fails": make_pipeline(StandardScaler(), FailOn(FOLD0_ROWS), _tree(0)),
        "exits": make_pipeline(StandardScaler(), Crash("exit", FOLD0_ROWS), _tree(0)),
        "segfaults": make_pipeline(MinMaxScaler(), Crash("segv", FOLD0_ROWS), _tree(0)),
        "fails_first": make_pipeline(FailOn(), _tree(0)),
    }
    # Each kind twice, interleaved with the good ones: every crash costs a fresh worker
    # (a Python start), so more copies add time, not coverage.
    batch = [p for pair in zip(good, list(bad.values()) * 2, strict=False) for p in pair]
    batch += good[len(bad) * 2 :]

    results = aml.evaluate(batch, X, y, cv=CV, threads=2)

    expected = {
        "fails": ("step 'failon' (FailOn): RuntimeError: failed on 294 rows", "(fold 0)"),
        "exits": ("worker process running this step", "exited with code 3"),
        "segfaults": ("worker process running this step", "killed by SIGSEGV"),
        "fails_first": ("step 'failon' (FailOn): RuntimeError: failed on", "(fold 0)"),
    }
    names = {id(p): name for name, p in bad.items()}
    for pipeline, result in zip(batch, results, strict=True):
        if id(pipeline) in names:
            assert result.error is not None
            for part in expected[names[id(pipeline)]]:
                assert part in result.error, result.error
            assert np.isnan(result.fold_scores).all()
        else:
            assert result.error is None, result.error
            np.testing.assert_allclose(
                result.fold_scores, cross_val_score(pipeline, X, y, cv=CV), rtol=0, atol=1e-9
            )
    # The pool replaced its dead workers: the next run is whole.
    again = aml.evaluate(good[:3], X, y, cv=CV, threads=2)
    assert all(r.ok for r in again), [r.error for r in again]


def test_identical_foreign_steps_on_identical_inputs_run_once(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes

    def pipeline() -> Any:
        return make_pipeline(StandardScaler(), CountFits(str(tmp_path)), _tree(0))

    plan = aml.compile([pipeline(), pipeline(), pipeline()], cv=CV, X=X, y=y)
    report = aml.run(plan, threads=2)

    assert all(r.ok for r in report.results)
    assert report.python_scores == CV
    assert len(list(tmp_path.iterdir())) == CV
    assert report.results[0].fold_scores.tolist() == report.results[2].fold_scores.tolist()


def test_fold_matrices_are_shared_files_and_only_a_few_exist_at_once(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    prefixes = [StandardScaler(), MinMaxScaler()] + [PCA(n_components=k) for k in range(2, 10)]
    batch = [make_pipeline(p, SharedFiles(str(tmp_path)), Ridge()) for p in prefixes]

    results = aml.evaluate(batch, X, y, cv=CV, threads=2)

    assert all(r.ok for r in results), [r.error for r in results]
    counts = [int(f.name.split("-")[0]) for f in tmp_path.iterdir()]
    assert len(counts) == len(batch) * CV
    assert min(counts) > 0, "the tails read memory-mapped fold matrices"
    # 2 workers: their in-flight tasks' matrices, one group being dispatched, and y,
    # never all 2 x 10 x 3 fold matrices.
    assert max(counts) <= 2 * (2 + 1) + 1, counts


@pytest.mark.parametrize("threads", [1, 2])
def test_each_foreign_task_runs_within_its_share_of_threads(diabetes: Any, threads: int) -> None:
    X, y = diabetes

    (result,) = aml.evaluate(
        [make_pipeline(StandardScaler(), ReportThreads(), Ridge())], X, y, cv=CV, threads=threads
    )

    # CV tasks on `threads` cores: one thread each, OpenMP and BLAS alike.
    assert result.error is not None
    assert "openmp=1 blas=1" in result.error, result.error


def _worker_pids(log_dir: Path) -> set[int]:
    return {int(f.name.split("-")[0]) for f in log_dir.iterdir()}


# The engine's own hook, and what a stopping process calls (it reaches native runs too).
@pytest.mark.parametrize("interrupt", [interrupt_foreign_runs, interrupt_native_runs])
def test_an_interrupt_stops_the_foreign_phase_and_kills_its_workers(
    diabetes: Any, tmp_path: Path, interrupt: Callable[[], int]
) -> None:
    X, y = diabetes
    plan = aml.compile(
        [make_pipeline(StandardScaler(), Sleep(600, str(tmp_path)), Ridge()) for _ in range(2)],
        cv=CV,
        X=X,
        y=y,
    )
    errors: list[BaseException] = []

    def body() -> None:
        try:
            aml.run(plan, threads=2)
        except BaseException as exc:  # the test inspects it
            errors.append(exc)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    while not tmp_path.exists() or len(_worker_pids(tmp_path)) < 2:
        worker.join(0.05)
    pids = _worker_pids(tmp_path)
    while worker.is_alive():
        interrupt()
        worker.join(0.05)

    assert len(errors) == 1
    assert isinstance(errors[0], RunInterrupted), errors
    assert "interrupt" in str(errors[0])
    for pid in pids:
        assert not psutil.pid_exists(pid), f"worker {pid} outlived the interrupt"
    # Later runs start fresh workers and are unaffected.
    assert interrupt_foreign_runs() == 0
    after = aml.evaluate([make_pipeline(StandardScaler(), _tree(0))], X, y, cv=CV)
    assert after[0].ok, after[0].error


def test_idle_workers_are_closed_and_reaped_at_shutdown(diabetes: Any) -> None:
    X, y = diabetes
    aml.evaluate([make_pipeline(StandardScaler(), _tree(0))], X, y, cv=CV, threads=2)
    pids = [w.pid for w in foreign_workers._idle]
    assert pids, "idle workers are kept for the next run"

    foreign_workers.shutdown()

    assert foreign_workers._idle == []
    assert not [p for p in pids if psutil.pid_exists(p)]


def test_steps_no_worker_can_load_run_in_this_process(diabetes: Any) -> None:
    X, y = diabetes
    # A lambda cannot be pickled for a worker: the tail runs here, with the same result.
    pipeline = make_pipeline(StandardScaler(), FunctionTransformer(lambda a: a * 2), _tree(0))

    (result,) = aml.evaluate([pipeline], X, y, cv=CV, threads=2)

    assert result.ok, result.error
    np.testing.assert_array_equal(result.fold_scores, cross_val_score(pipeline, X, y, cv=CV))

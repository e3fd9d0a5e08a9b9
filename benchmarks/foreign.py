"""Foreign steps: academy_ml's Python backend against sequential scikit-learn.

A batch of tree ensembles the engine does not run natively (6
HistGradientBoostingRegressor variants, 2 RandomForestRegressor, 2
GradientBoostingRegressor, some behind a native StandardScaler) is
cross-validated (5-fold KFold, r2) on a synthetic table
(``make_regression``, 20,000 x 10 by default). Variants, in one process:

  B0            sequential ``cross_val_score`` per pipeline, scikit-learn's
                default threads (OpenMP and BLAS on every core), or
                ``--b0-threads N`` under ``threadpool_limits(N)``
  thread pool   every (pipeline, fold) fit on a ThreadPoolExecutor of
                ``threads`` threads, one OpenMP/BLAS thread each: what a
                thread pool would give (the GIL serialises the Python parts)
  ours cold     ``aml.evaluate`` (worker processes started by this call)
  ours          ``aml.evaluate`` again (workers kept from the cold run)
  ours 1 thread ``aml.evaluate(threads=1)``

Ratios are B0's wall time over the variant's. Every variant's fold scores
must equal B0's within 1e-6 (the script exits non-zero otherwise); speed is
printed, not enforced. ``--quick`` uses 2,000 rows and checks agreement.

On a busy machine pass ``--b0-threads 1``: OpenMP's spinning barriers make
scikit-learn's default threads collapse there (one HGB fit on 2,000 rows,
2 cores at load average 11: 25.5 s on 2 OpenMP threads, 1.2 s on one), and
B0 would then measure the load, not scikit-learn.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sklearn.datasets import make_regression
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

import academy_ml as aml
from academy_ml import _runtime

CV = 5
TOLERANCE = 1e-6


def batch() -> list[Any]:
    """6 HGB variants, 2 random forests, 2 classic gradient boosting models."""
    hgb = [
        HistGradientBoostingRegressor(random_state=0),
        HistGradientBoostingRegressor(learning_rate=0.05, random_state=0),
        HistGradientBoostingRegressor(max_leaf_nodes=15, random_state=0),
        make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_depth=4, random_state=0)),
        make_pipeline(StandardScaler(), HistGradientBoostingRegressor(l2_regularization=1.0)),
        HistGradientBoostingRegressor(max_iter=200, early_stopping=False, random_state=0),
    ]
    # The unpinned one: scikit-learn's own scores vary run to run, but with
    # early stopping off (n < 10,000 rows in --quick too) its fit is deterministic.
    hgb[4].set_params(histgradientboostingregressor__early_stopping=False)
    forests = [
        RandomForestRegressor(n_estimators=20, random_state=0),
        make_pipeline(
            StandardScaler(), RandomForestRegressor(n_estimators=20, max_depth=8, random_state=1)
        ),
    ]
    boosting = [
        GradientBoostingRegressor(n_estimators=50, random_state=0),
        make_pipeline(
            StandardScaler(),
            GradientBoostingRegressor(n_estimators=50, max_depth=2, random_state=0),
        ),
    ]
    return hgb + forests + boosting


def sequential(pipelines: list[Any], X: Any, y: Any) -> np.ndarray[Any, Any]:
    return np.array([cross_val_score(p, X, y, cv=CV, scoring="r2") for p in pipelines])


def thread_pool(pipelines: list[Any], X: Any, y: Any, threads: int) -> np.ndarray[Any, Any]:
    from sklearn.base import clone

    folds = list(KFold(CV).split(X))
    scorer = get_scorer("r2")

    def one(job: tuple[int, int]) -> float:
        p, f = job
        train, test = folds[f]
        with threadpool_limits(1):
            model = clone(pipelines[p]).fit(X[train], y[train])
            return float(scorer(model, X[test], y[test]))

    jobs = [(p, f) for p in range(len(pipelines)) for f in range(CV)]
    with ThreadPoolExecutor(threads) as pool:
        scores = list(pool.map(one, jobs))
    return np.array(scores).reshape(len(pipelines), CV)


def ours(pipelines: list[Any], X: Any, y: Any, threads: int | None) -> np.ndarray[Any, Any]:
    results = aml.evaluate(pipelines, X, y, cv=CV, scoring="r2", threads=threads)
    bad = [r.error for r in results if not r.ok]
    if bad:
        raise SystemExit(f"academy_ml failed: {bad}")
    return np.array([r.fold_scores for r in results])


def timed(body: Callable[[], np.ndarray[Any, Any]]) -> tuple[float, np.ndarray[Any, Any]]:
    start = time.perf_counter()
    scores = body()
    return time.perf_counter() - start, scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 rows: agreement only")
    parser.add_argument("--b0-threads", type=int, default=None, help="cap B0's OpenMP/BLAS")
    args = parser.parse_args()
    rows = 2_000 if args.quick else args.rows
    X, y = make_regression(n_samples=rows, n_features=10, noise=5.0, random_state=0)
    pipelines = batch()
    threads = _runtime.max_threads()
    print(f"{len(pipelines)} pipelines x {CV} folds on {rows} x 10, {threads} cores")

    def b0() -> np.ndarray[Any, Any]:
        with threadpool_limits(args.b0_threads):
            return sequential(pipelines, X, y)

    b0_time, reference = timed(b0)
    label = "B0" if args.b0_threads is None else f"B0 {args.b0_threads} thr"
    print(f"{'variant':<14} {'seconds':>9} {'vs B0':>7} {'max |diff|':>11}")
    print(f"{label:<14} {b0_time:9.2f} {1.0:6.2f}x {0.0:11.1e}", flush=True)
    variants: list[tuple[str, Callable[[], np.ndarray[Any, Any]]]] = [
        ("thread pool", lambda: thread_pool(pipelines, X, y, threads)),
        ("ours cold", lambda: ours(pipelines, X, y, None)),
        ("ours", lambda: ours(pipelines, X, y, None)),
        ("ours 1 thread", lambda: ours(pipelines, X, y, 1)),
    ]
    worst = 0.0
    for name, body in variants:
        seconds, scores = timed(body)
        diff = float(np.max(np.abs(scores - reference)))
        worst = max(worst, diff)
        print(f"{name:<14} {seconds:9.2f} {b0_time / seconds:6.2f}x {diff:11.1e}", flush=True)
    if worst > TOLERANCE:
        print(f"FAIL: scores differ from scikit-learn's by {worst:.1e} > {TOLERANCE}")
        return 1
    print(f"scores agree with scikit-learn within {TOLERANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

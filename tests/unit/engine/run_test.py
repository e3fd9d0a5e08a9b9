"""Running plans with the node cache: reuse, parity, damage, foreign tails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import academy_ml as aml
from academy_ml import _runtime

CV = 5


def _prefix(*model: Any) -> Any:
    return make_pipeline(SimpleImputer(), StandardScaler(), PCA(n_components=6), *model)


def _scores(report: aml.RunReport) -> np.ndarray[Any, Any]:
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    return np.array([r.fold_scores for r in report.results])


def _uncached(pipelines: list[Any], X: Any, y: Any) -> np.ndarray[Any, Any]:
    return _scores(aml.run(aml.compile(pipelines, cv=CV, X=X, y=y)))


def test_a_repeated_batch_costs_one_lookup_per_score(diabetes: Any, tmp_path: Path) -> None:
    X, y = diabetes
    batch = [_prefix(Ridge(alpha=a)) for a in (0.1, 1.0)] + [_prefix(KNeighborsRegressor(5))]
    plan = aml.compile(batch, cv=CV, X=X, y=y)

    cold = aml.run(plan, cache=aml.Cache(tmp_path))
    warm = aml.run(plan, cache=aml.Cache(tmp_path))

    assert cold.cache_hits == 0
    assert cold.executed > 0
    assert warm.executed == 0
    assert warm.cache_hits == len(batch) * CV
    np.testing.assert_array_equal(_scores(warm), _scores(cold))
    np.testing.assert_array_equal(_scores(cold), _uncached(batch, X, y))


def test_everything_small_is_kept_splits_matrices_fits_and_scores(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    cold = aml.run(aml.compile([_prefix(Ridge())], cv=CV, X=X, y=y), cache=aml.Cache(tmp_path))

    # Fold splits (take_rows), transformed matrices (apply), fitted steps
    # (fit/gram/solve) and scores are all below the always-kept size.
    assert cold.cache_stores == cold.executed
    assert cold.cache.stores == cold.executed


def test_a_new_model_on_a_cached_prefix_computes_only_the_model(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    cache = aml.Cache(tmp_path)
    aml.run(aml.compile([_prefix(Ridge(alpha=1.0))], cv=CV, X=X, y=y), cache=cache)
    batch = [_prefix(Ridge(alpha=7.0)), _prefix(KNeighborsRegressor(3))]

    warm = aml.run(aml.compile(batch, cv=CV, X=X, y=y), cache=cache)
    cold = aml.run(aml.compile(batch, cv=CV, X=X, y=y))

    # Ridge: solve + apply + score per fold from the cached Gram. KNN:
    # neighbours + predict + score, reading the cached PCA matrices.
    assert warm.executed == 6 * CV
    assert warm.cache_hits > 0
    assert cold.executed > warm.executed
    np.testing.assert_allclose(_scores(warm), _scores(cold), rtol=0, atol=1e-12)


def test_a_larger_neighbour_request_is_not_served_by_a_shorter_search(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    cache = aml.Cache(tmp_path)
    aml.run(aml.compile([_prefix(KNeighborsRegressor(3))], cv=CV, X=X, y=y), cache=cache)
    batch = [_prefix(KNeighborsRegressor(9)), _prefix(KNeighborsRegressor(2))]

    warm = aml.run(aml.compile(batch, cv=CV, X=X, y=y), cache=cache)

    np.testing.assert_allclose(_scores(warm), _uncached(batch, X, y), rtol=0, atol=1e-12)
    again = aml.run(aml.compile([_prefix(KNeighborsRegressor(4))], cv=CV, X=X, y=y), cache=cache)
    assert again.executed == 2 * CV, "the 9-neighbour search now serves k=4"


def test_damaged_entries_are_recomputed_and_counted(diabetes: Any, tmp_path: Path) -> None:
    X, y = diabetes
    batch = [_prefix(Ridge()), _prefix(KNeighborsRegressor(4))]
    plan = aml.compile(batch, cv=CV, X=X, y=y)
    aml.run(plan, cache=aml.Cache(tmp_path))
    files = sorted((tmp_path / "entries").rglob("*"))
    files = [f for f in files if f.is_file()]
    for i, path in enumerate(files):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if i % 2 else data[:-1] + bytes([data[-1] ^ 1]))

    cache = aml.Cache(tmp_path)
    damaged = aml.run(plan, cache=cache)

    np.testing.assert_array_equal(_scores(damaged), _uncached(batch, X, y))
    assert damaged.cache.corrupt > 0
    assert damaged.executed > 0
    assert aml.Cache(tmp_path).summary().totals.corrupt == damaged.cache.corrupt


def test_tiers_alone_and_under_tiny_budgets_give_the_same_scores(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    batch = [_prefix(Ridge()), _prefix(KNeighborsRegressor(4))]
    expected = _uncached(batch, X, y)
    caches = {
        "memory only": aml.Cache(tmp_path / "m", disk_bytes=0),
        "disk only": aml.Cache(tmp_path / "d", memory_bytes=0),
        "tiny": aml.Cache(tmp_path / "t", memory_bytes=50_000, disk_bytes=400_000),
    }
    for name, cache in caches.items():
        plan = aml.compile(batch, cv=CV, X=X, y=y)
        first, second = aml.run(plan, cache=cache), aml.run(plan, cache=cache)
        np.testing.assert_array_equal(_scores(first), expected, err_msg=name)
        np.testing.assert_array_equal(_scores(second), expected, err_msg=name)
    assert caches["tiny"].stats().evictions > 0
    assert caches["tiny"].summary().bytes <= 400_000
    assert caches["memory only"].stats().bytes_written == 0
    assert caches["disk only"].stats().memory_hits == 0


def test_deterministic_foreign_scores_are_cached(diabetes: Any, tmp_path: Path) -> None:
    X, y = diabetes
    pinned = make_pipeline(StandardScaler(), ExtraTreesRegressor(5, random_state=0))
    unpinned = make_pipeline(StandardScaler(), ExtraTreesRegressor(5))
    plan = aml.compile([pinned, unpinned], cv=CV, X=X, y=y)
    cache = aml.Cache(tmp_path)

    cold, warm = aml.run(plan, cache=cache), aml.run(plan, cache=cache)

    assert (cold.python_scores, cold.python_hits) == (2 * CV, 0)
    assert (warm.python_scores, warm.python_hits) == (CV, CV), "only the pinned one is reused"
    np.testing.assert_array_equal(warm.results[0].fold_scores, cold.results[0].fold_scores)


def test_a_different_dataset_never_reads_another_datasets_entries(
    diabetes: Any, tmp_path: Path
) -> None:
    X, y = diabetes
    cache = aml.Cache(tmp_path)
    batch = [_prefix(Ridge())]
    aml.run(aml.compile(batch, cv=CV, X=X, y=y), cache=cache)
    X2 = X.copy()
    X2[0, 0] += 1e-9

    other = aml.run(aml.compile(batch, cv=CV, X=X2, y=y), cache=cache)

    # Only y's fold splits are shared: they do not depend on X.
    assert other.cache_hits == 2 * CV
    np.testing.assert_array_equal(_scores(other), _uncached(batch, X2, y))


def test_threads_are_validated_by_run(diabetes: Any) -> None:
    X, y = diabetes
    plan = aml.compile([Ridge()], cv=CV, X=X, y=y)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        aml.run(plan, threads=0)


def test_the_runtime_refuses_threads_beyond_the_cores_itself(diabetes: Any) -> None:
    # Requests reach run_plan without run.py's check (an endpoint on another
    # machine): each size used to keep a pool forever, and 100000 hung.
    X, y = diabetes
    plan = aml.compile([Ridge()], cv=CV, X=X, y=y)
    assert plan.table is not None
    limit = _runtime.max_threads()
    arguments = (plan.to_bytes(), plan.table.matrix, plan.targets, plan.indices)
    for threads in (limit + 1, 10**5):
        with pytest.raises(aml.ParameterError, match=rf"at most {limit} .*got {threads}"):
            _runtime.run_plan(*arguments, threads)
    outputs, _ = _runtime.run_plan(*arguments, limit)
    assert len(outputs) == CV
    assert all(isinstance(score, float) for score in outputs)


def test_run_refuses_threads_beyond_the_cores(diabetes: Any) -> None:
    X, y = diabetes
    plan = aml.compile([Ridge()], cv=CV, X=X, y=y)
    with pytest.raises(aml.ParameterError, match="threads must be at most"):
        aml.run(plan, threads=_runtime.max_threads() + 1)


def _fold_scores_in_child(X: Any, y: Any) -> list[float]:
    (result,) = aml.evaluate([make_pipeline(StandardScaler(), Ridge())], X, y, cv=3, threads=2)
    return [float(s) for s in result.fold_scores]


def test_a_forked_child_runs_plans_after_its_parent_did(diabetes: Any) -> None:
    # Globus Compute's ProcessPoolEngine and multiprocessing fork their
    # workers; the parent's worker threads do not come along.
    import multiprocessing

    X, y = diabetes
    expected = _fold_scores_in_child(X, y)  # builds this process's 2-thread pool
    with multiprocessing.get_context("fork").Pool(1) as children:
        scores = children.apply_async(_fold_scores_in_child, (X, y)).get(timeout=60)
    assert scores == pytest.approx(expected, rel=1e-12)

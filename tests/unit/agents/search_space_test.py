"""The agent simulator: deterministic rounds, shared prefixes, the tables it explores."""

from __future__ import annotations

import importlib.util
import math
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_selection import SelectKBest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from academy_ml.agents.search_space import (
    Candidate,
    exploit,
    explore,
    explore_candidates,
    explored_batch,
    synthetic_table,
)
from academy_ml.exceptions import GeneratorExhausted

REGRESSORS = ("ridge", "linear", "knn")


@pytest.fixture(scope="module")
def flights() -> types.ModuleType:
    """``benchmarks/flights.py``, loaded by path: the benchmarks are scripts, not a package."""
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "flights.py"
    spec = importlib.util.spec_from_file_location("flights", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explore_is_deterministic_per_seed() -> None:
    first = explore_candidates(64, seed=3, max_k=12)
    assert first == explore_candidates(64, seed=3, max_k=12)
    assert first != explore_candidates(64, seed=4, max_k=12)


def test_explore_proposes_distinct_valid_canonical_candidates() -> None:
    batch = explore_candidates(256, seed=0, max_k=12)
    assert len(batch) == 256
    assert len(set(batch)) == 256
    default = Candidate()
    for c in batch:
        assert c.model != "knn" or c.feature in ("pca", "select")
        assert c.feature != "poly" or c.scaler != "none"
        assert 2 <= c.feature_k <= 12 or c.feature == "none"
        if c.feature == "none":
            assert c.feature_k == default.feature_k
        if c.model != "knn":
            assert (c.neighbors, c.weights) == (default.neighbors, default.weights)
        if c.model != "ridge":
            assert c.alpha == default.alpha
    assert {c.model for c in batch} == set(REGRESSORS)
    assert {c.feature for c in batch} == {"none", "pca", "select", "poly"}


def test_explore_builds_distinct_pipelines() -> None:
    pipelines = explore(64, ["a", "b"], ["c"], seed=0)
    assert all(isinstance(p, Pipeline) for p in pipelines)
    assert len({repr(p) for p in pipelines}) == 64


def test_models_restricts_the_families() -> None:
    batch = explore_candidates(64, seed=0, models=("ridge", "linear"))
    assert {c.model for c in batch} == {"ridge", "linear"}
    with pytest.raises(ValueError, match="models"):
        explore_candidates(4, models=("forest",))


def test_poly_expands_only_selected_columns() -> None:
    pipeline = Candidate(feature="poly", feature_k=5).build(["a"], ["c"], "regression")
    features = pipeline.named_steps["features"]
    assert isinstance(features, Pipeline)
    select, poly = (step for _, step in features.steps)
    assert isinstance(select, SelectKBest)
    assert select.k == 5
    assert isinstance(poly, PolynomialFeatures)
    assert poly.degree == 2


def test_exploit_is_deterministic_and_new() -> None:
    first = explore_candidates(64, seed=0, max_k=12)
    scores = np.linspace(0.0, 1.0, 64).tolist()
    second = exploit(first, 64, scores=scores, seed=1, max_k=12)
    assert second == exploit(first, 64, scores=scores, seed=1, max_k=12)
    assert len(second) == 64
    assert len(set(second)) == 64
    assert not set(second) & set(first)


@pytest.mark.parametrize("n", [12, 64, 256])
def test_exploit_keeps_most_prefixes_of_the_best(n: int) -> None:
    first = explore_candidates(n, seed=0, max_k=12)
    scores = [float(i) for i in range(n)]  # the last quarter is the best
    elite = first[n - math.ceil(n / 4) :]
    second = exploit(first, n, scores=scores, seed=1, max_k=12)
    kept = [c for c in second if c.prefix in {p.prefix for p in elite}]
    assert len(kept) >= n - round(0.15 * n)
    previous = {c.prefix for c in first}
    assert sum(c.prefix in previous for c in second) >= 0.8 * n


def test_exploit_ranks_failed_candidates_last() -> None:
    first = explore_candidates(8, seed=0)
    scores = [math.nan] * 7 + [0.5]
    second = exploit(first, 4, scores=scores, seed=0, elite=1 / 8, prefix_rate=0.0)
    assert {c.prefix for c in second} == {first[7].prefix}


def test_exploit_rejects_bad_input() -> None:
    first = explore_candidates(4, seed=0)
    with pytest.raises(ValueError, match="previous"):
        exploit([], 4)
    with pytest.raises(ValueError, match="scores"):
        exploit(first, 4, scores=[1.0])


def test_exploit_changes_preprocessing_once_the_model_choices_run_out() -> None:
    only = explore_candidates(1, seed=0, models=("linear",))  # a linear model has no knobs
    children = exploit(only, 10, models=("linear",), prefix_rate=0.0)
    assert len(set(children)) == 10
    assert only[0] not in children
    assert {c.model for c in children} == {"linear"}
    assert all(c.prefix != only[0].prefix for c in children)


def test_a_small_space_runs_out_with_the_candidates_it_found() -> None:
    only = explore_candidates(1, seed=0, models=("linear",))
    with pytest.raises(GeneratorExhausted, match="exhausted after") as exhausted:
        exploit(only, 50, models=("linear",), prefix_rate=0.0)
    partial = exhausted.value.partial
    assert 0 < len(partial) < 50
    assert len(set(partial)) == len(partial)
    assert only[0] not in partial
    # One preprocessing change away from the parent: 2 imputers, 3 scalers, 3 * 7 feature steps.
    assert len(partial) == 2 + 3 + 3 * 7


def test_explore_runs_out_of_the_whole_space_with_all_of_it() -> None:
    # linear, max_k 2: 3 imputers x (4 scalers x {none, pca, select} + 3 scalers x poly).
    with pytest.raises(GeneratorExhausted, match="45 of 60") as exhausted:
        explore_candidates(60, seed=0, max_k=2, models=("linear",))
    partial = exhausted.value.partial
    assert len(set(partial)) == 45
    assert all(c.model == "linear" for c in partial)


def test_synthetic_table_shape() -> None:
    X, y = synthetic_table(500, n_numeric=6, n_categorical=3, seed=1)
    assert X.shape == (500, 9)
    assert y.shape == (500,)
    assert X.isna().to_numpy().any()
    assert [c for c in X.columns if c.startswith("cat")] == ["cat0", "cat1", "cat2"]
    X2, y2, pipelines = explored_batch(5, 300, seed=2)
    assert X2.shape == (300, 18)
    assert len(y2) == 300
    assert len(pipelines) == 5


def test_flights_table_has_the_benchmark_shape(flights: types.ModuleType) -> None:
    numeric, categorical = flights.NUMERIC, flights.CATEGORICAL
    X, y = flights.flights_table()
    assert X.shape == (327_346, 45)
    assert len(numeric) >= 40
    assert len(categorical) >= 2
    assert list(X.columns) == numeric + categorical
    assert not np.isnan(y).any()
    assert X[numeric].isna().to_numpy().any()
    assert X[categorical].isna().to_numpy().any()
    assert all(X[c].nunique() <= 16 for c in categorical)
    pre = Candidate().build(numeric, categorical, "regression").named_steps["pre"]
    encoded = pre.fit_transform(X.iloc[::50])
    assert 40 + len(categorical) <= encoded.shape[1] <= 100


def test_flights_sample_is_reproducible_and_ordered(flights: types.ModuleType) -> None:
    X, y = flights.flights_table(2_000, seed=5)
    again, y_again = flights.flights_table(2_000, seed=5)
    assert X.shape == (2_000, 45)
    assert X.equals(again)
    assert np.array_equal(y, y_again)
    assert (np.diff(X["day_of_year"]) >= 0).all()
    with pytest.raises(ValueError, match="n_rows"):
        flights.flights_table(0)

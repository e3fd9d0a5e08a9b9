"""Native decision trees score every fold exactly as scikit-learn's do.

Each case runs ``aml.evaluate`` (the tree on the Rust backend) and
``cross_val_score`` on the same folds and compares the fold scores to 1e-6.
Discrete columns make tied values and tied split improvements common, so the
splitter's sort order, feature sampling and tie rules are exercised.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import academy_ml as aml

TOL = 1e-6


def make_data(n: int, seed: int, n_classes: int | None) -> tuple[Any, Any]:
    """Continuous and discrete columns; a noisy target (classes if ``n_classes``)."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, 4, size=n).astype(float),
            rng.uniform(-2, 2, size=n),
            rng.integers(0, 2, size=n).astype(float),
            rng.normal(size=n) * 1e3,
            np.round(rng.normal(size=n), 1),
        ]
    )
    signal = x[:, 0] + x[:, 1] * x[:, 3] - np.abs(x[:, 2]) + rng.normal(scale=0.5, size=n)
    if n_classes is None:
        return x, signal
    edges = np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1])
    return x, np.digitize(signal, edges)


def check(model: Any, x: Any, y: Any, scoring: str | None = None, cv: int = 5) -> None:
    [result] = aml.evaluate([model], x, y, cv=cv, scoring=scoring, threads=1)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {"rust"}, result.backends
    want = cross_val_score(model, x, y, cv=cv, scoring=scoring)
    np.testing.assert_allclose(result.fold_scores, want, rtol=0, atol=TOL)


REGRESSION = [
    {},
    {"max_depth": 3},
    {"min_samples_split": 12},
    {"min_samples_split": 0.1},
    {"min_samples_leaf": 5},
    {"min_samples_leaf": 0.04},
    {"min_weight_fraction_leaf": 0.05},
    {"max_features": 2, "random_state": 3},
    {"max_features": 0.5, "random_state": 11},
    {"max_features": "sqrt", "random_state": 0},
    {"max_features": "log2", "random_state": 42},
    {"max_leaf_nodes": 9},
    {"max_leaf_nodes": 6, "max_features": 3, "random_state": 5},
    {"min_impurity_decrease": 0.05},
    {"max_depth": 4, "random_state": 2**32 - 1},
]


@pytest.mark.parametrize("params", REGRESSION, ids=str)
def test_regressor_matches_scikit_learn(params: dict[str, Any]) -> None:
    x, y = make_data(240, 0, None)
    check(DecisionTreeRegressor(**{"random_state": 0, **params}), x, y)


def test_friedman_mse_is_squared_error() -> None:
    x, y = make_data(150, 1, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = DecisionTreeRegressor(criterion="friedman_mse", random_state=0, max_depth=5)
    check(model, x, y, scoring="neg_mean_squared_error")


CLASSIFICATION = [
    {},
    {"criterion": "entropy"},
    {"criterion": "log_loss", "max_depth": 4},
    {"class_weight": "balanced"},
    {"class_weight": "balanced", "criterion": "entropy", "min_weight_fraction_leaf": 0.1},
    {"max_features": "sqrt", "random_state": 7},
    {"max_features": 2, "random_state": 1, "criterion": "entropy"},
    {"max_leaf_nodes": 7},
    {"max_leaf_nodes": 5, "class_weight": "balanced", "max_features": 0.5},
    {"min_samples_leaf": 4, "min_impurity_decrease": 0.01},
]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("params", CLASSIFICATION, ids=str)
def test_classifier_matches_scikit_learn(params: dict[str, Any], n_classes: int) -> None:
    x, y = make_data(240, 2, n_classes)
    check(DecisionTreeClassifier(**{"random_state": 0, **params}), x, y)


@pytest.mark.parametrize("scoring", ["neg_log_loss", "roc_auc", "f1", "balanced_accuracy"])
def test_probability_scores_match(scoring: str) -> None:
    x, y = make_data(200, 3, 2)
    check(DecisionTreeClassifier(max_depth=4, random_state=0), x, y, scoring=scoring)


def test_a_tree_behind_a_native_prefix() -> None:
    x, y = make_data(200, 4, 3)
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=9, max_depth=6))
    check(model, x, y)


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeRegressor(),
        DecisionTreeRegressor(splitter="random", random_state=0),
        DecisionTreeRegressor(criterion="absolute_error", random_state=0),
        DecisionTreeRegressor(ccp_alpha=0.1, random_state=0),
        DecisionTreeClassifier(class_weight={0: 2.0}, random_state=0),
        DecisionTreeRegressor(random_state=np.random.RandomState(0)),
    ],
    ids=["no-seed", "random-splitter", "absolute-error", "pruning", "dict-weights", "rng-object"],
)
def test_unsupported_parameters_stay_in_python(model: Any) -> None:
    classifier = isinstance(model, DecisionTreeClassifier)
    x, y = make_data(120, 5, 2 if classifier else None)
    [result] = aml.evaluate([model], x, y, cv=3, threads=1)
    assert result.error is None
    assert set(result.backends.values()) == {"python"}


def with_missing(x: Any, columns: list[int], seed: int = 0) -> Any:
    """``x`` with a tenth of the rows of ``columns`` set to NaN."""
    x = x.copy()
    rng = np.random.default_rng(seed)
    for j in columns:
        x[rng.random(len(x)) < 0.1, j] = np.nan
    return x


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeRegressor(random_state=0),
        make_pipeline(StandardScaler(), DecisionTreeRegressor(max_depth=5, random_state=1)),
        ColumnTransformer([("imp", SimpleImputer(), [0])], remainder="passthrough"),
    ],
    ids=["tree", "scaled-tree", "nan-passed-through"],
)
def test_missing_values_send_the_tree_to_python(model: Any) -> None:
    """The native fit refuses NaN; scikit-learn's tree grows on it, so Python fits it."""
    x, y = make_data(200, 6, None)
    x = with_missing(x, [0, 2])
    if isinstance(model, ColumnTransformer):
        model = make_pipeline(model, DecisionTreeRegressor(random_state=2))
    [result] = aml.evaluate([model], x, y, cv=5, threads=1)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {"python"}, result.backends
    np.testing.assert_array_equal(result.fold_scores, cross_val_score(model, x, y, cv=5))


def test_missing_values_in_a_classifier_tree_go_to_python() -> None:
    x, y = make_data(200, 7, 3)
    x = with_missing(x, [1])
    model = DecisionTreeClassifier(max_depth=4, random_state=0)
    [result] = aml.evaluate([model], x, y, cv=5, threads=1)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {"python"}, result.backends
    np.testing.assert_array_equal(result.fold_scores, cross_val_score(model, x, y, cv=5))


@pytest.mark.parametrize(
    "prefix",
    [
        [SimpleImputer()],
        [SimpleImputer(strategy="median"), StandardScaler()],
        [ColumnTransformer([("imp", SimpleImputer(), [0, 2])], remainder="passthrough")],
    ],
    ids=["imputer", "imputer-scaler", "imputed-columns"],
)
def test_an_imputer_keeps_the_tree_native(prefix: list[Any]) -> None:
    x, y = make_data(200, 8, None)
    check(make_pipeline(*prefix, DecisionTreeRegressor(random_state=4)), with_missing(x, [0, 2]), y)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 60),
    classes=st.sampled_from([None, 2, 3]),
    max_features=st.sampled_from([None, 1, 2, "sqrt", 0.7]),
    max_depth=st.sampled_from([None, 1, 3]),
    max_leaf_nodes=st.sampled_from([None, 2, 5]),
    min_samples_leaf=st.integers(1, 4),
)
def test_random_small_problems_match(
    seed: int,
    n: int,
    classes: int | None,
    max_features: Any,
    max_depth: int | None,
    max_leaf_nodes: int | None,
    min_samples_leaf: int,
) -> None:
    x, y = make_data(n, seed % 1000, classes)
    # StratifiedKFold warns when a class has fewer rows than folds.
    assume(classes is None or np.bincount(y).min() >= 3)
    cls = DecisionTreeRegressor if classes is None else DecisionTreeClassifier
    model = cls(
        random_state=seed,
        max_features=max_features,
        max_depth=max_depth,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf,
    )
    check(model, x, y, cv=3)


def test_a_warm_repeat_reads_the_cache_and_a_new_seed_does_not(tmp_path: Any) -> None:
    x, y = make_data(150, 6, 3)
    batch = [DecisionTreeClassifier(random_state=0, max_features=2)]
    cold = aml.run(aml.compile(batch, cv=3, X=x, y=y), cache=aml.Cache(tmp_path))
    assert cold.executed > 0
    assert cold.cache_stores > 0
    # A fresh handle on the same directory reads the stored entries from disk.
    warm = aml.run(aml.compile(batch, cv=3, X=x, y=y), cache=aml.Cache(tmp_path))
    assert warm.executed == 0
    assert warm.cache_hits > 0
    np.testing.assert_array_equal(warm.results[0].fold_scores, cold.results[0].fold_scores)
    reseeded = [DecisionTreeClassifier(random_state=1, max_features=2)]
    other = aml.run(aml.compile(reseeded, cv=3, X=x, y=y), cache=aml.Cache(tmp_path))
    assert other.executed > 0

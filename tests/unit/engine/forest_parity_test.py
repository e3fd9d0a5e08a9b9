"""Native random forests score every fold exactly as scikit-learn's do.

Each case runs ``aml.evaluate`` (the forest on the Rust backend) and
``cross_val_score`` on the same folds and compares the fold scores to 1e-6.
The per-tree seeds, bootstrap draws (uniform, or weighted by class weights),
``max_samples`` and the class weights within each bootstrap sample all have
to match scikit-learn's for the trees, and so the scores, to agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tree_parity_test import check, make_data, with_missing

import academy_ml as aml

SMALL = {"n_estimators": 12, "random_state": 0}

REGRESSION = [
    {},
    {"bootstrap": False},
    {"bootstrap": False, "max_features": 0.5},
    {"max_samples": 0.5},
    {"max_samples": 150},
    {"max_samples": 300, "random_state": 2**32 - 1},
    {"max_features": "sqrt", "max_depth": 5, "random_state": 7},
    {"max_features": 2, "min_samples_leaf": 3, "random_state": 42},
    {"max_leaf_nodes": 12, "random_state": 3},
    {"min_weight_fraction_leaf": 0.05, "max_samples": 0.8},
    {"min_samples_split": 0.05, "min_impurity_decrease": 0.01},
    {"n_estimators": 1, "random_state": 11},
]


@pytest.mark.parametrize("params", REGRESSION, ids=str)
def test_regressor_matches_scikit_learn(params: dict[str, Any]) -> None:
    x, y = make_data(240, 0, None)
    check(RandomForestRegressor(**{**SMALL, **params}), x, y)


CLASSIFICATION = [
    {},
    {"criterion": "entropy"},
    {"criterion": "log_loss", "max_depth": 4},
    {"bootstrap": False},
    {"bootstrap": False, "max_features": None, "random_state": 5},
    {"max_samples": 0.6},
    {"max_samples": 100, "max_features": 3},
    {"class_weight": "balanced"},
    {"class_weight": "balanced", "max_samples": 0.7},
    {"class_weight": "balanced_subsample"},
    {"class_weight": "balanced_subsample", "max_samples": 80, "random_state": 9},
    {"class_weight": "balanced_subsample", "bootstrap": False},
    {"class_weight": "balanced", "bootstrap": False, "min_weight_fraction_leaf": 0.1},
    {"max_leaf_nodes": 8, "min_samples_leaf": 2},
]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("params", CLASSIFICATION, ids=str)
def test_classifier_matches_scikit_learn(params: dict[str, Any], n_classes: int) -> None:
    x, y = make_data(240, 2, n_classes)
    check(RandomForestClassifier(**{**SMALL, **params}), x, y)


@pytest.mark.xfail(strict=True, reason="known: one tree of fold 0 differs (see the report)")
def test_known_mismatch_entropy_on_weighted_bootstrap() -> None:
    """Tree 7 of fold 0 differs although its bootstrap counts equal scikit-learn's."""
    x, y = make_data(240, 2, 3)
    model = RandomForestClassifier(
        class_weight="balanced", max_samples=0.7, criterion="entropy", **SMALL
    )
    check(model, x, y)


@pytest.mark.parametrize("scoring", ["neg_log_loss", "roc_auc", "f1", "balanced_accuracy"])
def test_probability_scores_match(scoring: str) -> None:
    """Mean probabilities over the trees, summed in scikit-learn's order."""
    x, y = make_data(200, 3, 2)
    check(RandomForestClassifier(n_estimators=15, random_state=1), x, y, scoring=scoring)


def test_an_unbalanced_multiclass_target_with_subsample_weights() -> None:
    """Small classes are missed by some bootstrap samples, which then weigh the rest."""
    x, _ = make_data(150, 4, None)
    y = np.where(x[:, 0] > 1.6, 2, np.where(x[:, 0] > 0.3, 1, 0))
    assert np.bincount(y).min() < 15
    model = RandomForestClassifier(
        n_estimators=20, class_weight="balanced_subsample", max_samples=30, random_state=4
    )
    check(model, x, y, cv=3)


def test_a_forest_pipeline_runs_on_the_native_backend() -> None:
    x, y = make_data(200, 5, 3)
    model = make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=10, max_depth=6, random_state=2)
    )
    [result] = aml.evaluate([model], x, y, cv=5, threads=2)
    assert result.error is None, result.error
    assert result.backends == {"standardscaler": "rust", "randomforestclassifier": "rust"}
    want = cross_val_score(model, x, y, cv=5)
    np.testing.assert_allclose(result.fold_scores, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        RandomForestRegressor(n_estimators=5),
        RandomForestRegressor(n_estimators=5, oob_score=True, random_state=0),
        RandomForestRegressor(n_estimators=5, warm_start=True, random_state=0),
        RandomForestRegressor(n_estimators=5, criterion="absolute_error", random_state=0),
        RandomForestRegressor(n_estimators=5, ccp_alpha=0.1, random_state=0),
        RandomForestClassifier(n_estimators=5, class_weight={0: 2.0, 1: 1.0}, random_state=0),
        RandomForestRegressor(n_estimators=5, random_state=np.random.RandomState(0)),
    ],
    ids=["no-seed", "oob", "warm-start", "absolute-error", "pruning", "dict-weights", "rng"],
)
def test_unsupported_parameters_stay_in_python(model: Any) -> None:
    classifier = isinstance(model, RandomForestClassifier)
    x, y = make_data(120, 6, 2 if classifier else None)
    [result] = aml.evaluate([model], x, y, cv=3, threads=1)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {"python"}


def test_missing_values_send_the_forest_to_python() -> None:
    """The native fit refuses NaN; scikit-learn's forest grows on it."""
    x, y = make_data(200, 7, None)
    x = with_missing(x, [0, 2])
    model = RandomForestRegressor(n_estimators=5, random_state=0)
    [result] = aml.evaluate([model], x, y, cv=3, threads=1)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {"python"}, result.backends
    np.testing.assert_array_equal(result.fold_scores, cross_val_score(model, x, y, cv=3))


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(15, 70),
    classes=st.sampled_from([None, 2, 3]),
    bootstrap=st.booleans(),
    max_samples=st.sampled_from([None, 0.5, 9, 200]),
    max_features=st.sampled_from([None, 1, "sqrt", 0.7]),
    class_weight=st.sampled_from([None, "balanced", "balanced_subsample"]),
)
def test_random_small_problems_match(
    seed: int,
    n: int,
    classes: int | None,
    bootstrap: bool,
    max_samples: Any,
    max_features: Any,
    class_weight: str | None,
) -> None:
    x, y = make_data(n, seed % 1000, classes)
    # StratifiedKFold warns when a class has fewer rows than folds.
    assume(classes is None or np.bincount(y).min() >= 3)
    # scikit-learn warns when a fraction of the rows is a small sample.
    assume(not isinstance(max_samples, float) or max_samples * n * 2 / 3 >= 10)
    params: dict[str, Any] = {
        "n_estimators": 6,
        "random_state": seed,
        "bootstrap": bootstrap,
        "max_samples": max_samples if bootstrap else None,
        "max_features": max_features,
    }
    if classes is None:
        model: Any = RandomForestRegressor(**params)
    else:
        model = RandomForestClassifier(class_weight=class_weight, **params)
    check(model, x, y, cv=3)

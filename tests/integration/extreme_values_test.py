"""A workflow author hands the compiler extreme values and gets scikit-learn's
numbers or a clear error for that pipeline alone, never a wrong score.

Integer parameters of any size scikit-learn accepts are carried (or make
their step run on the Python backend); data at extreme scales either scores
as ``cross_val_score`` does or fails that pipeline with a numerical error
naming the under- or overflow.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import academy_ml as aml

CV = 3
#: LogisticRegression runs a different optimiser to the same optimum.
ITERATIVE = 1e-3
EXACT = 1e-6


def _reference(pipeline: Any, X: Any, y: Any) -> Any:
    with warnings.catch_warnings():
        # scikit-learn's own overflow and convergence warnings at these values.
        warnings.simplefilter("ignore")
        return cross_val_score(pipeline, X, y, cv=CV)


def test_huge_integer_parameters_are_carried_or_fail_their_own_pipeline(
    breast_cancer: Any,
) -> None:
    X, y = breast_cancer
    y = y.astype(float)
    scaled = StandardScaler
    batch = [
        make_pipeline(scaled(), LogisticRegression(max_iter=10**12)),
        make_pipeline(scaled(), LogisticRegression(max_iter=2**70)),
        make_pipeline(scaled(), KNeighborsRegressor(n_neighbors=2**32)),
        make_pipeline(scaled(), KNeighborsRegressor(n_neighbors=5)),
        make_pipeline(scaled(), KNeighborsRegressor(n_neighbors=2**64)),
        make_pipeline(scaled(), PCA(n_components=2**64), Ridge()),
        make_pipeline(scaled(), PCA(n_components=2**32), Ridge()),
        make_pipeline(scaled(), Ridge()),
    ]

    results = aml.evaluate(batch, X, y, cv=CV)

    for i in (0, 1, 3, 7):
        assert results[i].error is None, results[i].error
        assert set(results[i].backends.values()) == {"rust"}
        tol = ITERATIVE if i < 2 else EXACT
        np.testing.assert_allclose(
            results[i].fold_scores, _reference(batch[i], X, y), rtol=0, atol=tol
        )
    # scikit-learn's errors, with the numbers it was given: natively for
    # counts the plan carries, on the Python backend beyond 2**64 - 1.
    for i, n in ((2, 2**32), (4, 2**64)):
        error = results[i].error
        assert error is not None
        assert f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {n}" in error
        assert np.isnan(results[i].fold_scores).all()
    assert results[4].backends["kneighborsregressor"] == "python"
    assert results[5].backends["pca"] == "python"
    assert results[6].backends["pca"] == "rust"
    for i, n in ((5, 2**64), (6, 2**32)):
        error = results[i].error
        assert error is not None
        assert f"n_components={n} must be between 0 and min(n_samples, n_features)=" in error


LINEAR = {"linear": LinearRegression, "ridge": Ridge}
KNN = {
    "knn": lambda: KNeighborsRegressor(),
    "knn_distance": lambda: KNeighborsRegressor(weights="distance"),
}


@pytest.mark.parametrize("model", [*LINEAR, *KNN])
@pytest.mark.parametrize(
    ("scale", "failure"),
    [(1e-170, "underflow"), (1e150, None), (1e300, "overflow")],
    ids=["1e-170", "1e150", "1e300"],
)
def test_extreme_scales_score_as_scikit_learn_or_fail_numerically(
    model: str, scale: float, failure: str | None, diabetes: Any
) -> None:
    X, y = diabetes
    Xs = X * scale
    estimator = LINEAR[model]() if model in LINEAR else KNN[model]()
    # Another pipeline of the batch (on the Python backend) is unaffected.
    batch = [estimator, DummyRegressor()]

    results = aml.evaluate(batch, Xs, y, cv=CV)

    if failure is None:
        assert results[0].error is None, results[0].error
        np.testing.assert_allclose(
            results[0].fold_scores, _reference(estimator, Xs, y), rtol=0, atol=EXACT
        )
    else:
        error = results[0].error
        assert error is not None
        # The runtime's NumericalError, naming the step and what went wrong.
        name = type(estimator).__name__
        assert f"step '{name.lower()}' ({name}): NumericalError: " in error
        assert failure in error
        assert np.isnan(results[0].fold_scores).all()
    assert results[1].error is None
    np.testing.assert_allclose(results[1].fold_scores, _reference(batch[1], Xs, y), atol=EXACT)

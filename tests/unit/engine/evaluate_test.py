"""``evaluate``: input validation, per-pipeline failures, the result contract."""

from __future__ import annotations

import importlib
import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import academy_ml as aml
from academy_ml import _runtime

# The runner, whose runtime binding the no-work spy replaces.
run_module = importlib.import_module("academy_ml.engine.run")

CV = 5


class SpyRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Records every fit, so a test can tell whether any work was done."""

    fits: list[int] = []  # noqa: RUF012 - shared on purpose: clones must report too

    def fit(self, X: Any, y: Any) -> SpyRegressor:
        SpyRegressor.fits.append(len(X))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.mean_)


class Boom(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Fails to fit when the training rows number ``n_rows``."""

    def __init__(self, n_rows: int = -1) -> None:
        self.n_rows = n_rows

    def fit(self, X: Any, y: Any = None) -> Boom:
        if self.n_rows < 0 or len(X) == self.n_rows:
            raise RuntimeError(f"kaboom on {len(X)} rows")
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if the runtime is reached; counts SpyRegressor fits."""
    calls: list[str] = []

    def run_plan(*args: Any, **kwargs: Any) -> Any:
        calls.append("run_plan")
        raise AssertionError("the runtime was called although the input is invalid")

    runtime = types.SimpleNamespace(run_plan=run_plan, max_threads=_runtime.max_threads)
    monkeypatch.setattr(run_module, "_runtime", runtime)
    SpyRegressor.fits.clear()
    return calls


def _spy_batch() -> list[Any]:
    return [make_pipeline(StandardScaler(), Ridge()), SpyRegressor()]


# --- bad input: ValueError before any work ------------------------------------------


def test_the_no_work_spy_sees_a_valid_call(diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    with pytest.raises(AssertionError, match="runtime was called"):
        aml.evaluate(_spy_batch(), X, y, cv=CV)

    assert no_work == ["run_plan"]


def test_length_mismatch_is_refused_before_work(diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    with pytest.raises(ValueError, match=r"X has 442 rows but y has 441 values"):
        aml.evaluate(_spy_batch(), X, y[:-1], cv=CV)

    assert no_work == []
    assert SpyRegressor.fits == []


@pytest.mark.parametrize(
    "X",
    [np.empty((0, 3)), np.empty((5, 0)), pd.DataFrame(), pd.DataFrame({"a": []})],
    ids=["no-rows", "no-columns", "empty-frame", "frame-no-rows"],
)
def test_empty_x_is_refused_before_work(X: Any, no_work: list[str]) -> None:
    y = np.zeros(len(X))

    with pytest.raises(ValueError, match="X is empty"):
        aml.evaluate(_spy_batch(), X, y, cv=CV)

    assert no_work == []
    assert SpyRegressor.fits == []


@pytest.mark.parametrize(
    ("scoring", "message"),
    [
        ("r3", "unsupported scoring name 'r3'"),
        ("accuracy_score", "did you mean"),
        ("R2", "unsupported scoring name 'R2'"),
        (42, "must be None, a scikit-learn scoring name, a callable"),
        (["r2", "r3"], "unsupported scoring name 'r3'"),
    ],
)
def test_unsupported_scoring_is_refused_before_work(
    scoring: Any, message: str, diabetes: Any, no_work: list[str]
) -> None:
    X, y = diabetes

    with pytest.raises(ValueError, match=message):
        aml.evaluate(_spy_batch(), X, y, cv=CV, scoring=scoring)

    assert no_work == []
    assert SpyRegressor.fits == []


@pytest.mark.parametrize("threads", [0, -2, 1.5, True, "4"])
def test_invalid_threads_are_refused(threads: Any, diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    with pytest.raises(ValueError, match="threads must be a positive integer"):
        aml.evaluate(_spy_batch(), X, y, threads=threads)

    assert no_work == []


@pytest.mark.parametrize("extra", [1, 10**5, 2**70])
def test_threads_beyond_the_cores_are_refused_before_any_work(
    extra: int, diabetes: Any, no_work: list[str]
) -> None:
    X, y = diabetes
    limit = _runtime.max_threads()
    threads = extra if extra > limit else limit + extra

    with pytest.raises(aml.ParameterError, match=rf"threads must be at most {limit} .* {threads}$"):
        aml.evaluate(_spy_batch(), X, y, threads=threads)

    assert no_work == []
    assert SpyRegressor.fits == []


def test_threads_up_to_the_cores_run(diabetes: Any) -> None:
    X, y = diabetes
    batch = [make_pipeline(StandardScaler(), Ridge())]

    (one,) = aml.evaluate(batch, X, y, cv=3, threads=1)
    (all_cores,) = aml.evaluate(batch, X, y, cv=3, threads=_runtime.max_threads())

    np.testing.assert_allclose(one.fold_scores, all_cores.fold_scores, rtol=1e-12)


def test_cache_must_be_a_cache(diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    with pytest.raises(TypeError, match=r"cache must be an academy_ml\.Cache or None, got dict"):
        aml.evaluate(_spy_batch(), X, y, cache={})  # type: ignore[arg-type]

    assert no_work == []


def test_y_that_is_not_one_dimensional_is_refused(diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    with pytest.raises(ValueError, match="y must be 1-dimensional"):
        aml.evaluate(_spy_batch(), X, np.column_stack([y, y]))

    assert no_work == []


@pytest.mark.parametrize(
    "thing",
    [object(), "make_pipeline(StandardScaler(), Ridge())", StandardScaler, print],
    ids=["object", "string", "class", "function"],
)
def test_a_non_estimator_raises_unsupported_step_error(
    thing: Any, diabetes: Any, no_work: list[str]
) -> None:
    X, y = diabetes

    with pytest.raises(aml.UnsupportedStepError, match="expected a scikit-learn estimator"):
        aml.evaluate([*_spy_batch(), thing], X, y, cv=CV)

    assert no_work == []
    assert SpyRegressor.fits == []


def test_an_empty_batch_returns_no_results(diabetes: Any, no_work: list[str]) -> None:
    X, y = diabetes

    assert aml.evaluate([], X, y) == []
    assert aml.evaluate(iter([]), X, y) == []
    assert no_work == []


# --- one failing pipeline does not take down the batch ---------------------------------


@pytest.fixture(scope="module")
def diabetes_with_nan() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    return X, y


GOOD: dict[str, Callable[[], Any]] = {
    "imputed_ridge": lambda: make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=1.0)),
    "imputed_knn": lambda: make_pipeline(SimpleImputer(strategy="median"), KNeighborsRegressor()),
    "imputed_pca": lambda: make_pipeline(SimpleImputer(), PCA(n_components=5), LinearRegression()),
    "foreign_model": lambda: make_pipeline(
        SimpleImputer(), RandomForestRegressor(n_estimators=5, random_state=0)
    ),
}

BAD: dict[str, tuple[Callable[[], Any], str, str]] = {
    # (pipeline, the step path and class the error must name, the cause)
    "nan_reaches_ridge": (
        lambda: make_pipeline(StandardScaler(), Ridge()),
        "step 'ridge' (Ridge)",
        "NaN",
    ),
    "nan_reaches_knn": (
        lambda: make_pipeline(StandardScaler(), KNeighborsRegressor()),
        "step 'kneighborsregressor' (KNeighborsRegressor)",
        "NaN",
    ),
    "pca_more_components_than_features": (
        lambda: make_pipeline(SimpleImputer(), PCA(n_components=50), LinearRegression()),
        "step 'pca' (PCA)",
        "n_components=50",
    ),
    "negative_ridge_alpha": (
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=-1)),
        "step 'ridge' (Ridge)",
        "alpha",
    ),
    "foreign_step_raises": (
        lambda: make_pipeline(SimpleImputer(), Boom(), Ridge()),
        "step 'boom' (Boom)",
        "RuntimeError: kaboom",
    ),
}


def test_failing_pipelines_get_their_own_errors_while_the_others_score(
    diabetes_with_nan: Any,
) -> None:
    X, y = diabetes_with_nan
    # Interleave: good, bad, good, bad...
    names = [name for pair in zip(GOOD, BAD, strict=False) for name in pair] + list(BAD)[
        len(GOOD) :
    ]
    batch = [GOOD[n]() if n in GOOD else BAD[n][0]() for n in names]

    results = aml.evaluate(batch, X, y, cv=CV, scoring="r2")

    assert [r.index for r in results] == list(range(len(batch)))
    for name, pipeline, result in zip(names, batch, results, strict=True):
        assert result.pipeline is pipeline
        assert result.fold_scores.shape == (CV,)
        if name in GOOD:
            assert result.error is None, f"{name}: {result.error}"
            assert result.ok
            reference = cross_val_score(pipeline, X, y, cv=CV, scoring="r2")
            np.testing.assert_allclose(
                result.fold_scores, reference, rtol=0, atol=1e-6, err_msg=name
            )
        else:
            _, step, cause = BAD[name]
            assert result.error is not None, name
            assert not result.ok
            assert step in result.error, f"{name}: {result.error}"
            assert cause in result.error, f"{name}: {result.error}"
            assert "(fold 0)" in result.error, f"{name}: {result.error}"
            assert np.isnan(result.fold_scores).all()
            assert math.isnan(result.mean_score)


def test_the_failing_fold_is_named(diabetes: Any) -> None:
    X, y = diabetes
    # KFold(5) over 442 rows trains on 353, 353, 354, 354, 354 rows: the step
    # first fails in fold 2.
    results = aml.evaluate(
        [make_pipeline(StandardScaler(), Boom(n_rows=354), Ridge()), Ridge()], X, y, cv=CV
    )

    assert results[0].error is not None
    assert results[0].error.startswith("step 'boom' (Boom): RuntimeError: kaboom on 354 rows")
    assert results[0].error.endswith("(fold 2)")
    assert np.isnan(results[0].fold_scores).all()
    assert results[1].error is None


def test_native_failures_on_one_path_spare_shared_nodes(diabetes_with_nan: Any) -> None:
    """The failing model shares the imputer and scaler with a good one."""
    X, y = diabetes_with_nan
    good = make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=1.0))
    bad = make_pipeline(SimpleImputer(), StandardScaler(), KNeighborsRegressor(n_neighbors=400))

    results = aml.evaluate([bad, good], X, y, cv=CV)

    assert results[0].error is not None
    assert "step 'kneighborsregressor' (KNeighborsRegressor)" in results[0].error
    assert "n_neighbors" in results[0].error
    reference = cross_val_score(good, X, y, cv=CV)
    np.testing.assert_allclose(results[1].fold_scores, reference, rtol=0, atol=1e-6)


def test_regressor_scored_with_a_classification_metric_fails_alone(breast_cancer: Any) -> None:
    X, y = breast_cancer
    good = make_pipeline(StandardScaler(), KNeighborsClassifier())

    bad_result, good_result = aml.evaluate(
        [make_pipeline(StandardScaler(), Ridge()), good], X, y, cv=CV, scoring="accuracy"
    )

    assert bad_result.error is not None
    assert "scoring 'accuracy' needs a classifier, but Ridge is a regressor" in bad_result.error
    assert np.isnan(bad_result.fold_scores).all()
    assert good_result.error is None
    reference = cross_val_score(good, X, y, cv=CV, scoring="accuracy")
    np.testing.assert_allclose(good_result.fold_scores, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scoring", ["f1", "roc_auc"])
def test_binary_metric_on_a_multiclass_target_is_an_error(scoring: str, wine: Any) -> None:
    X, y = wine

    (result,) = aml.evaluate([KNeighborsClassifier()], X, y, cv=CV, scoring=scoring)

    assert result.error is not None
    assert f"scoring {scoring!r} is binary, but y has 3 classes" in result.error
    assert np.isnan(result.fold_scores).all()


def test_pipeline_without_a_predictor_fails_alone(diabetes: Any) -> None:
    X, y = diabetes

    transformer_only, ridge = aml.evaluate([StandardScaler(), Ridge()], X, y, cv=CV)

    assert transformer_only.error is not None
    assert "no final estimator" in transformer_only.error
    assert ridge.error is None
    np.testing.assert_allclose(
        ridge.fold_scores, cross_val_score(Ridge(), X, y, cv=CV), rtol=0, atol=1e-6
    )


def test_f1_needs_label_one(breast_cancer: Any) -> None:
    X, y = breast_cancer
    labels = np.array(["malignant", "benign"], dtype=object)[y]

    (result,) = aml.evaluate([KNeighborsClassifier()], X, labels, cv=CV, scoring="f1")

    assert result.error is not None
    assert "pos_label=1" in result.error


def test_pyarrow_string_target(breast_cancer: Any) -> None:
    X, y = breast_cancer
    labels = np.array(["malignant", "benign"], dtype=object)[y]
    model = make_pipeline(StandardScaler(), KNeighborsClassifier())

    (result,) = aml.evaluate(
        [model], X, pa.array(labels.tolist()), cv=CV, scoring="balanced_accuracy"
    )

    assert result.error is None
    reference = cross_val_score(model, X, labels, cv=CV, scoring="balanced_accuracy")
    np.testing.assert_allclose(result.fold_scores, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("selector", "cause"),
    [("color", "Expected a 2-dimensional container"), (0, "Expected a 2-dimensional container")],
)
def test_scalar_column_selector_fails_as_in_scikit_learn(
    selector: Any, cause: str, mixed_regression: Any
) -> None:
    """A scalar selector gives the branch 1-D data: scikit-learn refuses it."""
    frame, y = mixed_regression
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    scalar = make_pipeline(ColumnTransformer([("c", encoder, selector)]), Ridge())
    listed = make_pipeline(ColumnTransformer([("c", encoder, [selector])]), Ridge())

    scalar_result, listed_result = aml.evaluate([scalar, listed], frame, y, cv=CV)

    with pytest.raises(ValueError, match=cause):
        cross_val_score(scalar, frame, y, cv=CV, error_score="raise")
    assert scalar_result.error is not None
    assert "step 'columntransformer' (ColumnTransformer)" in scalar_result.error
    assert cause in scalar_result.error
    assert scalar_result.backends == {"columntransformer": "python", "ridge": "python"}
    assert listed_result.error is None
    np.testing.assert_allclose(
        listed_result.fold_scores, cross_val_score(listed, frame, y, cv=CV), rtol=0, atol=1e-6
    )


def test_classifier_on_continuous_labels_fails_as_in_scikit_learn(breast_cancer: Any) -> None:
    X, y = breast_cancer
    labels = np.where(y == 1, 0.5, -0.5)  # floats that are not integers: "continuous"
    classifier = make_pipeline(StandardScaler(), KNeighborsClassifier())
    regressor = make_pipeline(StandardScaler(), KNeighborsRegressor())

    clf_result, reg_result = aml.evaluate([classifier, regressor], X, labels, cv=CV)

    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        cross_val_score(classifier, X, labels, cv=CV, error_score="raise")
    assert clf_result.error is not None
    assert "step 'kneighborsclassifier' (KNeighborsClassifier)" in clf_result.error
    assert "Unknown label type: continuous" in clf_result.error
    assert reg_result.error is None
    np.testing.assert_allclose(
        reg_result.fold_scores, cross_val_score(regressor, X, labels, cv=CV), rtol=0, atol=1e-6
    )


def test_regressor_on_string_target_fails_alone(breast_cancer: Any) -> None:
    X, y = breast_cancer
    labels = np.array(["malignant", "benign"], dtype=object)[y]

    ridge, knn = aml.evaluate([Ridge(), KNeighborsClassifier()], X, labels, cv=CV)

    assert ridge.error is not None
    assert "y is not numeric" in ridge.error
    assert knn.error is None
    np.testing.assert_allclose(
        knn.fold_scores,
        cross_val_score(KNeighborsClassifier(), X, labels, cv=CV),
        rtol=0,
        atol=1e-6,
    )


# --- the result contract -------------------------------------------------------------------


def test_results_follow_the_batch_and_default_scoring(breast_cancer: Any) -> None:
    X, y = breast_cancer
    batch = [KNeighborsClassifier(n_neighbors=3), KNeighborsRegressor(n_neighbors=3)]

    results = aml.evaluate(batch, X, y, cv=3)

    assert [r.scoring for r in results] == ["accuracy", "r2"]
    for i, (pipeline, result) in enumerate(zip(batch, results, strict=True)):
        assert result.index == i
        assert result.pipeline is pipeline
        assert result.fold_scores.dtype == np.float64
        assert result.fold_scores.shape == (3,)
        assert result.mean_score == pytest.approx(float(np.mean(result.fold_scores)))
        np.testing.assert_allclose(
            result.fold_scores, cross_val_score(pipeline, X, y, cv=3), rtol=0, atol=1e-9
        )


def test_thread_count_and_compiler_switches_do_not_change_scores(diabetes: Any) -> None:
    X, y = diabetes
    batch = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in (0.1, 1.0, 10.0)] + [
        make_pipeline(StandardScaler(), KNeighborsRegressor()),
        LinearRegression(),
    ]

    default = aml.evaluate(batch, X, y, cv=CV)
    single = aml.evaluate(batch, X, y, cv=CV, threads=1)
    ablated = aml.evaluate(
        batch,
        X,
        y,
        cv=CV,
        options=aml.Options(cse=False, hoist=False, share_gram=False, share_neighbors=False),
    )

    for a, b, c in zip(default, single, ablated, strict=True):
        assert a.error is None
        assert b.error is None
        assert c.error is None
        np.testing.assert_allclose(a.fold_scores, b.fold_scores, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.fold_scores, c.fold_scores, rtol=0, atol=1e-9)


def test_identical_pipelines_get_identical_results(diabetes: Any) -> None:
    X, y = diabetes
    a = make_pipeline(StandardScaler(), Ridge(alpha=3.0))
    b = make_pipeline(StandardScaler(), Ridge(alpha=3.0))

    first, second = aml.evaluate([a, b], X, y, cv=CV)

    assert first.pipeline is a
    assert second.pipeline is b
    np.testing.assert_array_equal(first.fold_scores, second.fold_scores)
    np.testing.assert_allclose(
        first.fold_scores, cross_val_score(a, X, y, cv=CV), rtol=0, atol=1e-6
    )


def test_one_neighbour_search_serves_every_k_and_too_large_k_fails_alone(diabetes: Any) -> None:
    X, y = diabetes
    batch = [KNeighborsRegressor(n_neighbors=k) for k in (1, 7, 30)]
    batch.append(KNeighborsRegressor(n_neighbors=400, weights="distance"))

    plan = aml.compile(batch, cv=CV, X=X, y=y, scoring="r2")
    results = aml.evaluate(batch, X, y, cv=CV, scoring="r2")

    assert plan.stats.neighbor_searches == CV
    assert plan.stats.knn_predictions == 4 * CV
    for model, result in zip(batch[:3], results[:3], strict=True):
        expected = cross_val_score(model, X, y, cv=CV, scoring="r2")
        np.testing.assert_allclose(result.fold_scores, expected, rtol=0, atol=1e-9)
    assert results[3].error is not None
    assert "n_neighbors <= n_samples_fit" in results[3].error
    assert "KNeighborsRegressor" in results[3].error

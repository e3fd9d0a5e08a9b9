"""Translation of scikit-learn estimators into the pipeline IR."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, chi2, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

import academy_ml as aml
from academy_ml.engine.ir import Branch, ColumnStep, NativeStep
from academy_ml.engine.translate import steps_of, translate


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


class MyScaler(StandardScaler):  # type: ignore[misc]
    """A subclass may change behaviour, so it is not the native StandardScaler."""


def stable_id(text: str) -> str:
    """A test id from a repr, without whitespace or memory addresses (xdist workers compare ids)."""
    return re.sub(r" at 0x[0-9a-f]+", "", text).replace("\n", "").replace(" ", "")


def ohe(**kwargs: Any) -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False, **kwargs)


# --- whole pipelines ----------------------------------------------------------


def test_native_pipeline_becomes_prefix_and_model() -> None:
    ir = translate(
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), Ridge(alpha=2))
    )

    assert ir.prefix == [
        NativeStep(
            "simpleimputer",
            "SimpleImputer",
            {"name": "simple_imputer", "strategy": "median", "fill_value": None},
        ),
        NativeStep(
            "standardscaler",
            "StandardScaler",
            {"name": "standard_scaler", "with_mean": True, "with_std": True},
        ),
    ]
    assert ir.model == NativeStep(
        "ridge", "Ridge", {"name": "ridge", "alpha": 2.0, "fit_intercept": True}
    )
    assert isinstance(ir.model.estimator["alpha"], float)
    assert ir.tail == []
    assert ir.classifier is False
    assert ir.backends() == {"simpleimputer": "rust", "standardscaler": "rust", "ridge": "rust"}


def test_bare_estimator_is_a_one_step_pipeline() -> None:
    model = KNeighborsClassifier(n_neighbors=3, weights="distance")
    ir = translate(model)

    assert ir.prefix == []
    assert ir.model == NativeStep(
        "kneighborsclassifier",
        "KNeighborsClassifier",
        {"name": "k_neighbors", "n_neighbors": 3, "weights": "distance", "classifier": True},
    )
    assert ir.classifier is True
    assert ir.source is model


def test_foreign_step_starts_the_python_tail_even_before_native_steps() -> None:
    doubler = Doubler()
    ridge = Ridge()
    pipeline = make_pipeline(StandardScaler(), doubler, MinMaxScaler(), ridge)
    ir = translate(pipeline)

    assert [s.path for s in ir.prefix] == ["standardscaler"]
    assert ir.model is None
    assert [path for path, _ in ir.tail] == ["doubler", "minmaxscaler", "ridge"]
    assert ir.tail[0][1] is doubler
    assert ir.tail[2][1] is ridge
    assert ir.backends() == {
        "standardscaler": "rust",
        "doubler": "python",
        "minmaxscaler": "python",
        "ridge": "python",
    }


def test_foreign_model_keeps_native_prefix() -> None:
    ir = translate(make_pipeline(StandardScaler(), RandomForestClassifier()))

    assert [s.path for s in ir.prefix] == ["standardscaler"]
    assert ir.model is None
    assert [path for path, _ in ir.tail] == ["randomforestclassifier"]
    assert ir.classifier is True


def test_native_model_false_moves_only_the_model_to_python() -> None:
    ir = translate(make_pipeline(StandardScaler(), Ridge()), native_model=False)

    assert [s.path for s in ir.prefix] == ["standardscaler"]
    assert ir.model is None
    assert [path for path, _ in ir.tail] == ["ridge"]


def test_nested_pipelines_are_inlined_with_their_paths() -> None:
    inner = Pipeline([("impute", SimpleImputer()), ("scale", MaxAbsScaler())])
    outer = Pipeline([("prep", inner), ("skip", "passthrough"), ("none", None), ("model", Ridge())])

    assert [path for path, _ in steps_of(outer)] == ["prep__impute", "prep__scale", "model"]
    ir = translate(outer)
    assert [s.path for s in ir.prefix] == ["prep__impute", "prep__scale"]
    assert ir.model is not None
    assert ir.model.path == "model"


def test_pipeline_without_a_predictor_has_no_model_and_no_tail() -> None:
    ir = translate(make_pipeline(StandardScaler(), MinMaxScaler()))

    assert [s.name for s in ir.prefix if isinstance(s, NativeStep)] == [
        "standard_scaler",
        "min_max_scaler",
    ]
    assert ir.model is None
    assert ir.tail == []


@pytest.mark.parametrize(
    "thing",
    [object(), "ridge", 42, None, StandardScaler, lambda X: X, [StandardScaler()]],
    ids=["object", "string", "int", "none", "class-not-instance", "function", "list"],
)
def test_non_estimators_are_refused(thing: Any) -> None:
    with pytest.raises(aml.UnsupportedStepError, match="expected a scikit-learn estimator"):
        translate(thing)
    assert issubclass(aml.UnsupportedStepError, TypeError)


# --- each native step, and the configurations that are not native ---------------


@pytest.mark.parametrize(
    ("step", "spec"),
    [
        (
            SimpleImputer(strategy="constant", fill_value=-1),
            {"name": "simple_imputer", "strategy": "constant", "fill_value": -1},
        ),
        (
            SimpleImputer(strategy="constant", fill_value="n/a"),
            {"name": "simple_imputer", "strategy": "constant", "fill_value": "n/a"},
        ),
        (
            SimpleImputer(strategy="most_frequent"),
            {"name": "simple_imputer", "strategy": "most_frequent", "fill_value": None},
        ),
        (
            StandardScaler(with_mean=False),
            {"name": "standard_scaler", "with_mean": False, "with_std": True},
        ),
        (
            MinMaxScaler(feature_range=(-2, 3), clip=True),
            {"name": "min_max_scaler", "low": -2.0, "high": 3.0, "clip": True},
        ),
        (MaxAbsScaler(), {"name": "max_abs_scaler"}),
        (ohe(), {"name": "one_hot_encoder"}),
        (
            PolynomialFeatures(degree=2, interaction_only=True, include_bias=False),
            {
                "name": "polynomial_features",
                "degree": 2,
                "interaction_only": True,
                "include_bias": False,
            },
        ),
        (PCA(n_components=3, whiten=True), {"name": "pca", "n_components": 3, "whiten": True}),
        (
            PCA(n_components=2**64 - 1),
            {"name": "pca", "n_components": 2**64 - 1, "whiten": False},
        ),
        (
            SelectKBest(f_classif, k=4),
            {"name": "select_k_best", "score_func": "f_classif", "k": 4},
        ),
        (
            SelectKBest(f_regression, k=2),
            {"name": "select_k_best", "score_func": "f_regression", "k": 2},
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseEstimator) else "",
)
def test_native_transformer_spec(step: BaseEstimator, spec: dict[str, Any]) -> None:
    ir = translate(make_pipeline(step, Ridge()))

    assert len(ir.prefix) == 1
    native = ir.prefix[0]
    assert isinstance(native, NativeStep)
    assert native.label == type(step).__name__
    assert native.estimator == spec
    assert ir.tail == []


@pytest.mark.parametrize(
    "step",
    [
        SimpleImputer(add_indicator=True),
        SimpleImputer(missing_values=-1),
        SimpleImputer(keep_empty_features=True),
        OneHotEncoder(sparse_output=False),  # handle_unknown="error"
        ohe(drop="first"),
        ohe(min_frequency=3),
        ohe(max_categories=4),
        ohe(categories=[["a", "b"]]),
        PolynomialFeatures(degree=3),
        PolynomialFeatures(degree=2, order="F"),
        PCA(),  # n_components=None
        PCA(n_components=0.95),
        PCA(n_components="mle"),
        PCA(n_components=2**64),
        SelectKBest(f_regression, k=2**64),
        MinMaxScaler(feature_range=(0, 10**400)),
        SimpleImputer(strategy="constant", fill_value=10**400),
        SelectKBest(chi2, k=3),
        SelectKBest(f_regression, k="all"),
        MyScaler(),
        Doubler(),
    ],
    ids=lambda s: stable_id(repr(s)),
)
def test_unsupported_transformer_configurations_run_in_python(step: BaseEstimator) -> None:
    ir = translate(make_pipeline(StandardScaler(), step, Ridge()))

    assert [s.path for s in ir.prefix] == ["standardscaler"]
    assert ir.model is None
    assert [path for path, _ in ir.tail] == [ir.tail[0][0], "ridge"]
    assert ir.tail[0][1] is step
    assert isinstance(ir.tail[1][1], Ridge)
    assert ir.backends()["ridge"] == "python"


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        (LinearRegression(), {"name": "linear_regression", "fit_intercept": True}),
        (
            LinearRegression(fit_intercept=False),
            {"name": "linear_regression", "fit_intercept": False},
        ),
        (Ridge(alpha=3), {"name": "ridge", "alpha": 3.0, "fit_intercept": True}),
        (Ridge(solver="svd"), {"name": "ridge", "alpha": 1.0, "fit_intercept": True}),
        (
            Ridge(solver="cholesky", fit_intercept=False),
            {"name": "ridge", "alpha": 1.0, "fit_intercept": False},
        ),
        (
            LogisticRegression(C=0.5, max_iter=300, tol=1e-6),
            {
                "name": "logistic_regression",
                "c": 0.5,
                "fit_intercept": True,
                "max_iter": 300,
                "tol": 1e-6,
            },
        ),
        (
            LogisticRegression(solver="newton-cg", fit_intercept=False),
            {
                "name": "logistic_regression",
                "c": 1.0,
                "fit_intercept": False,
                "max_iter": 100,
                "tol": 1e-4,
            },
        ),
        (
            KNeighborsRegressor(n_neighbors=7, metric="euclidean"),
            {"name": "k_neighbors", "n_neighbors": 7, "weights": "uniform", "classifier": False},
        ),
        # Counts up to 2**64 - 1 are carried as they are (the runtime gives
        # scikit-learn's error when there are fewer training rows).
        (
            KNeighborsRegressor(n_neighbors=2**64 - 1),
            {
                "name": "k_neighbors",
                "n_neighbors": 2**64 - 1,
                "weights": "uniform",
                "classifier": False,
            },
        ),
        # Beyond it, max_iter saturates: no solver run reaches 2**64 iterations.
        (
            LogisticRegression(max_iter=10**30),
            {
                "name": "logistic_regression",
                "c": 1.0,
                "fit_intercept": True,
                "max_iter": 2**64 - 1,
                "tol": 1e-4,
            },
        ),
    ],
    ids=lambda v: stable_id(repr(v)) if isinstance(v, BaseEstimator) else "",
)
def test_native_model_spec(model: BaseEstimator, spec: dict[str, Any]) -> None:
    ir = translate(make_pipeline(StandardScaler(), model))

    assert ir.model is not None
    assert ir.model.estimator == spec
    assert ir.model.is_model
    assert ir.tail == []


@pytest.mark.parametrize(
    "model",
    [
        LinearRegression(positive=True),
        Ridge(positive=True, solver="lbfgs"),
        Ridge(solver="sag"),
        Ridge(solver="lsqr"),
        Ridge(alpha=np.array([1.0, 2.0])),
        LogisticRegression(class_weight="balanced"),
        LogisticRegression(solver="liblinear", l1_ratio=1.0),
        LogisticRegression(solver="saga", l1_ratio=0.5),
        LogisticRegression(C=np.inf),
        KNeighborsClassifier(metric="manhattan"),
        KNeighborsClassifier(p=1),
        KNeighborsRegressor(weights=lambda d: 1.0 / (1.0 + d)),
        # Parameters the plan cannot carry: scikit-learn judges them itself.
        KNeighborsRegressor(n_neighbors=2**64),
        Ridge(alpha=10**400),
        LogisticRegression(C=10**400),
        LogisticRegression(tol=10**400),
        RandomForestClassifier(),
    ],
    ids=lambda m: stable_id(repr(m)),
)
def test_unsupported_models_run_in_python(model: BaseEstimator) -> None:
    ir = translate(make_pipeline(StandardScaler(), model))

    assert [s.path for s in ir.prefix] == ["standardscaler"]
    assert ir.model is None
    assert len(ir.tail) == 1
    assert ir.tail[0][1] is model


# --- ColumnTransformer ----------------------------------------------------------


def test_native_column_transformer_becomes_a_column_step() -> None:
    ct = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
            ("cat", ohe(), ["c"]),
            ("keep", "passthrough", ["d"]),
            ("gone", "drop", ["e"]),
        ],
        remainder="passthrough",
    )
    ir = translate(make_pipeline(ct, Ridge()))

    assert len(ir.prefix) == 1
    step = ir.prefix[0]
    assert isinstance(step, ColumnStep)
    assert step.path == "columntransformer"
    assert step.passthrough_rest is True
    assert step.dropped == (["e"],)
    assert [b.path for b in step.branches] == [
        "columntransformer__num",
        "columntransformer__cat",
        "columntransformer__keep",
    ]
    num, cat, keep = step.branches
    assert num.columns == ["a", "b"]
    assert [s.path for s in num.steps] == [
        "columntransformer__num__simpleimputer",
        "columntransformer__num__standardscaler",
    ]
    assert cat == Branch(
        "columntransformer__cat",
        ["c"],
        (NativeStep("columntransformer__cat", "OneHotEncoder", {"name": "one_hot_encoder"}),),
    )
    assert keep.steps == ()
    assert ir.backends() == {
        "columntransformer": "rust",
        "columntransformer__num__simpleimputer": "rust",
        "columntransformer__num__standardscaler": "rust",
        "columntransformer__cat": "rust",
        "ridge": "rust",
    }


def test_column_transformer_remainder_drop() -> None:
    ct = ColumnTransformer([("s", StandardScaler(), [0, 1])])
    step = translate(make_pipeline(ct, Ridge())).prefix[0]

    assert isinstance(step, ColumnStep)
    assert step.passthrough_rest is False
    assert step.dropped == ()


@pytest.mark.parametrize(
    "ct",
    [
        ColumnTransformer([("s", StandardScaler(), [0]), ("d", Doubler(), [1])]),
        ColumnTransformer([("s", make_pipeline(StandardScaler(), Doubler()), [0])]),
        ColumnTransformer([("s", StandardScaler(), [0])], remainder=MinMaxScaler()),
        ColumnTransformer(
            [("s", StandardScaler(), [0]), ("m", MinMaxScaler(), [1])],
            transformer_weights={"s": 2.0, "m": 1.0},
        ),
        ColumnTransformer([("s", make_pipeline(StandardScaler(), Ridge()), [0])]),
    ],
    ids=[
        "foreign-branch",
        "foreign-in-branch-pipeline",
        "estimator-remainder",
        "weights",
        "model-in-branch",
    ],
)
def test_column_transformer_with_anything_foreign_runs_whole_in_python(
    ct: ColumnTransformer,
) -> None:
    ir = translate(make_pipeline(ct, Ridge()))

    assert ir.prefix == []
    assert ir.model is None
    assert [path for path, _ in ir.tail] == ["columntransformer", "ridge"]
    assert ir.tail[0][1] is ct
    assert ir.backends() == {"columntransformer": "python", "ridge": "python"}

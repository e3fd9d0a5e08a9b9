"""A workflow author evaluates a batch of pipelines and gets exactly
``cross_val_score``'s numbers.

Every case is one batch handed to ``aml.evaluate``; each result's fold scores
are compared with ``sklearn.model_selection.cross_val_score`` run on the same
pipeline, data, folds and scoring, and its ``backends`` with the backend each
step is documented to run on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

import academy_ml as aml

CATEGORICAL = ["color", "size", "city"]
NUMERIC_WITH_NAN = ["age", "income", "ratio", "rooms"]
NUMERIC = [*NUMERIC_WITH_NAN, "clean_a", "clean_b"]

EXACT = 1e-6  # closed-form and deterministic steps
ITERATIVE = 1e-3  # LogisticRegression (a different optimiser reaching the same optimum)

Data = tuple[Any, np.ndarray[Any, Any]]


class ClipOutliers(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A user's own transformer: clips every column to +/- ``limit``."""

    def __init__(self, limit: float = 3.0) -> None:
        self.limit = limit

    def fit(self, X: Any, y: Any = None) -> ClipOutliers:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> Any:
        return np.clip(np.asarray(X, dtype=np.float64), -self.limit, self.limit)


def ohe() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def rust(*paths: str) -> dict[str, str]:
    return dict.fromkeys(paths, "rust")


def python(*paths: str) -> dict[str, str]:
    return dict.fromkeys(paths, "python")


# --- data -------------------------------------------------------------------


def _numeric_frame(X: np.ndarray[Any, Any]) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])


def _rank_deficient(X: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """diabetes plus a copy of a column, a linear combination and a constant."""
    n = X.shape[0]
    return np.column_stack([X, X[:, 0], X[:, 1] - 2.0 * X[:, 2], np.full(n, 3.0)])


def _same(X: Any, y: Any) -> tuple[Any, Any, Any]:
    """The engine and the reference read the same X."""
    return X, X, y


def _fixture(name: str) -> Callable[[pytest.FixtureRequest], tuple[Any, Any, Any]]:
    return lambda r: _same(*r.getfixturevalue(name))


def _relabel(name: str, relabel: Callable[[Any], Any]) -> Callable[..., tuple[Any, Any, Any]]:
    def build(r: pytest.FixtureRequest) -> tuple[Any, Any, Any]:
        X, y = r.getfixturevalue(name)
        return _same(X, relabel(y))

    return build


def _arrow(
    name: str, to_frame: Callable[[Any], pd.DataFrame]
) -> Callable[..., tuple[Any, Any, Any]]:
    def build(r: pytest.FixtureRequest) -> tuple[Any, Any, Any]:
        X, y = r.getfixturevalue(name)
        frame = to_frame(X)
        # The reference reads the equivalent pandas frame.
        return pa.Table.from_pandas(frame, preserve_index=False), frame, y

    return build


#: How each case's data is built from the session fixtures: (X for evaluate,
#: X for the cross_val_score reference, y).
DATA: dict[str, Callable[[pytest.FixtureRequest], tuple[Any, Any, Any]]] = {
    "diabetes": _fixture("diabetes"),
    "diabetes_pandas": lambda r: _same(
        _numeric_frame(r.getfixturevalue("diabetes")[0]), r.getfixturevalue("diabetes")[1]
    ),
    "diabetes_arrow": _arrow("diabetes", _numeric_frame),
    "diabetes_rank_deficient": lambda r: _same(
        _rank_deficient(r.getfixturevalue("diabetes")[0]), r.getfixturevalue("diabetes")[1]
    ),
    "breast_cancer": _fixture("breast_cancer"),
    "breast_cancer_string_labels": _relabel(
        "breast_cancer", lambda y: np.array(["malignant", "benign"], dtype=object)[y]
    ),
    "breast_cancer_labels_1_2": _relabel("breast_cancer", lambda y: y + 1),
    "breast_cancer_labels_0_5": _relabel("breast_cancer", lambda y: 5 * y),
    "wine": _fixture("wine"),
    "digits": _fixture("digits"),
    "mixed_numeric": lambda r: _same(
        r.getfixturevalue("mixed_regression")[0][NUMERIC].to_numpy(),
        r.getfixturevalue("mixed_regression")[1],
    ),
    "mixed_frame": _fixture("mixed_regression"),
    "mixed_arrow": _arrow("mixed_regression", lambda frame: frame),
    "mixed_frame_classification": _fixture("mixed_classification"),
}


# --- cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One batch: its pipelines, and each one's expected backends."""

    data: str
    batch: Callable[[], list[tuple[Any, dict[str, str]]]]
    scoring: str | None
    cv: Any = 5
    tol: float = EXACT
    marks: tuple[Any, ...] = field(default=())


def _case(id_: str, case: Case) -> Any:
    return pytest.param(case, id=id_, marks=case.marks)


def _ct_impute_onehot(cat_strategy: str = "most_frequent", **cat_kwargs: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(SimpleImputer(strategy=cat_strategy, **cat_kwargs), ohe()),
                CATEGORICAL,
            ),
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ]
    )


def _ct_ridge_on_rust() -> tuple[Any, dict[str, str]]:
    return make_pipeline(_ct_impute_onehot(), Ridge(alpha=1.0)), {**CT_BACKENDS, **rust("ridge")}


def _ct_ridge_on_python() -> tuple[Any, dict[str, str]]:
    # Python from the first step: it reads the table's own rows.
    return (
        make_pipeline(_ct_with_user_step(), Ridge(alpha=1.0)),
        python("columntransformer", "ridge"),
    )


def _ct_with_user_step() -> ColumnTransformer:
    """A ColumnTransformer the runtime cannot run: the whole pipeline is Python."""
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), ClipOutliers(limit=1e4)), NUMERIC),
            ("cat", ohe(), CATEGORICAL),
        ]
    )


CT_BACKENDS = rust(
    "columntransformer",
    "columntransformer__cat__simpleimputer",
    "columntransformer__cat__onehotencoder",
    "columntransformer__num__simpleimputer",
    "columntransformer__num__standardscaler",
)

REGRESSION_METRICS = [
    "r2",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
]
CLASSIFICATION_METRICS = ["accuracy", "balanced_accuracy", "f1", "roc_auc", "neg_log_loss"]


def _imputer_batch(strategy: str) -> Callable[[], list[tuple[Any, dict[str, str]]]]:
    def batch() -> list[tuple[Any, dict[str, str]]]:
        return [
            (
                make_pipeline(SimpleImputer(strategy=strategy), StandardScaler(), Ridge(alpha=0.5)),
                rust("simpleimputer", "standardscaler", "ridge"),
            ),
            (
                make_pipeline(SimpleImputer(strategy=strategy), KNeighborsRegressor()),
                rust("simpleimputer", "kneighborsregressor"),
            ),
        ]

    return batch


CASES = [
    # --- scalers ---
    _case(
        "standard_scaler",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                    rust("standardscaler", "ridge"),
                ),
                (
                    make_pipeline(StandardScaler(with_mean=False), Ridge(alpha=1.0)),
                    rust("standardscaler", "ridge"),
                ),
                (
                    make_pipeline(StandardScaler(with_std=False), KNeighborsRegressor()),
                    rust("standardscaler", "kneighborsregressor"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "min_max_scaler",
        Case(
            "diabetes",
            lambda: [
                (make_pipeline(MinMaxScaler(), Ridge(alpha=0.1)), rust("minmaxscaler", "ridge")),
                (
                    make_pipeline(MinMaxScaler(feature_range=(-1, 2)), KNeighborsRegressor()),
                    rust("minmaxscaler", "kneighborsregressor"),
                ),
                (
                    make_pipeline(MinMaxScaler(clip=True), Ridge(alpha=0.1)),
                    rust("minmaxscaler", "ridge"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "max_abs_scaler",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(MaxAbsScaler(), LinearRegression()),
                    rust("maxabsscaler", "linearregression"),
                ),
                (
                    make_pipeline(MaxAbsScaler(), KNeighborsRegressor(n_neighbors=7)),
                    rust("maxabsscaler", "kneighborsregressor"),
                ),
            ],
            "r2",
        ),
    ),
    # --- imputers, on numeric data with NaN ---
    *[
        _case(
            f"simple_imputer_{strategy}",
            Case(
                "mixed_numeric",
                _imputer_batch(strategy),
                "r2",
            ),
        )
        for strategy in ["mean", "median", "most_frequent"]
    ],
    _case(
        "simple_imputer_constant",
        Case(
            "mixed_numeric",
            lambda: [
                (
                    make_pipeline(SimpleImputer(strategy="constant"), Ridge(alpha=0.5)),
                    rust("simpleimputer", "ridge"),
                ),
                (
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-3.5),
                        StandardScaler(),
                        KNeighborsRegressor(),
                    ),
                    rust("simpleimputer", "standardscaler", "kneighborsregressor"),
                ),
            ],
            "r2",
        ),
    ),
    # --- OneHotEncoder in a ColumnTransformer over string columns ---
    _case(
        "one_hot_column_transformer",
        Case(
            "mixed_frame",
            lambda: [
                _ct_ridge_on_rust(),
                (
                    make_pipeline(
                        _ct_impute_onehot("constant", fill_value="missing"), Ridge(alpha=1.0)
                    ),
                    {**CT_BACKENDS, **rust("ridge")},
                ),
                (
                    make_pipeline(_ct_impute_onehot("constant"), KNeighborsRegressor()),
                    {**CT_BACKENDS, **rust("kneighborsregressor")},
                ),
                (
                    # Missing strings reach the encoder: NaN is its own category.
                    make_pipeline(
                        ColumnTransformer(
                            [
                                ("cat", ohe(), CATEGORICAL),
                                ("num", SimpleImputer(), NUMERIC),
                            ]
                        ),
                        Ridge(alpha=1.0),
                    ),
                    rust(
                        "columntransformer",
                        "columntransformer__cat",
                        "columntransformer__num",
                        "ridge",
                    ),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "column_transformer_remainder_passthrough",
        Case(
            "mixed_frame",
            lambda: [
                (
                    make_pipeline(
                        ColumnTransformer(
                            [
                                ("cat", ohe(), ["color", "size"]),
                                ("num", SimpleImputer(), NUMERIC_WITH_NAN),
                                ("skip", "drop", ["city"]),
                            ],
                            remainder="passthrough",
                        ),
                        Ridge(alpha=1.0),
                    ),
                    rust(
                        "columntransformer",
                        "columntransformer__cat",
                        "columntransformer__num",
                        "ridge",
                    ),
                ),
                (
                    make_pipeline(
                        ColumnTransformer(
                            [
                                ("keep", "passthrough", ["clean_b"]),
                                ("cat", ohe(), ["size"]),
                                ("num", SimpleImputer(strategy="median"), ["age", "ratio"]),
                            ],
                            remainder="drop",
                        ),
                        StandardScaler(),
                        KNeighborsRegressor(),
                    ),
                    rust(
                        "columntransformer",
                        "columntransformer__cat",
                        "columntransformer__num",
                        "standardscaler",
                        "kneighborsregressor",
                    ),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "column_transformer_remainder_drop",
        Case(
            "mixed_frame",
            lambda: [
                (
                    make_pipeline(
                        ColumnTransformer(
                            [
                                ("cat", ohe(), CATEGORICAL),
                                (
                                    "num",
                                    make_pipeline(SimpleImputer(), MinMaxScaler()),
                                    ["age", "income"],
                                ),
                            ],
                            remainder="drop",
                        ),
                        Ridge(alpha=1.0),
                    ),
                    rust(
                        "columntransformer",
                        "columntransformer__cat",
                        "columntransformer__num__simpleimputer",
                        "columntransformer__num__minmaxscaler",
                        "ridge",
                    ),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "make_column_selector",
        Case(
            "mixed_frame",
            lambda: [
                (
                    make_pipeline(
                        ColumnTransformer(
                            [
                                (
                                    "num",
                                    make_pipeline(SimpleImputer(), StandardScaler()),
                                    make_column_selector(dtype_include=np.number),
                                ),
                                (
                                    "cat",
                                    make_pipeline(SimpleImputer(strategy="most_frequent"), ohe()),
                                    make_column_selector(dtype_exclude=np.number),
                                ),
                            ]
                        ),
                        Ridge(alpha=1.0),
                    ),
                    rust(
                        "columntransformer",
                        "columntransformer__num__simpleimputer",
                        "columntransformer__num__standardscaler",
                        "columntransformer__cat__simpleimputer",
                        "columntransformer__cat__onehotencoder",
                        "ridge",
                    ),
                ),
                (
                    make_pipeline(
                        ColumnTransformer(
                            [("clean", MaxAbsScaler(), make_column_selector(pattern="^clean_"))]
                        ),
                        LinearRegression(),
                    ),
                    rust("columntransformer", "columntransformer__clean", "linearregression"),
                ),
            ],
            "r2",
        ),
    ),
    # --- PolynomialFeatures, PCA, SelectKBest ---
    _case(
        "polynomial_features_ridge",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), PolynomialFeatures(degree=2), Ridge(alpha=1.0)),
                    rust("standardscaler", "polynomialfeatures", "ridge"),
                ),
                (
                    make_pipeline(
                        PolynomialFeatures(degree=2, interaction_only=True, include_bias=False),
                        StandardScaler(),
                        Ridge(alpha=10.0),
                    ),
                    rust("polynomialfeatures", "standardscaler", "ridge"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "pca_linear_regression",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), PCA(n_components=5), LinearRegression()),
                    rust("standardscaler", "pca", "linearregression"),
                ),
                (
                    make_pipeline(PCA(n_components=4, whiten=True), KNeighborsRegressor()),
                    rust("pca", "kneighborsregressor"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "select_k_best_f_regression",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(SelectKBest(f_regression, k=4), LinearRegression()),
                    rust("selectkbest", "linearregression"),
                ),
                (
                    make_pipeline(
                        StandardScaler(), SelectKBest(f_regression, k=7), Ridge(alpha=3.0)
                    ),
                    rust("standardscaler", "selectkbest", "ridge"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "select_k_best_f_classif",
        Case(
            "wine",
            lambda: [
                (
                    make_pipeline(
                        StandardScaler(), SelectKBest(f_classif, k=5), KNeighborsClassifier()
                    ),
                    rust("standardscaler", "selectkbest", "kneighborsclassifier"),
                ),
            ],
            "accuracy",
        ),
    ),
    # --- linear models ---
    _case(
        "ridge_and_linear_regression",
        Case(
            "diabetes",
            lambda: [
                *[(Ridge(alpha=a), rust("ridge")) for a in (0.01, 1.0, 100.0)],
                (Ridge(alpha=1.0, fit_intercept=False), rust("ridge")),
                (LinearRegression(), rust("linearregression")),
                (LinearRegression(fit_intercept=False), rust("linearregression")),
            ],
            "r2",
        ),
    ),
    _case(
        "rank_deficient_design",
        Case(
            "diabetes_rank_deficient",
            lambda: [
                (LinearRegression(), rust("linearregression")),
                (
                    make_pipeline(StandardScaler(), LinearRegression()),
                    rust("standardscaler", "linearregression"),
                ),
                (Ridge(alpha=1e-3), rust("ridge")),
            ],
            "r2",
        ),
    ),
    _case(
        "one_hot_linear_regression_rank_deficient",
        Case(
            "mixed_frame",
            lambda: [
                (
                    make_pipeline(_ct_impute_onehot(), LinearRegression()),
                    {**CT_BACKENDS, **rust("linearregression")},
                ),
            ],
            "r2",
        ),
    ),
    # --- LogisticRegression ---
    *[
        _case(
            f"logistic_binary_{metric}",
            Case(
                "breast_cancer",
                lambda: [
                    (
                        make_pipeline(StandardScaler(), LogisticRegression()),
                        rust("standardscaler", "logisticregression"),
                    ),
                    (
                        make_pipeline(StandardScaler(), LogisticRegression(C=0.1)),
                        rust("standardscaler", "logisticregression"),
                    ),
                ],
                metric,
                tol=ITERATIVE,
            ),
        )
        for metric in CLASSIFICATION_METRICS
    ],
    *[
        _case(
            f"logistic_multinomial_wine_{metric}",
            Case(
                "wine",
                lambda: [
                    (
                        make_pipeline(StandardScaler(), LogisticRegression()),
                        rust("standardscaler", "logisticregression"),
                    ),
                ],
                metric,
                tol=ITERATIVE,
            ),
        )
        for metric in ["accuracy", "neg_log_loss"]
    ],
    _case(
        "logistic_multinomial_digits",
        Case(
            "digits",
            lambda: [
                (
                    make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)),
                    rust("standardscaler", "logisticregression"),
                ),
            ],
            "neg_log_loss",
            tol=ITERATIVE,
        ),
    ),
    # --- k nearest neighbours ---
    _case(
        "knn_classifier",
        Case(
            "breast_cancer",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, weights=w)),
                    rust("standardscaler", "kneighborsclassifier"),
                )
                for k in (1, 5, 8)
                for w in ("uniform", "distance")
            ],
            "accuracy",
        ),
    ),
    _case(
        "knn_classifier_multiclass_digits",
        Case(
            "digits",
            lambda: [
                (KNeighborsClassifier(n_neighbors=5, weights=w), rust("kneighborsclassifier"))
                for w in ("uniform", "distance")
            ],
            "accuracy",
        ),
    ),
    _case(
        "knn_regressor",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k, weights=w)),
                    rust("standardscaler", "kneighborsregressor"),
                )
                for k in (1, 5, 12)
                for w in ("uniform", "distance")
            ],
            "r2",
        ),
    ),
    # --- every native metric ---
    *[
        _case(
            f"metric_{metric}",
            Case(
                "diabetes",
                lambda: [
                    (
                        make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                        rust("standardscaler", "ridge"),
                    ),
                    (
                        make_pipeline(StandardScaler(), KNeighborsRegressor(weights="distance")),
                        rust("standardscaler", "kneighborsregressor"),
                    ),
                ],
                metric,
            ),
        )
        for metric in REGRESSION_METRICS
    ],
    *[
        _case(
            f"metric_{metric}",
            Case(
                "breast_cancer",
                lambda: [
                    (
                        make_pipeline(
                            StandardScaler(), KNeighborsClassifier(n_neighbors=n, weights=w)
                        ),
                        rust("standardscaler", "kneighborsclassifier"),
                    )
                    for n, w in ((5, "uniform"), (9, "distance"))
                ],
                metric,
            ),
        )
        for metric in CLASSIFICATION_METRICS
    ],
    *[
        _case(
            f"metric_{metric}_multiclass",
            Case(
                "wine",
                lambda: [
                    (
                        make_pipeline(
                            MinMaxScaler(), KNeighborsClassifier(n_neighbors=6, weights=w)
                        ),
                        rust("minmaxscaler", "kneighborsclassifier"),
                    )
                    for w in ("uniform", "distance")
                ],
                metric,
            ),
        )
        for metric in ["accuracy", "balanced_accuracy", "neg_log_loss"]
    ],
    *[
        _case(
            f"metric_{metric}_labels_1_2",
            # f1's positive label 1 is the first class here, not the last.
            Case(
                "breast_cancer_labels_1_2",
                lambda: [
                    (
                        make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=4)),
                        rust("standardscaler", "kneighborsclassifier"),
                    )
                ],
                metric,
            ),
        )
        for metric in ["f1", "roc_auc"]
    ],
    *[
        _case(
            f"classifier_with_regression_metric_{metric}",
            # The classifier's predictions are labels 0 and 5, not class codes:
            # the model runs on the Python backend, after the native scaler.
            Case(
                "breast_cancer_labels_0_5",
                lambda: [
                    (
                        make_pipeline(StandardScaler(), KNeighborsClassifier()),
                        {**rust("standardscaler"), **python("kneighborsclassifier")},
                    )
                ],
                metric,
            ),
        )
        for metric in ["neg_mean_squared_error", "neg_mean_absolute_error"]
    ],
    _case(
        "default_scoring_mixed_kinds",
        # scoring=None: accuracy over StratifiedKFold for the classifier, r2
        # over KFold for the regressor, in one batch.
        Case(
            "breast_cancer",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsClassifier()),
                    rust("standardscaler", "kneighborsclassifier"),
                ),
                (
                    make_pipeline(StandardScaler(), KNeighborsRegressor()),
                    rust("standardscaler", "kneighborsregressor"),
                ),
                (make_pipeline(StandardScaler(), Ridge()), rust("standardscaler", "ridge")),
            ],
            None,
        ),
    ),
    _case(
        "string_class_labels",
        Case(
            "breast_cancer_string_labels",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsClassifier()),
                    rust("standardscaler", "kneighborsclassifier"),
                ),
            ],
            "balanced_accuracy",
        ),
    ),
    # --- X as numpy / pandas / pyarrow ---
    *[
        _case(
            f"input_{data}",
            Case(
                data,
                lambda: [
                    (
                        make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                        rust("standardscaler", "ridge"),
                    ),
                    (
                        make_pipeline(SelectKBest(f_regression, k=5), KNeighborsRegressor()),
                        rust("selectkbest", "kneighborsregressor"),
                    ),
                ],
                "neg_mean_squared_error",
            ),
        )
        for data in ["diabetes", "diabetes_pandas", "diabetes_arrow"]
    ],
    _case(
        "input_arrow_with_strings",
        Case(
            "mixed_arrow",
            lambda: [
                _ct_ridge_on_rust(),
                _ct_ridge_on_python(),
            ],
            "r2",
        ),
    ),
    # --- cv as an int and as a splitter ---
    _case(
        "cv_int_3",
        Case(
            "diabetes",
            lambda: [(make_pipeline(StandardScaler(), Ridge()), rust("standardscaler", "ridge"))],
            "r2",
            cv=3,
        ),
    ),
    _case(
        "cv_kfold_shuffled_regression",
        Case(
            "mixed_frame",
            lambda: [
                _ct_ridge_on_rust(),
                (
                    make_pipeline(_ct_impute_onehot(), KNeighborsRegressor()),
                    {**CT_BACKENDS, **rust("kneighborsregressor")},
                ),
            ],
            "r2",
            cv=KFold(n_splits=5, shuffle=True, random_state=0),
        ),
    ),
    _case(
        "cv_kfold_shuffled_classification",
        Case(
            "mixed_frame_classification",
            lambda: [
                (
                    make_pipeline(_ct_impute_onehot(), KNeighborsClassifier(n_neighbors=7)),
                    {**CT_BACKENDS, **rust("kneighborsclassifier")},
                ),
            ],
            "roc_auc",
            cv=KFold(n_splits=5, shuffle=True, random_state=0),
        ),
    ),
    _case(
        "cv_iterable_of_splits",
        # One list of (train, test) pairs for a classifier and a regressor.
        Case(
            "breast_cancer",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsClassifier()),
                    rust("standardscaler", "kneighborsclassifier"),
                ),
                (make_pipeline(StandardScaler(), Ridge()), rust("standardscaler", "ridge")),
            ],
            None,  # accuracy and r2
            cv=[
                (np.r_[0:100, 300:569], np.r_[100:300]),
                (np.r_[100:569], np.r_[0:100]),
                (np.r_[0:300], np.r_[300:569]),
            ],
        ),
    ),
    _case(
        "cv_stratified_shuffled",
        Case(
            "wine",
            lambda: [
                (
                    make_pipeline(StandardScaler(), KNeighborsClassifier()),
                    rust("standardscaler", "kneighborsclassifier"),
                ),
            ],
            "accuracy",
            cv=StratifiedKFold(n_splits=4, shuffle=True, random_state=0),
        ),
    ),
    # --- foreign steps on the Python backend, inside the same plan ---
    _case(
        "foreign_model_after_native_preprocessing",
        Case(
            "mixed_frame",
            lambda: [
                (
                    make_pipeline(
                        _ct_impute_onehot(), ExtraTreesRegressor(random_state=0, n_estimators=20)
                    ),
                    {**CT_BACKENDS, **python("extratreesregressor")},
                ),
                _ct_ridge_on_rust(),
                _ct_ridge_on_python(),
            ],
            "r2",
        ),
    ),
    _case(
        "user_transformer",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), ClipOutliers(limit=2.0), Ridge(alpha=1.0)),
                    {**rust("standardscaler"), **python("clipoutliers", "ridge")},
                ),
                (
                    make_pipeline(ClipOutliers(limit=0.05), StandardScaler(), Ridge(alpha=1.0)),
                    python("clipoutliers", "standardscaler", "ridge"),
                ),
                (
                    make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                    rust("standardscaler", "ridge"),
                ),
            ],
            "r2",
        ),
    ),
    _case(
        "non_native_metric",
        Case(
            "diabetes",
            lambda: [
                (
                    make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                    {**rust("standardscaler"), **python("ridge")},
                ),
            ],
            "explained_variance",
        ),
    ),
    # --- one realistic batch: many pipelines sharing prefixes ---
    _case(
        "shared_prefix_batch",
        Case(
            "mixed_frame",
            lambda: [
                *[
                    (
                        make_pipeline(_ct_impute_onehot(), Ridge(alpha=a)),
                        {**CT_BACKENDS, **rust("ridge")},
                    )
                    for a in (0.1, 1.0, 10.0)
                ],
                (
                    make_pipeline(_ct_impute_onehot(), LinearRegression()),
                    {**CT_BACKENDS, **rust("linearregression")},
                ),
                *[
                    (
                        make_pipeline(_ct_impute_onehot(), KNeighborsRegressor(n_neighbors=k)),
                        {**CT_BACKENDS, **rust("kneighborsregressor")},
                    )
                    for k in (3, 9)
                ],
                (
                    make_pipeline(
                        _ct_impute_onehot(), PolynomialFeatures(degree=2), Ridge(alpha=10.0)
                    ),
                    {**CT_BACKENDS, **rust("polynomialfeatures", "ridge")},
                ),
                (
                    make_pipeline(
                        _ct_impute_onehot("constant"), SelectKBest(f_regression, k=6), Ridge()
                    ),
                    {**CT_BACKENDS, **rust("selectkbest", "ridge")},
                ),
            ],
            "neg_mean_absolute_error",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_batch_matches_cross_val_score(case: Case, request: pytest.FixtureRequest) -> None:
    x_engine, x_reference, y = DATA[case.data](request)
    pipelines, expected_backends = zip(*case.batch(), strict=True)

    results = aml.evaluate(list(pipelines), x_engine, y, cv=case.cv, scoring=case.scoring)

    assert len(results) == len(pipelines)
    for i, (result, pipeline, backends) in enumerate(
        zip(results, pipelines, expected_backends, strict=True)
    ):
        reference = cross_val_score(pipeline, x_reference, y, cv=case.cv, scoring=case.scoring)
        assert result.index == i
        assert result.pipeline is pipeline
        default = "accuracy" if is_classifier(pipeline) else "r2"
        assert result.scoring == (case.scoring or default)
        assert result.error is None, f"pipeline {i} ({pipeline}) failed: {result.error}"
        assert result.backends == backends, f"pipeline {i} ({pipeline})"
        np.testing.assert_allclose(
            result.fold_scores,
            reference,
            rtol=0,
            atol=case.tol,
            err_msg=f"pipeline {i} ({pipeline}), scoring {case.scoring!r}",
        )
        assert result.mean_score == pytest.approx(float(np.mean(reference)), abs=case.tol)

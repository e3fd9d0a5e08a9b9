"""The batch compiler: deduplication (CSE), Gram sharing, hoisting and stats.

Operation counts are reasoned out by hand from the lowering rules: per fold,
a split is two ``take_rows`` nodes (train and test rows of the stage), a
fitted transformer is three nodes (``fit`` on train, ``apply`` to train and to
test), and a native model reads two target slices (``take_rows`` of y for
train and test) and adds ``fit`` (or ``gram`` + ``solve``), ``apply`` and
``score``. Source nodes (X, y) are not operations.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

import academy_ml as aml
from academy_ml.engine import PLAN_VERSION
from academy_ml.exceptions import PlanError

FOLDS = 5

#: Per fold: x split (2) + imputer (3) + scaler (3) + y train/test slices (2).
SHARED_PREFIX_PER_FOLD = 10
#: Per pipeline and fold: the model's fit, apply and score.
MODEL_PER_FOLD = 3
#: Per pipeline and fold for KNN: the prediction from the shared search, and score.
KNN_PER_FOLD = 2
#: One pipeline alone, per fold, without any sharing: 2 + 3 + 3 + 2 + 3.
NAIVE_PER_FOLD = 13
#: The same for a linear model, whose fit is a Gram node and a solve in both
#: the naive and the compiled count: 2 + 3 + 3 + 2 + 4.
NAIVE_LINEAR_PER_FOLD = 14


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


def prefixed(model: Any) -> Any:
    return make_pipeline(SimpleImputer(), StandardScaler(), model)


def op_kinds(plan: aml.Plan) -> list[str]:
    return [n["op"]["kind"] for n in plan.nodes]


# --- common subexpression elimination -------------------------------------------


@pytest.mark.parametrize("bound", [False, True], ids=["symbolic", "bound"])
def test_shared_prefix_is_computed_once(bound: bool, diabetes: Any) -> None:
    X, y = diabetes
    batch = [prefixed(KNeighborsRegressor(n_neighbors=k)) for k in range(1, 9)]
    data: dict[str, Any] = {"X": X, "y": y} if bound else {}

    stats = aml.compile(batch, cv=FOLDS, **data).stats

    assert stats.pipelines == 8
    assert stats.folds == FOLDS
    assert stats.naive_ops == 8 * FOLDS * NAIVE_PER_FOLD == 520
    # One neighbour search per fold serves all eight k.
    assert (
        stats.unique_ops == FOLDS * (SHARED_PREFIX_PER_FOLD + 1) + 8 * FOLDS * KNN_PER_FOLD == 135
    )
    assert stats.dedup_ratio == pytest.approx(520 / 135)
    assert stats.neighbor_searches == FOLDS
    assert stats.knn_predictions == 8 * FOLDS
    assert stats.python_pipelines == 0
    assert stats.shared_grams == 0
    assert stats.linear_solves == 0


def test_identical_pipelines_dedupe_completely() -> None:
    one = aml.compile([prefixed(KNeighborsRegressor())], cv=FOLDS).stats
    three = aml.compile(
        [
            prefixed(KNeighborsRegressor()),
            prefixed(KNeighborsRegressor()),
            prefixed(KNeighborsRegressor()),
        ],
        cv=FOLDS,
    ).stats

    assert one.naive_ops == one.unique_ops == FOLDS * NAIVE_PER_FOLD
    assert three.naive_ops == 3 * one.naive_ops
    assert three.unique_ops == one.unique_ops


def test_identical_pipelines_share_their_score_outputs(diabetes: Any) -> None:
    X, y = diabetes
    batch = [
        prefixed(Ridge(alpha=2.0)),
        prefixed(KNeighborsRegressor()),
        prefixed(Ridge(alpha=2.0)),
    ]
    plan = aml.compile(batch, cv=FOLDS, X=X, y=y)

    first, knn, again = plan.entries
    assert len(first.score_outputs) == FOLDS
    assert first.score_outputs == again.score_outputs
    assert set(first.score_outputs).isdisjoint(knn.score_outputs)
    assert len(plan.outputs) == len(set(plan.outputs)) == 2 * FOLDS


def test_different_parameters_are_not_merged() -> None:
    stats = aml.compile(
        [
            make_pipeline(StandardScaler(), KNeighborsRegressor()),
            make_pipeline(StandardScaler(with_std=False), KNeighborsRegressor()),
        ],
        cv=FOLDS,
    ).stats

    # Only the x split (2) and the y slices (2) are common: the scalers differ,
    # so everything downstream of them differs too.
    per_pipeline = 3 + 3  # scaler + model (fit, apply, score)
    assert stats.unique_ops == FOLDS * (2 + 2 + 2 * per_pipeline) == 80
    assert stats.naive_ops == 2 * FOLDS * (2 + 3 + 5) == 100


def test_cse_off_counts_every_operation() -> None:
    batch = [prefixed(Ridge(alpha=a)) for a in (0.1, 1.0)]
    stats = aml.compile(batch, cv=FOLDS, options=aml.Options(cse=False, hoist=False)).stats

    assert stats.unique_ops == stats.naive_ops == 2 * FOLDS * NAIVE_LINEAR_PER_FOLD


# --- Gram sharing -----------------------------------------------------------------


def test_ridge_alphas_share_one_gram_per_fold() -> None:
    alphas = (0.01, 0.1, 1.0, 10.0)
    batch = [prefixed(Ridge(alpha=a)) for a in alphas]

    stats = aml.compile(batch, cv=FOLDS).stats

    assert stats.shared_grams == FOLDS
    assert stats.linear_solves == len(alphas) * FOLDS
    # shared prefix + one gram per fold; then per alpha and fold solve, apply, score
    assert stats.unique_ops == FOLDS * (SHARED_PREFIX_PER_FOLD + 1) + len(alphas) * FOLDS * 3 == 115
    assert stats.naive_ops == len(alphas) * FOLDS * NAIVE_LINEAR_PER_FOLD == 280


def test_linear_regression_reads_the_same_gram_as_ridge() -> None:
    batch = [prefixed(Ridge(alpha=1.0)), prefixed(Ridge(alpha=5.0)), prefixed(LinearRegression())]

    stats = aml.compile(batch, cv=FOLDS).stats

    assert stats.shared_grams == FOLDS
    assert stats.linear_solves == 3 * FOLDS


def test_duplicate_alphas_solve_once_and_intercept_changes_the_gram() -> None:
    batch = [
        prefixed(Ridge(alpha=1.0)),
        prefixed(Ridge(alpha=1)),  # same penalty, as an int
        prefixed(Ridge(alpha=1.0, fit_intercept=False)),
    ]

    stats = aml.compile(batch, cv=FOLDS).stats

    assert stats.shared_grams == 2 * FOLDS
    assert stats.linear_solves == 2 * FOLDS


def test_gram_sharing_off_fits_each_model() -> None:
    batch = [prefixed(Ridge(alpha=a)) for a in (0.1, 1.0, 10.0)]

    stats = aml.compile(batch, cv=FOLDS, options=aml.Options(share_gram=False)).stats

    assert stats.shared_grams == 0
    assert stats.linear_solves == 0
    assert stats.unique_ops == FOLDS * SHARED_PREFIX_PER_FOLD + 3 * FOLDS * MODEL_PER_FOLD == 95
    assert "fit" in op_kinds(aml.compile(batch, cv=FOLDS, options=aml.Options(share_gram=False)))


# --- hoisting stateless steps ----------------------------------------------------------


def test_stateless_first_step_runs_once_before_the_split(diabetes: Any) -> None:
    X, y = diabetes
    batch = [make_pipeline(PolynomialFeatures(degree=2), Ridge(alpha=a)) for a in (1.0, 10.0)]

    plan = aml.compile(batch, cv=FOLDS, X=X, y=y)

    # poly fit + apply once (2); per fold: split (2), y slices (2), gram (1);
    # per alpha and fold: solve, apply, score (3).
    assert plan.stats.unique_ops == 2 + FOLDS * (2 + 2 + 1) + 2 * FOLDS * 3 == 57
    assert plan.stats.naive_ops == 2 * FOLDS * (2 + 3 + 6) == 110
    poly_fits = [
        n
        for n in plan.nodes
        if n["op"]["kind"] == "fit" and n["op"]["estimator"]["name"] == "polynomial_features"
    ]
    assert len(poly_fits) == 1


def test_hoisting_off_fits_the_stateless_step_per_fold() -> None:
    batch = [make_pipeline(PolynomialFeatures(degree=2), Ridge(alpha=1.0))]

    stats = aml.compile(batch, cv=FOLDS, options=aml.Options(hoist=False)).stats

    # split (2), poly (3), y (2), gram, solve, apply, score (4) per fold
    assert stats.unique_ops == FOLDS * (2 + 3 + 2 + 4) == 55


def test_stateless_step_after_a_fitted_step_stays_per_fold() -> None:
    batch = [make_pipeline(StandardScaler(), PolynomialFeatures(degree=2), KNeighborsRegressor())]

    stats = aml.compile(batch, cv=FOLDS).stats

    assert stats.unique_ops == stats.naive_ops == FOLDS * (2 + 3 + 3 + 5)


# --- ColumnTransformer --------------------------------------------------------------


def _frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], size=n),
        }
    )
    return frame, rng.normal(size=n)


def _ct_pipeline() -> Any:
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"]),
        ]
    )
    return make_pipeline(ct, Ridge())


@pytest.mark.parametrize("bound", [False, True], ids=["symbolic", "bound"])
def test_column_transformer_counts(bound: bool) -> None:
    frame, y = _frame()
    data: dict[str, Any] = {"X": frame, "y": y} if bound else {}

    stats = aml.compile([_ct_pipeline(), _ct_pipeline()], cv=FOLDS, **data).stats

    # select_cols per branch, once (2); per fold and branch: split (2) and
    # fit/apply/apply (3); per fold: hstack of train and of test (2), y (2),
    # gram, solve, apply, score (4).
    assert stats.unique_ops == 2 + FOLDS * (2 * 5 + 2 + 2 + 4) == 92
    # Naive: the same, once per pipeline.
    assert stats.naive_ops == 2 * (2 + FOLDS * (2 * 5 + 2 + 2 + 4)) == 184
    assert stats.python_pipelines == 0


def test_mixed_kinds_reaching_a_numeric_step_run_in_python() -> None:
    frame, y = _frame()
    native = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["a", "b"])]), KNeighborsRegressor()
    )
    # StandardScaler over a string column: the runtime cannot, scikit-learn fails too,
    # but on the Python backend and for this pipeline only.
    mixed = make_pipeline(StandardScaler(), KNeighborsRegressor())

    alone = aml.compile([native], cv=FOLDS, X=frame, y=y)
    plan = aml.compile([mixed, native], cv=FOLDS, X=frame, y=y)

    assert plan.stats.python_pipelines == 1
    assert plan.stats.unique_ops == alone.stats.unique_ops
    assert plan.entries[0].lowered is None
    assert plan.entries[0].ir.backends() == {
        "standardscaler": "python",
        "kneighborsregressor": "python",
    }
    assert plan.entries[1].ir.backends()["kneighborsregressor"] == "rust"


# --- foreign steps and failures at compile time ----------------------------------------


def test_foreign_tail_and_foreign_pipelines_are_counted() -> None:
    batch = [
        make_pipeline(StandardScaler(), KNeighborsRegressor()),
        make_pipeline(StandardScaler(), RandomForestRegressor()),
        make_pipeline(Doubler(), KNeighborsRegressor()),
    ]

    plan = aml.compile(batch, cv=FOLDS)

    assert plan.stats.python_pipelines == 2
    # The scaler (split 2 + 3 per fold) is shared; the KNN adds y (2) + 3 per
    # fold; the foreign pipeline adds nothing.
    assert plan.stats.unique_ops == FOLDS * (5 + 2 + 3) == 50
    _native, tail, foreign = plan.entries
    assert tail.lowered is not None
    assert len(tail.lowered.matrices) == FOLDS
    assert tail.lowered.scores == ()
    assert foreign.lowered is None


def test_non_native_scoring_moves_models_to_python() -> None:
    batch = [prefixed(Ridge()), prefixed(KNeighborsRegressor())]

    plan = aml.compile(batch, cv=FOLDS, scoring="explained_variance")

    assert plan.stats.python_pipelines == 2
    assert plan.stats.shared_grams == 0
    assert all(e.ir.model is None for e in plan.entries)
    assert [e.scoring for e in plan.entries] == ["explained_variance"] * 2
    # Only the shared prefix remains: split 2 + imputer 3 + scaler 3 per fold.
    assert plan.stats.unique_ops == FOLDS * 8


def test_a_pipeline_that_cannot_compile_leaves_shared_nodes_in_place(breast_cancer: Any) -> None:
    X, y = breast_cancer
    good = make_pipeline(StandardScaler(), KNeighborsClassifier())
    bad = make_pipeline(StandardScaler(), Ridge())  # a regressor scored with accuracy

    alone = aml.compile([good], cv=FOLDS, X=X, y=y, scoring="accuracy")
    plan = aml.compile([good, bad], cv=FOLDS, X=X, y=y, scoring="accuracy")

    assert plan.entries[1].error is not None
    assert "needs a classifier" in plan.entries[1].error
    assert plan.entries[0].error is None
    assert plan.stats.unique_ops == alone.stats.unique_ops
    assert plan.nodes == alone.nodes


def test_default_scoring_depends_on_the_estimator() -> None:
    plan = aml.compile([KNeighborsClassifier(), KNeighborsRegressor()], cv=3)

    assert [e.scoring for e in plan.entries] == ["accuracy", "r2"]


def test_unknown_scoring_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported scoring name 'r3'"):
        aml.compile([Ridge()], cv=3, scoring="r3")


def test_x_without_y_is_refused(diabetes: Any) -> None:
    with pytest.raises(ValueError, match="both X and y"):
        aml.compile([Ridge()], cv=3, X=diabetes[0])


def test_non_estimator_is_refused() -> None:
    with pytest.raises(aml.UnsupportedStepError):
        aml.compile([Ridge(), "not a pipeline"], cv=3)


# --- folds ------------------------------------------------------------------------------


@pytest.mark.parametrize(("cv", "folds"), [(3, 3), (KFold(n_splits=4), 4), (None, 5)])
def test_fold_count(cv: Any, folds: int) -> None:
    stats = aml.compile([make_pipeline(StandardScaler(), KNeighborsRegressor())], cv=cv).stats

    assert stats.folds == folds
    assert stats.unique_ops == folds * (2 + 3 + 5)


def test_classifiers_get_stratified_folds_and_regressors_plain_ones(breast_cancer: Any) -> None:
    X, y = breast_cancer
    plan = aml.compile([KNeighborsClassifier(), KNeighborsRegressor()], cv=4, X=X, y=y)

    stratified = list(StratifiedKFold(n_splits=4).split(X, y))
    plain = list(KFold(n_splits=4).split(X, y))
    classifier, regressor = plan.entries
    assert classifier.folds is not None
    assert regressor.folds is not None
    for fold, (train, test) in enumerate(stratified):
        np.testing.assert_array_equal(classifier.folds.train[fold], train)
        np.testing.assert_array_equal(classifier.folds.test[fold], test)
    for fold, (train, test) in enumerate(plain):
        np.testing.assert_array_equal(regressor.folds.train[fold], train)
        np.testing.assert_array_equal(regressor.folds.test[fold], test)
    # The two kinds split differently, so they share no row slices.
    assert set(classifier.folds.test_names).isdisjoint(regressor.folds.test_names)
    assert set(plan.indices) == {
        *classifier.folds.train_names,
        *classifier.folds.test_names,
        *regressor.folds.train_names,
        *regressor.folds.test_names,
    }


def test_shuffled_splitter_is_reproduced(diabetes: Any) -> None:
    X, y = diabetes
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    plan = aml.compile([Ridge()], cv=cv, X=X, y=y)

    entry = plan.entries[0]
    assert entry.folds is not None
    for fold, (train, test) in enumerate(cv.split(X)):
        np.testing.assert_array_equal(entry.folds.train[fold], train)
        np.testing.assert_array_equal(entry.folds.test[fold], test)


@pytest.mark.parametrize("one_shot", [False, True], ids=["list", "generator"])
def test_cv_as_an_iterable_of_splits(one_shot: bool, breast_cancer: Any) -> None:
    X, y = breast_cancer
    splits = list(KFold(n_splits=3, shuffle=True, random_state=1).split(X))
    cv = (s for s in splits) if one_shot else splits

    # A classifier and a regressor: the folds are read for each kind.
    plan = aml.compile([KNeighborsClassifier(), KNeighborsRegressor()], cv=cv, X=X, y=y)

    assert plan.stats.folds == 3
    for entry in plan.entries:
        assert entry.folds is not None
        assert len(entry.folds) == 3
        for fold, (train, test) in enumerate(splits):
            np.testing.assert_array_equal(entry.folds.train[fold], train)
            np.testing.assert_array_equal(entry.folds.test[fold], test)
    symbolic = aml.compile([KNeighborsRegressor()], cv=(s for s in splits) if one_shot else splits)
    assert symbolic.stats.folds == 3
    assert symbolic.stats.unique_ops == 3 * (2 + 5)


@pytest.mark.parametrize("cv", [2.5, "5", object()], ids=["float", "str", "object"])
def test_cv_of_another_kind_is_refused_naming_cv(cv: Any, diabetes: Any) -> None:
    X, y = diabetes

    with pytest.raises(TypeError, match=r"cv must be None, an int, a scikit-learn splitter"):
        aml.compile([Ridge()], cv=cv, X=X, y=y)


# --- symbolic vs bound plans, serialisation, keys ----------------------------------------


def test_symbolic_compile_without_data() -> None:
    batch = [prefixed(Ridge(alpha=a)) for a in (0.1, 1.0)]

    plan = aml.compile(batch, cv=FOLDS)

    assert not plan.bound
    assert plan.table is None
    assert plan.target is None
    assert all(e.folds is None for e in plan.entries)
    assert plan.stats.unique_ops == FOLDS * (SHARED_PREFIX_PER_FOLD + 1) + 2 * FOLDS * 3
    with pytest.raises(PlanError, match="without X and y"):
        plan.to_bytes()
    assert plan.key == aml.compile(batch, cv=FOLDS).key
    assert plan.key != aml.compile(batch, cv=FOLDS + 1).key


def test_symbolic_and_bound_stats_agree_for_numeric_data(diabetes: Any) -> None:
    X, y = diabetes
    batch = [
        *[prefixed(Ridge(alpha=a)) for a in (0.1, 1.0)],
        prefixed(LinearRegression()),
        make_pipeline(PolynomialFeatures(degree=2), StandardScaler(), KNeighborsRegressor()),
        make_pipeline(StandardScaler(), RandomForestRegressor()),
    ]

    symbolic = aml.compile(batch, cv=FOLDS).stats
    bound = aml.compile(batch, cv=FOLDS, X=X, y=y).stats

    assert symbolic == bound


def test_bound_plan_serialises_a_topological_versioned_graph(diabetes: Any) -> None:
    X, y = diabetes
    plan = aml.compile([prefixed(Ridge()), prefixed(KNeighborsRegressor())], cv=3, X=X, y=y)

    body = msgpack.unpackb(plan.to_bytes(), raw=False)

    assert body["version"] == PLAN_VERSION
    assert len(body["nodes"]) == len(plan.nodes)
    assert body["outputs"] == list(plan.outputs)
    for node_id, node in enumerate(body["nodes"]):
        assert all(0 <= i < node_id for i in node["inputs"]), node
    for name in {n["op"].get("index") for n in plan.nodes} - {None}:
        assert name in plan.indices
    for name in {n["op"].get("target") for n in plan.nodes} - {None}:
        assert name in plan.targets


def test_plan_key_follows_the_data(diabetes: Any) -> None:
    X, y = diabetes
    batch = [prefixed(Ridge())]

    key = aml.compile(batch, cv=3, X=X, y=y).key

    assert aml.compile(batch, cv=3, X=X.copy(), y=y.copy()).key == key
    changed = X.copy()
    changed[0, 0] += 1.0
    assert aml.compile(batch, cv=3, X=changed, y=y).key != key
    assert aml.compile(batch, cv=4, X=X, y=y).key != key
    assert aml.compile(batch, cv=3, X=X, y=y + 1.0).key != key
    assert aml.compile([prefixed(Ridge(alpha=2.0))], cv=3, X=X, y=y).key != key

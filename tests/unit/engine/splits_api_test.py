"""``evaluate(cv=..., groups=...)`` splits as ``cross_validate`` does, and checks every split."""

from __future__ import annotations

import importlib
import types
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    PredefinedSplit,
    ShuffleSplit,
    StratifiedGroupKFold,
    TimeSeriesSplit,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import ExtraTreeRegressor

import academy_ml as aml
from academy_ml import _runtime
from academy_ml.compute.tasks import datasets
from academy_ml.compute.tasks.request import compile_request
from academy_ml.exceptions import DataError, ParameterError

run_module = importlib.import_module("academy_ml.engine.run")


def _groups(n_rows: int) -> np.ndarray[Any, Any]:
    return np.arange(n_rows) % 7


def _regressors() -> list[Any]:
    return [
        make_pipeline(StandardScaler(), Ridge(alpha=3.0)),
        ExtraTreeRegressor(random_state=0, max_depth=3),
    ]


def _assert_parity(batch: list[Any], X: Any, y: Any, cv: Any, groups: Any, scoring: Any) -> None:
    results = aml.evaluate(batch, X, y, cv=cv, groups=groups, scoring=scoring)
    for result, pipeline in zip(results, batch, strict=True):
        assert result.ok, result.error
        reference = cross_validate(pipeline, X, y, cv=cv, groups=groups, scoring=scoring)
        got = result.cv_results()
        for key in got:
            np.testing.assert_allclose(got[key], reference[key], rtol=0, atol=1e-9, err_msg=key)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_plan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the runtime was called although the split is invalid")

    runtime = types.SimpleNamespace(run_plan=run_plan, max_threads=_runtime.max_threads)
    monkeypatch.setattr(run_module, "_runtime", runtime)


# --- splitters, against cross_validate ---------------------------------------------------


@pytest.mark.parametrize(
    "make_cv",
    [
        lambda n: GroupKFold(n_splits=3),
        lambda n: LeaveOneGroupOut(),
        lambda n: TimeSeriesSplit(n_splits=4),
        lambda n: ShuffleSplit(n_splits=3, test_size=0.25, random_state=0),
        lambda n: KFold(4, shuffle=True, random_state=1),
        lambda n: PredefinedSplit(np.arange(n) % 3),
        lambda n: list(KFold(3).split(np.zeros(n))),
        lambda n: ((tr, te) for tr, te in KFold(3).split(np.zeros(n))),
    ],
    ids=[
        "GroupKFold",
        "LeaveOneGroupOut",
        "TimeSeries",
        "Shuffle",
        "KFold",
        "Predefined",
        "list",
        "generator",
    ],
)
def test_regression_splitters_match_cross_validate(make_cv: Any, diabetes: Any) -> None:
    X, y = diabetes
    reference_cv = make_cv(len(y))
    grouped = isinstance(reference_cv, (GroupKFold, LeaveOneGroupOut))
    groups = _groups(len(y)) if grouped else None
    cv = make_cv(len(y))  # a generator is used up once

    results = aml.evaluate(
        _regressors(), X, y, cv=cv, groups=groups, scoring=["r2", "neg_max_error"]
    )

    for result, pipeline in zip(results, _regressors(), strict=True):
        assert result.ok, result.error
        folds = (
            reference_cv if not isinstance(reference_cv, types.GeneratorType) else make_cv(len(y))
        )
        reference = cross_validate(
            pipeline, X, y, cv=folds, groups=groups, scoring=["r2", "neg_max_error"]
        )
        for key, scores in result.cv_results().items():
            np.testing.assert_allclose(scores, reference[key], rtol=0, atol=1e-9, err_msg=key)


def test_stratified_group_kfold_for_classifiers(wine: Any) -> None:
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression())
    groups = _groups(len(y))

    _assert_parity([model], X, y, StratifiedGroupKFold(3), groups, ["accuracy", "f1_macro"])
    (result,) = aml.evaluate([model], X, y, cv=StratifiedGroupKFold(3), groups=groups)
    assert result.backends["logisticregression"] == "rust"


def test_groups_are_ignored_by_a_number_of_folds(wine: Any) -> None:
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression())
    groups = _groups(len(y))

    with pytest.warns(UserWarning, match="groups are ignored by cv=4"):
        (result,) = aml.evaluate([model], X, y, cv=4, groups=groups)
    with pytest.warns(UserWarning, match="groups parameter is ignored by StratifiedKFold"):
        reference = cross_validate(model, X, y, cv=4, groups=groups)["test_score"]
    np.testing.assert_allclose(result.fold_scores, reference, rtol=0, atol=1e-9)


def test_boolean_masks_are_rows(diabetes: Any) -> None:
    X, y = diabetes
    n = len(y)
    masks = [(np.arange(n) % 3 != k, np.arange(n) % 3 == k) for k in range(3)]
    indices = [(np.flatnonzero(tr), np.flatnonzero(te)) for tr, te in masks]

    (by_mask,) = aml.evaluate([Ridge()], X, y, cv=masks)
    (by_index,) = aml.evaluate([Ridge()], X, y, cv=indices)

    np.testing.assert_array_equal(by_mask.fold_scores, by_index.fold_scores)
    reference = cross_validate(Ridge(), X, y, cv=indices)["test_score"]
    np.testing.assert_allclose(by_mask.fold_scores, reference, rtol=0, atol=1e-9)


# --- bad splits: a typed error naming the problem, before any work -----------------------


def _folds(n: int) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    return list(KFold(3).split(np.zeros(n)))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda f, n: [f[0], (f[1][0], np.array([1, n]))],
            r"fold 1 .* test indices hold 442, outside",
        ),
        (lambda f, n: [(np.array([-1, 2]), f[0][1])], r"fold 0 .* train indices hold -1, outside"),
        (lambda f, n: [(f[0][0], np.array([], dtype=int))], r"fold 0 .* test indices are empty"),
        (lambda f, n: [(np.array([]), f[0][1])], r"fold 0 .* train indices are empty"),
        (lambda f, n: [(f[0][0].astype(float), f[0][1])], r"train indices must be integers"),
        (lambda f, n: [(f[0][0].reshape(-1, 1), f[0][1])], r"train indices must be 1-D"),
        (lambda f, n: [(np.ones(5, dtype=bool), f[0][1])], r"boolean mask of shape \(5,\)"),
        (lambda f, n: [], r"produced no folds"),
    ],
    ids=[
        "past-end",
        "negative",
        "empty-test",
        "empty-train",
        "floats",
        "2-D",
        "short-mask",
        "none",
    ],
)
def test_malformed_splits_are_refused(
    corrupt: Any, message: str, diabetes: Any, no_work: None
) -> None:
    X, y = diabetes
    cv = corrupt(_folds(len(y)), len(y))

    with pytest.raises(ParameterError, match=message):
        aml.evaluate([Ridge()], X, y, cv=cv)


def test_a_group_splitter_without_groups_says_so(diabetes: Any, no_work: None) -> None:
    X, y = diabetes

    with pytest.raises(ParameterError, match=r"GroupKFold.*cannot split these 442 rows.*groups"):
        aml.evaluate([Ridge()], X, y, cv=GroupKFold(3))


def test_more_groups_than_folds_need(diabetes: Any, no_work: None) -> None:
    X, y = diabetes

    with pytest.raises(ParameterError, match="cannot split"):
        aml.evaluate([Ridge()], X, y, cv=GroupKFold(8), groups=_groups(len(y)))


@pytest.mark.parametrize("groups", [np.zeros(10), np.zeros((442, 2))], ids=["short", "2-D"])
def test_groups_need_one_label_per_row(groups: Any, diabetes: Any, no_work: None) -> None:
    X, y = diabetes

    with pytest.raises(DataError, match="groups must hold one label per row"):
        aml.evaluate([Ridge()], X, y, cv=GroupKFold(3), groups=groups)
    with pytest.raises(DataError, match="groups must hold one label per row"):
        aml.evaluate([Ridge()], X, y, cv=[(np.arange(9), np.arange(9, 20))], groups=groups)


def test_endpoint_requests_refuse_a_group_splitter_without_groups(diabetes: Any) -> None:
    X, y = diabetes
    table = datasets.to_arrow(X, y)

    with pytest.raises(ParameterError, match="groups"):
        compile_request([Ridge()], table, cv=GroupKFold(3), scoring=None)

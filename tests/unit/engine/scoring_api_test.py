"""``evaluate(scoring=...)`` takes what ``cross_validate`` takes, with its numbers."""

from __future__ import annotations

import importlib
import types
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, make_scorer, mean_absolute_error, r2_score
from sklearn.model_selection import cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import ExtraTreeClassifier, ExtraTreeRegressor

import academy_ml as aml
from academy_ml import _runtime
from academy_ml.compute.tasks import datasets
from academy_ml.compute.tasks.request import compile_request
from academy_ml.engine.plan import compile_batch
from academy_ml.engine.run import run
from academy_ml.exceptions import ParameterError

run_module = importlib.import_module("academy_ml.engine.run")
predicted_module = importlib.import_module("academy_ml.engine.predicted")

CV = 4


def score_ratio(estimator: Any, X: Any, y: Any) -> float:
    """A plain ``scorer(estimator, X, y)``: share of predictions within 50 of y."""
    return float(np.mean(np.abs(estimator.predict(X) - y) < 50))


def _tree() -> ExtraTreeRegressor:
    """A foreign regressor (random splits stay on the Python backend)."""
    return ExtraTreeRegressor(random_state=0, max_depth=4)


def _regressors() -> list[Any]:
    return [make_pipeline(StandardScaler(), Ridge(alpha=2.0)), _tree()]


def _classifiers() -> list[Any]:
    return [
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5)),
        KNeighborsClassifier(n_neighbors=5),
        ExtraTreeClassifier(random_state=0, max_depth=4),
    ]


def _assert_parity(results: list[Any], batch: list[Any], X: Any, y: Any, **kwargs: Any) -> None:
    for result, pipeline in zip(results, batch, strict=True):
        assert result.ok, result.error
        reference = cross_validate(pipeline, X, y, **kwargs)
        expected = {k: v for k, v in reference.items() if k.startswith("test_")}
        got = result.cv_results()
        assert got.keys() == expected.keys()
        for key, scores in expected.items():
            np.testing.assert_allclose(got[key], scores, rtol=0, atol=1e-9, err_msg=key)


# --- every form of scoring, against cross_validate -----------------------------------


@pytest.mark.parametrize(
    "scoring",
    [
        ["r2", "neg_mean_absolute_error", "neg_mean_squared_error"],
        ("r2", "explained_variance"),
        {"fit": "r2", "mae": make_scorer(mean_absolute_error), "close": score_ratio},
        {"only": "neg_root_mean_squared_error"},
    ],
    ids=["list", "tuple", "dict-with-callables", "dict-of-one"],
)
def test_several_metrics_match_cross_validate(scoring: Any, diabetes: Any) -> None:
    X, y = diabetes
    batch = _regressors()

    results = aml.evaluate(batch, X, y, cv=CV, scoring=scoring)

    _assert_parity(results, batch, X, y, cv=CV, scoring=scoring)
    names = list(scoring)
    assert [list(r.scores) for r in results] == [names] * len(batch)
    assert results[0].scoring == names[0]
    np.testing.assert_array_equal(results[0].fold_scores, results[0].scores[names[0]])
    assert results[0].mean_scores == {n: float(np.mean(results[0].scores[n])) for n in names}


@pytest.mark.parametrize(
    "scoring",
    [make_scorer(r2_score), score_ratio, lambda est, X, y: float(est.score(X, y))],
    ids=["make_scorer", "function", "lambda"],
)
def test_one_callable_matches_cross_validate(scoring: Any, diabetes: Any) -> None:
    X, y = diabetes
    batch = _regressors()

    results = aml.evaluate(batch, X, y, cv=CV, scoring=scoring)

    _assert_parity(results, batch, X, y, cv=CV, scoring=scoring)
    assert all(r.scores == {} for r in results)
    # The model is fitted where the callable can read it: on the Python backend.
    assert results[0].backends == {"standardscaler": "rust", "ridge": "python"}


def test_a_single_name_keeps_the_single_metric_result(diabetes: Any) -> None:
    X, y = diabetes

    (result,) = aml.evaluate([Ridge()], X, y, cv=CV, scoring="r2")

    assert result.scoring == "r2"
    assert result.scores == {}
    assert result.cv_results().keys() == {"test_score"}
    assert result.mean_scores == {"r2": result.mean_score}


def test_native_metrics_share_one_fit_per_fold(diabetes: Any) -> None:
    X, y = diabetes
    model = make_pipeline(StandardScaler(), Ridge())
    metrics = ["r2", "neg_mean_squared_error", "neg_mean_absolute_error"]

    one = compile_batch([model], CV, X=X, y=y, scoring="r2")
    three = compile_batch([model] * 3, CV, X=X, y=y, scorings=metrics)

    # Only the score nodes differ: one more per fold per extra metric.
    assert three.stats.unique_ops == one.stats.unique_ops + 2 * CV
    assert three.stats.python_pipelines == 0


# --- f1 / precision / recall averages: native fit and predict --------------------


AVERAGED = [
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "precision_macro",
    "precision_weighted",
    "recall_macro",
    "recall_micro",
    "jaccard_weighted",
]


@pytest.mark.parametrize("labels", ["codes", "strings"])
def test_averaged_label_metrics_run_native_with_parity(labels: str, wine: Any) -> None:
    X, y = wine
    if labels == "strings":
        y = np.array(["barolo", "grignolino", "barbera"])[y]
    batch = _classifiers()

    results = aml.evaluate(batch, X, y, cv=CV, scoring=AVERAGED)

    _assert_parity(results, batch, X, y, cv=CV, scoring=AVERAGED)
    assert results[0].backends == {"standardscaler": "rust", "logisticregression": "rust"}
    assert results[1].backends == {"kneighborsclassifier": "rust"}
    assert results[2].backends == {"extratreeclassifier": "python"}


def test_one_averaged_metric_is_native_too(wine: Any) -> None:
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression())

    (result,) = aml.evaluate([model], X, y, cv=CV, scoring="f1_macro")

    assert result.scoring == "f1_macro"
    assert result.backends == {"standardscaler": "rust", "logisticregression": "rust"}
    reference = cross_validate(model, X, y, cv=CV, scoring="f1_macro")["test_score"]
    np.testing.assert_allclose(result.fold_scores, reference, rtol=0, atol=1e-9)


def test_binary_precision_and_recall_use_pos_label_1(breast_cancer: Any) -> None:
    X, y = breast_cancer
    model = make_pipeline(StandardScaler(), LogisticRegression())
    scoring = ["precision", "recall", "jaccard", "f1"]

    (result,) = aml.evaluate([model], X, y, cv=CV, scoring=scoring)

    _assert_parity([result], [model], X, y, cv=CV, scoring=scoring)
    assert result.backends["logisticregression"] == "rust"


def test_predictions_are_read_back_from_the_run_not_refitted(
    wine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = wine
    counters: list[dict[str, Any]] = []

    def run_plan(*args: Any, **kwargs: Any) -> Any:
        outputs, counts = _runtime.run_plan(*args, **kwargs)
        counters.append(counts)
        return outputs, counts

    monkeypatch.setattr(predicted_module, "_runtime", types.SimpleNamespace(run_plan=run_plan))
    batch = [make_pipeline(StandardScaler(), LogisticRegression(C=c)) for c in (0.5, 2.0)]

    aml.evaluate(batch, X, y, cv=CV, scoring="f1_weighted")

    (read_back,) = counters
    assert read_back["executed"] == 0
    assert read_back["cache_hits"] == len(batch) * CV


def test_an_averaged_metric_on_a_regressor_fails_that_pipeline_only(diabetes: Any) -> None:
    X, y = diabetes

    ridge, tree = aml.evaluate([Ridge(), _tree()], X, y, cv=CV, scoring="f1_macro")

    for result in (ridge, tree):
        assert result.error is not None
        assert "scoring 'f1_macro'" in result.error
        assert np.isnan(result.fold_scores).all()


# --- failures: per pipeline, per metric ---------------------------------------------


def test_a_failing_metric_names_itself_and_leaves_the_others(wine: Any) -> None:
    X, y = wine
    model = KNeighborsClassifier()
    scoring = {"acc": "accuracy", "auc": "roc_auc"}  # roc_auc: binary only

    (result,) = aml.evaluate([model], X, y, cv=CV, scoring=scoring)

    assert result.error is not None
    assert "roc_auc" in result.error
    assert np.isnan(result.scores["auc"]).all()
    reference = cross_validate(model, X, y, cv=CV, scoring="accuracy")["test_score"]
    np.testing.assert_allclose(result.scores["acc"], reference, rtol=0, atol=1e-9)


def test_callable_scores_are_never_cached(diabetes: Any, tmp_path: Any) -> None:
    X, y = diabetes
    cache = aml.Cache(tmp_path / "cache")
    tree = _tree()

    reports = [
        run(compile_batch([tree, tree], CV, X=X, y=y, scorings=[score_ratio, "r2"]), cache=cache)
        for _ in range(2)
    ]

    assert [r.python_scores for r in reports] == [2 * CV, CV]
    assert [r.python_hits for r in reports] == [0, CV]  # only the named metric's
    np.testing.assert_array_equal(
        reports[0].results[0].fold_scores, reports[1].results[0].fold_scores
    )


# --- bad scoring: a typed error before any work ---------------------------------------


@pytest.mark.parametrize(
    ("scoring", "message"),
    [
        ([], "empty list"),
        ({}, "empty dict"),
        (["r2", "r2"], "r2 more than once"),
        (["r2", "r3"], "unsupported scoring name 'r3'"),
        ({1: "r2"}, "keys must be strings"),
        ({"a": 3}, "must be a scikit-learn scoring name"),
        (3.5, "got float 3.5"),
        ({"r2"}, "got set"),
    ],
)
def test_bad_scoring_is_refused_before_work(
    scoring: Any, message: str, diabetes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = diabetes

    def run_plan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the runtime was called although the scoring is invalid")

    runtime = types.SimpleNamespace(run_plan=run_plan, max_threads=_runtime.max_threads)
    monkeypatch.setattr(run_module, "_runtime", runtime)

    with pytest.raises(ParameterError, match=message):
        aml.evaluate([Ridge()], X, y, cv=CV, scoring=scoring)


@pytest.mark.parametrize(
    "scoring", [make_scorer(f1_score, average="macro"), score_ratio], ids=["make_scorer", "fn"]
)
def test_plans_and_endpoint_requests_refuse_callables(scoring: Any, wine: Any) -> None:
    X, y = wine

    with pytest.raises(ParameterError, match="endpoint"):
        aml.compile([LogisticRegression()], cv=CV, X=X, y=y, scoring=scoring)
    with pytest.raises(ParameterError, match="could only reach an endpoint as a pickle"):
        compile_request([LogisticRegression()], datasets.to_arrow(X, y), cv=CV, scoring=scoring)

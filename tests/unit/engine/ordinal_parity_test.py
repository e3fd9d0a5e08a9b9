"""OrdinalEncoder runs natively and encodes exactly as scikit-learn's does.

Each case runs ``aml.evaluate`` and ``cross_val_score`` on the same folds and
compares the fold scores to 1e-6. Codes reach a ``Ridge`` without intercept
(any shift or scale of a code changes its scores) and a decision tree (the
trees' usual preprocessing must keep them native). Rare categories make
unknown values common in the test folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.tree import DecisionTreeRegressor

import academy_ml as aml

TOL = 1e-6
CATS = ["c1", "c2", "n1"]
EXPLICIT = [["d", "b", "a", "g", "c", "zz", "e", "f"], ["y", "w", "x", "z"], [0, 1, 2, 3, 4, 5, 6]]


def make_data(n: int = 200, seed: int = 0, missing: bool = False) -> tuple[pd.DataFrame, Any]:
    """Two string columns (one with rare values), an integer and a float column."""
    rng = np.random.default_rng(seed)
    c1 = rng.choice(["a", "b", "c", "d", "e"], size=n, p=[0.4, 0.3, 0.2, 0.08, 0.02])
    c2 = rng.choice(["x", "y", "z"], size=n)
    n1 = rng.integers(0, 7, size=n)
    f1 = rng.normal(size=n)
    if missing:
        f1[rng.random(n) < 0.15] = np.nan
    codes = pd.Series(c1).map({"a": 0.0, "b": 2.0, "c": -1.0, "d": 3.0, "e": 5.0})
    y = codes.to_numpy() + (c2 == "y") * 1.5 + 0.3 * n1 + rng.normal(scale=0.3, size=n)
    x = pd.DataFrame({"c1": c1, "c2": c2, "n1": n1, "f1": f1})
    # Values seen once: unknown in their test fold, and shifting the codes
    # sorted after them in the other folds.
    x.loc[10, "c1"], x.loc[95, "c1"], x.loc[150, "c2"] = "f", "g", "w"
    return x, y


def ct(encoder: OrdinalEncoder, remainder: str = "passthrough", cols: Any = None) -> Any:
    return ColumnTransformer([("cat", encoder, cols or CATS)], remainder=remainder)


def run(pipelines: list[Any], x: Any, y: Any) -> list[aml.PipelineResult]:
    return aml.evaluate(pipelines, x, y, cv=5, threads=1)


def check(pipeline: Any, x: Any, y: Any, backend: str = "rust") -> None:
    [result] = run([pipeline], x, y)
    assert result.error is None, result.error
    assert set(result.backends.values()) == {backend}, result.backends
    want = cross_val_score(pipeline, x, y, cv=5)
    np.testing.assert_allclose(result.fold_scores, want, rtol=0, atol=TOL)


def models() -> list[Any]:
    return [Ridge(alpha=1.0, fit_intercept=False), DecisionTreeRegressor(random_state=0)]


ENCODERS = {
    "auto_unknown_minus_one": OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    "auto_unknown_large": OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=99),
    "explicit_all_error": OrdinalEncoder(categories=EXPLICIT),
    "explicit_partial_unknown": OrdinalEncoder(
        categories=[["c", "a", "b"], ["z", "x"], [1, 3, 5]],
        handle_unknown="use_encoded_value",
        unknown_value=-3,
    ),
    "explicit_numpy_arrays": OrdinalEncoder(
        categories=[np.array(c, dtype=object) for c in EXPLICIT[:2]] + [np.arange(7)],
        dtype=np.float64,
    ),
}


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("remainder", ["passthrough", "drop"])
def test_encoder_matches_scikit_learn(name: str, model: Any, remainder: str) -> None:
    x, y = make_data()
    check(make_pipeline(ct(ENCODERS[name], remainder), model), x, y)


def test_unknown_as_nan_reaches_the_tree_and_matches() -> None:
    # Unknown test rows go down each split's missing-value side, as in scikit-learn.
    x, y = make_data(seed=3)
    nan_unknown = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    check(make_pipeline(ct(nan_unknown), DecisionTreeRegressor(random_state=0)), x, y)
    fill = SimpleImputer(strategy="constant", fill_value=-7.0)
    ridge = Ridge(fit_intercept=False)
    check(make_pipeline(ct(make_pipeline(nan_unknown, fill)), ridge), x, y)


def test_missing_numeric_values_encode_as_encoded_missing_value() -> None:
    x, y = make_data(missing=True)
    cols = ["c1", "f1"]
    default = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    fill = SimpleImputer(strategy="constant", fill_value=-9.0)
    ridge = Ridge(fit_intercept=False)
    check(make_pipeline(ct(make_pipeline(default, fill), "drop", cols), ridge), x, y)
    coded = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
    )
    for model in models():
        check(make_pipeline(ct(coded, "drop", cols), model), x, y)


def test_plain_numeric_array_without_column_transformer() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 9, size=(150, 3)).astype(float) * 0.5
    y = x[:, 0] - x[:, 1] + rng.normal(size=150)
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    for model in models():
        check(make_pipeline(enc, model), x, y)


def test_tree_pipelines_behind_ordinal_codes_run_natively() -> None:
    x, y = make_data(400, seed=1)
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    batch = [
        make_pipeline(
            ColumnTransformer([("cat", codes, ["c1", "c2"]), ("num", "passthrough", ["n1", "f1"])]),
            DecisionTreeRegressor(random_state=0, **params),
        )
        for params in ({}, {"max_depth": 4}, {"min_samples_leaf": 5})
    ]
    results = run(batch, x, y)
    for pipeline, result in zip(batch, results, strict=True):
        assert result.error is None, result.error
        assert set(result.backends.values()) == {"rust"}, result.backends
        want = cross_val_score(pipeline, x, y, cv=5)
        np.testing.assert_allclose(result.fold_scores, want, rtol=0, atol=TOL)


def test_bad_input_fails_its_own_pipeline_only() -> None:
    x, y = make_data()
    good = make_pipeline(
        ct(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)), Ridge()
    )
    unknown_at_transform = make_pipeline(ct(OrdinalEncoder()), Ridge())
    clashing_unknown = make_pipeline(
        ct(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=0)), Ridge()
    )
    missing_category = make_pipeline(ct(OrdinalEncoder(categories=[["a"], ["x"], [0]])), Ridge())
    results = run([unknown_at_transform, good, clashing_unknown, missing_category], x, y)
    assert results[1].error is None
    np.testing.assert_allclose(
        results[1].fold_scores, cross_val_score(good, x, y, cv=5), rtol=0, atol=TOL
    )
    messages = [results[i].error or "" for i in (0, 2, 3)]
    assert "DataError: Found unknown categories in column 0 during transform" in messages[0]
    assert "OrdinalEncoder" in messages[0]
    assert "ParameterError: The used value for unknown_value 0 is one of the values" in messages[1]
    assert "DataError: Found unknown categories in column 0 during fit" in messages[2]
    for result in (results[0], results[2], results[3]):
        assert result.backends["columntransformer__cat"] == "rust", result.backends
    # scikit-learn refuses the same pipelines.
    refusals = ("during transform", "unknown_value 0", "during fit")
    for pipeline, refusal in zip(
        (unknown_at_transform, clashing_unknown, missing_category), refusals, strict=True
    ):
        with pytest.raises(ValueError, match=refusal):
            _fit_all_folds(pipeline, x, y)


def _fit_all_folds(pipeline: Any, x: Any, y: Any) -> None:
    cross_val_score(pipeline, x, y, cv=5, error_score="raise")


UNKNOWN: dict[str, Any] = {"handle_unknown": "use_encoded_value", "unknown_value": -1}
FOREIGN = {
    "float32": OrdinalEncoder(dtype=np.float32, **UNKNOWN),
    "min_frequency": OrdinalEncoder(min_frequency=5, **UNKNOWN),
    "max_categories": OrdinalEncoder(max_categories=3, **UNKNOWN),
    "unsorted_numeric": OrdinalEncoder(categories=[*EXPLICIT[:2], [6, 5, 4, 3, 2, 1, 0]]),
}


@pytest.mark.parametrize("name", FOREIGN)
def test_what_is_not_reproduced_stays_with_scikit_learn(name: str) -> None:
    x, y = make_data(seed=2)
    pipeline = make_pipeline(ct(FOREIGN[name]), DecisionTreeRegressor(random_state=0))
    [result] = run([pipeline], x, y)
    assert "python" in result.backends.values(), result.backends
    if result.error is None:
        want = cross_val_score(pipeline, x, y, cv=5)
        np.testing.assert_allclose(result.fold_scores, want, rtol=0, atol=TOL)
    else:
        with pytest.raises(ValueError, match="Unsorted categories"):
            _fit_all_folds(pipeline, x, y)


def test_string_column_with_missing_values_stays_with_scikit_learn() -> None:
    # None is a category of its own for scikit-learn, NaN a missing value;
    # the table holds both as NaN, so the step is not reproduced natively.
    x, y = make_data()
    x["c1"] = x["c1"].astype(object)
    x.loc[::7, "c1"] = None
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    check(make_pipeline(ct(enc), DecisionTreeRegressor(random_state=0)), x, y, "python")

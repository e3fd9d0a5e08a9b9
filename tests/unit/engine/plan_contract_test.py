"""A plan is frozen data, lowered once, encoded once; running it takes the plan.

Naive-op counts come from the one lowering; the oracle here is the old way,
each pipeline compiled alone with nothing shared and nothing hoisted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder, PolynomialFeatures, StandardScaler

import academy_ml as aml
from academy_ml.engine import data as data_module
from academy_ml.engine import lower as lower_module
from academy_ml.engine import plan as plan_module
from academy_ml.engine import splits as splits_module
from academy_ml.engine.data import prepare_features, prepare_target

NUMERIC = ["age", "income", "ratio", "rooms"]


def shapes() -> list[Any]:
    """Pipelines covering every way the lowering splits, hoists and stacks."""
    poly_branch = make_pipeline(SimpleImputer(), PolynomialFeatures(2))
    onehot = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    return [
        make_pipeline(SimpleImputer(), PolynomialFeatures(2), Ridge()),
        make_pipeline(SimpleImputer(), StandardScaler(), PolynomialFeatures(2), LinearRegression()),
        make_pipeline(SimpleImputer(), PolynomialFeatures(2), PolynomialFeatures(2), Ridge(2.0)),
        make_pipeline(
            ColumnTransformer([("p", PolynomialFeatures(2), ["clean_a", "clean_b"])]),
            MaxAbsScaler(),
            KNeighborsRegressor(3),
        ),
        make_pipeline(
            ColumnTransformer(
                [("p", PolynomialFeatures(2), ["clean_a"]), ("q", "passthrough", ["clean_b"])]
            ),
            Ridge(),
        ),
        make_pipeline(
            ColumnTransformer(
                [("n", poly_branch, NUMERIC), ("c", onehot, ["color"])], remainder="drop"
            ),
            SelectKBest(f_regression, k=3),
            KNeighborsRegressor(5),
        ),
        make_pipeline(
            ColumnTransformer([("n", SimpleImputer(), NUMERIC)], remainder="drop"),
            StandardScaler(),
            RandomForestRegressor(3, random_state=0),  # a foreign tail on native matrices
        ),
        RandomForestRegressor(3, random_state=0),  # Python from its first step
    ]


@pytest.mark.parametrize(
    "options",
    [
        aml.Options(),
        aml.Options(cse=False),
        aml.Options(hoist=False),
        aml.Options(share_gram=False, share_neighbors=False),
    ],
    ids=["default", "no-cse", "no-hoist", "no-rewrites"],
)
def test_naive_counts_equal_each_pipeline_lowered_alone_unshared(
    options: aml.Options, mixed_regression: Any
) -> None:
    X, y = mixed_regression
    batch = shapes()
    naive = aml.Options(cse=False, hoist=False)
    alone = sum(aml.compile([p], cv=3, X=X, y=y, options=naive).stats.unique_ops for p in batch)

    stats = aml.compile(batch, cv=3, X=X, y=y, options=options).stats

    assert stats.naive_ops == alone
    assert stats.unique_ops < stats.naive_ops or not options.cse


def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pipelines lowered (by the compiler's one entry to the lowering)."""
    calls: list[int] = []
    real: Callable[..., Any] = lower_module.lower

    def lower(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_module, "lower", lower)
    return calls


def test_compiling_lowers_each_pipeline_once(
    monkeypatch: pytest.MonkeyPatch, mixed_regression: Any
) -> None:
    X, y = mixed_regression
    calls = counting(monkeypatch)
    batch = shapes()

    plan = aml.compile(batch, cv=3, X=X, y=y)
    plan.to_bytes()
    assert plan.key
    assert plan.stats.naive_ops > plan.stats.unique_ops

    assert len(calls) == len(batch)


def test_a_plan_is_frozen_and_encoded_once(monkeypatch: pytest.MonkeyPatch, diabetes: Any) -> None:
    X, y = diabetes
    plan = aml.compile([make_pipeline(SimpleImputer(), Ridge())], cv=3, X=X, y=y)
    packed: list[int] = []
    real = msgpack.packb

    def packb(*args: Any, **kwargs: Any) -> Any:
        packed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(msgpack, "packb", packb)
    first = plan.to_bytes()
    key = plan.key
    assert plan.to_bytes() is first
    assert plan.key == key
    assert plan.node_keys == {node["key"] for node in plan.nodes}
    assert len(packed) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes = ()  # type: ignore[misc]
    assert not hasattr(plan, "run")


def test_running_takes_a_plan(diabetes: Any) -> None:
    X, y = diabetes
    plan = aml.compile([make_pipeline(SimpleImputer(), Ridge())], cv=3, X=X, y=y)

    report = aml.run(plan)

    assert [r.error for r in report.results] == [None]
    assert report.executed > 0


def test_unbound_plans_key_as_before_and_do_not_encode() -> None:
    plan = aml.compile([make_pipeline(SimpleImputer(), Ridge())], cv=3)
    assert plan.key == aml.compile([make_pipeline(SimpleImputer(), Ridge())], cv=3).key
    with pytest.raises(aml.PlanError, match="cannot run"):
        plan.to_bytes()


def test_a_kept_target_is_split_and_fingerprinted_once(
    monkeypatch: pytest.MonkeyPatch, diabetes: Any
) -> None:
    X, y = diabetes
    table = prepare_features(X)
    target = prepare_target(y, table.n_rows)
    splits: list[Any] = []
    real = splits_module.make_folds

    def make_folds(cv: Any, *args: Any, **kwargs: Any) -> Any:
        splits.append(cv)
        return real(cv, *args, **kwargs)

    hashed: list[str] = []
    real_digest = data_module.digest

    def digest(*parts: Any) -> str:
        hashed.append(parts[0])
        return real_digest(*parts)

    monkeypatch.setattr(plan_module, "make_folds", make_folds)
    monkeypatch.setattr(data_module, "digest", digest)
    batch = [make_pipeline(SimpleImputer(), Ridge(alpha)) for alpha in (1.0, 2.0)]
    plans = [aml.compile(batch[i:], cv=3, X=table, y=target) for i in range(2)]
    assert splits == [3]
    assert hashed.count("raw") == hashed.count("codes") == 1
    assert plans[0].indices.keys() == plans[1].indices.keys()
    assert plans[0].node_keys > plans[1].node_keys

    shuffled = KFold(3, shuffle=True, random_state=0)
    for _ in range(2):
        aml.compile(batch, cv=shuffled, X=table, y=target)
    assert splits == [3, shuffled, shuffled]  # a splitter object may differ per call
    assert aml.compile(batch, cv=4, X=table, y=target).stats.folds == 4
    assert splits[-1] == 4

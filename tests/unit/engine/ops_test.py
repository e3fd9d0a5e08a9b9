"""The typed plan ops mirror the runtime's plan enums, variant by variant and field by field.

The runtime is asked, not its source read: its decoder refuses an unknown
variant or field naming the ones it expects, and ``check_plan`` accepts what
the lowering writes.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal, get_args, get_type_hints

import msgpack
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import academy_ml as aml
from academy_ml import _runtime
from academy_ml.engine import PLAN_VERSION, ops
from academy_ml.exceptions import PlanError


def verdict(op: dict[str, Any]) -> str:
    """Why the runtime refuses a plan of one node with ``op`` ("" when it accepts it)."""
    body = {"version": PLAN_VERSION, "nodes": [{"op": op, "inputs": []}], "outputs": []}
    try:
        _runtime.check_plan(msgpack.packb(body))
    except PlanError as exc:
        return str(exc)
    return ""


def refusal(op: dict[str, Any]) -> str:
    message = verdict(op)
    assert message, f"the runtime accepts {op}"
    return message


def expected(message: str) -> set[str]:
    """The names a serde refusal lists as expected (none for a variant without fields)."""
    if "there are no fields" in message:
        return set()
    _, _, names = message.partition("expected")
    assert names, message
    return set(re.findall(r"`([a-z0-9_]+)`", names))


def fields(cls: type, tag: str) -> set[str]:
    return set(get_type_hints(cls)) - {tag}


def literal_values(alias: Any) -> set[str]:
    return set(get_args(alias))


def test_every_op_kind_of_the_runtime_has_a_mirror_and_back() -> None:
    assert expected(refusal({"kind": "no_such_op"})) == set(ops.OPS)


def test_every_estimator_of_the_runtime_has_a_mirror_and_back() -> None:
    message = refusal({"kind": "fit", "estimator": {"name": "no_such_estimator"}})
    assert expected(message) == set(ops.ESTIMATORS)


def runtime_fields(tagged: dict[str, Any], wrap: Any) -> set[str]:
    """The fields the runtime's variant ``tagged`` names, asked by refusals.

    A variant without fields decodes from its tag alone (serde ignores extra
    fields there); one with fields refuses an unknown field listing its own.
    """
    if "cannot decode" not in verdict(wrap(tagged)):
        return set()
    message = refusal(wrap({**tagged, "no_such_field": 1}))
    assert "unknown field `no_such_field`" in message
    return expected(message)


@pytest.mark.parametrize("kind", sorted(ops.OPS))
def test_op_fields_match(kind: str) -> None:
    assert runtime_fields({"kind": kind}, lambda op: op) == fields(ops.OPS[kind], "kind")


@pytest.mark.parametrize("name", sorted(ops.ESTIMATORS))
def test_estimator_fields_match(name: str) -> None:
    found = runtime_fields({"name": name}, lambda spec: {"kind": "fit", "estimator": spec})
    assert found == fields(ops.ESTIMATORS[name], "name")


def _tree_fit(**fields: Any) -> dict[str, Any]:
    """A fit op of a decision tree, ``fields`` replacing its defaults."""
    spec = {
        "name": "decision_tree",
        "classifier": False,
        "criterion": "squared_error",
        "max_depth": None,
        "min_samples_split": {"count": 2},
        "min_samples_leaf": {"fraction": 0.1},
        "min_weight_fraction_leaf": 0.0,
        "max_features": "all",
        "max_leaf_nodes": None,
        "min_impurity_decrease": 0.0,
        "class_weight": "none",
        "random_state": 0,
    }
    return {"kind": "fit", "estimator": {**spec, **fields}}


def _forest_fit(**fields: Any) -> dict[str, Any]:
    """A fit op of a random forest, ``fields`` replacing its defaults."""
    tree = _tree_fit()["estimator"]
    del tree["name"]
    spec = {
        "name": "random_forest",
        "tree": tree,
        "n_estimators": 3,
        "bootstrap": True,
        "max_samples": None,
        "class_weight": "none",
    }
    return {"kind": "fit", "estimator": {**spec, **fields}}


@pytest.mark.parametrize(
    ("alias", "op"),
    [
        (ops.Metric, lambda v: {"kind": "score", "metric": v, "pos_label": 1.0}),
        (ops.Weights, lambda v: {"kind": "knn_predict", "k": 1, "weights": v, "classifier": True}),
        (
            ops.Strategy,
            lambda v: {
                "kind": "fit",
                "estimator": {"name": "simple_imputer", "strategy": v, "fill_value": 0.0},
            },
        ),
        (
            ops.ScoreFunc,
            lambda v: {
                "kind": "fit",
                "estimator": {"name": "select_k_best", "score_func": v, "k": 1},
            },
        ),
        (ops.TreeCriterion, lambda v: _tree_fit(criterion=v)),
        (ops.TreeClassWeight, lambda v: _tree_fit(class_weight=v)),
        (ops.ForestClassWeight, lambda v: _forest_fit(class_weight=v)),
    ],
    ids=[
        "metric",
        "weights",
        "strategy",
        "score_func",
        "tree_criterion",
        "tree_class_weight",
        "forest_class_weight",
    ],
)
def test_enumerated_values_match(alias: Any, op: Any) -> None:
    assert expected(refusal(op("no_such_value"))) == literal_values(alias)


def test_the_tags_are_literals_of_their_own_names() -> None:
    for kind, cls in ops.OPS.items():
        assert get_type_hints(cls)["kind"] == Literal[kind]
    for name, cls in ops.ESTIMATORS.items():
        assert get_type_hints(cls)["name"] == Literal[name]


def test_the_lowering_writes_every_op_and_estimator_and_the_runtime_reads_them(
    mixed_regression: Any, mixed_classification: Any
) -> None:
    numeric = ["age", "income", "ratio", "rooms"]
    categorical = ["color", "size"]
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    imputed = make_pipeline(columns, MinMaxScaler(), MaxAbsScaler())
    regression = [
        make_pipeline(imputed, PolynomialFeatures(2), PCA(3), Ridge()),
        make_pipeline(imputed, SelectKBest(f_regression, k=3), LinearRegression()),
        make_pipeline(imputed, KNeighborsRegressor(3)),
        make_pipeline(imputed, DecisionTreeRegressor(random_state=0, min_samples_leaf=0.1)),
        make_pipeline(
            ColumnTransformer(
                [
                    (
                        "cat",
                        make_pipeline(
                            SimpleImputer(strategy="most_frequent"),
                            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                        ),
                        categorical,
                    )
                ]
            ),
            DecisionTreeRegressor(random_state=0),
        ),
        make_pipeline(imputed, RandomForestRegressor(n_estimators=3, random_state=0)),
    ]
    classification = [
        make_pipeline(imputed, LogisticRegression()),
        make_pipeline(imputed, KNeighborsClassifier(3)),
        make_pipeline(
            imputed,
            DecisionTreeClassifier(random_state=0, max_features="sqrt", class_weight="balanced"),
        ),
        make_pipeline(
            imputed,
            RandomForestClassifier(
                n_estimators=3, max_samples=0.5, class_weight="balanced_subsample", random_state=0
            ),
        ),
    ]
    kinds: set[str] = set()
    names: set[str] = set()
    # Without the rewrites, linear and KNN models are fitted as estimators too.
    rewrites = [aml.Options(), aml.Options(share_gram=False, share_neighbors=False)]
    for (X, y, batch), options in itertools.product(
        ((*mixed_regression, regression), (*mixed_classification, classification)), rewrites
    ):
        plan = aml.compile(batch, cv=3, X=X, y=y, options=options)
        assert [e.ir.backends() for e in plan.entries if e.ir.tail or e.error] == []
        assert _runtime.check_plan(plan.to_bytes()) == len(plan.nodes)
        for node in plan.nodes:
            op = node["op"]
            kinds.add(op["kind"])
            if op["kind"] == "fit":
                names.add(op["estimator"]["name"])
    assert kinds == set(ops.OPS)
    assert names == set(ops.ESTIMATORS)

"""Plan operations as typed dicts: the Python mirror of the runtime's plan enums.

One ``TypedDict`` per variant of the Rust ``Op`` enum (runtime-rs/src/plan.rs,
tagged by ``kind``) and of the ``Estimator`` enum it carries (runtime-rs/src/
ops/mod.rs, tagged by ``name``), so mypy checks every field the lowering
writes and msgpack packs them as they are. TypedDicts rather than frozen
pydantic models: a batch lowers thousands of ops, and building one costs a
plain dict (measured ~0.3-1 us against ~5 us for a validated frozen model,
which would still have to be dumped to a dict for msgpack). The runtime
validates plan bytes itself; tests/unit/engine/ops_test.py checks that both
sides name the same variants and fields, asking the extension.
"""

from __future__ import annotations

from typing import Literal, TypedDict, get_args, get_type_hints

__all__ = [
    "ESTIMATORS",
    "OPS",
    "UNKEYED",
    "Apply",
    "Estimator",
    "Fit",
    "Gram",
    "Hstack",
    "KnnPredict",
    "Metric",
    "Neighbors",
    "Node",
    "Op",
    "Score",
    "ScoreFunc",
    "SelectCols",
    "Solve",
    "SourceX",
    "SourceY",
    "Strategy",
    "TakeRows",
    "Weights",
]

#: ``impute::Strategy``.
Strategy = Literal["mean", "median", "most_frequent", "constant"]
#: ``select::ScoreFunc``.
ScoreFunc = Literal["f_classif", "f_regression"]
#: ``knn::Weights``.
Weights = Literal["uniform", "distance"]
#: ``kernels::tree::Kind`` (``friedman_mse`` is ``squared_error``, ``log_loss`` is ``entropy``).
TreeCriterion = Literal["squared_error", "gini", "entropy"]
#: ``tree::ClassWeight``.
TreeClassWeight = Literal["none", "balanced"]
#: ``forest::ForestClassWeight``.
ForestClassWeight = Literal["none", "balanced", "balanced_subsample"]
#: ``tree::Size``: ``{"count": n}`` or ``{"fraction": f}``.
TreeSize = dict[Literal["count", "fraction"], int | float]
#: ``tree::MaxFeatures``: ``"all"``, ``"sqrt"``, ``"log2"``, or a ``TreeSize``.
TreeMaxFeatures = Literal["all", "sqrt", "log2"] | TreeSize
#: ``metrics::Metric``.
Metric = Literal[
    "r2",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "roc_auc",
    "neg_log_loss",
]


# Estimators (the ``estimator`` of a ``fit`` op).


class SimpleImputer(TypedDict):
    """Fills missing values (``fill_value`` is a category code on categorical columns)."""

    name: Literal["simple_imputer"]
    strategy: Strategy
    fill_value: float


class StandardScaler(TypedDict):
    """Centres and scales columns."""

    name: Literal["standard_scaler"]
    with_mean: bool
    with_std: bool


class MinMaxScaler(TypedDict):
    """Scales columns to ``[low, high]``."""

    name: Literal["min_max_scaler"]
    low: float
    high: float
    clip: bool


class MaxAbsScaler(TypedDict):
    """Scales columns by their largest magnitude."""

    name: Literal["max_abs_scaler"]


class OneHotEncoder(TypedDict):
    """One indicator column per category code."""

    name: Literal["one_hot_encoder"]


class OrdinalEncoder(TypedDict):
    """One integer code per category (categories in code order; codes on categorical columns).

    ``categories`` None learns them; ``unknown_value`` None refuses values
    that are not categories.
    """

    name: Literal["ordinal_encoder"]
    categories: list[list[float]] | None
    unknown_value: float | None
    encoded_missing_value: float


class PolynomialFeatures(TypedDict):
    """Products of columns up to ``degree`` (stateless: may be hoisted)."""

    name: Literal["polynomial_features"]
    degree: int
    interaction_only: bool
    include_bias: bool


class Pca(TypedDict):
    """Projection on the leading principal components."""

    name: Literal["pca"]
    n_components: int
    whiten: bool


class SelectKBest(TypedDict):
    """The ``k`` columns scoring best against the target."""

    name: Literal["select_k_best"]
    score_func: ScoreFunc
    k: int


class LinearRegression(TypedDict):
    """Least squares."""

    name: Literal["linear_regression"]
    fit_intercept: bool


class Ridge(TypedDict):
    """L2-penalised least squares."""

    name: Literal["ridge"]
    alpha: float
    fit_intercept: bool


class LogisticRegression(TypedDict):
    """L2-penalised logistic regression (``c`` is scikit-learn's ``C``)."""

    name: Literal["logistic_regression"]
    c: float
    fit_intercept: bool
    max_iter: int
    tol: float


class KNeighbors(TypedDict):
    """K nearest neighbours, as a classifier or a regressor."""

    name: Literal["k_neighbors"]
    n_neighbors: int
    weights: Weights
    classifier: bool


class TreeParams(TypedDict):
    """A CART tree grown like scikit-learn's ``splitter="best"`` (``tree::Params``)."""

    classifier: bool
    criterion: TreeCriterion
    max_depth: int | None
    min_samples_split: TreeSize
    min_samples_leaf: TreeSize
    min_weight_fraction_leaf: float
    max_features: TreeMaxFeatures
    max_leaf_nodes: int | None
    min_impurity_decrease: float
    class_weight: TreeClassWeight
    random_state: int


class DecisionTree(TreeParams):
    """A decision tree."""

    name: Literal["decision_tree"]


class RandomForest(TypedDict):
    """A random forest: ``tree`` is what every tree is given (``class_weight`` ``"none"``)."""

    name: Literal["random_forest"]
    tree: TreeParams
    n_estimators: int
    bootstrap: bool
    max_samples: TreeSize | None
    class_weight: ForestClassWeight


Estimator = (
    SimpleImputer
    | StandardScaler
    | MinMaxScaler
    | MaxAbsScaler
    | OneHotEncoder
    | OrdinalEncoder
    | PolynomialFeatures
    | Pca
    | SelectKBest
    | LinearRegression
    | Ridge
    | LogisticRegression
    | KNeighbors
    | DecisionTree
    | RandomForest
)


# Operations (the ``op`` of a plan node).


class SourceX(TypedDict):
    """The feature matrix of the dataset (no inputs)."""

    kind: Literal["source_x"]


class SourceY(TypedDict):
    """A named target vector of the dataset (no inputs)."""

    kind: Literal["source_y"]
    target: str


class TakeRows(TypedDict):
    """Rows picked by a named index array (a fold), ``[matrix or vector]``."""

    kind: Literal["take_rows"]
    index: str


class SelectCols(TypedDict):
    """Columns by position, ``[matrix]``."""

    kind: Literal["select_cols"]
    cols: list[int]


class Hstack(TypedDict):
    """Matrices side by side (a ColumnTransformer's output)."""

    kind: Literal["hstack"]


class Fit(TypedDict):
    """Learns a step from ``[X]`` or ``[X, y]``."""

    kind: Literal["fit"]
    estimator: Estimator


class Apply(TypedDict):
    """Applies a fitted step, ``[fitted, X]``."""

    kind: Literal["apply"]


class Gram(TypedDict):
    """Least-squares statistics shared by linear fits, ``[X, y]``."""

    kind: Literal["gram"]
    fit_intercept: bool


class Solve(TypedDict):
    """A Ridge (alpha > 0) or least-squares (alpha = 0) model, ``[gram]``."""

    kind: Literal["solve"]
    alpha: float


class Neighbors(TypedDict):
    """The ``k`` nearest training rows of each test row, ``[train X, test X]``."""

    kind: Literal["neighbors"]
    k: int


class KnnPredict(TypedDict):
    """A KNN prediction from the first ``k`` neighbours, ``[neighbors, train y]``."""

    kind: Literal["knn_predict"]
    k: int
    weights: Weights
    classifier: bool


class Score(TypedDict):
    """A scorer's value, ``[y_true, prediction]``."""

    kind: Literal["score"]
    metric: Metric
    pos_label: float


Op = (
    SourceX
    | SourceY
    | TakeRows
    | SelectCols
    | Hstack
    | Fit
    | Apply
    | Gram
    | Solve
    | Neighbors
    | KnnPredict
    | Score
)


class Node(TypedDict):
    """A plan node: its op, the ids of the nodes it reads, its content key."""

    op: Op
    inputs: list[int]
    key: str


def _by_tag(union: object, tag: str) -> dict[str, type]:
    return {get_args(get_type_hints(cls)[tag])[0]: cls for cls in get_args(union)}


#: Every op variant by its ``kind``.
OPS: dict[str, type] = _by_tag(Op, "kind")
#: Every estimator variant by its ``name``.
ESTIMATORS: dict[str, type] = _by_tag(Estimator, "name")

#: Fields left out of a node's content key: a neighbour search is shared by
#: every KNN variant on its matrices, and its ``k`` is set after lowering to
#: the largest ``k`` reading it.
UNKEYED: dict[str, frozenset[str]] = {"neighbors": frozenset({"k"})}

"""Translation of scikit-learn estimators into the pipeline IR.

Every step the runtime reproduces exactly becomes a :class:`NativeStep`; the
first step it does not (or a native step configured in a way it does not
reproduce) starts the foreign tail, which the Python backend runs. Nothing is
dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from academy_ml.engine.ir import Branch, ColumnStep, NativeStep, Params, PipelineIR, Step
from academy_ml.exceptions import UnsupportedStepError

__all__ = ["U64_MAX", "steps_of", "translate"]

#: Largest count the plan format carries (msgpack's unsigned 64-bit integer).
U64_MAX = 2**64 - 1


def translate(estimator: Any, *, native_model: bool = True) -> PipelineIR:
    """Splits a scikit-learn estimator into native prefix, model and foreign tail.

    Args:
        estimator: An estimator or ``Pipeline``.
        native_model: False when the scoring needs a response the runtime does
            not compute, so the final model must run in Python.

    Returns:
        The pipeline's IR.

    Raises:
        UnsupportedStepError: If ``estimator`` is not a scikit-learn estimator.
    """
    if not isinstance(estimator, BaseEstimator) or not hasattr(estimator, "fit"):
        raise UnsupportedStepError(
            f"expected a scikit-learn estimator or Pipeline, got {type(estimator).__name__}"
        )
    steps = steps_of(estimator)
    ir = PipelineIR(source=estimator, classifier=is_classifier(estimator))
    for i, (path, step) in enumerate(steps):
        if i == len(steps) - 1 and hasattr(step, "predict"):
            ir.model = _model(path, step) if native_model else None
            if ir.model is None:
                ir.tail = steps[i:]
            break
        native = _transformer(path, step)
        if native is None:
            ir.tail = steps[i:]
            break
        ir.prefix.append(native)
    return ir


def steps_of(estimator: Any) -> list[tuple[str, Any]]:
    """The estimator's steps as (path, estimator), nested pipelines inlined."""
    return _flatten(estimator, type(estimator).__name__.lower())


def _flatten(estimator: Any, path: str) -> list[tuple[str, Any]]:
    """Pipeline steps as (path, estimator), nested pipelines inlined."""
    if not isinstance(estimator, Pipeline):
        return [(path, estimator)]
    steps: list[tuple[str, Any]] = []
    prefix = "" if path == "pipeline" else f"{path}__"
    for name, step in estimator.steps:
        if step is None or step == "passthrough":
            continue
        steps.extend(_flatten(step, f"{prefix}{name}"))
    return steps


def _transformer(path: str, step: Any) -> Step | None:
    """The native form of a transformer, or None when it is foreign."""
    if isinstance(step, ColumnTransformer):
        return _column_transformer(path, step)
    spec = _transformer_spec(step)
    return None if spec is None else NativeStep(path, type(step).__name__, spec)


def _transformer_spec(step: Any) -> Params | None:
    for kind, build in _TRANSFORMERS:
        if type(step) is kind:
            return build(step)
    return None


def _imputer(s: SimpleImputer) -> Params | None:
    missing = s.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)):
        return None
    if s.add_indicator or s.keep_empty_features or callable(s.strategy):
        return None
    if s.strategy not in ("mean", "median", "most_frequent", "constant"):
        return None
    fill = s.fill_value
    if not (fill is None or isinstance(fill, str) or _float(fill) is not None):
        return None
    return {"name": "simple_imputer", "strategy": s.strategy, "fill_value": fill}


def _standard(s: StandardScaler) -> Params | None:
    return {"name": "standard_scaler", "with_mean": bool(s.with_mean), "with_std": bool(s.with_std)}


def _min_max(s: MinMaxScaler) -> Params | None:
    low, high = (_float(v) for v in s.feature_range)
    if low is None or high is None:
        return None
    return {"name": "min_max_scaler", "low": low, "high": high, "clip": bool(s.clip)}


def _max_abs(s: MaxAbsScaler) -> Params | None:
    return {"name": "max_abs_scaler"}


def _one_hot(s: OneHotEncoder) -> Params | None:
    plain = (
        s.handle_unknown == "ignore"
        and isinstance(s.categories, str)
        and s.categories == "auto"
        and s.drop is None
        and s.min_frequency is None
        and s.max_categories is None
    )
    return {"name": "one_hot_encoder"} if plain else None


def _ordinal(s: OrdinalEncoder) -> Params | None:
    """Float64 codes without infrequent grouping; the lowering reads explicit categories.

    Values scikit-learn would refuse (an ``unknown_value`` that is neither an
    integer nor NaN, or set with ``handle_unknown="error"``) stay foreign, so
    it names them itself.
    """
    try:
        float64 = np.dtype(s.dtype) == np.float64
    except TypeError:
        return None
    if not float64 or s.min_frequency is not None or s.max_categories is not None:
        return None
    unknown: float | None = None
    if s.handle_unknown == "use_encoded_value":
        unknown = _code(s.unknown_value)
        if unknown is None:
            return None
    elif s.handle_unknown != "error" or s.unknown_value is not None:
        return None
    missing = s.encoded_missing_value
    missing_code = float(missing) if isinstance(missing, float) else _code(missing)
    if missing_code is None:
        return None
    categories: Any = s.categories
    if isinstance(categories, str):
        if categories != "auto":
            return None
    elif isinstance(categories, list) and not any(isinstance(c, str) for c in categories):
        try:
            categories = [[_plain(v) for v in column] for column in categories]
        except TypeError:
            return None
    else:
        return None
    return {
        "name": "ordinal_encoder",
        "categories": categories,
        "unknown_value": unknown,
        "encoded_missing_value": missing_code,
    }


def _code(value: Any) -> float | None:
    """An integer code a float carries exactly, or NaN, else None."""
    if isinstance(value, float) and math.isnan(value):
        return math.nan
    if not isinstance(value, Integral) or isinstance(value, bool) or abs(int(value)) > 2**53:
        return None
    return float(value)


def _plain(value: Any) -> Any:
    """A category as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def _poly(s: PolynomialFeatures) -> Params | None:
    if not (isinstance(s.degree, Integral) and s.degree == 2) or s.order != "C":
        return None
    return {
        "name": "polynomial_features",
        "degree": 2,
        "interaction_only": bool(s.interaction_only),
        "include_bias": bool(s.include_bias),
    }


def _pca(s: PCA) -> Params | None:
    n = _count(s.n_components)
    if n is None:
        return None
    return {"name": "pca", "n_components": n, "whiten": bool(s.whiten)}


def _select(s: SelectKBest) -> Params | None:
    funcs: dict[Callable[..., Any], str] = {f_regression: "f_regression", f_classif: "f_classif"}
    func = funcs.get(s.score_func)
    k = _count(s.k)
    if func is None or k is None:
        return None
    return {"name": "select_k_best", "score_func": func, "k": k}


_TRANSFORMERS: list[tuple[type, Callable[[Any], Params | None]]] = [
    (SimpleImputer, _imputer),
    (StandardScaler, _standard),
    (MinMaxScaler, _min_max),
    (MaxAbsScaler, _max_abs),
    (OneHotEncoder, _one_hot),
    (OrdinalEncoder, _ordinal),
    (PolynomialFeatures, _poly),
    (PCA, _pca),
    (SelectKBest, _select),
]


def _column_transformer(path: str, ct: ColumnTransformer) -> ColumnStep | None:
    if ct.transformer_weights is not None or ct.remainder not in ("drop", "passthrough"):
        return None
    branches: list[Branch] = []
    dropped: list[Any] = []
    for name, trans, columns in ct.transformers:
        branch_path = f"{path}__{name}"
        if isinstance(trans, str) and trans == "drop":
            dropped.append(columns)
            continue
        steps: list[NativeStep] = []
        if not (isinstance(trans, str) and trans == "passthrough"):
            for step_path, step in _flatten(trans, branch_path):
                native = _transformer(step_path, step)
                if not isinstance(native, NativeStep):
                    return None
                steps.append(native)
        branches.append(Branch(branch_path, columns, tuple(steps)))
    return ColumnStep(
        path,
        tuple(branches),
        passthrough_rest=ct.remainder == "passthrough",
        dropped=tuple(dropped),
    )


def _model(path: str, model: Any) -> NativeStep | None:
    label = type(model).__name__
    spec: Params | None = None
    if type(model) is LinearRegression and not model.positive:
        spec = {"name": "linear_regression", "fit_intercept": bool(model.fit_intercept)}
    elif type(model) is Ridge and _float(model.alpha) is not None and not model.positive:
        if model.solver in ("auto", "cholesky", "svd"):
            spec = {
                "name": "ridge",
                "alpha": _float(model.alpha),
                "fit_intercept": bool(model.fit_intercept),
            }
    elif type(model) is LogisticRegression:
        spec = _logistic(model)
    elif type(model) in (KNeighborsClassifier, KNeighborsRegressor):
        spec = _knn(model)
    elif type(model) in (DecisionTreeClassifier, DecisionTreeRegressor):
        spec = _tree(model)
    elif type(model) in (RandomForestClassifier, RandomForestRegressor):
        spec = _forest(model)
    return None if spec is None else NativeStep(path, label, spec)


def _logistic(m: LogisticRegression) -> Params | None:
    l2 = m.penalty in ("l2", "deprecated") and m.l1_ratio in (0, 0.0, None)
    smooth_solver = m.solver in ("lbfgs", "newton-cg", "newton-cholesky")
    c, tol = _float(m.C), _float(m.tol)
    if not (l2 and smooth_solver and m.class_weight is None and c is not None):
        return None
    if not math.isfinite(c) or not _int(m.max_iter) or tol is None:
        return None
    return {
        "name": "logistic_regression",
        "c": c,
        "fit_intercept": bool(m.fit_intercept),
        # Saturating is exact: no solver run reaches 2**64 iterations.
        "max_iter": min(int(m.max_iter), U64_MAX),
        "tol": tol,
    }


def _knn(m: KNeighborsClassifier | KNeighborsRegressor) -> Params | None:
    euclidean = m.metric == "euclidean" or (m.metric == "minkowski" and m.p == 2)
    if not euclidean or m.metric_params or m.weights not in ("uniform", "distance"):
        return None
    n_neighbors = _count(m.n_neighbors)
    if n_neighbors is None:
        return None
    return {
        "name": "k_neighbors",
        "n_neighbors": n_neighbors,
        "weights": m.weights,
        "classifier": isinstance(m, KNeighborsClassifier),
    }


#: Tree criteria the runtime grows, by estimator, as the runtime names them.
_TREE_CRITERIA = {
    False: {"squared_error": "squared_error", "friedman_mse": "squared_error"},
    True: {"gini": "gini", "entropy": "entropy", "log_loss": "entropy"},
}


def _tree(m: DecisionTreeClassifier | DecisionTreeRegressor) -> Params | None:
    """A best-split tree with an integer seed; anything else stays foreign.

    Values scikit-learn would refuse stay foreign too, so it names them itself.
    """
    class_weight = getattr(m, "class_weight", None)
    if m.splitter != "best" or class_weight not in (None, "balanced"):
        return None
    params = _tree_params(m, isinstance(m, DecisionTreeClassifier))
    if params is None:
        return None
    return {
        "name": "decision_tree",
        **params,
        "class_weight": "none" if class_weight is None else "balanced",
    }


#: Forest parameters the runtime reproduces, beside the trees' own.
_FOREST_PLAIN = {"oob_score": False, "warm_start": False}


def _forest(m: RandomForestClassifier | RandomForestRegressor) -> Params | None:
    """A random forest with an integer seed; out-of-bag scores and the rest stay foreign.

    ``n_jobs`` and ``verbose`` do not change what scikit-learn computes.
    """
    if any(getattr(m, key) is not value for key, value in _FOREST_PLAIN.items()):
        return None
    class_weight = getattr(m, "class_weight", None)
    if class_weight not in (None, "balanced", "balanced_subsample"):
        return None
    tree = _tree_params(m, isinstance(m, RandomForestClassifier))
    n_estimators, max_samples = _count(m.n_estimators), m.max_samples
    if tree is None or not isinstance(m.bootstrap, bool) or not n_estimators:
        return None
    if max_samples is not None:
        if not m.bootstrap or isinstance(max_samples, bool):
            return None
        count, fraction = _count(max_samples), _float(max_samples)
        # A count past 2**32 draws takes scikit-learn as long; it keeps those.
        if count is not None and 1 <= count < 2**32:
            max_samples = {"count": count}
        elif count is None and fraction is not None and 0.0 < fraction < math.inf:
            max_samples = {"fraction": fraction}
        else:
            return None
    return {
        "name": "random_forest",
        "tree": {**tree, "class_weight": "none"},
        "n_estimators": n_estimators,
        "bootstrap": m.bootstrap,
        "max_samples": max_samples,
        "class_weight": "none" if class_weight is None else class_weight,
    }


def _tree_params(m: Any, classifier: bool) -> Params | None:
    """The parameters trees and forests share, as ``tree::Params`` names them.

    ``class_weight`` is left to the caller; None when the runtime does not grow
    the tree exactly.
    """
    criterion = (
        _TREE_CRITERIA[classifier].get(m.criterion) if isinstance(m.criterion, str) else None
    )
    seed = m.random_state
    plain = _float(m.ccp_alpha) == 0.0 and m.monotonic_cst is None
    if criterion is None or not plain or not (_int(seed) and int(seed) < 2**32):
        return None
    split = _tree_size(m.min_samples_split, min_count=2)
    leaf = _tree_size(m.min_samples_leaf, min_count=1, below_one=True)
    features = _max_features(m.max_features)
    weight, decrease = _float(m.min_weight_fraction_leaf), _float(m.min_impurity_decrease)
    depth, leaves = m.max_depth, m.max_leaf_nodes
    if split is None or leaf is None or features is None or weight is None or decrease is None:
        return None
    if not (0.0 <= weight <= 0.5 and decrease >= 0.0):
        return None
    if not (depth is None or (_count(depth) or 0) >= 1):
        return None
    if not (leaves is None or (_count(leaves) or 0) >= 2):
        return None
    return {
        "classifier": classifier,
        "criterion": criterion,
        "max_depth": None if depth is None else int(depth),
        "min_samples_split": split,
        "min_samples_leaf": leaf,
        "min_weight_fraction_leaf": weight,
        "max_features": features,
        "max_leaf_nodes": None if leaves is None else int(leaves),
        "min_impurity_decrease": decrease,
        "random_state": int(seed),
    }


def _tree_size(value: Any, *, min_count: int, below_one: bool = False) -> dict[str, Any] | None:
    """A count (at least ``min_count``) or a fraction in (0, 1] ((0, 1) if ``below_one``)."""
    count = _count(value)
    if count is not None:
        return {"count": count} if count >= min_count else None
    fraction = _float(value)
    if isinstance(value, Integral) or fraction is None or not 0.0 < fraction <= 1.0:
        return None
    if below_one and fraction == 1.0:
        return None
    return {"fraction": fraction}


def _max_features(value: Any) -> Any:
    """``max_features`` as the runtime reads it, else None."""
    if value is None:
        return "all"
    if isinstance(value, str):
        return value if value in ("sqrt", "log2") else None
    return _tree_size(value, min_count=1)


def _int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 0


def _count(value: Any) -> int | None:
    """A count the plan can carry, else None.

    A larger count makes its step foreign, so scikit-learn accepts or refuses
    it itself, naming the number it was given.
    """
    return int(value) if _int(value) and int(value) <= U64_MAX else None


def _float(value: Any) -> float | None:
    """A real parameter as a float, else None (not real, or an integer too large for a float)."""
    if not isinstance(value, Real) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return None

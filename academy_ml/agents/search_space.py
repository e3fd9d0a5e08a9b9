"""A deterministic stand-in for a generation agent proposing pipelines.

Two rounds, the way an agent searches:

* :func:`explore` (first round): each new candidate copies an earlier one and
  mutates one or two choices (imputer, scaler, feature step, model family,
  hyperparameters), so a batch shares prefixes the way an agent's proposals
  do.
* :func:`exploit` (next round): children of the best first-round candidates
  that mostly keep their preprocessing (imputer, scaler, feature step) and
  mutate the model family and hyperparameters; a few change a prefix step.
  Most of the second batch's prefixes were already computed by the first.

Candidates are canonical (a LinearRegression has no alpha, a Ridge no
neighbour count), so distinct candidates are distinct pipelines. Two
combinations are never proposed: KNN without a PCA / SelectKBest step first
(a neighbour search over every encoded column would dominate any batch it
is in) and polynomial features without a scaler (squares of unscaled
columns make the design too ill-conditioned for least squares).
The polynomial step expands only ``feature_k`` selected columns
(SelectKBest, then degree-2 PolynomialFeatures), so its width stays small.

It comes with a synthetic table to explore on (missing values, categorical
columns); the benchmark uses real flight data (``benchmarks/flights.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

from academy_ml.exceptions import GeneratorExhausted

__all__ = [
    "Candidate",
    "exploit",
    "explore",
    "explore_candidates",
    "explored_batch",
    "synthetic_table",
]

Task = Literal["regression", "classification"]
T = TypeVar("T")

_IMPUTERS = ("mean", "median", "most_frequent")
_SCALERS = ("standard", "minmax", "maxabs", "none")
_FEATURES = ("none", "pca", "select", "poly")
_REGRESSORS = ("ridge", "linear", "knn")
_CLASSIFIERS = ("logistic", "knn")
_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
_FINE_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
_NEIGHBORS = (5, 10, 15, 25)
_PREFIX_GENES = (0, 1, 2)
_MODEL_GENES = (3, 4, 5)
_ALL_GENES = _PREFIX_GENES + _MODEL_GENES
#: Proposals in a row that found nothing new after which a space counts as used up.
_MAX_MISSES = 10_000


@dataclass(frozen=True)
class Candidate:
    """One point of the search space.

    Attributes:
        imputer: SimpleImputer strategy for the numeric columns.
        scaler: ``standard``, ``minmax``, ``maxabs`` or ``none``.
        feature: ``none``, ``pca``, ``select`` (SelectKBest) or ``poly``
            (SelectKBest, then degree-2 PolynomialFeatures).
        feature_k: Components or selected columns of the feature step.
        model: ``ridge``, ``linear`` or ``knn`` (regression), ``logistic`` or
            ``knn`` (classification).
        alpha: Penalty of Ridge (LogisticRegression gets ``C = 1 / alpha``).
        neighbors: KNN neighbour count.
        weights: KNN weighting, ``uniform`` or ``distance``.
    """

    imputer: str = "mean"
    scaler: str = "standard"
    feature: str = "none"
    feature_k: int = 8
    model: str = "ridge"
    alpha: float = 1.0
    neighbors: int = 15
    weights: str = "uniform"

    @property
    def prefix(self) -> tuple[str, str, str, int]:
        """The preprocessing choices: imputer, scaler, feature step and its size."""
        return (self.imputer, self.scaler, self.feature, self.feature_k)

    def build(self, numeric: list[str], categorical: list[str], task: Task) -> Pipeline:
        """The scikit-learn pipeline this candidate stands for."""
        num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=self.imputer))]
        scaler = {
            "standard": StandardScaler(),
            "minmax": MinMaxScaler(),
            "maxabs": MaxAbsScaler(),
        }.get(self.scaler)
        if scaler is not None:
            num_steps.append(("scale", scaler))
        cat = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        pre = ColumnTransformer([("num", Pipeline(num_steps), numeric), ("cat", cat, categorical)])
        steps: list[tuple[str, Any]] = [("pre", pre)]
        score_func = f_classif if task == "classification" else f_regression
        if self.feature == "pca":
            steps.append(("features", PCA(n_components=self.feature_k)))
        elif self.feature == "select":
            steps.append(("features", SelectKBest(score_func, k=self.feature_k)))
        elif self.feature == "poly":
            select = SelectKBest(score_func, k=self.feature_k)
            poly = Pipeline([("select", select), ("poly", PolynomialFeatures(degree=2))])
            steps.append(("features", poly))
        steps.append(("model", self._model(task)))
        return Pipeline(steps)

    def _model(self, task: Task) -> Any:
        if self.model == "knn":
            knn = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
            return knn(n_neighbors=self.neighbors, weights=self.weights)
        if task == "classification":
            return LogisticRegression(C=1.0 / self.alpha, max_iter=1000)
        if self.model == "linear":
            return LinearRegression()
        return Ridge(alpha=self.alpha)


def explore_candidates(
    n: int,
    *,
    task: Task = "regression",
    seed: int = 0,
    max_k: int = 8,
    models: Sequence[str] | None = None,
) -> list[Candidate]:
    """``n`` distinct candidates proposed the way an exploring agent proposes them.

    Args:
        n: How many candidates.
        task: Regression or classification.
        seed: Makes the exploration reproducible.
        max_k: Largest PCA / SelectKBest size (keep below the feature count).
        models: Model families to propose (the first is the starting point);
            None means all of the task's: ridge, linear and knn for
            regression, logistic and knn for classification.

    Raises:
        ValueError: If ``models`` names an unknown family.
        GeneratorExhausted: If the search space runs out before ``n``
            candidates (``partial`` holds the ones found).
    """
    rng = np.random.default_rng(seed)
    space = _Space(_models(task, models), max_k, _ALPHAS)
    first = Candidate(model=space.models[0])

    def child(pool: list[Candidate]) -> Candidate:
        return _mutate_times(pool[int(rng.integers(len(pool)))], rng, space, _ALL_GENES)

    try:
        return [first, *_grow([first], n - 1, child)][: max(n, 0)]
    except GeneratorExhausted as exhausted:
        found = [first, *exhausted.partial]
        message = f"search space exhausted after {len(found)} of {n} candidates"
        raise GeneratorExhausted(message, found) from None


def explore(
    n: int,
    numeric: list[str],
    categorical: list[str],
    *,
    task: Task = "regression",
    seed: int = 0,
    max_k: int = 8,
    models: Sequence[str] | None = None,
) -> list[Pipeline]:
    """:func:`explore_candidates` built into pipelines over these columns.

    Args:
        n: How many pipelines.
        numeric: Numeric column names.
        categorical: Categorical column names.
        task: Regression or classification.
        seed: As for :func:`explore_candidates`.
        max_k: As for :func:`explore_candidates`.
        models: As for :func:`explore_candidates`.
    """
    candidates = explore_candidates(n, task=task, seed=seed, max_k=max_k, models=models)
    return [c.build(numeric, categorical, task) for c in candidates]


def exploit(
    previous: Sequence[Candidate],
    n: int,
    *,
    scores: Sequence[float] | None = None,
    seed: int = 0,
    task: Task = "regression",
    max_k: int = 8,
    models: Sequence[str] | None = None,
    elite: float = 0.25,
    prefix_rate: float = 0.15,
) -> list[Candidate]:
    """An agent's next round: ``n`` new candidates bred from the best of ``previous``.

    Every child copies one of the best ``elite`` fraction of ``previous``.
    ``round(prefix_rate * n)`` children change one preprocessing choice; the
    others keep the parent's preprocessing and change its model family or
    hyperparameters (one or two changes, with a finer penalty grid than the
    first round). No child repeats a previous candidate. When the parents'
    model choices run out, the remaining children change a preprocessing
    choice instead.

    Args:
        previous: The earlier round's candidates.
        n: How many new candidates.
        scores: One score per previous candidate, higher is better (NaN for a
            failed one); None treats them all as equally good.
        seed: Makes the round reproducible.
        task: Regression or classification.
        max_k: Largest PCA / SelectKBest size.
        models: Model families to propose; None means all of the task's.
        elite: Fraction of ``previous`` (at least one) that parents children.
        prefix_rate: Fraction of children that change their preprocessing.

    Raises:
        ValueError: If ``previous`` is empty, ``scores`` does not match it, or
            ``models`` names an unknown family.
        GeneratorExhausted: If the search space around the parents runs out
            before ``n`` children (``partial`` holds the ones found).
    """
    if not previous:
        raise ValueError("exploit needs at least one previous candidate")
    parents = list(previous)
    if scores is not None:
        if len(scores) != len(parents):
            raise ValueError(f"{len(scores)} scores for {len(parents)} previous candidates")
        ranked = [math.inf if math.isnan(s) else -s for s in scores]
        parents = [parents[i] for i in sorted(range(len(parents)), key=ranked.__getitem__)]
    parents = parents[: max(1, math.ceil(elite * len(parents)))]
    rng = np.random.default_rng(seed)
    space = _Space(_models(task, models), max_k, _FINE_ALPHAS)

    def refine(_: list[Candidate]) -> Candidate:
        parent = parents[int(rng.integers(len(parents)))]
        return _mutate_times(parent, rng, space, _MODEL_GENES)

    def reprocess(_: list[Candidate]) -> Candidate:
        return _mutate(parents[int(rng.integers(len(parents)))], rng, space, _PREFIX_GENES)

    n_prefix = round(prefix_rate * n)
    try:
        refined = _grow(previous, n - n_prefix, refine)
    except GeneratorExhausted as exhausted:
        refined = exhausted.partial
    try:
        return refined + _grow([*previous, *refined], n - len(refined), reprocess)
    except GeneratorExhausted as exhausted:
        found = refined + exhausted.partial
        message = (
            f"search space around {len(parents)} parents exhausted "
            f"after {len(found)} of {n} new candidates"
        )
        raise GeneratorExhausted(message, found) from None


@dataclass(frozen=True)
class _Space:
    """What mutations pick from."""

    models: tuple[str, ...]
    max_k: int
    alphas: tuple[float, ...]


def _models(task: Task, models: Sequence[str] | None) -> tuple[str, ...]:
    known = _CLASSIFIERS if task == "classification" else _REGRESSORS
    if models is None:
        return known
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise ValueError(f"models must be a non-empty subset of {known} for {task}: {models}")
    return tuple(models)


def _grow(
    known: Sequence[Candidate],
    n: int,
    propose: Callable[[list[Candidate]], Candidate],
) -> list[Candidate]:
    """``n`` new valid candidates, distinct and none of them in ``known``.

    ``propose`` gets every candidate so far (``known``, then the new ones).

    Raises:
        GeneratorExhausted: If proposals keep repeating (the space is used up);
            ``partial`` holds the new candidates found.
    """
    pool = list(known)
    seen = set(pool)
    new: list[Candidate] = []
    attempts = misses = 0
    while len(new) < n:
        attempts += 1
        misses += 1
        if attempts > 1000 * n or misses > _MAX_MISSES:
            raise GeneratorExhausted(
                f"search space exhausted after {len(new)} of {n} new candidates", new
            )
        child = _canonical(propose(pool))
        if _valid(child) and child not in seen:
            misses = 0
            seen.add(child)
            pool.append(child)
            new.append(child)
    return new


def _mutate_times(
    c: Candidate, rng: np.random.Generator, space: _Space, genes: tuple[int, ...]
) -> Candidate:
    for _ in range(int(rng.integers(1, 3))):
        c = _mutate(c, rng, space, genes)
    return c


def _mutate(
    c: Candidate, rng: np.random.Generator, space: _Space, genes: tuple[int, ...]
) -> Candidate:
    gene = genes[int(rng.integers(len(genes)))]

    def pick(options: tuple[T, ...]) -> T:
        return options[int(rng.integers(len(options)))]

    if gene == 0:
        return replace(c, imputer=pick(_IMPUTERS))
    if gene == 1:
        return replace(c, scaler=pick(_SCALERS))
    if gene == 2:
        k = int(rng.integers(2, space.max_k + 1))
        return replace(c, feature=pick(_FEATURES), feature_k=k)
    if gene == 3:
        return replace(c, model=pick(space.models))
    if gene == 4:
        return replace(c, alpha=float(pick(space.alphas)))
    return replace(c, neighbors=int(pick(_NEIGHBORS)), weights=pick(("uniform", "distance")))


def _canonical(c: Candidate) -> Candidate:
    """Resets the fields the candidate's pipeline does not use to their defaults."""
    default = Candidate()
    if c.feature == "none":
        c = replace(c, feature_k=default.feature_k)
    if c.model != "knn":
        c = replace(c, neighbors=default.neighbors, weights=default.weights)
    if c.model in ("knn", "linear"):
        c = replace(c, alpha=default.alpha)
    return c


def _valid(c: Candidate) -> bool:
    """Whether the agent would propose it (see the module docstring)."""
    if c.model == "knn" and c.feature not in ("pca", "select"):
        return False
    return not (c.feature == "poly" and c.scaler == "none")


def synthetic_table(
    n_rows: int,
    n_numeric: int = 16,
    n_categorical: int = 2,
    *,
    task: Task = "regression",
    missing: float = 0.05,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """A table with correlated numeric and categorical columns.

    Both kinds have missing values, and the target depends on both.
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 4))
    mixing = rng.normal(size=(4, n_numeric))
    numeric = latent @ mixing + 0.5 * rng.normal(size=(n_rows, n_numeric))
    frame = pd.DataFrame(numeric, columns=[f"x{j}" for j in range(n_numeric)])
    effect = np.zeros(n_rows)
    for j in range(n_categorical):
        levels = np.array([f"c{j}_{k}" for k in range(4 + j)])
        codes = rng.integers(len(levels), size=n_rows)
        effect += rng.normal(size=len(levels))[codes]
        frame[f"cat{j}"] = pd.Series(levels[codes], dtype=object)
    signal = latent @ rng.normal(size=4) + 0.3 * latent[:, 0] ** 2 + effect
    y = signal + 0.5 * rng.normal(size=n_rows)
    for col in frame.columns:
        frame.loc[rng.random(n_rows) < missing, col] = np.nan
    if task == "classification":
        return frame, (y > np.median(y)).astype(np.int64)
    return frame, y


def explored_batch(
    n_pipelines: int, n_rows: int, *, n_numeric: int = 16, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray[Any, Any], list[Pipeline]]:
    """A synthetic regression table and ``n_pipelines`` explored over it."""
    X, y = synthetic_table(n_rows, n_numeric=n_numeric, seed=seed)
    numeric = [c for c in X.columns if c.startswith("x")]
    categorical = [c for c in X.columns if c.startswith("cat")]
    return X, y, explore(n_pipelines, numeric, categorical, seed=seed)

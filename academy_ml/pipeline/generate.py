"""A deterministic stand-in for a generation agent exploring pipelines.

It comes with a synthetic table to explore on (missing values, categorical
columns).

Each new candidate copies an earlier one and mutates one or two choices
(imputer, scaler, feature step, model family, hyperparameters), so a batch
shares prefixes the way an agent's proposals do.
"""

from __future__ import annotations

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

__all__ = ["Candidate", "explore", "explored_batch", "synthetic_table"]

Task = Literal["regression", "classification"]
T = TypeVar("T")

_IMPUTERS = ("mean", "median", "most_frequent")
_SCALERS = ("standard", "minmax", "maxabs", "none")
_FEATURES = ("none", "pca", "select", "poly")
_REGRESSORS = ("ridge", "linear", "knn")
_CLASSIFIERS = ("logistic", "knn")


@dataclass(frozen=True)
class Candidate:
    """One point of the search space."""

    imputer: str = "mean"
    scaler: str = "standard"
    feature: str = "none"
    feature_k: int = 8
    model: str = "ridge"
    alpha: float = 1.0
    neighbors: int = 15
    weights: str = "uniform"

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
        feature = {
            "pca": PCA(n_components=self.feature_k),
            "select": SelectKBest(score_func, k=self.feature_k),
            "poly": PolynomialFeatures(degree=2),
        }.get(self.feature)
        if feature is not None:
            steps.append(("features", feature))
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


def explore(
    n: int,
    numeric: list[str],
    categorical: list[str],
    *,
    task: Task = "regression",
    seed: int = 0,
    max_k: int = 8,
) -> list[Pipeline]:
    """``n`` pipelines proposed the way an exploring agent proposes them.

    Args:
        n: How many pipelines.
        numeric: Numeric column names.
        categorical: Categorical column names.
        task: Regression or classification.
        seed: Makes the exploration reproducible.
        max_k: Largest PCA / SelectKBest size (keep below the feature count).
    """
    rng = np.random.default_rng(seed)
    models = _CLASSIFIERS if task == "classification" else _REGRESSORS
    seen: list[Candidate] = [Candidate(model=models[0])]
    keys = {seen[0]}
    while len(seen) < n:
        parent = seen[int(rng.integers(len(seen)))]
        child = parent
        for _ in range(int(rng.integers(1, 3))):
            child = _mutate(child, rng, models, max_k)
        if child not in keys:
            keys.add(child)
            seen.append(child)
    return [c.build(numeric, categorical, task) for c in seen[:n]]


def _mutate(
    c: Candidate, rng: np.random.Generator, models: tuple[str, ...], max_k: int
) -> Candidate:
    gene = int(rng.integers(6))

    def pick(options: tuple[T, ...]) -> T:
        return options[int(rng.integers(len(options)))]

    if gene == 0:
        return replace(c, imputer=pick(_IMPUTERS))
    if gene == 1:
        return replace(c, scaler=pick(_SCALERS))
    if gene == 2:
        return replace(c, feature=pick(_FEATURES), feature_k=int(rng.integers(2, max_k + 1)))
    if gene == 3:
        return replace(c, model=pick(models))
    if gene == 4:
        return replace(c, alpha=float(pick((0.01, 0.1, 1.0, 10.0, 100.0))))
    return replace(c, neighbors=int(pick((5, 10, 15, 25))), weights=pick(("uniform", "distance")))


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

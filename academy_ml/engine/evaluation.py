"""``evaluate``: cross-validated scores for a batch of pipelines.

They are computed as one deduplicated plan on the Rust runtime, plus the
Python backend for foreign steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from academy_ml.engine.cache import Cache
from academy_ml.engine.lower import Options
from academy_ml.engine.plan import compile_batch
from academy_ml.engine.results import PipelineResult
from academy_ml.engine.run import check_run_arguments, run
from academy_ml.engine.scoring import check_scoring

__all__ = ["evaluate"]


def evaluate(
    pipelines: Iterable[Any],
    X: Any,
    y: Any,
    cv: Any = 5,
    scoring: str | None = None,
    cache: Cache | None = None,
    threads: int | None = None,
    *,
    options: Options | None = None,
) -> list[PipelineResult]:
    """Cross-validates every pipeline, as ``cross_val_score`` would, in one plan.

    Args:
        pipelines: scikit-learn estimators or Pipelines.
        X: Features: numpy array, pandas DataFrame or pyarrow Table.
        y: 1-D target.
        cv: Number of folds (StratifiedKFold for classifiers, KFold otherwise,
            no shuffle) or a scikit-learn splitter.
        scoring: A scikit-learn scoring name; None uses each estimator's
            default (accuracy for classifiers, r2 for regressors).
        cache: A node-local :class:`academy_ml.Cache`: intermediates (and
            scores) computed before are read instead of recomputed, and new
            ones are stored.
        threads: Worker threads for the runtime (default, and at most: the
            cores available to this process).
        options: Compiler switches (for ablations).

    Returns:
        One result per pipeline, in order. A failing pipeline carries its own
        ``error``; the others still have scores.

    Raises:
        ValueError: Before any work, for an unknown scoring name, empty X, a
            length mismatch between X and y, or an invalid ``threads``
            (:class:`~academy_ml.exceptions.ParameterError` when it exceeds
            the cores available).
        TypeError: If ``cache`` is not an :class:`academy_ml.Cache`.
    """
    if scoring is not None:
        check_scoring(scoring)
    check_run_arguments(threads, cache)
    batch = list(pipelines)
    if not batch:
        return []
    plan = compile_batch(batch, cv, X=X, y=y, scoring=scoring, options=options)
    return run(plan, threads, cache).results

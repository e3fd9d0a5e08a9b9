"""``evaluate``: cross-validated scores for a batch of pipelines.

They are computed as one deduplicated plan on the Rust runtime, plus the
Python backend for foreign steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing

from academy_ml import _runtime
from academy_ml.pipeline.fallback import StepFailure, fit_and_score
from academy_ml.pipeline.lower import Options
from academy_ml.pipeline.plan import Entry, Plan, compile_batch
from academy_ml.pipeline.results import PipelineResult
from academy_ml.pipeline.scoring import check_scoring

__all__ = ["evaluate", "run_plan"]


def evaluate(
    pipelines: Iterable[Any],
    X: Any,
    y: Any,
    cv: Any = 5,
    scoring: str | None = None,
    cache: None = None,
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
        cache: Reserved for the node-local intermediate cache; must be None.
        threads: Worker threads for the runtime (default: all cores).
        options: Compiler switches (for ablations).

    Returns:
        One result per pipeline, in order. A failing pipeline carries its own
        ``error``; the others still have scores.

    Raises:
        ValueError: Before any work, for an unknown scoring name, empty X, a
            length mismatch between X and y, or an invalid ``threads``.
        TypeError: If ``cache`` is given.
    """
    if scoring is not None:
        check_scoring(scoring)
    if cache is not None:
        raise TypeError("cache must be None: the intermediate cache is not available yet")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    batch = list(pipelines)
    if not batch:
        return []
    plan = compile_batch(batch, cv, X=X, y=y, scoring=scoring, options=options)
    outputs = run_plan(plan, threads) if plan.outputs else []
    return [_result(i, entry, plan, outputs) for i, entry in enumerate(plan.entries)]


def run_plan(plan: Plan, threads: int | None = None) -> list[Any]:
    """Runs a bound plan on the runtime; returns its outputs in order."""
    assert plan.table is not None
    outputs, _executed = _runtime.run_plan(
        plan.to_bytes(), plan.table.matrix, plan.targets, plan.indices, threads
    )
    return outputs


def _result(index: int, entry: Entry, plan: Plan, outputs: list[Any]) -> PipelineResult:
    n_folds = len(entry.folds) if entry.folds is not None else 0
    scores = np.full(n_folds, math.nan)
    error = entry.error
    if error is None:
        try:
            for fold in range(n_folds):
                scores[fold] = _fold_score(entry, plan, outputs, fold)
        except StepFailure as exc:
            error = str(exc)
    if error is not None:
        scores[:] = math.nan
    return PipelineResult(
        index=index,
        pipeline=entry.ir.source,
        scoring=entry.scoring,
        fold_scores=scores,
        error=error,
        backends=entry.ir.backends(),
    )


def _fold_score(entry: Entry, plan: Plan, outputs: list[Any], fold: int) -> float:
    if entry.score_outputs:
        return float(_native(entry, outputs[entry.score_outputs[fold]], fold))
    assert entry.folds is not None
    assert plan.target is not None
    assert plan.table is not None
    train, test = entry.folds.train[fold], entry.folds.test[fold]
    y = plan.target.original
    if entry.matrix_outputs:
        tr, te = entry.matrix_outputs[fold]
        x_train = _native(entry, outputs[tr], fold)
        x_test = _native(entry, outputs[te], fold)
    else:
        frame = plan.table.frame
        x_train, x_test = _safe_indexing(frame, train), _safe_indexing(frame, test)
    try:
        return fit_and_score(entry.ir.tail, x_train, y[train], x_test, y[test], entry.scoring)
    except StepFailure as exc:
        raise StepFailure(f"{exc} (fold {fold})") from exc


def _native(entry: Entry, value: Any, fold: int) -> Any:
    """An output value, or the failure it carries turned into a message."""
    if not isinstance(value, tuple):
        return value
    node, _kind, message = value
    assert entry.lowered is not None
    label, _ = entry.lowered.labels.get(node, (f"node {node}", None))
    raise StepFailure(f"{label}: {message} (fold {fold})")

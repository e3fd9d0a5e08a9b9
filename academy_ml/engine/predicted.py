"""Label metrics the runtime lacks (``f1_macro``, ``recall_weighted``...) from native predictions.

The runtime scores ``f1`` (binary) but not its averages, nor precision and
recall. Rather than fit such a classifier with scikit-learn, a native one is
compiled with a native stand-in metric (:data:`PROXY`), so its fit and
predict stay on the runtime; its prediction nodes (the stand-in score's
input) are then read back (from the cache the run filled) and scored here
with scikit-learn's own function and arguments for that name
(:data:`~academy_ml.engine.scoring.PREDICTED_METRICS`). A pipeline that
lands on the Python backend anyway is scored there under its real name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import is_classifier

from academy_ml import _runtime
from academy_ml.engine.cache import Cache
from academy_ml.engine.plan import Plan
from academy_ml.engine.results import PipelineResult
from academy_ml.engine.scoring import PREDICTED_METRICS, Scorer

__all__ = ["PROXY", "proxy_scorings", "rescore", "restore_python"]

#: The native metric compiled in place of a predicted one: it reads the
#: classifier's predicted codes, and needs nothing of the labels.
PROXY = "accuracy"


def proxy_scorings(
    batch: Sequence[Any], scorings: Sequence[Scorer | None]
) -> tuple[list[Scorer | None], dict[int, str]]:
    """Scorings to compile, and the real name of each entry given :data:`PROXY`."""
    compiled: list[Scorer | None] = []
    real: dict[int, str] = {}
    for i, (pipeline, scoring) in enumerate(zip(batch, scorings, strict=True)):
        if isinstance(scoring, str) and scoring in PREDICTED_METRICS and is_classifier(pipeline):
            real[i] = scoring
            scoring = PROXY
        compiled.append(scoring)
    return compiled, real


def restore_python(plan: Plan, real: Mapping[int, str]) -> dict[int, str]:
    """Gives entries that did not get a native model their real metric back.

    Call before running the plan: their Python backend then scores the real
    metric. Returns the entries whose predictions are native.
    """
    native: dict[int, str] = {}
    for i, name in real.items():
        entry = plan.entries[i]
        if entry.score_outputs:
            native[i] = name
        else:
            entry.scoring = name
    return native


def rescore(
    plan: Plan,
    results: list[PipelineResult],
    native: Mapping[int, str],
    threads: int | None,
    cache: Cache,
) -> None:
    """Replaces the stand-in scores of ``native`` entries by their real metric, in place.

    ``cache`` must be the one the plan just ran with: the prediction nodes
    are read from it (or recomputed if it let them go).
    """
    todo = [i for i in native if results[i].error is None]
    if not todo:
        return
    assert plan.table is not None
    assert plan.target is not None
    predictions = {i: [_prediction(plan, p) for p in plan.entries[i].score_outputs] for i in todo}
    wanted = sorted({node for nodes in predictions.values() for node in nodes})
    sub = dataclasses.replace(plan, outputs=tuple(wanted))
    values, _ = _runtime.run_plan(
        sub.to_bytes(), plan.table.matrix, plan.targets, plan.indices, threads, cache.native
    )
    by_node = dict(zip(wanted, values, strict=True))
    for i in todo:
        entry, name = plan.entries[i], native[i]
        assert entry.folds is not None
        scores = np.full(len(entry.folds), math.nan)
        error = None
        for fold, node in enumerate(predictions[i]):
            scored = _score(name, plan, entry.folds.test[fold], by_node[node])
            if isinstance(scored, str):
                error = f"{scored} (fold {fold})"
                scores[:] = math.nan
                break
            scores[fold] = scored
        results[i] = dataclasses.replace(results[i], scoring=name, fold_scores=scores, error=error)


def _prediction(plan: Plan, position: int) -> int:
    """The prediction node the stand-in score at output ``position`` reads."""
    score = plan.nodes[plan.outputs[position]]
    assert score["op"]["kind"] == "score"
    return int(score["inputs"][1])


def _score(name: str, plan: Plan, test: NDArray[np.int64], codes: Any) -> float | str:
    """The metric on one fold, or the failure as a message."""
    assert plan.target is not None
    if isinstance(codes, tuple):
        _, kind, message = codes
        return f"predicting for {name!r}: {kind} error: {message}"
    function, kwargs = PREDICTED_METRICS[name]
    target = plan.target
    y_pred = target.classes[np.asarray(codes).astype(np.intp)]
    try:
        return float(function(target.original[test], y_pred, **kwargs))
    except Exception as exc:
        return f"scoring {name!r}: {type(exc).__name__}: {exc}"

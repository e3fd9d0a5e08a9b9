"""``evaluate``: cross-validated scores for a batch of pipelines.

They are computed as one deduplicated plan on the Rust runtime, plus the
Python backend for foreign steps. ``scoring``, ``cv`` and ``groups`` take
what scikit-learn's ``cross_validate`` takes. Several metrics are scored in
the same plan: each (pipeline, metric) pair is an entry, and the compiler
shares their fits and predictions, so a native model is fitted once per
fold whatever the number of native metrics. Callable scorers score on the
Python backend, in this process or its own worker processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from academy_ml.engine.cache import Cache
from academy_ml.engine.data import Table, Target, prepare_features, prepare_target
from academy_ml.engine.lower import Options
from academy_ml.engine.plan import compile_batch
from academy_ml.engine.predicted import proxy_scorings, rescore, restore_python
from academy_ml.engine.progress import Progress, ProgressCallback, reporting
from academy_ml.engine.results import PipelineResult
from academy_ml.engine.run import check_run_arguments, run
from academy_ml.engine.scoring import PREDICTED_METRICS, Scorers, parse_scoring
from academy_ml.engine.splits import check_cv_argument, split_with_groups

__all__ = ["evaluate"]

#: With progress on, the batch runs in about this many parts (one report each).
_PROGRESS_PARTS = 10


def evaluate(
    pipelines: Iterable[Any],
    X: Any,
    y: Any,
    cv: Any = 5,
    scoring: Any = None,
    cache: Cache | None = None,
    threads: int | None = None,
    *,
    groups: Any = None,
    options: Options | None = None,
    progress: bool | ProgressCallback | None = None,
) -> list[PipelineResult]:
    """Cross-validates every pipeline, as ``cross_validate`` would, in one plan.

    Args:
        pipelines: scikit-learn estimators or Pipelines.
        X: Features: numpy array, pandas DataFrame or pyarrow Table.
        y: 1-D target.
        cv: Number of folds (StratifiedKFold for classifiers, KFold otherwise,
            no shuffle), any scikit-learn splitter (GroupKFold,
            TimeSeriesSplit, ShuffleSplit...) or an iterable of (train, test)
            index arrays.
        scoring: None (each estimator's default: accuracy for classifiers, r2
            for regressors), a scikit-learn scoring name, a callable
            ``scorer(estimator, X, y)`` such as ``make_scorer(...)``, a list
            or tuple of names, or a dict of name -> name or callable. Several
            metrics fill each result's ``scores`` (see
            :meth:`PipelineResult.cv_results`).
        cache: A node-local :class:`academy_ml.Cache`: intermediates (and
            scores) computed before are read instead of recomputed, and new
            ones are stored.
        threads: Worker threads for the runtime (default, and at most: the
            cores available to this process).
        groups: Group labels, one per row, for group splitters (GroupKFold,
            StratifiedGroupKFold, LeaveOneGroupOut...); ignored by the others.
        options: Compiler switches (for ablations).
        progress: None or False (quiet), True (a rich progress bar on
            stderr) or a callable receiving a :class:`~academy_ml.engine.
            progress.Progress`. With progress on, the batch runs in up to
            ten parts, one report after each; they share their work through
            ``cache``, or a private in-memory cache when none is given.

    Returns:
        One result per pipeline, in order. A failing pipeline carries its own
        ``error``; the others still have scores.

    Raises:
        ValueError: Before any work, for empty X, a length mismatch between
            X and y, or an invalid ``threads``;
            :class:`~academy_ml.exceptions.ParameterError` (a ValueError) for
            an unknown scoring name or a scoring of another type, a splitter
            that cannot split these rows (a group splitter without
            ``groups``), a malformed split (empty, out of range), an invalid
            ``progress``, or ``threads`` past the cores available;
            :class:`~academy_ml.exceptions.DataError` when ``groups`` has not
            one label per row.
        TypeError: If ``cache`` is not an :class:`academy_ml.Cache`, or
            ``cv`` is none of what ``cross_validate`` takes.
    """
    scorers = parse_scoring(scoring)
    check_run_arguments(threads, cache)
    cv = check_cv_argument(cv)
    with reporting(progress) as report:
        batch = list(pipelines)
        if not batch:
            return []
        table = prepare_features(X)
        target = prepare_target(y, table.n_rows)
        cv = split_with_groups(cv, target.original, groups)
        job = _Job(table, target, cv, scorers, threads, options)
        # Parts, and predictions read back, share work through a cache.
        shares = report is not None or job.predicts
        with (
            _private_cache() if cache is None and shares else contextlib.nullcontext(cache) as used
        ):
            if report is None:
                return job.run(batch, used, 0)
            return _in_parts(job, batch, used, report)


@contextlib.contextmanager
def _private_cache() -> Iterator[Cache]:
    """An in-memory cache for one evaluation, gone after it."""
    with tempfile.TemporaryDirectory(prefix="academy-ml-evaluate-") as private:
        yield Cache(private, disk_bytes=0)


class _Job:
    """One evaluation's fixed arguments, run on a batch or a part of it."""

    def __init__(
        self,
        table: Table,
        target: Target,
        cv: Any,
        scorers: Scorers,
        threads: int | None,
        options: Options | None,
    ) -> None:
        self.table = table
        self.target = target
        self.cv = cv
        self.scorers = scorers
        self.threads = threads
        self.options = options
        #: Whether some metric is scored from native predictions (read back).
        self.predicts = any(
            isinstance(s, str) and s in PREDICTED_METRICS for s in scorers.named.values()
        )

    def run(self, batch: Sequence[Any], cache: Cache | None, start: int) -> list[PipelineResult]:
        """Results of ``batch``, indexed from ``start`` (its position in the whole batch).

        Each (pipeline, metric) pair is an entry of one plan, pipeline-major.
        """
        named = self.scorers.named
        pipelines = [p for p in batch for _ in named]
        pairs = [s for _ in batch for s in named.values()]
        compiled, real = proxy_scorings(pipelines, pairs)
        plan = compile_batch(
            pipelines, self.cv, X=self.table, y=self.target, scorings=compiled, options=self.options
        )
        native = restore_python(plan, real)
        flat = run(plan, self.threads, cache).results
        if native:
            assert cache is not None
            rescore(plan, flat, native, self.threads, cache)
        k = len(named)
        return [
            _merged(start + i, flat[i * k : (i + 1) * k], self.scorers) for i in range(len(batch))
        ]


def _in_parts(
    job: _Job, batch: list[Any], cache: Cache | None, report: ProgressCallback
) -> list[PipelineResult]:
    size = math.ceil(len(batch) / _PROGRESS_PARTS)
    results: list[PipelineResult] = []
    report(Progress(0, len(batch), 0, 0))
    for start in range(0, len(batch), size):
        results += job.run(batch[start : start + size], cache, start)
        n_folds = len(results[0].fold_scores)
        report(Progress(len(results), len(batch), len(results) * n_folds, len(batch) * n_folds))
    return results


def _merged(index: int, per_metric: list[PipelineResult], scorers: Scorers) -> PipelineResult:
    """One pipeline's result from its (pipeline, metric) entries, in metric order."""
    first = per_metric[0]
    if not scorers.multi:
        return dataclasses.replace(first, index=index)
    names = list(scorers.named)
    backends: dict[str, Literal["rust", "python"]] = {}
    for result in per_metric:
        for step, backend in result.backends.items():
            # A step some metric ran on Python (a callable scorer) says so.
            if backends.get(step) != "python":
                backends[step] = backend
    error = next((r.error for r in per_metric if r.error is not None), None)
    return PipelineResult(
        index=index,
        pipeline=first.pipeline,
        scoring=names[0],
        fold_scores=first.fold_scores,
        error=error,
        backends=backends,
        scores={name: r.fold_scores for name, r in zip(names, per_metric, strict=True)},
    )

"""Running a compiled plan: the Rust runtime, then the Python backend.

Native parts run as one plan on the runtime (looked up in and stored to the
node cache when one is given); pipelines with foreign steps are then fitted
and scored with scikit-learn on the matrices the plan produced. Their fold
scores are cached too when the foreign steps are deterministic.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import joblib
import msgpack
import numpy as np
import sklearn

from academy_ml import _runtime
from academy_ml.engine.budgets import foreign_budget
from academy_ml.engine.cache import Cache, CacheStats
from academy_ml.engine.data import digest
from academy_ml.engine.fallback import StepFailure
from academy_ml.engine.foreign_pool import Failure, ForeignTask, run_foreign
from academy_ml.engine.plan import Entry, Plan
from academy_ml.engine.results import PipelineResult
from academy_ml.engine.scoring import describe_scorer
from academy_ml.exceptions import (
    CacheError,
    DataError,
    InternalError,
    NumericalError,
    ParameterError,
    PlanError,
)

__all__ = ["RunReport", "check_run_arguments", "run"]


@dataclass(frozen=True)
class RunReport:
    """What running a plan produced and cost.

    Attributes:
        results: One per pipeline, in batch order.
        executed: Plan operations computed by the runtime.
        cache_hits: Plan nodes served by the cache.
        cache_stores: Computed values stored to the cache.
        python_scores: Fold scores computed on the Python backend.
        python_hits: Fold scores of foreign pipelines read from the cache.
        seconds: Wall time of the run.
        cache: Cache counters during this run (zeros without a cache).
        profile: Runtime time per step (``"fit ridge"``, ``"apply scaler"``,
            ``"gram"``, ``"cache store"``...): (nodes, seconds summed over
            threads), slowest first.
    """

    results: list[PipelineResult]
    executed: int
    cache_hits: int
    cache_stores: int
    python_scores: int
    python_hits: int
    seconds: float
    cache: CacheStats
    profile: dict[str, tuple[int, float]]


def check_run_arguments(threads: Any, cache: Any) -> None:
    """Refuses a ``threads`` or ``cache`` a run cannot use.

    Raises:
        TypeError: If ``cache`` is not an :class:`academy_ml.Cache` or None.
        ValueError: If ``threads`` is not a positive integer or None.
        ParameterError: If ``threads`` exceeds the cores this process may use
            (each size keeps a pool of threads, so there is no point asking
            for more; the runtime refuses them too).
    """
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(f"cache must be an academy_ml.Cache or None, got {type(cache).__name__}")
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    limit = _runtime.max_threads()
    if threads > limit:
        raise ParameterError(
            f"threads must be at most {limit} (the cores available to this process), got {threads}"
        )


def run(plan: Plan, threads: int | None = None, cache: Cache | None = None) -> RunReport:
    """Runs a bound plan and scores every pipeline.

    Raises:
        PlanError: If the plan was compiled without data.
        TypeError: If ``cache`` is not an :class:`academy_ml.Cache`.
        ValueError: If ``threads`` is not a positive integer or None.
        ParameterError: If ``threads`` exceeds the cores this process may use.
        InternalError: If the runtime broke an invariant outside any one node
            (a node's own failure fails only its pipelines).
    """
    check_run_arguments(threads, cache)
    payload = plan.to_bytes()
    assert plan.table is not None
    before = cache.stats() if cache is not None else CacheStats()
    start = time.perf_counter()
    outputs: list[Any] = []
    counters: dict[str, Any] = {"executed": 0, "cache_hits": 0, "cache_stores": 0, "profile": []}
    if plan.outputs:
        native = cache.native if cache is not None else None
        outputs, counters = _runtime.run_plan(
            payload, plan.table.matrix, plan.targets, plan.indices, threads, native
        )
    scorer = _PythonScores(plan, outputs, cache, threads)
    results = [scorer.result(i, entry) for i, entry in enumerate(plan.entries)]
    return RunReport(
        results=results,
        executed=counters["executed"],
        cache_hits=counters["cache_hits"],
        cache_stores=counters["cache_stores"],
        python_scores=scorer.computed,
        python_hits=scorer.hits,
        seconds=time.perf_counter() - start,
        cache=(cache.stats() - before) if cache is not None else CacheStats(),
        profile={step: (nodes, seconds) for step, nodes, seconds in counters["profile"]},
    )


class _PythonScores:
    """Turns plan outputs into results, scoring foreign tails on worker processes.

    Every foreign fold of every pipeline is gathered first: cached scores are
    read, identical tails on identical inputs (same :meth:`score_key`) are
    scored once, and the rest run concurrently within the run's ``threads``
    (:mod:`academy_ml.engine.foreign_pool`).
    """

    def __init__(
        self, plan: Plan, outputs: list[Any], cache: Cache | None, threads: int | None
    ) -> None:
        self.plan = plan
        self.outputs = outputs
        self.cache = cache
        self.computed = 0
        self.hits = 0
        self.foreign: dict[tuple[int, int], float | str] = {}
        self._score_foreign(threads)

    def result(self, index: int, entry: Entry) -> PipelineResult:
        n_folds = len(entry.folds) if entry.folds is not None else 0
        scores = np.full(n_folds, math.nan)
        error = entry.error
        if error is None:
            try:
                for fold in range(n_folds):
                    scores[fold] = self.fold_score(index, entry, fold)
            except StepFailure as exc:
                error = str(exc)
        if error is not None:
            scores[:] = math.nan
        return PipelineResult(
            index=index,
            pipeline=entry.ir.source,
            scoring=describe_scorer(entry.scoring),
            fold_scores=scores,
            error=error,
            backends=entry.ir.backends(),
        )

    def fold_score(self, index: int, entry: Entry, fold: int) -> float:
        if entry.score_outputs:
            return float(self.native(entry, self.outputs[entry.score_outputs[fold]], fold))
        outcome = self.foreign[index, fold]
        if isinstance(outcome, str):
            raise StepFailure(outcome)
        return outcome

    def _score_foreign(self, threads: int | None) -> None:
        """Fills ``self.foreign``: every foreign fold's score, or its failure message."""
        tasks: dict[Any, ForeignTask] = {}
        keys: dict[Any, str | None] = {}
        waiting: dict[Any, list[tuple[int, int]]] = {}
        for index, entry in enumerate(self.plan.entries):
            if entry.error is not None or entry.score_outputs or entry.folds is None:
                continue
            for fold in range(len(entry.folds)):
                try:
                    task = self.task(entry, fold)
                except StepFailure as exc:
                    self.foreign[index, fold] = str(exc)
                    continue
                key = self.score_key(entry, fold)
                if key is not None and self.cache is not None:
                    stored = self.cache.get_blob(key)
                    if stored is not None:
                        self.hits += 1
                        self.foreign[index, fold] = float(msgpack.unpackb(stored))
                        continue
                # Unpinned randomness is never shared: each fold draws its own.
                identity = key if key is not None else (index, fold)
                tasks.setdefault(identity, task)
                keys[identity] = key
                waiting.setdefault(identity, []).append((index, fold))
        if not tasks:
            return
        budget = foreign_budget(threads, len(tasks))
        outcomes = run_foreign(list(tasks.values()), self.shared_values(), budget)
        self.computed += len(tasks)
        for identity, outcome in zip(tasks, outcomes, strict=True):
            key = keys[identity]
            if not isinstance(outcome, Failure) and key is not None and self.cache is not None:
                self.cache.put_blob(key, msgpack.packb(outcome))
            for index, fold in waiting[identity]:
                self.foreign[index, fold] = (
                    f"{outcome.message} (fold {fold})" if isinstance(outcome, Failure) else outcome
                )

    def task(self, entry: Entry, fold: int) -> ForeignTask:
        """The foreign tail of ``entry`` on ``fold``, reading shared inputs by name.

        Raises:
            StepFailure: If a native step before the tail failed on this fold.
        """
        assert entry.folds is not None
        train, test = entry.folds.train[fold], entry.folds.test[fold]
        if not entry.matrix_outputs:
            return ForeignTask(entry.ir.tail, _FRAME, None, _TARGET, train, test, entry.scoring)
        names = []
        for output in entry.matrix_outputs[fold]:
            self.native(entry, self.outputs[output], fold)
            names.append(("output", output))
        return ForeignTask(entry.ir.tail, names[0], names[1], _TARGET, train, test, entry.scoring)

    def shared_values(self) -> dict[Any, Any]:
        """How to get each input a foreign task may name."""
        plan = self.plan
        assert plan.table is not None
        assert plan.target is not None
        table, target = plan.table, plan.target
        values: dict[Any, Any] = {_FRAME: lambda: table.frame, _TARGET: lambda: target.original}
        for entry in plan.entries:
            for pair in entry.matrix_outputs:
                for output in pair:
                    values[("output", output)] = functools.partial(self.outputs.__getitem__, output)
        return values

    def score_key(self, entry: Entry, fold: int) -> str | None:
        """Content key of a foreign fold score, or None when it must not be cached.

        Foreign steps are keyed by joblib's hash of their (unfitted)
        parameters and scikit-learn's version; a step whose randomness is not
        pinned (``random_state`` None or a generator) is never cached, since
        scikit-learn itself would give a different score each time.
        """
        plan = self.plan
        assert entry.folds is not None
        assert plan.table is not None
        assert plan.target is not None
        if not isinstance(entry.scoring, str):
            return None  # a callable's hash would not cover its code
        steps = entry.ir.tail if entry.matrix_outputs else [("", entry.ir.source)]
        if not all(_deterministic(step) for _, step in steps):
            return None
        try:
            steps_hash = joblib.hash(steps)
        except Exception:
            return None
        if entry.matrix_outputs:
            tr, te = entry.matrix_outputs[fold]
            inputs = [plan.nodes[plan.outputs[i]]["key"] for i in (tr, te)]
        else:
            inputs = [plan.table.fingerprint]
        return digest(
            "python-score",
            sklearn.__version__,
            str(steps_hash),
            entry.scoring,
            plan.target.content_key,
            entry.folds.train_names[fold],
            entry.folds.test_names[fold],
            *inputs,
        )

    def native(self, entry: Entry, value: Any, fold: int) -> Any:
        """An output value, or the failure it carries turned into a message."""
        if not isinstance(value, tuple):
            return value
        node, kind, message = value
        assert entry.lowered is not None
        label, _ = entry.lowered.labels.get(node, (f"node {node}", None))
        error = _KIND_ERRORS.get(kind, InternalError).__name__
        raise StepFailure(f"{label}: {error}: {message} (fold {fold})")


#: Names of the run-level inputs foreign tasks read (fold matrices are
#: ``("output", i)``, the plan output holding them).
_FRAME = ("frame",)
_TARGET = ("target",)

#: The exception a native node's failure stands for, by the kind the runtime
#: names (``kind_name`` in runtime-rs/src/py/errors.rs), so a native failure
#: reads like a foreign one: "step 'x' (Ridge): NumericalError: ...".
_KIND_ERRORS: dict[str, type[BaseException]] = {
    "plan": PlanError,
    "parameter": ParameterError,
    "data": DataError,
    "numerical": NumericalError,
    "cache": CacheError,
    "interrupted": KeyboardInterrupt,
    "internal": InternalError,
}


def _deterministic(estimator: Any) -> bool:
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return all(
        isinstance(value, int) and not isinstance(value, bool)
        for name, value in params.items()
        if name == "random_state" or name.endswith("__random_state")
    )

"""Running a compiled plan: the Rust runtime and, beside it, the Python backend.

Native parts run on the runtime (looked up in and stored to the node cache
when one is given); pipelines with foreign steps are fitted and scored with
scikit-learn on worker processes, on the user's X or on the fold matrices
the plan produced, while the rest of the plan runs. Their fold scores are
cached too when the foreign steps are deterministic.
"""

from __future__ import annotations

import dataclasses
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
from academy_ml.engine.budgets import native_share
from academy_ml.engine.cache import Cache, CacheStats
from academy_ml.engine.data import digest
from academy_ml.engine.fallback import StepFailure
from academy_ml.engine.foreign_pool import Failure, ForeignPool, ForeignTask
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
    plan.to_bytes()
    before = cache.stats() if cache is not None else CacheStats()
    start = time.perf_counter()
    execution = _Execution(plan, cache, threads if threads is not None else _runtime.max_threads())
    execution.execute()
    results = [execution.result(i, entry) for i, entry in enumerate(plan.entries)]
    counters = execution.counters
    return RunReport(
        results=results,
        executed=counters["executed"],
        cache_hits=counters["cache_hits"],
        cache_stores=counters["cache_stores"],
        python_scores=execution.computed,
        python_hits=execution.hits,
        seconds=time.perf_counter() - start,
        cache=(cache.stats() - before) if cache is not None else CacheStats(),
        profile=dict(sorted(execution.profile.items(), key=lambda item: -item[1][1])),
    )


@dataclass
class _Job:
    """A foreign fold to score: one task, and the (pipeline, fold) pairs awaiting it."""

    entry: Entry
    fold: int
    key: str | None
    waiting: list[tuple[int, int]]


class _Execution:
    """Runs the native plan and the foreign tails beside it, then turns outputs into results.

    Every foreign fold of every pipeline is gathered first: cached scores are
    read, identical tails on identical inputs (same :meth:`score_key`) are
    scored once. The rest run on worker processes
    (:mod:`academy_ml.engine.foreign_pool`) as soon as their inputs exist:
    tails on the user's X at once, tails on fold matrices of a native prefix
    once a first native stage made those matrices (only them); the native
    plan's scores follow fold by fold, beside the tails (:meth:`stages`).
    Before each stage ``threads`` is split between it and the tails by the
    pipeline folds left on each side
    (:func:`academy_ml.engine.budgets.native_share`).
    """

    def __init__(self, plan: Plan, cache: Cache | None, threads: int) -> None:
        self.plan = plan
        self.cache = cache
        self.threads = threads
        self.outputs: list[Any] = [None] * len(plan.outputs)
        self.counters = {"executed": 0, "cache_hits": 0, "cache_stores": 0}
        self.profile: dict[str, tuple[int, float]] = {}
        self.computed = 0
        self.hits = 0
        self.foreign: dict[tuple[int, int], float | str] = {}

    def execute(self) -> None:
        """Computes every output and every foreign fold score (or its failure)."""
        jobs = self.jobs()
        fed = {i: job for i, job in jobs.items() if job.entry.matrix_outputs}
        feed = sorted({p for job in fed.values() for p in job.entry.matrix_outputs[job.fold]})
        stages = self.stages(feed, len(fed), overlap=self.threads > 1 and bool(jobs))
        if not jobs:
            for positions, _ in stages:
                self.native(positions, self.threads)
            return
        values = self.shared_values()
        with ForeignPool(values, self.threads, len(jobs)) as pool:
            pool.submit(
                {i: self.task(job.entry, job.fold) for i, job in jobs.items() if i not in fed}
            )
            for n, (positions, _) in enumerate(stages):
                work = sum(w for _, w in stages[n:])
                self.native(
                    positions, pool.reserve(native_share(self.threads, work, pool.outstanding()))
                )
                pool.check()
                if fed and set(feed) <= set(positions):
                    pool.submit(self.fed_tasks(fed))
                    fed = {}
            outcomes = pool.finish()
        self.computed += len(outcomes)
        for identity, outcome in outcomes.items():
            job = jobs[identity]
            if not isinstance(outcome, Failure) and job.key is not None and self.cache is not None:
                self.cache.put_blob(job.key, msgpack.packb(outcome))
            for index, fold in job.waiting:
                self.foreign[index, fold] = (
                    f"{outcome.message} (fold {fold})" if isinstance(outcome, Failure) else outcome
                )

    def stages(self, feed: list[int], fed: int, overlap: bool) -> list[tuple[list[int], int]]:
        """Native stages in run order: output positions, and pipeline folds each serves.

        Without tails running beside it the plan is one stage. With them,
        the fold matrices the tails read come first (only they), then the
        plan's scores fold by fold, so each fold's stage takes the threads
        the tails leave then (all of them once the tails are done). Nodes
        two stages share are computed twice (or read from the cache);
        folds share no nodes but the data's sources.
        """
        entries = [e for e in self.plan.entries if e.score_outputs]
        if not overlap:
            positions = sorted({p for e in entries for p in e.score_outputs}.union(feed))
            return [(positions, fed + len(positions))] if positions else []
        stages = [(feed, fed)] if feed else []
        for fold in range(max((len(e.score_outputs) for e in entries), default=0)):
            chunk = sorted({e.score_outputs[fold] for e in entries if fold < len(e.score_outputs)})
            stages.append((chunk, len(chunk)))
        return stages

    def native(self, positions: list[int], threads: int) -> None:
        """Runs the plan for the outputs at ``positions`` on ``threads`` threads."""
        plan = self.plan
        if len(positions) < len(plan.outputs):
            plan = dataclasses.replace(plan, outputs=tuple(plan.outputs[p] for p in positions))
        assert plan.table is not None
        native = self.cache.native if self.cache is not None else None
        outputs, counters = _runtime.run_plan(
            plan.to_bytes(), plan.table.matrix, plan.targets, plan.indices, threads, native
        )
        for position, value in zip(positions, outputs, strict=True):
            self.outputs[position] = value
        for name in self.counters:
            self.counters[name] += counters[name]
        for step, nodes, seconds in counters["profile"]:
            had = self.profile.get(step, (0, 0.0))
            self.profile[step] = (had[0] + nodes, had[1] + seconds)

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
            return float(self.native_value(entry, self.outputs[entry.score_outputs[fold]], fold))
        outcome = self.foreign[index, fold]
        if isinstance(outcome, str):
            raise StepFailure(outcome)
        return outcome

    def jobs(self) -> dict[Any, _Job]:
        """Every foreign fold still to score, by identity (cached ones are read now)."""
        jobs: dict[Any, _Job] = {}
        for index, entry in enumerate(self.plan.entries):
            if entry.error is not None or entry.score_outputs or entry.folds is None:
                continue
            for fold in range(len(entry.folds)):
                key = self.score_key(entry, fold)
                if key is not None and self.cache is not None:
                    stored = self.cache.get_blob(key)
                    if stored is not None:
                        self.hits += 1
                        self.foreign[index, fold] = float(msgpack.unpackb(stored))
                        continue
                # Unpinned randomness is never shared: each fold draws its own.
                identity = key if key is not None else (index, fold)
                jobs.setdefault(identity, _Job(entry, fold, key, [])).waiting.append((index, fold))
        return jobs

    def fed_tasks(self, fed: dict[Any, _Job]) -> dict[Any, ForeignTask]:
        """Tasks on native fold matrices, now computed; a failed prefix fails its folds."""
        tasks = {}
        for identity, job in fed.items():
            try:
                tasks[identity] = self.task(job.entry, job.fold)
            except StepFailure as exc:
                for index, fold in job.waiting:
                    self.foreign[index, fold] = str(exc)
        return tasks

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
            self.native_value(entry, self.outputs[output], fold)
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

    def native_value(self, entry: Entry, value: Any, fold: int) -> Any:
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

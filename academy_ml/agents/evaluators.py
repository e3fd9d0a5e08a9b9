"""How an analysis agent evaluates its candidates: the :class:`Evaluator` protocol.

The :class:`~academy_ml.agents.analysis.AnalysisAgent` keeps the ledger,
counts attempts, gathers the candidates waiting at the same time into
batches of up to the evaluator's ``batch_size`` and routes each batch to its
current endpoint (which :meth:`~academy_ml.agents.analysis.AnalysisAgent.redirect`
changes). The evaluator turns one batch into one result per candidate:

* :class:`FunctionCalls`: one call of an importable function per candidate,
  on the endpoint (``fn(msgpack payload) -> {"metrics": ..., "flags": ...}``);
* :class:`PipelineBatches`: the candidates' scikit-learn pipelines compiled
  into one deduplicated plan against a dataset prepared once, and placed on
  the endpoint through a :class:`~academy_ml.compute.placement.Placer`
  (dataset pushed once, idempotent by plan key), where ``run_batch`` runs it
  against the node cache;
* :class:`InProcess`: the twin for unit tests: a function called in the
  agent's own process, recording where each batch was routed.

A result the evaluator settles for one candidate (a pipeline that failed, a
spec that does not decode) is final; an evaluation that raises fails the
whole batch, which the agent tries again (up to ``max_attempts``) after
raising ``evaluation_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import msgpack

from academy_ml.agents.knowledge import CandidateRecord, ResultRecord
from academy_ml.compute.placement import Endpoint, InMemoryAffinity, Placer, resolve_task
from academy_ml.compute.tasks import BatchResult, PipelineScores, datasets
from academy_ml.compute.tasks.request import compile_request
from academy_ml.compute.tasks.specs import decode_pipelines
from academy_ml.engine.data import Table, Target, prepare_features, prepare_target
from academy_ml.exceptions import DatasetError

__all__ = [
    "Evaluation",
    "Evaluator",
    "FunctionCalls",
    "InProcess",
    "PipelineBatches",
    "failed_result",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """The results of one batch, in the candidates' order, and what it cost.

    Attributes:
        results: One result per candidate.
        counts: Counters the agent adds to its state (e.g. ``cache_hits``).
    """

    results: list[ResultRecord]
    counts: Mapping[str, int] = field(default_factory=dict)


class Evaluator(Protocol):
    """Evaluates batches of candidates on an endpoint for an analysis agent.

    Attributes:
        batch_size: Most candidates per batch (1: each candidate on its own).
        batch_wait_s: How long the first candidate of a batch waits for others.
    """

    batch_size: int
    batch_wait_s: float

    async def prepare(self) -> None:
        """Get ready once, at the agent's startup (e.g. load and prepare a dataset)."""
        ...

    async def evaluate(
        self, candidates: Sequence[CandidateRecord], endpoint: Endpoint
    ) -> Evaluation:
        """One result per candidate, computed on ``endpoint``.

        Raises:
            Exception: The batch as a whole failed (the agent tries again).
        """
        ...


def failed_result(candidate: CandidateRecord, reason: str) -> ResultRecord:
    """The result of a candidate whose evaluation failed, saying why."""
    logger.info("%s: result flagged failed (%s)", candidate.id, reason)
    return ResultRecord(
        candidate_id=candidate.id,
        model_version=candidate.model_version,
        metrics={},
        flags={"failed": True},
        error=reason,
    )


def _payload(candidate: CandidateRecord) -> bytes:
    return bytes(msgpack.packb(candidate.payload, use_bin_type=True))


def _result(candidate: CandidateRecord, output: Any) -> ResultRecord:
    """The result record of ``candidate`` from what an evaluation function returned.

    Raises:
        TypeError: The function returned no mapping.
    """
    if not isinstance(output, Mapping):
        raise TypeError(f"evaluation returned {type(output).__name__}, not a mapping")
    return ResultRecord(
        candidate_id=candidate.id,
        model_version=candidate.model_version,
        metrics=dict(output.get("metrics", {})),
        flags=dict(output.get("flags", {})),
    )


@dataclass
class FunctionCalls:
    """Calls an importable function once per candidate, on the agent's endpoint.

    The function is given the candidate's payload as msgpack bytes and
    returns ``{"metrics": {name: float}, "flags": {name: bool}}``; one that
    raises or returns anything else fails the attempt.

    Args:
        function: Import path of the function (``pkg.mod.fn``).
    """

    function: str
    batch_size: int = field(default=1, init=False)
    batch_wait_s: float = field(default=0.0, init=False)

    async def prepare(self) -> None:
        """Nothing to prepare (the function is resolved on the endpoint)."""

    async def evaluate(
        self, candidates: Sequence[CandidateRecord], endpoint: Endpoint
    ) -> Evaluation:
        """Submit one call per candidate and wait for them all."""
        calls = [endpoint.submit(self.function, _payload(c)) for c in candidates]
        outputs = await asyncio.gather(*(asyncio.wrap_future(call) for call in calls))
        return Evaluation([_result(c, o) for c, o in zip(candidates, outputs, strict=True)])


@dataclass
class InProcess:
    """The in-process twin of :class:`FunctionCalls`: calls a function in the agent's process.

    Args:
        function: ``fn(msgpack payload) -> {"metrics": ..., "flags": ...}``, or its import path.
        batch_size: Most candidates per batch.
        batch_wait_s: How long the first candidate of a batch waits for others.

    Attributes:
        routes: Per batch, the endpoint it was routed to and its candidates' ids.
    """

    function: str | Callable[[bytes], Any]
    batch_size: int = 1
    batch_wait_s: float = 0.0
    routes: list[tuple[str, list[str]]] = field(default_factory=list, init=False)

    async def prepare(self) -> None:
        """Resolve the function by its import path."""
        self.function = resolve_task(self.function)

    async def evaluate(
        self, candidates: Sequence[CandidateRecord], endpoint: Endpoint
    ) -> Evaluation:
        """Call the function on each candidate, here; a raise fails the batch."""
        self.routes.append((endpoint.name, [c.id for c in candidates]))
        function = resolve_task(self.function)
        return Evaluation([_result(c, function(_payload(c))) for c in candidates])


@dataclass(frozen=True)
class _Dataset:
    """A dataset prepared for the compiler once: its features and target."""

    features: Table
    target: Target


class PipelineBatches:
    """Cross-validates the candidates' pipelines as one compiled batch per call.

    A candidate's payload holds its pipeline as a spec under ``"pipeline"``
    (:func:`~academy_ml.compute.tasks.specs.encode_pipelines`); its result is
    the mean CV score (metric ``score``, flag ``ok``), or ``failed`` with the
    pipeline's error.

    Args:
        dataset: Import path of a function returning ``(X, y)``, loaded and
            prepared once, at the agent's startup.
        cv: Number of folds.
        scoring: A scikit-learn scoring name (None: the estimator's default).
        batch_size: Most candidates per batch.
        batch_wait_s: How long the first candidate of a batch waits for others.
        dataset_dir: The client's dataset store, from where datasets are
            pushed to endpoints (default: the node's).
    """

    def __init__(
        self,
        dataset: str,
        *,
        cv: int = 5,
        scoring: str | None = None,
        batch_size: int = 16,
        batch_wait_s: float = 0.2,
        dataset_dir: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.cv = cv
        self.scoring = scoring
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self._store = datasets.DatasetStore(dataset_dir)
        # Made at startup, where the agent runs (an unstarted evaluator pickles).
        self._prepared: _Dataset | None = None
        self._affinity: InMemoryAffinity | None = None
        self._placers: dict[str, Placer[BatchResult]] = {}

    async def prepare(self) -> None:
        """Load the dataset, prepare it for the compiler and store it for pushing, once.

        Raises:
            DataError: ``(X, y)`` do not make a dataset.
            DatasetError: The compiler cannot prepare it.
        """
        # Any callable resolves by import path; this one takes no argument.
        load = cast("Callable[[], tuple[Any, Any]]", resolve_task(self.dataset))
        self._prepared = await asyncio.to_thread(_prepare, load, self._store)
        # One placer per endpoint the agent routes to, sharing affinity records.
        self._affinity = InMemoryAffinity()

    async def evaluate(
        self, candidates: Sequence[CandidateRecord], endpoint: Endpoint
    ) -> Evaluation:
        """Compile the batch against the prepared dataset and place it on ``endpoint``."""
        if self._prepared is None or self._affinity is None:
            raise RuntimeError("PipelineBatches.evaluate before prepare")
        results: list[ResultRecord | None] = [None] * len(candidates)
        runnable, pipelines = [], []
        for i, candidate in enumerate(candidates):
            try:
                (pipeline,) = decode_pipelines(candidate.payload["pipeline"])
            except Exception as error:  # one bad spec fails its candidate, not the batch
                results[i] = failed_result(candidate, f"{type(error).__name__}: {error}")
                continue
            runnable.append(i)
            pipelines.append(pipeline)
        counts: dict[str, int] = {}
        if pipelines:
            prepared = (self._prepared.features, self._prepared.target)
            request, _ = await asyncio.to_thread(
                compile_request, pipelines, prepared, cv=self.cv, scoring=self.scoring
            )
            batch = await asyncio.wrap_future(self._placer(endpoint).submit(request))
            for i, scores in zip(runnable, batch.results, strict=True):
                results[i] = _scored(candidates[i], scores)
            counts = {"executed": batch.executed, "cache_hits": batch.cache_hits}
        return Evaluation([r for r in results if r is not None], counts)

    def _placer(self, endpoint: Endpoint) -> Placer[BatchResult]:
        assert self._affinity is not None
        placer = self._placers.get(endpoint.name)
        if placer is None or placer.endpoints[endpoint.name] is not endpoint:
            placer = Placer([endpoint], self._affinity, datasets=self._store)
            self._placers[endpoint.name] = placer
        return placer


def _prepare(load: Callable[[], tuple[Any, Any]], store: datasets.DatasetStore) -> _Dataset:
    table = datasets.to_arrow(*load())
    X, y = datasets.split(table)
    try:
        features = prepare_features(X)
        target = prepare_target(y, features.n_rows)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"not a dataset the compiler can prepare: {exc}") from exc
    store.put(table, datasets.prepared_fingerprint(features, target))
    return _Dataset(features, target)


def _scored(candidate: CandidateRecord, scores: PipelineScores) -> ResultRecord:
    score = scores.mean_score
    if scores.error is not None or not math.isfinite(score):
        return failed_result(candidate, scores.error or "no finite score")
    return ResultRecord(
        candidate_id=candidate.id,
        model_version=candidate.model_version,
        metrics={"score": score},
        flags={"ok": True},
    )

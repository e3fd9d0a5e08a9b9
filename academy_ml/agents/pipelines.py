"""Agents for ML pipeline search: candidates are scikit-learn pipelines, evaluated in batches.

* :class:`PipelineGenerator` proposes pipelines the way an exploring agent
  does (:mod:`academy_ml.agents.search_space`) and, once retrained, breeds new
  ones from the best results (``exploit``).
* :class:`PipelineAnalysisAgent` is an :class:`AnalysisAgent` whose work is
  pipeline batches for the runtime: candidates waiting at the same time
  (up to ``batch_size``, at most ``batch_wait_s`` apart) are compiled into
  one deduplicated plan and placed as one task by a
  :class:`~academy_ml.compute.placement.Placer` (cache affinity first, failover),
  where ``run_batch`` runs it against the endpoint's node cache. Each
  candidate still gets exactly one result (its mean CV score, or ``failed``
  with the pipeline's error).

A candidate's payload is ``{"candidate": {...}, "pipeline": <spec bytes>}``;
specs name classes only from trusted modules and are decoded without
unpickling (:mod:`academy_ml.compute.tasks.specs`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from academy_ml.agents.analysis import AnalysisAgent, failed_result
from academy_ml.agents.generation import TrainingExample
from academy_ml.agents.knowledge import CandidateRecord, KnowledgeBase, ResultRecord
from academy_ml.agents.search_space import Candidate, Task, exploit, explore_candidates
from academy_ml.compute.placement import InMemoryAffinity, Placer, resolve_task
from academy_ml.compute.tasks import BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore, to_arrow
from academy_ml.compute.tasks.request import compile_request
from academy_ml.compute.tasks.specs import decode_pipelines, encode_pipelines
from academy_ml.exceptions import GeneratorExhausted

if TYPE_CHECKING:
    from academy.handle import Handle

    from academy_ml.agents.planner import PlannerAgent

__all__ = ["PipelineAnalysisAgent", "PipelineGenerator"]

logger = logging.getLogger(__name__)


class PipelineGenerator:
    """Proposes pipelines over known columns: explores, then exploits the best results.

    Args:
        numeric: Numeric column names of the dataset.
        categorical: Categorical column names.
        task: ``"regression"`` or ``"classification"``.
        seed: Makes the proposals reproducible.
        max_k: Largest PCA / SelectKBest size.
        models: Model families to propose (None: all of the task's).
    """

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str] = (),
        *,
        task: Task = "regression",
        seed: int = 0,
        max_k: int = 8,
        models: Sequence[str] | None = None,
    ) -> None:
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.models = None if models is None else tuple(models)
        self.task: Task = task
        self.seed = seed
        self.max_k = max_k
        self.version = 0
        self.rounds = 0
        self.elite: list[Candidate] = []
        self.elite_scores: list[float] = []
        self.seen: set[Candidate] = set()

    def sample(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` pipelines not proposed before, as payloads.

        Children of the best results first; when those run out, explored ones.

        Raises:
            GeneratorExhausted: Not one pipeline is left that was not proposed before.
        """
        self.rounds += 1
        seed = self.seed * 1_000_003 + self.rounds
        options: dict[str, Any] = {"task": self.task, "max_k": self.max_k, "models": self.models}
        fresh: dict[Candidate, None] = {}
        sources: list[Callable[[], list[Candidate]]] = []
        if self.elite:
            scores = self.elite_scores
            sources.append(
                functools.partial(exploit, self.elite, 4 * n, scores=scores, seed=seed, **options)
            )
        sources.append(functools.partial(explore_candidates, 4 * n, seed=seed, **options))
        for propose in sources:
            try:
                proposed = propose()
            except GeneratorExhausted as exhausted:
                proposed = exhausted.partial
            fresh.update((c, None) for c in proposed if c not in self.seen)
            if len(fresh) >= n:
                break
        if not fresh:
            raise GeneratorExhausted(
                f"no pipeline left that was not proposed before ({len(self.seen)} proposed)"
            )
        chosen = list(fresh)[:n]
        self.seen.update(chosen)
        return [self.payload(c) for c in chosen]

    def payload(self, candidate: Candidate) -> dict[str, Any]:
        """A candidate's payload: its choices and its pipeline's spec."""
        pipeline = candidate.build(self.numeric, self.categorical, self.task)
        return {
            "candidate": dataclasses.asdict(candidate),
            "pipeline": encode_pipelines([pipeline]),
        }

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        """Breed later proposals from these results (best first); returns the new version."""
        self.elite = [Candidate(**e.payload["candidate"]) for e in examples]
        self.elite_scores = [e.metrics["score"] for e in examples]
        self.version += 1
        return self.version


class PipelineAnalysisAgent(AnalysisAgent):
    """Cross-validates candidate pipelines on a dataset, in batches placed on endpoints.

    Args:
        dataset: Import path of a function returning ``(X, y)``.
        planner: See :class:`AnalysisAgent`.
        knowledge: See :class:`AnalysisAgent`.
        cv: Number of folds.
        scoring: A scikit-learn scoring name (None: the estimator's default).
        batch_size: Most candidates per batch.
        batch_wait_s: How long the first candidate of a batch waits for others.
        placer: Places the batches (default: a placer over ``endpoint`` and ``backups``).
        **options: See :class:`AnalysisAgent` (``endpoint``, ``backups``, ...).
    """

    def __init__(
        self,
        dataset: str,
        planner: Handle[PlannerAgent],
        knowledge: KnowledgeBase | str,
        *,
        cv: int = 5,
        scoring: str | None = None,
        batch_size: int = 16,
        batch_wait_s: float = 0.2,
        placer: Placer[BatchResult] | None = None,
        **options: Any,
    ) -> None:
        super().__init__("academy_ml.compute.tasks.run_batch", planner, knowledge, **options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.cv = cv
        self.scoring = scoring
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self._placer = placer
        self._table: Any = None
        self._waiting: list[tuple[CandidateRecord, asyncio.Future[ResultRecord]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self.state.update(batches=0, executed=0, cache_hits=0)

    @property
    def placer(self) -> Placer[BatchResult]:
        """The placer batches go through."""
        if self._placer is None:
            endpoints = [self.endpoint, *self.backups.values()]
            self._placer = Placer(endpoints, InMemoryAffinity())
        return self._placer

    async def agent_on_startup(self) -> None:
        """Load the dataset once (its Arrow form is what every batch compiles against)."""
        await super().agent_on_startup()
        # Any callable resolves by import path; this one takes no argument.
        load = cast("Callable[[], tuple[Any, Any]]", resolve_task(self.dataset))
        X, y = load()
        self._table = to_arrow(X, y)

    async def agent_on_shutdown(self) -> None:
        """Abandon batches in flight (the ledger keeps their candidates), then as the base."""
        for task in self._batches:
            task.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        await super().agent_on_shutdown()

    async def _attempts(self, candidate: CandidateRecord) -> ResultRecord:
        attempt = await self.kb.start_attempt(candidate.id)
        if attempt > self.max_attempts:
            return failed_result(candidate, f"gave up after {self.max_attempts} attempts")
        future: asyncio.Future[ResultRecord] = asyncio.get_running_loop().create_future()
        self._waiting.append((candidate, future))
        if len(self._waiting) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_wait_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.create_task(self._run_batch(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run_batch(
        self, batch: list[tuple[CandidateRecord, asyncio.Future[ResultRecord]]]
    ) -> None:
        """Compile, place and run one batch; give every waiting candidate its result."""
        runnable, pipelines = [], []
        for candidate, future in batch:
            try:
                (pipeline,) = decode_pipelines(candidate.payload["pipeline"])
            except Exception as error:  # one bad spec fails its candidate, not the batch
                future.set_result(failed_result(candidate, f"{type(error).__name__}: {error}"))
                continue
            runnable.append((candidate, future))
            pipelines.append(pipeline)
        if not runnable:
            return
        try:
            result = await self._place(pipelines)
        except Exception as error:
            reason = f"batch failed: {type(error).__name__}: {error}"
            logger.warning("%s (%d candidates)", reason, len(runnable))
            self.state["consecutive_failures"] += 1
            await self.emit("evaluation_failed")
            for candidate, future in runnable:
                future.set_result(failed_result(candidate, reason))
            return
        self.state["consecutive_failures"] = 0
        self.state["batches"] += 1
        self.state["executed"] += result.executed
        self.state["cache_hits"] += result.cache_hits
        for (candidate, future), scores in zip(runnable, result.results, strict=True):
            score = scores.mean_score
            if scores.error is not None or not np.isfinite(score):
                future.set_result(failed_result(candidate, scores.error or "no finite score"))
            else:
                future.set_result(
                    ResultRecord(
                        candidate_id=candidate.id,
                        model_version=candidate.model_version,
                        metrics={"score": score},
                        flags={"ok": True},
                    )
                )

    async def _place(self, pipelines: list[Any]) -> BatchResult:
        table = self._table
        request, _ = await asyncio.to_thread(
            compile_request, pipelines, table, cv=self.cv, scoring=self.scoring
        )
        # Where the placer reads datasets it pushes to endpoints (as make_request does).
        store = self.placer.datasets or DatasetStore()
        await asyncio.to_thread(store.put, table, request.dataset)
        result: BatchResult = await asyncio.wrap_future(self.placer.submit(request))
        return result

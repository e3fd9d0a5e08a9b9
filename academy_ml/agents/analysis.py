"""The analysis agent: evaluates each candidate of the ledger once, on an endpoint.

Work comes from two places: hand-overs from the generation agent
(:meth:`AnalysisAgent.submit`) and a sweep of the knowledge base's ledger at
startup and every ``sweep_interval_s``, which finds candidates whose
hand-over or evaluation a crash interrupted. How candidates are evaluated is
the agent's :class:`~academy_ml.agents.evaluators.Evaluator`: one function
call per candidate, or batches of pipelines compiled and placed together.
Candidates waiting at the same time go out together, up to the evaluator's
``batch_size``, to the agent's current endpoint.

Every evaluation start is counted in the ledger (``start_attempt``); a
candidate whose evaluations keep failing or dying gets a ``failed`` result
after ``max_attempts``, so the loop neither loses it nor retries it forever.
A failed batch raises the ``evaluation_failed`` event once (a strategy may
:meth:`~AnalysisAgent.redirect` later batches to a backup endpoint, or
:meth:`~AnalysisAgent.scale` the endpoint) before its candidates are tried
again. Results are stored with ``add_result``, which keeps exactly one per
candidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from academy.agent import action, loop

from academy_ml.agents.evaluators import Evaluator, failed_result
from academy_ml.agents.knowledge import CandidateRecord, KnowledgeFactory, ResultRecord
from academy_ml.agents.strategic import StrategicAgent, call_with_timeout, strategic_action
from academy_ml.compute.placement import Endpoint, LocalEndpoint, Scalable
from academy_ml.exceptions import ActionError

if TYPE_CHECKING:
    from academy.handle import Handle

    from academy_ml.agents.planner import PlannerAgent

__all__ = ["AnalysisAgent"]

logger = logging.getLogger(__name__)

#: A candidate waiting in a batch, and where its outcome goes: a result, or why the batch failed.
_Waiting = tuple[CandidateRecord, asyncio.Future[ResultRecord | str]]


class AnalysisAgent(StrategicAgent):
    """Evaluates candidates on an endpoint; one stored result per candidate.

    Args:
        evaluator: How candidates are evaluated (see :mod:`academy_ml.agents.evaluators`).
        planner: Handle to the planner, told of every result and of the queue depth.
        knowledge: See :class:`StrategicAgent`.
        endpoint: Where evaluations run (default: a local thread pool).
        backups: Endpoints :meth:`redirect` may switch to, by name.
        owns_endpoints: Close ``endpoint`` and ``backups`` at shutdown (the
            launcher's agents own the endpoints it built for them).
        sweep_interval_s: Seconds between sweeps of the ledger.
        max_attempts: Evaluations started per candidate before it is given up as failed.
        call_timeout_s: How long a report to the planner may take.
        **options: See :class:`StrategicAgent`.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        planner: Handle[PlannerAgent],
        knowledge: KnowledgeFactory,
        *,
        endpoint: Endpoint | None = None,
        backups: Mapping[str, Endpoint] | None = None,
        owns_endpoints: bool = False,
        sweep_interval_s: float = 5.0,
        max_attempts: int = 3,
        call_timeout_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(knowledge, **options)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.evaluator = evaluator
        self.planner = planner
        self.sweep_interval_s = sweep_interval_s
        self.max_attempts = max_attempts
        self.call_timeout_s = call_timeout_s
        self._endpoint = endpoint
        self.backups = dict(backups or {})
        # Endpoints closed at shutdown: a default pool, or all when owned.
        self._owned: list[Endpoint] = []
        if owns_endpoints:
            self._owned = [e for e in (endpoint, *self.backups.values()) if e is not None]
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._waiting: list[_Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self.state.update(
            evaluated=0,
            failed=0,
            queue_depth=0,
            consecutive_failures=0,
            batches=0,
            endpoint=None if endpoint is None else endpoint.name,
        )

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint evaluations run on (a local pool opened on first use by default)."""
        if self._endpoint is None:
            self._endpoint = LocalEndpoint(f"{self.name}-local")
            self._owned.append(self._endpoint)
        return self._endpoint

    async def agent_on_startup(self) -> None:
        """Open the knowledge base (as the base), then let the evaluator prepare, once."""
        await super().agent_on_startup()
        await self.evaluator.prepare()

    async def agent_on_shutdown(self) -> None:
        """Abandon evaluations in flight (the ledger keeps them), close owned endpoints."""
        if self._timer is not None:
            self._timer.cancel()
        in_flight = [*self._pending.values(), *self._batches]
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        for endpoint in self._owned:
            endpoint.close()
        await super().agent_on_shutdown()

    @strategic_action
    async def submit(self, candidate_ids: list[str]) -> int:
        """Queue candidates (ids in the knowledge base) not evaluated or queued yet.

        Returns:
            How many were queued.
        """
        fresh = [cid for cid in candidate_ids if not await self.kb.results_for(cid)]
        queued = self._queue(fresh)
        await self._report_queue()
        return queued

    @action
    async def queue_depth(self) -> int:
        """Candidates queued or being evaluated."""
        return len(self._pending)

    @loop
    async def sweep(self, shutdown: asyncio.Event) -> None:
        """Queue the ledger's candidates without a result, at startup and periodically."""

        async def step() -> None:
            if self._queue(await self.kb.pending()):
                await self._report_queue()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), self.sweep_interval_s)

        await self.keep_stepping("sweep", shutdown, step)

    def _queue(self, candidate_ids: Iterable[str]) -> int:
        # The task is registered before anything is awaited, so a sweep and a
        # hand-over of the same id never both evaluate it.
        queued = 0
        for cid in candidate_ids:
            if cid not in self._pending:
                self._pending[cid] = asyncio.create_task(self._evaluate_candidate(cid))
                queued += 1
        return queued

    async def _report_queue(self) -> None:
        self.state["queue_depth"] = len(self._pending)
        try:
            await call_with_timeout(
                self.planner.report_queue(len(self._pending)), self.call_timeout_s
            )
        except Exception as error:
            logger.warning("could not report the queue depth to the planner: %s", error)

    async def _evaluate_candidate(self, cid: str) -> None:
        """Evaluate one candidate (unless it has a result), store and report the result."""
        try:
            candidate = await self.kb.candidate(cid)
            if candidate is None:
                logger.warning("candidate %s is not in the knowledge base; skipped", cid)
                return
            if await self.kb.results_for(cid):
                return
            result = await self._attempts(candidate)
            stored = await self.kb.add_result(result)
        finally:
            self._pending.pop(cid, None)
        if not stored:
            return
        self.state["evaluated"] += 1
        self.state["failed"] += result.flags.get("failed", False)
        self.state["queue_depth"] = len(self._pending)
        await self.emit("result")
        try:
            await call_with_timeout(
                self.planner.record_result(cid, len(self._pending)), self.call_timeout_s
            )
        except Exception as error:
            logger.warning("could not report %s to the planner: %s", cid, error)

    async def _attempts(self, candidate: CandidateRecord) -> ResultRecord:
        """Evaluate in a batch, again (on the endpoint current then) until ``max_attempts``."""
        while True:
            attempt = await self.kb.start_attempt(candidate.id)
            if attempt > self.max_attempts:
                return failed_result(candidate, f"gave up after {self.max_attempts} attempts")
            outcome = await self._join_batch(candidate)
            if isinstance(outcome, ResultRecord):
                return outcome
            logger.warning(
                "evaluation of %s failed (attempt %d): %s", candidate.id, attempt, outcome
            )
            if attempt >= self.max_attempts:
                return failed_result(candidate, outcome)

    def _join_batch(self, candidate: CandidateRecord) -> asyncio.Future[ResultRecord | str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultRecord | str] = loop.create_future()
        self._waiting.append((candidate, future))
        if len(self._waiting) >= self.evaluator.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.evaluator.batch_wait_s, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.create_task(self._run_batch(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        """Evaluate one batch on the current endpoint; give every waiting candidate its outcome.

        A batch that fails raises ``evaluation_failed`` before its candidates
        learn of it, so a strategy's redirect applies to their next attempt.
        """
        candidates = [candidate for candidate, _ in batch]
        try:
            evaluation = await self.evaluator.evaluate(candidates, self.endpoint)
            if len(evaluation.results) != len(candidates):
                raise ValueError(
                    f"{len(evaluation.results)} results for {len(candidates)} candidates"
                )
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            self.state["consecutive_failures"] += 1
            try:
                await self.emit("evaluation_failed")
            finally:
                for _, future in batch:
                    if not future.done():
                        future.set_result(reason)
            return
        self.state["consecutive_failures"] = 0
        self.state["batches"] += 1
        for name, count in evaluation.counts.items():
            self.state[name] = self.state.get(name, 0) + count
        for (_, future), result in zip(batch, evaluation.results, strict=True):
            if not future.done():
                future.set_result(result)

    @strategic_action
    async def redirect(self, endpoint: str) -> str:
        """Send later evaluations to the backup endpoint named ``endpoint``.

        Raises:
            ActionError: No backup of that name.
        """
        if endpoint not in self.backups:
            known = ", ".join(sorted(self.backups)) or "none"
            raise ActionError(f"{self.name} has no backup endpoint {endpoint!r} (backups: {known})")
        self._endpoint = self.backups[endpoint]
        self.state.update(endpoint=endpoint, consecutive_failures=0)
        return endpoint

    @strategic_action
    async def scale(self, max_blocks: int) -> int:
        """Change the current endpoint's ``max_blocks`` (endpoints that scale, e.g. Parsl).

        Raises:
            ActionError: The endpoint does not scale.
        """
        endpoint = self.endpoint
        if not isinstance(endpoint, Scalable):
            raise ActionError(f"endpoint {endpoint.name!r} does not scale")
        endpoint.set_max_blocks(max_blocks)
        return max_blocks

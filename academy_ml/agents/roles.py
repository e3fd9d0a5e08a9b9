"""The agent roles of a discovery loop: generation -> analysis -> planner.

* :class:`GenerationAgent` samples candidates from a pluggable generator,
  records them (each with the model version that produced it) and hands
  them to the analysis agent, until paused or told to stop.
* :class:`AnalysisAgent` evaluates each candidate once by running a user's
  importable function on an endpoint, stores one result per candidate and
  reports it to the planner as soon as it finishes.
* :class:`PlannerAgent` owns the strategies: backpressure (pause generation
  while the analysis queue is deep, resume once it drains), retraining
  (after enough new stable results) and the budget (stop generating).

Wiring them takes registrations, since each needs a handle to the next::

    gen_reg = await manager.register_agent(GenerationAgent)
    ana_reg = await manager.register_agent(AnalysisAgent)
    plan_reg = await manager.register_agent(PlannerAgent)
    gen, ana, plan = (Handle(reg.agent_id) for reg in (gen_reg, ana_reg, plan_reg))
    await manager.launch(PlannerAgent, args=(gen, ana, kb), kwargs={"budget": 500},
                         registration=plan_reg)
    await manager.launch(AnalysisAgent, args=("pkg.mod.evaluate", plan, kb),
                         registration=ana_reg)
    await manager.launch(GenerationAgent, args=(generator, ana, kb), registration=gen_reg)

``kb`` is a knowledge base shared by reference (agents on threads of this
process) or a Redis URL (agents anywhere).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgpack
from academy.agent import action, loop
from academy.handle import Handle

from academy_ml.agents.strategic import StrategicAgent, strategic_action, wait_any
from academy_ml.knowledge import CandidateRecord, KnowledgeBase, ModelVersion, ResultRecord
from academy_ml.placement import Endpoint, LocalEndpoint
from academy_ml.strategies import (
    Call,
    KnowledgeCount,
    OnCall,
    Predicate,
    StateAtLeast,
    Stop,
    Strategy,
    StrategyContext,
)

__all__ = ["AnalysisAgent", "GenerationAgent", "Generator", "PlannerAgent"]

logger = logging.getLogger(__name__)


class Generator(Protocol):
    """A generative model the generation agent wraps."""

    def sample(self, n: int) -> list[dict[str, Any]]:
        """Propose ``n`` candidates (msgpack-encodable payloads)."""
        ...

    def retrain(self, records: Sequence[ResultRecord]) -> int:
        """Retrain on ``records`` (best first) and return the new, higher model version."""
        ...


class GenerationAgent(StrategicAgent):
    """Samples candidates and sends them to the analysis agent, batch after batch.

    Candidate ids are ``<name>-<n>`` with ``n`` counting from 0.

    Args:
        generator: The model.
        analysis: Handle to the analysis agent.
        knowledge: See :class:`StrategicAgent`.
        batch_size: Candidates per batch.
        metric: Metric ranking the results the generator retrains on.
        train_size: How many of the best results it retrains on.
        **options: ``name``, ``kb_prefix``, ``checkpoint_interval_s``.
    """

    def __init__(
        self,
        generator: Generator,
        analysis: Handle[AnalysisAgent],
        knowledge: KnowledgeBase | str,
        *,
        batch_size: int = 8,
        metric: str = "score",
        train_size: int = 64,
        **options: Any,
    ) -> None:
        super().__init__(knowledge, **options)
        self.generator = generator
        self.analysis = analysis
        self.batch_size = batch_size
        self.metric = metric
        self.train_size = train_size
        self.state.update(model_version=0, generated=0, paused=False, finished=False)
        self._resumed = asyncio.Event()

    @loop
    async def generate(self, shutdown: asyncio.Event) -> None:
        """Sample, record and submit batches until shutdown or :meth:`finish`."""
        while not shutdown.is_set() and not self.state["finished"]:
            if self.state["paused"]:
                self._resumed.clear()
                await wait_any(shutdown, self._resumed)
                continue
            payloads = self.generator.sample(self.batch_size)
            version = self.state["model_version"]
            batch = []
            for payload in payloads:
                candidate = CandidateRecord(
                    id=f"{self.name}-{self.state['generated']}",
                    model_version=version,
                    payload=payload,
                )
                self.state["generated"] += 1
                await self.kb.add_candidate(candidate)
                batch.append(candidate.to_bytes())
            await self.analysis.submit(batch)

    @strategic_action
    async def pause(self) -> None:
        """Stop sampling until :meth:`resume`."""
        self.state["paused"] = True

    @strategic_action
    async def resume(self) -> None:
        """Sample again after :meth:`pause`."""
        self.state["paused"] = False
        self._resumed.set()

    @strategic_action
    async def finish(self) -> None:
        """Stop sampling for good (the generation loop ends)."""
        self.state["finished"] = True
        self._resumed.set()

    @strategic_action
    async def retrain(self) -> int:
        """Retrain the generator on the best results so far and register the new version.

        Raises:
            ValueError: The generator returned a version not above the current one.
        """
        records = await self.kb.top_k(self.metric, self.train_size)
        version = self.generator.retrain(records)
        if version <= self.state["model_version"]:
            raise ValueError(
                f"retrain returned version {version}, not above {self.state['model_version']}"
            )
        self.state["model_version"] = version
        await self.kb.register_model(
            ModelVersion(name=self.name, version=version, metrics={"train_size": len(records)})
        )
        return version


class AnalysisAgent(StrategicAgent):
    """Evaluates candidates on an endpoint; one stored result per candidate.

    The function is given the candidate's payload as msgpack bytes and
    returns ``{"metrics": {name: float}, "flags": {name: bool}}``. A function
    that raises, or returns anything else, yields a result flagged ``failed``.

    Args:
        function: Import path of the evaluation function (``pkg.mod.fn``).
        planner: Handle to the planner, told of every result and of the queue depth.
        knowledge: See :class:`StrategicAgent`.
        endpoint: Where the function runs (default: a local thread pool).
        **options: ``name``, ``kb_prefix``, ``checkpoint_interval_s``.
    """

    def __init__(
        self,
        function: str,
        planner: Handle[PlannerAgent],
        knowledge: KnowledgeBase | str,
        *,
        endpoint: Endpoint | None = None,
        **options: Any,
    ) -> None:
        super().__init__(knowledge, **options)
        self.function = function
        self.planner = planner
        self._endpoint = endpoint
        self._owned: Endpoint | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}
        self.state.update(evaluated=0, failed=0)

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint evaluations run on (a local pool opened on first use by default)."""
        if self._endpoint is None:
            self._endpoint = self._owned = LocalEndpoint(f"{self.name}-local")
        return self._endpoint

    async def agent_on_shutdown(self) -> None:
        """Abandon evaluations in flight, close an endpoint of its own, then checkpoint."""
        for task in self._pending.values():
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        if self._owned is not None:
            self._owned.close()
        await super().agent_on_shutdown()

    @strategic_action
    async def submit(self, candidates: list[bytes]) -> int:
        """Queue candidates (:class:`CandidateRecord` bytes) not evaluated or queued yet.

        Returns:
            How many were queued.
        """
        queued = 0
        for data in candidates:
            candidate = CandidateRecord.from_bytes(data)
            if candidate.id in self._pending or await self.kb.results_for(candidate.id):
                continue
            payload = msgpack.packb(candidate.payload, use_bin_type=True)
            future = asyncio.wrap_future(self.endpoint.submit(self.function, payload))
            self._pending[candidate.id] = asyncio.create_task(self._record(candidate, future))
            queued += 1
        await self.planner.report_queue(len(self._pending))
        return queued

    @action
    async def queue_depth(self) -> int:
        """Candidates queued or being evaluated."""
        return len(self._pending)

    async def _record(self, candidate: CandidateRecord, future: asyncio.Future[Any]) -> None:
        """Store the result of one evaluation and report it to the planner."""
        try:
            result = _result(candidate, await future)
        except Exception as err:
            logger.warning("evaluation of %s failed: %s: %s", candidate.id, type(err).__name__, err)
            result = ResultRecord(
                candidate_id=candidate.id,
                model_version=candidate.model_version,
                metrics={},
                flags={"failed": True},
            )
        stored = await self.kb.add_result(result)
        del self._pending[candidate.id]
        if not stored:
            return
        self.state["evaluated"] += 1
        self.state["failed"] += result.flags.get("failed", False)
        await self.emit("result")
        try:
            await self.planner.record_result(candidate.id, len(self._pending))
        except Exception:
            logger.warning("could not report %s to the planner", candidate.id, exc_info=True)


def _result(candidate: CandidateRecord, output: Any) -> ResultRecord:
    """The result record of ``candidate`` from what the evaluation function returned."""
    if not isinstance(output, Mapping):
        raise TypeError(f"evaluation returned {type(output).__name__}, not a mapping")
    return ResultRecord(
        candidate_id=candidate.id,
        model_version=candidate.model_version,
        metrics=dict(output.get("metrics", {})),
        flags=dict(output.get("flags", {})),
    )


class PlannerAgent(StrategicAgent):
    """Decides: backpressure, retraining and the budget, as strategies.

    Args:
        generation: Handle to the generation agent.
        analysis: Handle to the analysis agent.
        knowledge: See :class:`StrategicAgent`.
        budget: Results after which generation finishes and the strategies stop.
        retrain_after: New results with ``retrain_flag`` since the current
            model version that trigger a retrain.
        retrain_flag: The flag those results carry (None: any result).
        high_water: Queue depth above which generation pauses.
        low_water: Queue depth at or below which it resumes (default: half of ``high_water``).
        **options: ``name``, ``kb_prefix``, ``checkpoint_interval_s``.
    """

    def __init__(
        self,
        generation: Handle[GenerationAgent],
        analysis: Handle[AnalysisAgent],
        knowledge: KnowledgeBase | str,
        *,
        budget: int,
        retrain_after: int = 16,
        retrain_flag: str | None = "stable",
        high_water: int = 64,
        low_water: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(knowledge, **options)
        self.generation = generation
        self.analysis = analysis
        self.budget = budget
        self.retrain_after = retrain_after
        self.retrain_flag = retrain_flag
        self.high_water = high_water
        self.low_water = high_water // 2 if low_water is None else low_water
        if not 0 <= self.low_water < self.high_water:
            raise ValueError(f"need 0 <= low_water < high_water, got {low_water}, {high_water}")
        self.state.update(model_version=0, results=0, queue_depth=0, paused=False)

    def strategies(self) -> Sequence[Strategy]:
        """Backpressure (pause, resume), retrain, budget; evaluated in that order."""
        on_queue = OnCall("record_result") | OnCall("report_queue")
        return (
            Strategy(
                "backpressure-pause",
                when=on_queue,
                if_=Predicate(self._deep, f"generation running, queue above {self.high_water}"),
                then=[Call("pause_generation")],
            ),
            Strategy(
                "backpressure-resume",
                when=on_queue,
                if_=Predicate(self._drained, f"generation paused, queue at most {self.low_water}"),
                then=[Call("resume_generation")],
            ),
            Strategy(
                "retrain",
                when=OnCall("record_result"),
                if_=KnowledgeCount(self.retrain_flag, at_least=self.retrain_after),
                then=[Call("retrain_generator")],
            ),
            Strategy(
                "budget",
                when=OnCall("record_result"),
                if_=StateAtLeast("results", self.budget),
                then=[Call("finish_generation"), Stop()],
            ),
        )

    def _deep(self, context: StrategyContext) -> bool:
        return not context.state["paused"] and context.state["queue_depth"] > self.high_water

    def _drained(self, context: StrategyContext) -> bool:
        return bool(context.state["paused"]) and context.state["queue_depth"] <= self.low_water

    @strategic_action
    async def record_result(self, candidate_id: str, queue_depth: int) -> None:
        """Told by the analysis agent that ``candidate_id`` has its result."""
        self.state["results"] += 1
        self.state["queue_depth"] = queue_depth

    @strategic_action
    async def report_queue(self, queue_depth: int) -> None:
        """Told by the analysis agent how deep its queue is."""
        self.state["queue_depth"] = queue_depth

    async def pause_generation(self) -> None:
        """Pause the generation agent."""
        await self.generation.pause()
        self.state["paused"] = True

    async def resume_generation(self) -> None:
        """Resume the generation agent."""
        await self.generation.resume()
        self.state["paused"] = False

    async def retrain_generator(self) -> int:
        """Retrain the generator; later results count towards the next retrain."""
        version: int = await self.generation.retrain()
        self.state["model_version"] = version
        return version

    async def finish_generation(self) -> None:
        """Tell the generation agent to stop for good (the budget is spent)."""
        await self.generation.finish()

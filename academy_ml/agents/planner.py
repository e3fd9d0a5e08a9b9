"""The planner agent: backpressure, retraining and the budget, as strategies.

What the planner counts comes from the knowledge base, not from the calls it
was given: results are counted there, the model version is the generator's
latest registered one, and its strategies also run every
``review_interval_s``. So a planner killed and started again (it restores its
checkpoint by name) misses nothing that happened while it was down, and
counts nothing twice.

The planner also stops when the generation agent has finished on its own
(its generator ran out of candidates): no budget is then reachable, and the
deployment ends once the ledger drains.

A planner that stopped at its budget and is started again with a larger one
(``up --resume --set planner.budget=N``) continues: it clears its stop at
startup, and its next review reopens the generation agent. One that stopped
because generation finished on its own, or whose budget is still spent,
stays stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from academy_ml.agents.knowledge import KnowledgeFactory
from academy_ml.agents.strategic import StrategicAgent, call_with_timeout, strategic_action
from academy_ml.agents.strategies import (
    Call,
    Interval,
    KnowledgeCount,
    OnCall,
    Predicate,
    Stop,
    Strategy,
    StrategyContext,
)

if TYPE_CHECKING:
    from academy.handle import Handle

    from academy_ml.agents.analysis import AnalysisAgent
    from academy_ml.agents.generation import GenerationAgent

__all__ = ["PlannerAgent"]

logger = logging.getLogger(__name__)

#: How long the review asks another agent for its queue or state.
REVIEW_CALL_TIMEOUT_S = 5.0


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
        model_name: Name the generation agent registers its model versions under.
        review_interval_s: Seconds between evaluations of the retrain and
            budget strategies without a call (catching up after a restart).
        call_timeout_s: How long a call to the generation agent may take.
        **options: See :class:`StrategicAgent`.
    """

    def __init__(
        self,
        generation: Handle[GenerationAgent],
        analysis: Handle[AnalysisAgent],
        knowledge: KnowledgeFactory,
        *,
        budget: int,
        retrain_after: int = 16,
        retrain_flag: str | None = "stable",
        high_water: int = 64,
        low_water: int | None = None,
        model_name: str = "GenerationAgent",
        review_interval_s: float = 5.0,
        call_timeout_s: float = 120.0,
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
        self.model_name = model_name
        self.review_interval_s = review_interval_s
        self.call_timeout_s = call_timeout_s
        self.state.update(
            model_version=0,
            results=0,
            queue_depth=0,
            paused=False,
            generation_finished=False,
            # The budget at which this planner finished generation (None: it did not).
            finished_at_budget=None,
            # Generation is to be reopened (the budget was raised after it finished).
            reopening=False,
        )
        self._observed: datetime | None = None

    def strategies(self) -> Sequence[Strategy]:
        """Reopen, backpressure (pause, resume), retrain, budget, generation finished; in order."""
        tick = Interval(self.review_interval_s)
        review = OnCall("record_result") | tick
        on_queue = review | OnCall("report_queue")
        return (
            Strategy(
                "reopen",
                when=tick,  # a catch-up after a restart: not worth an evaluation per result
                if_=Predicate(self.reopening, "budget raised after generation finished"),
                then=[Call("reopen_generation")],
            ),
            Strategy(
                "backpressure-pause",
                when=on_queue,
                if_=Predicate(
                    self.queue_deep, f"generation running, queue above {self.high_water}"
                ),
                then=[Call("pause_generation")],
            ),
            Strategy(
                "backpressure-resume",
                when=on_queue,
                if_=Predicate(
                    self.queue_drained, f"generation paused, queue at most {self.low_water}"
                ),
                then=[Call("resume_generation")],
            ),
            Strategy(
                "retrain",
                when=review,
                if_=KnowledgeCount(self.retrain_flag, at_least=self.retrain_after),
                then=[Call("retrain_generator")],
            ),
            Strategy(
                "budget",
                when=review,
                if_=Predicate(self.budget_spent, f"at least {self.budget} results"),
                then=[Call("finish_generation"), Stop()],
            ),
            Strategy(
                "generation-finished",
                when=review,
                if_=Predicate(self.generation_finished, "generation finished on its own"),
                then=[Stop()],
            ),
        )

    async def agent_on_startup(self) -> None:
        """Restore the checkpoint, catch up with the knowledge base, continue past an old budget."""
        await super().agent_on_startup()
        await self.refresh()
        self._continue_if_budget_raised()

    def _continue_if_budget_raised(self) -> None:
        """Clear a stop the budget caused if the (new) budget is above the results.

        Done before the agent answers anything, so ``up`` never sees the run as
        stopped; the generation agent may not be up yet, so the review reopens it.
        """
        old = self.state["finished_at_budget"]
        if not self.runner.stop_requested or old is None or self.state["results"] >= self.budget:
            return
        logger.info(
            "%s: budget raised from %d to %d with %d results: continuing",
            self.name,
            old,
            self.budget,
            self.state["results"],
        )
        self.runner.context.stop_requested = False
        self.state.update(strategies_stopped=False, finished_at_budget=None, reopening=True)

    async def refresh(self) -> None:
        """Read the result count and the latest model version from the knowledge base."""
        self.state["results"] = (await self.kb.counts())["results"]
        model = await self.kb.latest_model(self.model_name)
        if model is not None and model.version > self.state["model_version"]:
            self.state["model_version"] = model.version

    async def _observe(self, context: StrategyContext) -> None:
        """On a review tick, ask the other agents what a missed call would have said.

        After a restart the checkpointed queue depth and pause flag may be
        stale, and no call may come to correct them (the queue is empty).
        """
        if context.signal is not None or context.now == self._observed:
            return
        self._observed = context.now  # once per review tick, whichever strategy asks first
        with contextlib.suppress(Exception):
            depth = await call_with_timeout(self.analysis.queue_depth(), REVIEW_CALL_TIMEOUT_S)
            self.state["queue_depth"] = depth
        with contextlib.suppress(Exception):
            answer = await call_with_timeout(self.generation.status(), REVIEW_CALL_TIMEOUT_S)
            self.state["paused"] = bool(answer["state"]["paused"])
            self.state["generation_finished"] = bool(answer["state"].get("finished", False))

    async def queue_deep(self, context: StrategyContext) -> bool:
        """Generation runs while the analysis queue is above the high-water mark."""
        await self._observe(context)
        return not context.state["paused"] and context.state["queue_depth"] > self.high_water

    async def queue_drained(self, context: StrategyContext) -> bool:
        """Generation is paused and the analysis queue is down to the low-water mark."""
        return bool(context.state["paused"]) and context.state["queue_depth"] <= self.low_water

    async def generation_finished(self, context: StrategyContext) -> bool:
        """The generation agent reports it has finished (e.g. its generator is exhausted).

        Not while it is still to be reopened: it then reports the finish of the last run.
        """
        await self._observe(context)
        return not context.state["reopening"] and bool(context.state["generation_finished"])

    async def reopening(self, context: StrategyContext) -> bool:
        """The budget was raised on a restart and generation is not reopened yet."""
        return bool(context.state["reopening"])

    async def budget_spent(self, context: StrategyContext) -> bool:
        """The knowledge base holds at least ``budget`` results."""
        await self.refresh()
        return bool(context.state["results"] >= self.budget)

    @strategic_action
    async def record_result(self, candidate_id: str, queue_depth: int) -> None:
        """Told by the analysis agent that ``candidate_id`` has its result."""
        self.state["queue_depth"] = queue_depth

    @strategic_action
    async def report_queue(self, queue_depth: int) -> None:
        """Told by the analysis agent how deep its queue is."""
        self.state["queue_depth"] = queue_depth

    async def pause_generation(self) -> None:
        """Pause the generation agent."""
        await call_with_timeout(self.generation.pause(), self.call_timeout_s)
        self.state["paused"] = True

    async def resume_generation(self) -> None:
        """Resume the generation agent."""
        await call_with_timeout(self.generation.resume(), self.call_timeout_s)
        self.state["paused"] = False

    async def retrain_generator(self) -> int:
        """Retrain the generator; later results count towards the next retrain."""
        version: int = await call_with_timeout(self.generation.retrain(), self.call_timeout_s)
        self.state["model_version"] = version
        return version

    async def finish_generation(self) -> None:
        """Tell the generation agent to stop (the budget is spent)."""
        await call_with_timeout(self.generation.finish(), self.call_timeout_s)
        self.state["finished_at_budget"] = self.budget

    async def reopen_generation(self) -> None:
        """Tell the generation agent to sample again (the budget was raised)."""
        await call_with_timeout(self.generation.reopen(), self.call_timeout_s)
        self.state.update(reopening=False, generation_finished=False)

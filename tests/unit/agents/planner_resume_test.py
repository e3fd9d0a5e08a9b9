"""A planner and a generation agent restarted on a run that finished: a raised budget continues it.

The agents are driven directly (no exchange), in one event loop over one
in-memory knowledge base, as ``up --resume`` restarts them from their
checkpoints; an analysis stand-in stores a result per candidate at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from academy_ml.agents import GenerationAgent, PlannerAgent, TrainingExample
from academy_ml.agents.knowledge import InMemoryKnowledge, InMemoryKnowledgeBase, ResultRecord
from academy_ml.exceptions import GeneratorExhausted

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 60.0)

    return asyncio.run(bounded())


async def poll(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(20.0):
        while not check():
            await asyncio.sleep(0.01)


class Counter:
    """Proposes ``0, 1, 2, ...`` (up to ``limit``, then runs dry); it survives a restart."""

    def __init__(self, limit: int | None = None) -> None:
        self.next = 0
        self.limit = limit

    def sample(self, n: int) -> list[dict[str, Any]]:
        end = self.next + n if self.limit is None else min(self.next + n, self.limit)
        taken = [{"x": x} for x in range(self.next, end)]
        self.next = end
        if len(taken) < n:
            raise GeneratorExhausted(f"{len(taken)} of {n} left", taken)
        return taken

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        raise AssertionError("no retrain in these tests")


class Analysis:
    """Stores a result for every candidate handed over, and tells the planner each time."""

    def __init__(self, kb: InMemoryKnowledgeBase) -> None:
        self.kb = kb
        self.planner: PlannerAgent | None = None

    async def submit(self, ids: list[str]) -> int:
        for cid in ids:
            result = ResultRecord(candidate_id=cid, model_version=0, metrics={"score": 1.0})
            assert await self.kb.add_result(result)
            if self.planner is not None:
                await self.planner.record_result(cid, 0)
        return len(ids)

    async def queue_depth(self) -> int:
        return 0


class Run:
    """A planner and a generation agent started over ``kb`` (from their checkpoints, if any)."""

    def __init__(self, kb: InMemoryKnowledgeBase, generator: Counter, budget: int) -> None:
        self.kb = kb
        self.analysis = Analysis(kb)
        self.generation = GenerationAgent(
            generator,
            self.analysis,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            batch_size=4,
        )
        self.planner = PlannerAgent(
            self.generation,  # type: ignore[arg-type]
            self.analysis,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            budget=budget,
            retrain_after=10**6,
            review_interval_s=0.05,
        )
        self.analysis.planner = self.planner
        self.shutdown = asyncio.Event()

    async def start(self) -> None:
        await self.generation.agent_on_startup()
        await self.planner.agent_on_startup()

    async def until_planner_stops(self) -> None:
        """Run both agents' loops until the planner's strategies stop; then shut both down."""
        generating = asyncio.create_task(self.generation.generate(self.shutdown))
        await asyncio.wait_for(self.planner.run_strategies(self.shutdown), 20.0)
        await poll(lambda: bool(self.generation.state["finished"]))
        self.shutdown.set()
        await asyncio.wait_for(generating, 10.0)
        await self.stop()

    async def stop(self) -> None:
        await self.planner.agent_on_shutdown()
        await self.generation.agent_on_shutdown()

    async def fired(self, strategy: str) -> int:
        return sum(f.fired for f in await self.kb.firings(strategy=strategy))


async def results(kb: InMemoryKnowledgeBase) -> int:
    return (await kb.counts())["results"]


def test_a_budget_raised_on_restart_continues_a_finished_run_to_the_new_budget() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generator = Counter()
        first = Run(kb, generator, budget=6)
        await first.start()
        await first.until_planner_stops()
        done = await results(kb)
        assert done >= 6
        assert await first.fired("budget") == 1

        resumed = Run(kb, generator, budget=done + 10)
        await resumed.start()
        # Stopped before, but not for the new budget: not stopped now, for `up` too.
        assert not resumed.planner.runner.stop_requested
        assert not (await resumed.planner.status())["stopped"]
        assert resumed.generation.state["finished"]  # until the planner reopens it
        await resumed.until_planner_stops()
        assert await results(kb) >= done + 10
        assert await resumed.fired("reopen") == 1
        assert await resumed.fired("budget") == 2
        assert await resumed.fired("generation-finished") == 0
        assert resumed.planner.runner.stop_requested

        # Stopped at the budget it is started with again: it stays stopped.
        again = Run(kb, generator, budget=done + 10)
        await again.start()
        assert again.planner.runner.stop_requested
        assert not again.planner.state["reopening"]
        await again.stop()

    run(main)


def test_the_same_budget_on_restart_leaves_a_finished_run_finished() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generator = Counter()
        first = Run(kb, generator, budget=6)
        await first.start()
        await first.until_planner_stops()
        done = await results(kb)

        resumed = Run(kb, generator, budget=6)
        await resumed.start()
        assert resumed.planner.runner.stop_requested
        await asyncio.wait_for(resumed.planner.run_strategies(resumed.shutdown), 10.0)
        assert resumed.generation.state["finished"]
        assert await resumed.fired("reopen") == 0
        assert await results(kb) == done
        await resumed.stop()

    run(main)


def test_a_generator_that_ran_dry_on_its_own_is_not_reopened_by_a_larger_budget() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generator = Counter(limit=6)
        first = Run(kb, generator, budget=100)
        await first.start()
        await first.until_planner_stops()
        assert await first.fired("generation-finished") == 1
        assert await first.fired("budget") == 0

        resumed = Run(kb, generator, budget=200)
        await resumed.start()
        assert resumed.planner.runner.stop_requested
        assert not resumed.planner.state["reopening"]
        await resumed.stop()
        assert await results(kb) == 6

    run(main)


def test_a_generator_dry_when_the_budget_was_spent_is_tried_again_and_finishes_on_its_own() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generator = Counter(limit=8)  # two full batches: the last one spends the budget
        first = Run(kb, generator, budget=8)
        await first.start()
        await first.until_planner_stops()
        assert await first.fired("budget") == 1
        assert not first.generation.state["exhausted"]  # it has not said so yet

        resumed = Run(kb, generator, budget=20)
        await resumed.start()
        assert not resumed.planner.runner.stop_requested
        await resumed.until_planner_stops()
        assert await resumed.fired("reopen") == 1
        assert resumed.generation.state["exhausted"]
        assert await resumed.fired("generation-finished") == 1
        assert await results(kb) == 8

    run(main)

"""GenerationAgent's loop, driven directly: exhausted generators, partial batches, bad steps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from academy_ml.agents import GenerationAgent, PlannerAgent, TrainingExample
from academy_ml.agents.generation import EXHAUSTED
from academy_ml.agents.knowledge import CandidateRecord, InMemoryKnowledge, InMemoryKnowledgeBase
from academy_ml.agents.strategies import Call, OnEvent, Predicate, Strategy, StrategyContext
from academy_ml.exceptions import GeneratorExhausted

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 30.0)

    return asyncio.run(bounded())


async def poll(check: Callable[[], Awaitable[bool] | bool]) -> None:
    async with asyncio.timeout(20.0):
        while True:
            outcome = check()
            if await outcome if isinstance(outcome, Awaitable) else outcome:
                return
            await asyncio.sleep(0.01)


class Finite:
    """Proposes ``0 .. size - 1`` once each; a retrain adds ``refill`` more."""

    def __init__(self, size: int, *, refill: int = 0) -> None:
        self.items = list(range(size))
        self.next = size
        self.refill = refill
        self.version = 0

    def sample(self, n: int) -> list[dict[str, Any]]:
        taken, self.items = self.items[:n], self.items[n:]
        if len(taken) < n:
            raise GeneratorExhausted(f"{len(taken)} of {n} left", [{"x": x} for x in taken])
        return [{"x": x} for x in taken]

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        self.items += range(self.next, self.next + self.refill)
        self.next += self.refill
        self.version += 1
        return self.version


class Analysis:
    """Records hand-overs (candidate id lists)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def submit(self, ids: list[str]) -> int:
        self.batches.append(ids)
        return len(ids)


async def generate_until_finished(agent: GenerationAgent) -> None:
    """Run the generation loop until the agent has finished; then shut the loop down."""
    shutdown = asyncio.Event()
    loop = asyncio.create_task(agent.generate(shutdown))
    await poll(lambda: bool(agent.state["finished"]))
    assert not loop.done()  # a finished agent idles (until reopened), its loop goes on
    shutdown.set()
    await asyncio.wait_for(loop, 10.0)


async def payloads(kb: InMemoryKnowledgeBase) -> list[int]:
    pending = await kb.pending()
    records = [await kb.candidate(cid) for cid in pending]
    return sorted(r.payload["x"] for r in records if r is not None)


def test_an_exhausted_generator_delivers_its_partial_batch_and_finishes() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        analysis = Analysis()
        agent = GenerationAgent(Finite(11), analysis, InMemoryKnowledge(kb), batch_size=4)  # type: ignore[arg-type]
        await agent.agent_on_startup()
        # The default strategy finishes generation.
        await generate_until_finished(agent)
        assert [len(batch) for batch in analysis.batches] == [4, 4, 3]
        assert await payloads(kb) == list(range(11))
        assert agent.state["finished"]
        assert agent.state["exhausted"]
        (firing,) = await kb.firings(strategy="finish-when-exhausted")
        assert firing.fired
        assert firing.trigger == f"event {EXHAUSTED}"
        assert firing.actions == ["finish"]
        assert "loop_errors" not in agent.state

    run(main)


class Silent:
    """Runs dry without saying so: an empty sample."""

    def sample(self, n: int) -> list[dict[str, Any]]:
        return []

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        return 1


def test_an_empty_sample_counts_as_exhausted_rather_than_spinning() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        agent = GenerationAgent(Silent(), Analysis(), InMemoryKnowledge(kb))  # type: ignore[arg-type]
        await agent.agent_on_startup()
        await generate_until_finished(agent)
        assert [f.fired for f in await kb.firings(strategy="finish-when-exhausted")] == [True]

    run(main)


class Refilling(GenerationAgent):
    """Retrains once when the generator runs dry, and then leaves it idle."""

    def strategies(self) -> Sequence[Strategy]:
        async def first_time(context: StrategyContext) -> bool:
            return bool(context.state["model_version"] == 0)

        return (
            Strategy(
                "refill",
                when=OnEvent(EXHAUSTED),
                if_=Predicate(first_time, "not retrained yet"),
                then=[Call("retrain")],
            ),
        )


def test_a_strategy_may_retrain_instead_and_the_loop_idles_until_told() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generator = Finite(3, refill=5)
        agent = Refilling(generator, Analysis(), InMemoryKnowledge(kb), batch_size=4)  # type: ignore[arg-type]
        await agent.agent_on_startup()
        shutdown = asyncio.Event()
        loop = asyncio.create_task(agent.generate(shutdown))

        async def refilled_and_dry() -> bool:
            return len(await kb.pending()) == 8 and bool(agent.state["exhausted"])

        await poll(refilled_and_dry)
        assert await payloads(kb) == list(range(8))
        assert agent.state["model_version"] == 1
        fired = [f.fired for f in await kb.firings(strategy="refill")]
        assert fired == [False, True]  # newest first: dry again after the refill, no retrain
        assert not loop.done()
        assert not agent.state["finished"]

        generator.items = [100]  # resume samples again: one more, then dry again
        await agent.resume()
        await poll(lambda: agent.state["generated"] == 9 and agent.state["exhausted"])
        shutdown.set()
        await asyncio.wait_for(loop, 10.0)
        assert await payloads(kb) == [*range(8), 100]

    run(main)


class Flaky(Finite):
    """Raises on its first ``failures`` samples (a model error, a lost connection...)."""

    def __init__(self, size: int, failures: int) -> None:
        super().__init__(size)
        self.failures = failures

    def sample(self, n: int) -> list[dict[str, Any]]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("model server went away")
        return super().sample(n)


class FlakyKnowledge(InMemoryKnowledgeBase):
    """Refuses its first ``failures`` candidates, as Redis does while it restarts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def add_candidate(self, candidate: CandidateRecord) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is restarting")
        return await super().add_candidate(candidate)


def test_a_step_that_raises_is_counted_and_the_loop_goes_on() -> None:
    async def main() -> None:
        kb = FlakyKnowledge(failures=1)
        agent = GenerationAgent(
            Flaky(10, failures=2),
            Analysis(),  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            batch_size=4,
        )
        await agent.agent_on_startup()
        await generate_until_finished(agent)
        assert agent.state["loop_errors"] == {"generate": 3}
        assert (await agent.status())["failures"] == {"generate": 3}
        # The batch whose recording failed was recorded by a later step, once.
        assert await payloads(kb) == list(range(10))

    run(main)


class BrokenCheckpoints(InMemoryKnowledgeBase):
    """Cannot save its first ``failures`` checkpoints."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def save_checkpoint(self, agent: str, state: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is loading its AOF")
        await super().save_checkpoint(agent, state)


def test_the_checkpoint_loop_survives_a_knowledge_base_that_is_down() -> None:
    async def main() -> None:
        kb = BrokenCheckpoints(failures=3)
        analysis: Any = Analysis()
        agent = GenerationAgent(
            Finite(0), analysis, InMemoryKnowledge(kb), checkpoint_interval_s=0.01, name="gen"
        )
        await agent.agent_on_startup()
        shutdown = asyncio.Event()
        loop = asyncio.create_task(agent.checkpoint_periodically(shutdown))

        async def saved() -> bool:
            return await kb.load_checkpoint("gen") is not None

        await poll(saved)
        assert agent.state["loop_errors"] == {"checkpoint": 3}
        assert not loop.done()
        shutdown.set()
        await asyncio.wait_for(loop, 10.0)

    run(main)


def test_the_planner_stops_when_generation_finishes_on_its_own() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generation = GenerationAgent(Finite(5), Analysis(), InMemoryKnowledge(kb), batch_size=4)  # type: ignore[arg-type]
        await generation.agent_on_startup()
        planner = PlannerAgent(
            generation,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            budget=100,
            review_interval_s=0.05,
        )
        await planner.agent_on_startup()
        await generate_until_finished(generation)
        # Far from its budget, the planner stops once its review sees generation finished.
        await asyncio.wait_for(planner.run_strategies(asyncio.Event()), 20.0)
        assert planner.runner.stop_requested
        assert [f.fired for f in await kb.firings(strategy="generation-finished")] == [True]
        assert not any(f.fired for f in await kb.firings(strategy="budget"))

    run(main)

"""Scenario: a generation -> analysis -> planner loop that retrains by strategy.

A toy generator proposes consecutive integers (even ones are "stable") and
each retrain shifts them up by 1000; a toy importable function evaluates
them. The loop runs over Academy's in-process exchange with a shared
in-memory knowledge base, and over our Redis exchange with a Redis
knowledge base the agents open themselves; it must retrain because the
planner's strategy said so, give every candidate exactly one result, and
stop at the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import pytest
from academy.exchange import LocalExchangeFactory
from academy.handle import Handle
from academy.manager import Manager
from exchange_agents import poll, run, step
from redis_server import RedisServer

from academy_ml.agents import AnalysisAgent, FunctionCalls, GenerationAgent, PlannerAgent
from academy_ml.agents.knowledge import (
    InMemoryKnowledge,
    InMemoryKnowledgeBase,
    KnowledgeBase,
    KnowledgeFactory,
    RedisKnowledge,
    RedisKnowledgeBase,
)
from academy_ml.agents.knowledge.records import ResultRecord
from academy_ml.messaging import RedisExchangeFactory

BUDGET = 40
RETRAIN_AFTER = 6


class Counter:
    """Proposes consecutive integers from an offset that each retrain moves up by 1000."""

    def __init__(self) -> None:
        self.version = 0
        self.next = 0

    def sample(self, n: int) -> list[dict[str, Any]]:
        values = range(self.version * 1000 + self.next, self.version * 1000 + self.next + n)
        self.next += n
        return [{"x": value} for value in values]

    def retrain(self, records: Sequence[ResultRecord]) -> int:
        assert records, "retrained on nothing"
        self.version += 1
        self.next = 0
        return self.version


def evaluate(payload: bytes) -> dict[str, Any]:
    """The toy evaluation: the score is the number, stable when it is even."""
    x = msgpack.unpackb(payload)["x"]
    return {"metrics": {"score": float(x)}, "flags": {"stable": x % 2 == 0}}


@pytest.mark.parametrize("exchange", ["local", "redis"])
def test_loop_retrains_by_strategy_and_stops_at_budget(
    exchange: str, request: pytest.FixtureRequest
) -> None:
    kb: KnowledgeBase
    if exchange == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        factory: Any = RedisExchangeFactory(server.url)
        knowledge: KnowledgeFactory = RedisKnowledge(server.url)
        kb = RedisKnowledgeBase(server.url)
    else:
        factory = LocalExchangeFactory()
        kb = InMemoryKnowledgeBase()
        knowledge = InMemoryKnowledge(kb)

    async def main() -> None:
        pool = ThreadPoolExecutor(4)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            gen_reg = await manager.register_agent(GenerationAgent)
            ana_reg = await manager.register_agent(AnalysisAgent)
            plan_reg = await manager.register_agent(PlannerAgent)
            gen, ana, plan = (Handle(reg.agent_id) for reg in (gen_reg, ana_reg, plan_reg))
            await manager.launch(
                PlannerAgent,
                args=(gen, ana, knowledge),
                kwargs={"budget": BUDGET, "retrain_after": RETRAIN_AFTER, "high_water": 12},
                registration=plan_reg,
            )
            await manager.launch(
                AnalysisAgent,
                args=(FunctionCalls(f"{__name__}.evaluate"), plan, knowledge),
                registration=ana_reg,
            )
            await manager.launch(
                GenerationAgent,
                args=(Counter(), ana, knowledge),
                kwargs={"batch_size": 4, "name": "counter"},
                registration=gen_reg,
            )

            async def planner_stopped() -> bool:
                return bool((await plan.status())["stopped"])

            async def drained() -> bool:
                finished = (await gen.status())["state"]["finished"]
                return bool(finished) and await ana.queue_depth() == 0

            await poll(planner_stopped, what="the planner to stop at the budget")
            await poll(drained, what="generation to finish and analysis to drain")
            generated = (await step(gen.status()))["state"]["generated"]
            planner = (await step(plan.status()))["state"]

        assert planner["results"] >= BUDGET
        versions = []
        for i in range(generated):
            candidate = await kb.candidate(f"counter-{i}")
            assert candidate is not None
            results = await kb.results_for(candidate.id)
            assert len(results) == 1, candidate.id
            assert results[0].model_version == candidate.model_version
            assert results[0].metrics["score"] == candidate.payload["x"]
            versions.append(candidate.model_version)
        assert versions == sorted(versions), "a candidate carries an older version"
        assert set(versions) >= {0, 1, 2}
        latest = await kb.latest_model("counter")
        assert latest is not None
        assert latest.version >= max(versions)

        retrains = await kb.firings(strategy="retrain", limit=1000)
        fired = [firing for firing in retrains if firing.fired]
        assert len(fired) == latest.version
        assert all(firing.actions == ["retrain_generator"] for firing in fired)
        assert all("new stable results" in firing.reason for firing in fired)
        budget = [firing for firing in await kb.firings(strategy="budget") if firing.fired]
        assert len(budget) == 1
        assert budget[0].actions == ["finish_generation", "stop"]
        assert await kb.load_checkpoint("PlannerAgent") is not None
        await kb.close()

    run(main, timeout=60.0)

"""StrategicAgent and the roles, driven directly (no exchange): signals, log, checkpoints."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import msgpack
import pytest

from academy_ml.agents import (
    AnalysisAgent,
    FunctionCalls,
    GenerationAgent,
    PlannerAgent,
    StrategicAgent,
    TrainingExample,
    call_with_timeout,
    strategic_action,
)
from academy_ml.agents.knowledge import (
    CandidateRecord,
    InMemoryKnowledge,
    InMemoryKnowledgeBase,
    ResultRecord,
    seal_state,
    unseal_state,
)
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.agents.strategies import (
    Call,
    Interval,
    OnCall,
    OnEvent,
    SetState,
    StateAtLeast,
    Stop,
    Strategy,
)
from academy_ml.compute.placement import LocalEndpoint
from academy_ml.exceptions import ActionError

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 10.0)

    return asyncio.run(bounded())


async def poll(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(5.0):
        while not await check():
            await asyncio.sleep(0.01)


class Counting(StrategicAgent):
    """Counts calls; strategies react to calls, an event and time."""

    def __init__(self, kb: InMemoryKnowledgeBase, *, tick_s: float = 3600.0, **options: Any):
        super().__init__(InMemoryKnowledge(kb), **options)
        self.tick_s = tick_s
        self.state.update(calls=0, bumps=0, ticks=0)
        self.gate: asyncio.Event | None = None

    def strategies(self) -> Sequence[Strategy]:
        return (
            Strategy(
                "bump",
                when=OnCall("hit"),
                if_=StateAtLeast("calls", 2),
                then=[Call("bump")],
            ),
            Strategy("flag", when=OnEvent("ping"), then=[SetState("pinged", True)]),
            Strategy("tick", when=Interval(self.tick_s), then=[Call("tick")]),
            Strategy("halt", when=OnCall("halt"), then=[Stop()]),
        )

    @strategic_action
    async def hit(self) -> int:
        self.state["calls"] += 1
        return int(self.state["calls"])

    @strategic_action
    async def halt(self) -> None:
        """Stops the strategies (through the ``halt`` strategy)."""

    async def bump(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.state["bumps"] += 1
        await self.hit()  # called by a strategy: raises no further signal

    async def tick(self) -> None:
        self.state["ticks"] += 1


def test_calls_fire_strategies_and_every_evaluation_is_logged() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        agent = Counting(kb, name="counting")
        await agent.agent_on_startup()
        assert await agent.hit() == 1
        assert agent.state["bumps"] == 0
        assert await agent.hit() == 2
        assert agent.state == {**agent.state, "calls": 3, "bumps": 1}

        firings = await kb.firings(agent="counting", strategy="bump")
        assert [f.fired for f in firings] == [True, False]
        assert firings[0].actions == ["bump"]
        assert firings[0].trigger == "call hit"
        assert "calls = 2" in firings[0].reason

        await agent.emit("ping")
        assert agent.state["pinged"] is True
        assert (await kb.firings(strategy="flag"))[0].fired

    run(main)


def test_concurrent_calls_are_evaluated_one_at_a_time() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        agent = Counting(kb)
        await agent.agent_on_startup()
        agent.state["calls"] = 5
        agent.gate = asyncio.Event()
        calls = [asyncio.create_task(agent.hit()) for _ in range(3)]
        await asyncio.sleep(0)
        agent.gate.set()
        await asyncio.gather(*calls)
        # Each call fires once in turn; the bump's own hit() adds no evaluation.
        assert agent.state["bumps"] == 3
        assert len(await kb.firings(strategy="bump")) == 3

    run(main)


def test_shutdown_waits_for_a_running_evaluation_then_drops_later_signals() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        agent = Counting(kb, name="closing")
        await agent.agent_on_startup()
        agent.state["calls"] = 5
        agent.gate = asyncio.Event()
        running = asyncio.create_task(agent.hit())
        await poll(lambda: _true(agent.state["calls"] == 6))
        shutdown = asyncio.create_task(agent.agent_on_shutdown())
        await asyncio.sleep(0.05)
        assert not shutdown.done()  # waits for the gated evaluation
        agent.gate.set()
        await asyncio.gather(running, shutdown)
        saved = await kb.load_checkpoint("closing") or b""
        assert unseal_state(CHECKPOINT_KIND, saved)["bumps"] == 1  # taken after the evaluation
        logged = len(await kb.firings(agent="closing"))
        assert await agent.hit() == 8  # the action is served; its signal is dropped
        assert len(await kb.firings(agent="closing")) == logged

    run(main)


async def _true(value: bool) -> bool:
    return value


def test_time_triggers_run_in_the_strategy_loop_until_stop() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        agent = Counting(kb, tick_s=0.01)
        await agent.agent_on_startup()
        shutdown = asyncio.Event()
        loop = asyncio.create_task(agent.run_strategies(shutdown))

        async def ticked() -> bool:
            return bool(agent.state["ticks"] >= 3)

        await poll(ticked)
        await agent.halt()
        assert (await agent.status())["stopped"] is True
        await asyncio.wait_for(loop, 1.0)  # ends by itself once stopped
        ticks = agent.state["ticks"]
        await agent.hit()
        assert agent.state["ticks"] == ticks
        assert not (await kb.firings(strategy="bump"))  # stopped: nothing evaluated

    run(main)


@pytest.mark.parametrize(
    "saved",
    [b"\xc1", msgpack.packb({"calls": 5}), seal_state("identities", {"calls": 5})],
    ids=["not-msgpack", "unsealed", "another-kind"],
)
def test_an_unreadable_checkpoint_is_reported_and_the_agent_starts_afresh(
    saved: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        await kb.save_checkpoint("same", saved)
        agent = Counting(kb, name="same")
        await agent.agent_on_startup()
        assert agent.state["calls"] == 0
        await agent.hit()
        await agent.agent_on_shutdown()
        assert unseal_state(CHECKPOINT_KIND, await kb.load_checkpoint("same") or b"")["calls"] == 1

    with caplog.at_level(logging.ERROR):
        run(main)
    assert "checkpoint is unreadable" in caplog.text


def test_state_is_checkpointed_and_restored_by_name() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        first = Counting(kb, name="same", checkpoint_interval_s=0.01)
        await first.agent_on_startup()
        await first.hit()
        shutdown = asyncio.Event()
        periodic = asyncio.create_task(first.checkpoint_periodically(shutdown))

        async def saved() -> bool:
            data = await kb.load_checkpoint("same")
            return data is not None and unseal_state(CHECKPOINT_KIND, data)["calls"] == 1

        await poll(saved)
        shutdown.set()
        await periodic
        await first.halt()
        await first.agent_on_shutdown()

        again = Counting(kb, name="same")
        await again.agent_on_startup()
        assert again.state["calls"] == 1
        assert again.runner.stop_requested
        other = Counting(kb, name="other")
        await other.agent_on_startup()
        assert other.state["calls"] == 0
        assert not other.runner.stop_requested

    run(main)


class FakeGeneration:
    """Stands in for a handle to the generation agent."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.version = 0

    async def pause(self) -> None:
        self.calls.append("pause")

    async def resume(self) -> None:
        self.calls.append("resume")

    async def retrain(self) -> int:
        self.calls.append("retrain")
        self.version += 1
        return self.version

    async def finish(self) -> None:
        self.calls.append("finish")


async def started_planner(
    kb: InMemoryKnowledgeBase, generation: FakeGeneration, **options: Any
) -> PlannerAgent:
    """A planner over a fake generation agent (no analysis handle), started."""
    planner = PlannerAgent(generation, None, InMemoryKnowledge(kb), **options)  # type: ignore[arg-type]
    await planner.agent_on_startup()
    return planner


def test_planner_backpressure_pauses_and_resumes_generation() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generation = FakeGeneration()
        planner = await started_planner(kb, generation, budget=100, high_water=4, low_water=1)
        for depth in (3, 5, 6, 2):
            await planner.report_queue(depth)
        assert generation.calls == ["pause"]
        await planner.report_queue(1)
        await planner.report_queue(0)
        assert generation.calls == ["pause", "resume"]
        pauses = [f for f in await kb.firings(strategy="backpressure-pause") if f.fired]
        assert len(pauses) == 1
        assert pauses[0].reason.endswith("queue above 4: yes")

    run(main)


def test_planner_retrains_by_strategy_and_stops_at_budget() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generation = FakeGeneration()
        planner = await started_planner(kb, generation, budget=5, retrain_after=2)
        for i in range(7):
            stable = i != 1
            result = ResultRecord(
                candidate_id=f"c{i}",
                model_version=generation.version,
                metrics={"score": float(i)},
                flags={"stable": stable},
            )
            assert await kb.add_result(result)
            await planner.record_result(f"c{i}", 0)
        # stable results: c0 (v0), c2 -> retrain; c3, c4 (v1) -> retrain; then the budget.
        assert generation.calls == ["retrain", "retrain", "finish"]
        assert planner.state["model_version"] == 2
        assert planner.runner.stop_requested

    run(main)


def evaluate(payload: bytes) -> dict[str, Any]:
    """A toy evaluation: fails on negative numbers."""
    x = msgpack.unpackb(payload)["x"]
    if x < 0:
        raise ValueError("negative")
    return {"metrics": {"score": float(x)}, "flags": {"stable": x % 2 == 0}}


class FakePlanner:
    def __init__(self) -> None:
        self.results: list[str] = []

    async def record_result(self, candidate_id: str, queue_depth: int) -> None:
        self.results.append(candidate_id)

    async def report_queue(self, queue_depth: int) -> None:
        pass


async def add_candidates(kb: InMemoryKnowledgeBase, xs: Sequence[int]) -> list[str]:
    for x in xs:
        await kb.add_candidate(CandidateRecord(id=f"c{x}", model_version=3, payload={"x": x}))
    return [f"c{x}" for x in xs]


def test_analysis_stores_one_result_per_candidate() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        planner = FakePlanner()
        analysis = AnalysisAgent(
            FunctionCalls(f"{__name__}.evaluate"),
            planner,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
        )
        await analysis.agent_on_startup()
        ids = await add_candidates(kb, (2, 3, -1))
        assert await analysis.submit([*ids, ids[0]]) == 3

        async def drained() -> bool:
            return await analysis.queue_depth() == 0

        await poll(drained)
        assert await analysis.submit(ids) == 0  # already evaluated
        assert sorted(planner.results) == ["c-1", "c2", "c3"]
        (two,) = await kb.results_for("c2")
        assert two.model_version == 3
        assert two.flags == {"stable": True}
        (failed,) = await kb.results_for("c-1")
        assert failed.flags == {"failed": True}
        assert failed.error == "ValueError: negative"
        assert analysis.state == {**analysis.state, "evaluated": 3, "failed": 1}
        assert await kb.pending() == []
        assert [await kb.attempts(cid) for cid in ids] == [1, 1, 3]  # c-1 tried max_attempts times
        assert analysis.state["consecutive_failures"] == 3
        await analysis.agent_on_shutdown()

    run(main)


def test_analysis_redirects_to_a_backup_endpoint_by_a_spec_strategy() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        planner = FakePlanner()
        broken = LocalEndpoint("primary", workers=1)
        broken.close()  # every submission fails, as an unreachable endpoint's would
        backup = LocalEndpoint("backup", workers=1)
        failover = {
            "name": "failover",
            "when": [{"on_event": "evaluation_failed"}],
            "if": [{"state_at_least": {"key": "consecutive_failures", "n": 2}}],
            "then": [{"call": "redirect", "args": ["backup"]}],
        }
        analysis = AnalysisAgent(
            FunctionCalls(f"{__name__}.evaluate"),
            planner,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            endpoint=broken,
            backups={"backup": backup},
            owns_endpoints=True,
            strategies=[failover],
        )
        await analysis.agent_on_startup()
        ids = await add_candidates(kb, (2, 4, 6))
        await analysis.submit(ids)

        async def done() -> bool:
            return (await kb.counts())["pending"] == 0

        await poll(done)
        results = [(await kb.results_for(cid))[0] for cid in ids]
        assert all("failed" not in r.flags for r in results)  # retried on the backup
        assert analysis.state["endpoint"] == "backup"
        assert analysis.endpoint is backup
        (fired,) = [f for f in await kb.firings(strategy="failover") if f.fired]
        assert fired.outcome == "redirect -> 'backup'"
        with pytest.raises(ActionError, match="no backup endpoint 'nowhere'"):
            await analysis.redirect("nowhere")
        with pytest.raises(ActionError, match="endpoint 'backup' does not scale"):
            await analysis.scale(4)
        await analysis.agent_on_shutdown()
        with pytest.raises(RuntimeError):
            backup.submit(f"{__name__}.evaluate", b"")  # owned: closed at shutdown

    run(main)


def test_analysis_sweeps_the_ledger_and_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        planner = FakePlanner()
        ids = await add_candidates(kb, (4, 5, 6))
        for _ in range(2):  # c6's evaluations died twice before
            await kb.start_attempt("c6")
        analysis = AnalysisAgent(
            FunctionCalls(f"{__name__}.evaluate"),
            planner,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            max_attempts=2,
        )
        await analysis.agent_on_startup()
        shutdown = asyncio.Event()
        sweep = asyncio.create_task(analysis.sweep(shutdown))  # nothing was handed over

        async def done() -> bool:
            return (await kb.counts())["pending"] == 0

        await poll(done)
        shutdown.set()
        await sweep
        assert sorted(planner.results) == ids
        (given_up,) = await kb.results_for("c6")
        assert given_up.flags == {"failed": True}
        assert given_up.error == "gave up after 2 attempts"
        (four,) = await kb.results_for("c4")
        assert four.metrics == {"score": 4.0}
        await analysis.agent_on_shutdown()

    run(main)


class UnreachableLedger(InMemoryKnowledgeBase):
    """Cannot list pending candidates its first ``failures`` times (Redis restarting)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def pending(self, limit: int = 1000) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is restarting")
        return await super().pending(limit)


def test_analysis_sweep_survives_a_ledger_that_is_unreachable_for_a_while() -> None:
    async def main() -> None:
        kb = UnreachableLedger(failures=2)
        planner = FakePlanner()
        ids = await add_candidates(kb, (1, 2))
        analysis = AnalysisAgent(
            FunctionCalls(f"{__name__}.evaluate"),
            planner,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
        )
        await analysis.agent_on_startup()
        shutdown = asyncio.Event()
        sweep = asyncio.create_task(analysis.sweep(shutdown))

        async def done() -> bool:
            return (await kb.counts())["pending"] == 0

        await poll(done)
        shutdown.set()
        await sweep
        assert sorted(planner.results) == ids
        assert analysis.state["loop_errors"] == {"sweep": 2}
        await analysis.agent_on_shutdown()

    run(main)


def test_planner_catches_up_from_the_knowledge_base_after_a_restart() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        for i in range(6):  # results stored while no planner was listening
            result = ResultRecord(candidate_id=f"c{i}", model_version=0, metrics={"score": 1.0})
            await kb.add_result(result)
        generation = FakeGeneration()
        planner = await started_planner(
            kb, generation, budget=5, retrain_flag=None, retrain_after=100, review_interval_s=0.05
        )
        assert planner.state["results"] == 6
        shutdown = asyncio.Event()
        await asyncio.wait_for(planner.run_strategies(shutdown), 5.0)  # ends at the Stop
        assert generation.calls == ["finish"]
        (budget,) = [f for f in await kb.firings(strategy="budget") if f.fired]
        assert "every 0.05 s" in budget.trigger

    run(main)


class StuckGenerator:
    def sample(self, n: int) -> list[dict[str, Any]]:
        return [{"x": i} for i in range(n)]

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        return 0


class Remembering:
    """A stateful generator: its offset survives a restart through the agent's checkpoint."""

    def __init__(self) -> None:
        self.offset = 0
        self.trained_on: list[TrainingExample] = []

    def sample(self, n: int) -> list[dict[str, Any]]:
        return [{"x": self.offset + i} for i in range(n)]

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        self.trained_on = list(examples)
        self.offset += 100
        return self.offset // 100

    def state(self) -> dict[str, Any]:
        return {"offset": self.offset}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.offset = state["offset"]


def test_generation_refuses_a_version_that_does_not_increase() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        generation = GenerationAgent(StuckGenerator(), None, InMemoryKnowledge(kb))  # type: ignore[arg-type]
        await generation.agent_on_startup()
        with pytest.raises(ValueError, match="not above 0"):
            await generation.retrain()
        assert await kb.latest_model("GenerationAgent") is None

    run(main)


def test_generation_retrains_on_the_best_flagged_results_and_checkpoints_its_generator() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        ids = await add_candidates(kb, (1, 2, 3, 4))
        for cid, x in zip(ids, (1, 2, 3, 4), strict=True):
            result = ResultRecord(
                candidate_id=cid, model_version=0, metrics={"score": x}, flags={"ok": x != 4}
            )
            await kb.add_result(result)
        generator = Remembering()
        generation = GenerationAgent(
            generator,
            None,  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            train_flag="ok",
            train_size=2,
            name="gen",
        )
        await generation.agent_on_startup()
        assert await generation.retrain() == 1
        assert [e.payload["x"] for e in generator.trained_on] == [3, 2]
        assert generator.trained_on[0].flags == {"ok": True}
        model = await kb.latest_model("gen")
        assert model is not None
        assert model.version == 1

        again = Remembering()
        restarted = GenerationAgent(again, None, InMemoryKnowledge(kb), name="gen")  # type: ignore[arg-type]
        await restarted.agent_on_startup()
        assert again.offset == 100
        assert restarted.state["model_version"] == 1

    run(main)


def test_a_cancelled_call_whose_cancel_request_fails_leaves_no_unretrieved_exception() -> None:
    """An agent stopping mid-call to an agent already gone prints no traceback."""

    async def call_to_a_terminated_mailbox() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("mailbox has been terminated") from None  # Academy's cancel send

    async def scenario() -> list[dict[str, Any]]:
        unhandled: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: unhandled.append(ctx))
        caller = asyncio.create_task(call_with_timeout(call_to_a_terminated_mailbox(), 30))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        del caller
        gc.collect()
        await asyncio.sleep(0)
        return unhandled

    assert asyncio.run(scenario()) == []

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from academy_ml.agents.strategies import (
    ActionError,
    At,
    Call,
    Chain,
    Cron,
    FiringRecord,
    Interval,
    KnowledgeCount,
    OnCall,
    OnEvent,
    Predicate,
    SetState,
    Signal,
    StateAtLeast,
    Stop,
    Strategy,
    StrategyContext,
    StrategyError,
    StrategyRunner,
)

T = TypeVar("T")
T0 = datetime(2025, 3, 1, 10, 58, 30, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeKB:
    def __init__(self, counts: dict[str | None, int]) -> None:
        self.counts = counts
        self.queries: list[tuple[int, str | None]] = []

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        self.queries.append((model_version, flag))
        return self.counts.get(flag, 0)


class Endpoints:
    def __init__(self) -> None:
        self.max_blocks: dict[str, int] = {}

    def set_max_blocks(self, name: str, blocks: int) -> None:
        self.max_blocks[name] = blocks


class Host:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.endpoints = Endpoints()

    async def retrain(self) -> int:
        self.calls.append("retrain")
        return 4

    def pause_generation(self) -> None:
        self.calls.append("pause")

    async def explode(self) -> None:
        raise RuntimeError("boom")


def make_context(state: dict[str, Any] | None = None, kb: FakeKB | None = None) -> StrategyContext:
    return StrategyContext(agent="planner", host=Host(), state=state or {}, kb=kb or FakeKB({}))


def make_runner(
    *strategies: Strategy, state: dict[str, Any] | None = None, kb: FakeKB | None = None
) -> tuple[StrategyRunner, list[FiringRecord], Host]:
    records: list[FiringRecord] = []

    async def log(record: FiringRecord) -> None:
        records.append(record)

    host = Host()
    runner = StrategyRunner(
        strategies, host, state if state is not None else {}, kb or FakeKB({}), log, agent="planner"
    )
    return runner, records, host


# --- constraints -------------------------------------------------------------------------


def test_knowledge_count_asks_since_the_model_version() -> None:
    kb = FakeKB({"stable": 12})
    context = make_context({"model_version": 3}, kb)
    ok, reason = run(KnowledgeCount("stable", at_least=16).check(context))
    assert (ok, reason) == (False, "12 of 16 new stable results since version 3")
    assert kb.queries == [(3, "stable")]
    kb.counts[None] = 20
    ok, reason = run(KnowledgeCount(None, at_least=16).check(context))
    assert (ok, reason) == (True, "20 of 16 new results since version 3")
    ok, reason = run(KnowledgeCount(None, at_least=1).check(make_context()))
    assert (ok, reason) == (False, "state has no 'model_version'")


def test_state_at_least_and_combinators_give_reasons() -> None:
    context = make_context({"queue": 12})
    deep, missing = StateAtLeast("queue", 10), StateAtLeast("budget", 1)
    assert run(deep.check(context)) == (True, "queue = 12 (at least 10 needed)")
    assert run(missing.check(context)) == (False, "state has no 'budget'")
    assert run((~deep).check(context)) == (False, "not (queue = 12 (at least 10 needed))")
    assert run((deep & missing).check(context)) == (False, "state has no 'budget'")
    assert run((missing & deep).check(context)) == (False, "state has no 'budget'")
    assert run((deep & ~missing).check(context)) == (
        True,
        "queue = 12 (at least 10 needed); not (state has no 'budget')",
    )
    assert run((missing | deep).check(context)) == (True, "queue = 12 (at least 10 needed)")
    assert run((missing | ~deep).check(context)) == (
        False,
        "state has no 'budget'; not (queue = 12 (at least 10 needed))",
    )


def test_predicate_takes_sync_and_async_callables() -> None:
    async def is_paused(context: StrategyContext) -> bool:
        return bool(context.state.get("paused"))

    context = make_context({"paused": True})
    assert run(Predicate(is_paused, "generation paused").check(context)) == (
        True,
        "generation paused: yes",
    )
    sync = Predicate(lambda c: len(c.state) > 3, "more than 3 keys")
    assert run(sync.check(context)) == (False, "more than 3 keys: no")


# --- actions -----------------------------------------------------------------------------


def test_call_setstate_stop_and_chain() -> None:
    context = make_context()
    host = context.host
    chain = Chain(Call("retrain"), Call("pause_generation"), SetState("paused", True), Stop())
    assert chain.name == "retrain -> pause_generation -> set paused -> stop"
    outcome = run(chain(context))
    assert outcome == "retrain -> 4; pause_generation done; paused = True; stop requested"
    assert host.calls == ["retrain", "pause"]
    assert context.state == {"paused": True}
    assert context.stop_requested


def test_call_reaches_dotted_methods_with_arguments() -> None:
    context = make_context()
    assert run(Call("endpoints.set_max_blocks", "polaris", 4)(context)) == (
        "endpoints.set_max_blocks done"
    )
    assert context.host.endpoints.max_blocks == {"polaris": 4}
    with pytest.raises(ActionError, match=r"has no attribute 'endpoints\.nope'"):
        run(Call("endpoints.nope")(context))


def test_failing_action_stops_a_chain() -> None:
    context = make_context()
    chain = Chain(Call("retrain"), Call("explode"), SetState("after", 1))
    with pytest.raises(ActionError) as info:
        run(chain(context))
    assert str(info.value) == "retrain -> 4; explode failed: RuntimeError: boom"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "after" not in context.state
    with pytest.raises(StrategyError):
        Chain()


# --- strategies and the runner -----------------------------------------------------------


def test_strategy_is_validated() -> None:
    with pytest.raises(StrategyError, match="no actions"):
        Strategy("s", OnEvent("x"))
    with pytest.raises(StrategyError, match="name"):
        Strategy("", OnEvent("x"), then=[Stop()])
    twice = Strategy("s", OnEvent("x"), then=[Stop()])
    with pytest.raises(StrategyError, match="duplicate strategy names: s"):
        make_runner(twice, twice)


def test_runner_logs_fired_and_refused_evaluations() -> None:
    retrain = Strategy(
        "retrain",
        when=OnCall("submit_result"),
        if_=KnowledgeCount("stable", at_least=16),
        then=[Call("retrain"), SetState("model_version", 4)],
    )
    kb = FakeKB({"stable": 12})
    state: dict[str, Any] = {"model_version": 3}
    runner, records, host = make_runner(retrain, state=state, kb=kb)

    assert run(runner.on_signal(Signal("event", "submit_result"), T0)) == []
    run(runner.on_signal(Signal("call", "submit_result"), T0))
    kb.counts["stable"] = 16
    run(runner.on_signal(Signal("call", "submit_result"), T0 + timedelta(seconds=5)))

    assert records == [
        {
            "agent": "planner",
            "strategy": "retrain",
            "trigger": "call submit_result",
            "fired": False,
            "reason": "on call submit_result: 12 of 16 new stable results since version 3",
            "actions": [],
            "outcome": "",
            "created": T0.timestamp(),
        },
        {
            "agent": "planner",
            "strategy": "retrain",
            "trigger": "call submit_result",
            "fired": True,
            "reason": "on call submit_result: 16 of 16 new stable results since version 3",
            "actions": ["retrain", "set model_version"],
            "outcome": "retrain -> 4; model_version = 4",
            "created": T0.timestamp() + 5,
        },
    ]
    assert host.calls == ["retrain"]
    assert state["model_version"] == 4


def test_failing_action_is_logged_and_runner_goes_on() -> None:
    failing = Strategy("failing", OnEvent("go"), then=[Call("explode"), SetState("after", 1)])
    fine = Strategy("fine", OnEvent("go"), then=[SetState("fine", 1)])
    state: dict[str, Any] = {}
    runner, records, _ = make_runner(failing, fine, state=state)
    run(runner.on_signal(Signal("event", "go"), T0))
    assert [(r["strategy"], r["fired"], r["actions"], r["outcome"]) for r in records] == [
        ("failing", True, ["explode"], "explode failed: RuntimeError: boom"),
        ("fine", True, ["set fine"], "fine = 1"),
    ]
    assert state == {"fine": 1}
    assert runner.failures == {"failing": 1}
    run(runner.on_signal(Signal("event", "go"), T0))  # fires again: nothing got stuck
    assert runner.failures == {"failing": 2}
    assert len(records) == 4


def test_raising_constraint_is_logged_as_not_fired() -> None:
    def broken(context: StrategyContext) -> bool:
        raise KeyError("queue")

    strategy = Strategy("s", OnEvent("go"), if_=Predicate(broken, "x"), then=[Stop()])
    runner, records, _ = make_runner(strategy)
    run(runner.on_signal(Signal("event", "go"), T0))
    assert not records[0]["fired"]
    assert records[0]["reason"] == "on event go: constraint failed: KeyError: 'queue'"
    assert runner.failures == {"s": 1}


def test_a_log_that_cannot_be_written_does_not_undo_the_actions() -> None:
    async def down(record: FiringRecord) -> None:
        raise ConnectionError("knowledge base unreachable")

    state: dict[str, Any] = {}
    strategy = Strategy("s", OnEvent("go"), then=[SetState("n", 1)])
    runner = StrategyRunner([strategy], Host(), state, FakeKB({}), down, agent="planner")
    (record,) = run(runner.on_signal(Signal("event", "go"), T0))
    assert record["fired"]
    assert state == {"n": 1}
    assert runner.failures == {"s": 1}


def test_and_needs_both_since_the_last_firing() -> None:
    both = Strategy("both", Interval(30) & OnEvent("retrained"), then=[Call("pause_generation")])
    runner, records, host = make_runner(both)
    assert runner.next_wakeup(T0) == T0 + timedelta(seconds=30)
    assert run(runner.on_time(T0 + timedelta(seconds=30))) == []  # only the interval so far
    run(runner.on_signal(Signal("event", "retrained"), T0 + timedelta(seconds=40)))
    assert [r["reason"] for r in records] == ["on event retrained: no constraint"]
    assert records[0]["trigger"] == "(every 30 s) & (event retrained)"
    # Memory was reset by the firing: the interval alone does not fire again.
    assert run(runner.on_time(T0 + timedelta(seconds=60))) == []
    run(runner.on_signal(Signal("event", "retrained"), T0 + timedelta(seconds=61)))
    assert len(records) == 2
    assert host.calls == ["pause", "pause"]


def test_or_fires_on_either_side() -> None:
    either = Strategy("either", Interval(30) | OnCall("go"), then=[Call("pause_generation")])
    runner, records, _ = make_runner(either)
    runner.next_wakeup(T0)
    run(runner.on_signal(Signal("call", "go"), T0 + timedelta(seconds=1)))
    run(runner.on_time(T0 + timedelta(seconds=30)))
    assert [r["reason"] for r in records] == [
        "on call go: no constraint",
        "on every 30 s: no constraint",
    ]


def test_refused_trigger_memory_is_kept_until_firing() -> None:
    gated = Strategy(
        "gated",
        OnEvent("a") & OnEvent("b"),
        if_=StateAtLeast("ready", 1),
        then=[SetState("done", True)],
    )
    state: dict[str, Any] = {"ready": 0}
    runner, records, _ = make_runner(gated, state=state)
    run(runner.on_signal(Signal("event", "a"), T0))
    run(runner.on_signal(Signal("event", "b"), T0))
    state["ready"] = 1
    run(runner.on_signal(Signal("event", "b"), T0))  # "a" still counts: the strategy never fired
    assert [r["fired"] for r in records] == [False, True]
    assert state["done"] is True


def test_time_triggers_and_next_wakeup() -> None:
    strategies = [
        Strategy("tick", Interval(30), then=[SetState("tick", True)]),
        Strategy("cron", Cron("*/5 * * * *"), then=[SetState("cron", True)]),
        Strategy("once", At(T0 + timedelta(minutes=10)), then=[Stop()]),
    ]
    runner, records, _ = make_runner(*strategies)
    assert runner.next_wakeup(T0) == T0 + timedelta(seconds=30)
    run(runner.on_time(T0 + timedelta(seconds=30)))  # 10:59:00
    assert runner.next_wakeup(T0) == datetime(2025, 3, 1, 10, 59, 30, tzinfo=UTC)
    run(runner.on_time(datetime(2025, 3, 1, 11, 0, tzinfo=UTC)))  # interval and cron both due
    assert [r["strategy"] for r in records] == ["tick", "tick", "cron"]
    # Late by 3 minutes: missed interval firings are coalesced into one.
    late = datetime(2025, 3, 1, 11, 3, 5, tzinfo=UTC)
    run(runner.on_time(late))
    assert [r["strategy"] for r in records[3:]] == ["tick"]
    assert runner.next_wakeup(late) == late + timedelta(seconds=30)
    run(runner.on_time(T0 + timedelta(minutes=10)))
    assert records[-1]["strategy"] == "once"
    assert runner.stop_requested
    # Once stopped, nothing more is evaluated.
    assert run(runner.on_time(T0 + timedelta(hours=1))) == []


def test_next_wakeup_without_time_triggers_and_naive_times() -> None:
    runner, _, _ = make_runner(Strategy("s", OnEvent("x"), then=[Stop()]))
    assert runner.next_wakeup(T0) is None
    with pytest.raises(StrategyError, match="naive"):
        runner.next_wakeup(datetime(2025, 1, 1))
    with pytest.raises(StrategyError, match="naive"):
        run(runner.on_signal(Signal("event", "x"), datetime(2025, 1, 1)))

"""Every strategy evaluation reaches the logs: held at INFO, acted at WARNING, and why."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from academy_ml.agents.strategies import (
    Call,
    FiringRecord,
    OnEvent,
    SetState,
    Signal,
    StateAtLeast,
    Strategy,
    StrategyRunner,
)
from academy_ml.agents.strategies.strategy import FIRINGS

LOGGER = "academy_ml.agents.strategies.strategy"
NOW = datetime(2025, 3, 1, 11, 0, tzinfo=UTC)


class Host:
    async def explode(self) -> None:
        raise RuntimeError("boom")


class NoKB:
    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        return 0


def runner(*strategies: Strategy, state: dict[str, Any]) -> StrategyRunner:
    async def log(record: FiringRecord) -> None:
        return None

    return StrategyRunner(strategies, Host(), state, NoKB(), log, agent="planner")


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name in (LOGGER, FIRINGS)]


def test_held_evaluations_are_info_and_firings_that_act_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state: dict[str, Any] = {"queue": 3}
    pause = Strategy(
        "pause",
        when=OnEvent("queued"),
        if_=StateAtLeast("queue", 10),
        then=[SetState("paused", True)],
    )
    run = runner(pause, state=state)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(run.on_signal(Signal("event", "queued"), NOW))
        state["queue"] = 12
        asyncio.run(run.on_signal(Signal("event", "queued"), NOW))
    assert messages(caplog) == [
        (
            logging.INFO,
            "planner: strategy 'pause' held (on event queued: queue = 3 (at least 10 needed))",
        ),
        (
            logging.WARNING,
            "planner: strategy 'pause' fired (on event queued: queue = 12 (at least 10 needed))"
            " -> set paused: paused = True",
        ),
    ]
    # Under the module's logger: configuring it configures both.
    assert logging.getLogger(FIRINGS).parent is logging.getLogger(LOGGER)


def test_an_action_that_raised_is_in_the_evaluation_line(caplog: pytest.LogCaptureFixture) -> None:
    explode = Strategy("explode", when=OnEvent("go"), then=[Call("explode")])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(runner(explode, state={}).on_signal(Signal("event", "go"), NOW))
    found = messages(caplog)
    assert (logging.WARNING, "action 'explode' of strategy 'explode' raised") in found
    assert found[-1] == (
        logging.WARNING,
        "planner: strategy 'explode' fired (on event go: no constraint) -> explode: "
        "explode failed: RuntimeError: boom",
    )


def test_a_trigger_not_yet_satisfied_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    both = Strategy("both", when=OnEvent("a") & OnEvent("b"), then=[SetState("x", 1)])
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        asyncio.run(runner(both, state={}).on_signal(Signal("event", "a"), NOW))
    assert messages(caplog) == []

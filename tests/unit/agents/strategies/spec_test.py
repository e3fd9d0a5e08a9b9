from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest

from academy_ml.agents.knowledge import InMemoryKnowledgeBase
from academy_ml.agents.strategies import Signal, StrategyContext, StrategyRunner
from academy_ml.agents.strategies.spec import build_strategies, parse_strategies
from academy_ml.exceptions import StrategyError

SPEC = """
[[strategies]]
name = "retrain"
when = [{ on_call = "record_result" }, { interval = 10 }]
if = [{ knowledge_count = { flag = "stable", at_least = 1 } }, { predicate = "allowed" }]
then = [{ call = "retrain", args = [2] }, { set_state = { retrained = true } }]

[[strategies]]
name = "nightly"
when = [{ cron = "0 3 * * *" }, { at = 2030-01-01T00:00:00Z }, { on_event = "wake" }]
if = [{ state_at_least = { key = "results", n = 5 } }]
then = [{ stop = true }]
"""


class Host:
    def __init__(self) -> None:
        self.retrained: list[int] = []

    def allowed(self, context: StrategyContext) -> bool:
        """Retraining is allowed."""
        return True

    async def retrain(self, times: int) -> None:
        self.retrained.append(times)


def tables(text: str) -> list[dict[str, Any]]:
    return list(tomllib.loads(text)["strategies"])


def test_a_spec_file_builds_working_strategies() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        from academy_ml.agents.knowledge import ResultRecord

        await kb.add_result(
            ResultRecord(candidate_id="c", model_version=0, metrics={}, flags={"stable": True})
        )
        host = Host()
        strategies = build_strategies(parse_strategies(tables(SPEC)), host)
        assert [s.name for s in strategies] == ["retrain", "nightly"]
        assert "every 10 s" in strategies[0].when.describe()
        state: dict[str, Any] = {"model_version": 0, "results": 0}

        async def log(record: Any) -> None:
            pass

        runner = StrategyRunner(strategies, host, state, kb, log, agent="a")
        records = await runner.on_signal(Signal("call", "record_result"))
        assert records[0]["fired"]
        assert "Retraining is allowed: yes" in records[0]["reason"]
        assert host.retrained == [2]
        assert state["retrained"] is True
        (nightly,) = await runner.on_signal(Signal("event", "wake"))
        assert not nightly["fired"]
        state["results"] = 5
        await runner.on_signal(Signal("event", "wake"))
        assert runner.stop_requested

    asyncio.run(main())


ONE = 'name = "x"\nwhen = [{ interval = 1 }]\n'
MALFORMED = [
    (ONE + "then = []", "strategy 'x': then: List should have at least 1"),
    (
        'name = "x"\nwhen = [{ interval = 1, on_call = "a" }]\nthen = [{ stop = true }]',
        "strategy 'x': when.0: needs exactly one of interval, at, cron, on_call, on_event, got 2",
    ),
    (
        'name = "x"\nwhen = [{ interval = -1 }]\nthen = [{ stop = true }]',
        "when.0.interval: Input should be greater than 0",
    ),
    (
        'name = "x"\nwhen = [{ every = 1 }]\nthen = [{ stop = true }]',
        "when.0.every: Extra inputs are not permitted",
    ),
    (ONE + "then = [{ stop = false }]", "stop must be true"),
    ("when = [{ interval = 1 }]\nthen = [{ stop = true }]", "strategies[0]: name: Field required"),
    (ONE + "then = [{ set_state = { a = 1 }, args = [1] }]", "args and kwargs go with call"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_specs_name_the_strategy_key_and_problem(text: str, message: str) -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategies([tomllib.loads(text)])
    assert message in str(caught.value)


def test_a_bad_cron_or_an_unknown_predicate_is_refused() -> None:
    specs = parse_strategies(
        [{"name": "c", "when": [{"cron": "every day"}], "then": [{"stop": True}]}]
    )
    with pytest.raises(StrategyError, match="cron"):
        build_strategies(specs, Host())
    specs = parse_strategies(
        [
            {
                "name": "p",
                "when": [{"interval": 1}],
                "if": [{"predicate": "nope"}],
                "then": [{"stop": True}],
            }
        ]
    )
    with pytest.raises(StrategyError, match="strategy 'p': predicate: Host has no method 'nope'"):
        build_strategies(specs, Host())


def test_two_strategies_with_one_name_are_refused() -> None:
    table = {"name": "same", "when": [{"interval": 1}], "then": [{"stop": True}]}
    with pytest.raises(StrategyError, match="'same' is defined twice"):
        parse_strategies([table, table])

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from academy_ml.agents.strategies import At, Cron, Interval, OnCall, OnEvent, Signal, StrategyError
from academy_ml.exceptions import AcademyMLError

T0 = datetime(2025, 3, 1, 10, 58, 30, tzinfo=UTC)


def test_cron_next_times_cross_an_hour_boundary() -> None:
    cron = Cron("*/5 * * * *")
    first = cron.next_time(T0)
    assert first == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    assert first is not None
    assert cron.next_time(first) == datetime(2025, 3, 1, 11, 5, tzinfo=UTC)
    assert cron.describe() == "cron */5 * * * *"


def test_cron_is_read_in_its_timezone_and_answers_in_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    cron = Cron("0 9 * * *", tz=paris)
    assert cron.next_time(T0) == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    assert cron.describe() == "cron 0 9 * * * (Europe/Paris)"


@pytest.mark.parametrize("expression", ["*/5 * * *", "61 * * * *", "x * * * *", ""])
def test_invalid_cron_expression_is_named(expression: str) -> None:
    with pytest.raises(StrategyError, match="invalid cron expression") as info:
        Cron(expression)
    assert repr(expression) in str(info.value)
    assert isinstance(info.value, AcademyMLError)
    assert isinstance(info.value, ValueError)


def test_interval_adds_its_period() -> None:
    every = Interval(30)
    assert every.next_time(T0) == T0 + timedelta(seconds=30)
    assert every.describe() == "every 30 s"
    assert Interval(0.5).describe() == "every 0.5 s"


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_interval_refuses_non_positive_periods(seconds: float) -> None:
    with pytest.raises(StrategyError, match="positive"):
        Interval(seconds)


def test_at_fires_once() -> None:
    when = T0 + timedelta(hours=1)
    at = At(when)
    assert at.next_time(T0) == when
    assert at.next_time(when) is None
    assert at.next_time(when + timedelta(seconds=1)) is None
    assert at.describe() == "at 2025-03-01T11:58:30+00:00"


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 3, 1, 10, 0)
    with pytest.raises(StrategyError, match="timezone-aware"):
        At(naive)
    for trigger in (Interval(1), Cron("* * * * *"), At(T0)):
        with pytest.raises(StrategyError, match="naive"):
            trigger.next_time(naive)


def test_signal_triggers_match_kind_and_name() -> None:
    call, event = OnCall("submit_result"), OnEvent("retrained")
    assert call.matches(Signal("call", "submit_result"))
    assert not call.matches(Signal("event", "submit_result"))
    assert not call.matches(Signal("call", "other"))
    assert event.matches(Signal("event", "retrained"))
    assert not event.matches(Signal("call", "retrained"))
    assert call.describe() == "call submit_result"
    assert event.describe() == "event retrained"
    with pytest.raises(StrategyError):
        OnCall("")


def test_combinations_describe_and_satisfy() -> None:
    every, retrained, call = Interval(30), OnEvent("retrained"), OnCall("go")
    both = every & retrained
    either = every | retrained
    assert both.describe() == "(every 30 s) & (event retrained)"
    assert (both | call).describe() == "((every 30 s) & (event retrained)) | (call go)"
    assert both.leaves() == (every, retrained)
    assert not both.satisfied({every})
    assert both.satisfied({every, retrained})
    assert either.satisfied({retrained})
    assert not either.satisfied(set())
    assert (both | call).satisfied({call})


def test_same_leaf_twice_is_one_leaf() -> None:
    event = OnEvent("x")
    assert (event & event).satisfied({event})
    assert not (event & OnEvent("x")).satisfied({event})

"""Triggers: the WHEN of a strategy.

A trigger is a small algebra of leaves combined with ``&`` and ``|``:

* time leaves (:class:`Interval`, :class:`At`, :class:`Cron`) answer
  :meth:`TimeTrigger.next_time`, so the hosting agent's Academy ``@loop`` can
  sleep until the next one is due (there is no scheduler thread here);
* signal leaves (:class:`OnCall`, :class:`OnEvent`) match a :class:`Signal`
  the agent raises when another agent calls one of its actions or when an
  event is set.

``a | b`` is satisfied when either side has fired; ``a & b`` when both have
fired since the strategy last fired. The runner keeps that per-strategy
memory (the set of leaves seen) and asks :meth:`Trigger.satisfied`.

Leaves compare by identity, so the same trigger object used twice in one
expression is one leaf.

Every datetime must be timezone-aware; naive ones are refused with
:class:`StrategyError` rather than silently read as local time.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from croniter import CroniterError, croniter

from academy_ml.exceptions import StrategyError

__all__ = [
    "AllOf",
    "AnyOf",
    "At",
    "Cron",
    "Interval",
    "OnCall",
    "OnEvent",
    "Signal",
    "SignalTrigger",
    "TimeTrigger",
    "Trigger",
    "require_aware",
]


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` if it carries a timezone.

    Args:
        value: The datetime to check.
        what: What the datetime is, for the error message.

    Raises:
        StrategyError: ``value`` is naive.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise StrategyError(
            f"{what} must be timezone-aware, got naive {value.isoformat()} "
            "(use datetime.now(UTC) or .replace(tzinfo=UTC))"
        )
    return value


@dataclass(frozen=True)
class Signal:
    """Something that happened to an agent: one of its actions was called, or an event.

    Attributes:
        kind: ``"call"`` when another agent called the action ``name``,
            ``"event"`` when the event ``name`` was set.
        name: The action or event name.
    """

    kind: Literal["call", "event"]
    name: str


class Trigger(abc.ABC):
    """Base class of every trigger: leaves and their combinations."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return a short readable form used in strategy logs, e.g. ``every 30 s``."""

    @abc.abstractmethod
    def leaves(self) -> tuple[Trigger, ...]:
        """Return the leaf triggers (time and signal) this trigger is built from."""

    @abc.abstractmethod
    def satisfied(self, fired: Set[Trigger]) -> bool:
        """Tell whether the trigger fires, given the leaves that fired since the last firing.

        Args:
            fired: Leaves that have fired since the strategy last fired.
        """

    def __and__(self, other: Trigger) -> AllOf:
        return AllOf(self, other)

    def __or__(self, other: Trigger) -> AnyOf:
        return AnyOf(self, other)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class _Leaf(Trigger):
    """A trigger that fires on its own (not a combination)."""

    def leaves(self) -> tuple[Trigger, ...]:
        """Return this leaf alone."""
        return (self,)

    def satisfied(self, fired: Set[Trigger]) -> bool:
        """Tell whether this leaf is among those that fired."""
        return self in fired


class TimeTrigger(_Leaf):
    """A leaf that fires at times it can compute ahead."""

    @abc.abstractmethod
    def next_time(self, after: datetime) -> datetime | None:
        """Return the first firing time strictly after ``after``, or None if there is none.

        Args:
            after: A timezone-aware datetime.

        Raises:
            StrategyError: ``after`` is naive.
        """


class SignalTrigger(_Leaf):
    """A leaf that fires when the agent receives a matching :class:`Signal`."""

    @abc.abstractmethod
    def matches(self, signal: Signal) -> bool:
        """Tell whether ``signal`` fires this leaf."""


class Interval(TimeTrigger):
    """Fires every ``seconds`` seconds, counted from when the runner arms it."""

    def __init__(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds <= 0:
            raise StrategyError(f"Interval needs a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)

    def describe(self) -> str:
        """Return e.g. ``every 30 s``."""
        return f"every {self.seconds:g} s"

    def next_time(self, after: datetime) -> datetime | None:
        """Return ``after`` plus the interval."""
        return require_aware(after, "Interval.next_time(after)") + timedelta(seconds=self.seconds)


class At(TimeTrigger):
    """Fires once, at a given timezone-aware datetime."""

    def __init__(self, when: datetime) -> None:
        self.when = require_aware(when, "At(when)")

    def describe(self) -> str:
        """Return e.g. ``at 2025-01-01T12:00:00+00:00``."""
        return f"at {self.when.isoformat()}"

    def next_time(self, after: datetime) -> datetime | None:
        """Return the firing time if it is still ahead of ``after``, else None."""
        return self.when if self.when > require_aware(after, "At.next_time(after)") else None


class Cron(TimeTrigger):
    """Fires on a cron schedule, e.g. ``Cron("*/5 * * * *")``, read in ``tz`` (UTC by default)."""

    def __init__(self, expression: str, tz: tzinfo = UTC) -> None:
        try:
            croniter(expression)
        except CroniterError as err:
            raise StrategyError(f"invalid cron expression {expression!r}: {err}") from err
        self.expression = expression
        self.tz = tz

    def describe(self) -> str:
        """Return e.g. ``cron */5 * * * *``, with the timezone when it is not UTC."""
        zone = "" if self.tz is UTC else f" ({self.tz})"
        return f"cron {self.expression}{zone}"

    def next_time(self, after: datetime) -> datetime | None:
        """Return the next scheduled time after ``after``, in UTC."""
        local = require_aware(after, "Cron.next_time(after)").astimezone(self.tz)
        return croniter(self.expression, local).get_next(datetime).astimezone(UTC)


class OnCall(SignalTrigger):
    """Fires when another agent calls the action ``action`` on the hosting agent."""

    def __init__(self, action: str) -> None:
        if not action:
            raise StrategyError("OnCall needs an action name")
        self.action = action

    def describe(self) -> str:
        """Return e.g. ``call submit_result``."""
        return f"call {self.action}"

    def matches(self, signal: Signal) -> bool:
        """Tell whether ``signal`` is a call of this action."""
        return signal.kind == "call" and signal.name == self.action


class OnEvent(SignalTrigger):
    """Fires when the event ``name`` is raised on the hosting agent."""

    def __init__(self, name: str) -> None:
        if not name:
            raise StrategyError("OnEvent needs an event name")
        self.name = name

    def describe(self) -> str:
        """Return e.g. ``event retrained``."""
        return f"event {self.name}"

    def matches(self, signal: Signal) -> bool:
        """Tell whether ``signal`` is this event."""
        return signal.kind == "event" and signal.name == self.name


class _Combination(Trigger):
    """Two triggers joined by an operator."""

    operator: str

    def __init__(self, left: Trigger, right: Trigger) -> None:
        self.left = left
        self.right = right

    def describe(self) -> str:
        """Return e.g. ``(every 30 s) & (event retrained)``."""
        return f"({self.left.describe()}) {self.operator} ({self.right.describe()})"

    def leaves(self) -> tuple[Trigger, ...]:
        """Return the leaves of both sides, left first."""
        return self.left.leaves() + self.right.leaves()


class AllOf(_Combination):
    """Fires when both sides have fired since the strategy last fired (``a & b``)."""

    operator = "&"

    def satisfied(self, fired: Set[Trigger]) -> bool:
        """Tell whether both sides are satisfied."""
        return self.left.satisfied(fired) and self.right.satisfied(fired)


class AnyOf(_Combination):
    """Fires when either side fires (``a | b``)."""

    operator = "|"

    def satisfied(self, fired: Set[Trigger]) -> bool:
        """Tell whether either side is satisfied."""
        return self.left.satisfied(fired) or self.right.satisfied(fired)

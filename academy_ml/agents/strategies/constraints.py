"""Constraints: the IF of a strategy.

A constraint looks at the hosting agent's state and the knowledge base and
answers ``(ok, reason)``; the reason is what the strategy log records, e.g.
``"12 of 16 new stable results since version 3"``. Constraints combine with
``&``, ``|`` and ``~``.

This module also defines :class:`StrategyContext`, what constraints and
actions are given, and :class:`KnowledgeCounter`, the one knowledge-base
query constraints need (the knowledge base itself lives elsewhere).
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from academy_ml.agents.strategies.triggers import Signal

__all__ = [
    "AllConstraints",
    "AnyConstraint",
    "Constraint",
    "KnowledgeCount",
    "KnowledgeCounter",
    "Not",
    "Predicate",
    "StateAtLeast",
    "StrategyContext",
]


class KnowledgeCounter(Protocol):
    """The part of the knowledge base constraints query."""

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        """Count results recorded since ``model_version`` (with ``flag``, if given)."""
        ...


@dataclass
class StrategyContext:
    """What constraints and actions see while a strategy is evaluated.

    Attributes:
        agent: Name of the hosting agent (goes into log records).
        host: The hosting agent (or any object): :class:`~academy_ml.agents.strategies.actions.Call`
            calls its methods.
        state: The agent's mutable state dict.
        kb: The knowledge base (only ``count_since`` is used here).
        now: Time of the evaluation (timezone-aware).
        signal: The signal being handled, or None for a time tick.
        stop_requested: Set by the ``Stop`` action; the host stops when it sees it.
    """

    agent: str
    host: Any
    state: dict[str, Any]
    kb: KnowledgeCounter
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    signal: Signal | None = None
    stop_requested: bool = False


class Constraint(abc.ABC):
    """A condition over a :class:`StrategyContext`, with a reason for its answer."""

    @abc.abstractmethod
    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Return whether the constraint holds and a readable reason why (or why not)."""

    def __and__(self, other: Constraint) -> AllConstraints:
        return AllConstraints(self, other)

    def __or__(self, other: Constraint) -> AnyConstraint:
        return AnyConstraint(self, other)

    def __invert__(self) -> Not:
        return Not(self)


class AllConstraints(Constraint):
    """Holds when both sides hold (``a & b``); the right side is skipped if the left fails."""

    def __init__(self, left: Constraint, right: Constraint) -> None:
        self.left = left
        self.right = right

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Check the left side, then the right one if the left holds."""
        ok, reason = await self.left.check(context)
        if not ok:
            return False, reason
        ok, other = await self.right.check(context)
        return ok, other if not ok else f"{reason}; {other}"


class AnyConstraint(Constraint):
    """Holds when either side holds (``a | b``); the right side is skipped if the left holds."""

    def __init__(self, left: Constraint, right: Constraint) -> None:
        self.left = left
        self.right = right

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Check the left side, then the right one if the left fails."""
        ok, reason = await self.left.check(context)
        if ok:
            return True, reason
        ok, other = await self.right.check(context)
        return ok, other if ok else f"{reason}; {other}"


class Not(Constraint):
    """Holds when the wrapped constraint does not (``~a``)."""

    def __init__(self, inner: Constraint) -> None:
        self.inner = inner

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Check the wrapped constraint and negate its answer."""
        ok, reason = await self.inner.check(context)
        return not ok, f"not ({reason})"


class StateAtLeast(Constraint):
    """Holds when ``state[key] >= n``."""

    def __init__(self, key: str, n: float) -> None:
        self.key = key
        self.n = n

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Compare the state value with the threshold; a missing key fails."""
        if self.key not in context.state:
            return False, f"state has no {self.key!r}"
        value = context.state[self.key]
        return value >= self.n, f"{self.key} = {value} (at least {self.n:g} needed)"


class KnowledgeCount(Constraint):
    """Holds when at least ``at_least`` results were recorded since the current model version.

    The version is read from ``state["model_version"]``; ``flag`` narrows the
    count (e.g. ``"stable"``).
    """

    def __init__(self, flag: str | None, at_least: int) -> None:
        self.flag = flag
        self.at_least = at_least

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Ask the knowledge base how many results arrived since the model version."""
        if "model_version" not in context.state:
            return False, "state has no 'model_version'"
        version = context.state["model_version"]
        count = await context.kb.count_since(version, flag=self.flag)
        what = f"new {self.flag} results" if self.flag else "new results"
        return count >= self.at_least, f"{count} of {self.at_least} {what} since version {version}"


class Predicate(Constraint):
    """Wraps any callable ``fn(context) -> bool`` (sync or async) with a description."""

    def __init__(
        self,
        fn: Callable[[StrategyContext], bool | Awaitable[bool]],
        description: str,
    ) -> None:
        self.fn = fn
        self.description = description

    async def check(self, context: StrategyContext) -> tuple[bool, str]:
        """Call the function (awaiting it if needed); the reason is the description and answer."""
        result = self.fn(context)
        ok = bool(await result) if inspect.isawaitable(result) else bool(result)
        return ok, f"{self.description}: {'yes' if ok else 'no'}"

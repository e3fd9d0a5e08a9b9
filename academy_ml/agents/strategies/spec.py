"""Strategies written as data: the ``[[strategies]]`` tables of an agent spec file.

::

    [[strategies]]
    name = "retrain"
    when = [{ on_call = "record_result" }, { interval = 10 }]   # any of these
    if = [{ knowledge_count = { flag = "stable", at_least = 16 } }]   # all of these
    then = [{ call = "retrain_generator" }]

Triggers (``when``, any of): ``interval`` (seconds), ``at`` (a TOML
datetime), ``cron`` (five fields), ``on_call`` (an action name),
``on_event`` (an event name: the roles raise ``result`` and
``evaluation_failed`` (analysis) and ``generator_exhausted`` (generation,
when its generator has no new candidate left)). Constraints (``if``, all of):
``state_at_least = { key, n }``, ``knowledge_count = { flag, at_least }``,
``predicate = "method"`` (a method of the agent taking the
strategy context, returning a bool). Actions (``then``, in order):
``call = "method"`` (with optional ``args`` and ``kwargs``),
``set_state = { key = value }``, ``stop = true``.

Specs are checked when the agent is built; a bad one raises
:class:`~academy_ml.exceptions.StrategyError` naming the strategy, the key
and the problem.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from academy_ml.agents.strategies.actions import Action, Call, SetState, Stop
from academy_ml.agents.strategies.constraints import (
    Constraint,
    KnowledgeCount,
    Predicate,
    StateAtLeast,
)
from academy_ml.agents.strategies.strategy import Strategy
from academy_ml.agents.strategies.triggers import At, Cron, Interval, OnCall, OnEvent, Trigger
from academy_ml.exceptions import StrategyError

__all__ = ["StrategySpec", "build_strategies", "parse_strategies"]


class _OneOf(BaseModel):
    """A table with exactly one of its keys set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneOf:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        allowed = ", ".join(type(self).model_fields)
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {allowed}, got {len(given)}")
        return self


class TriggerSpec(_OneOf):
    """One trigger."""

    interval: float | None = Field(None, gt=0)
    at: datetime | None = None
    cron: str | None = None
    on_call: str | None = Field(None, min_length=1)
    on_event: str | None = Field(None, min_length=1)

    def build(self) -> Trigger:
        """The trigger this table describes."""
        if self.interval is not None:
            return Interval(self.interval)
        if self.at is not None:
            return At(self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC))
        if self.cron is not None:
            return Cron(self.cron)
        if self.on_call is not None:
            return OnCall(self.on_call)
        assert self.on_event is not None
        return OnEvent(self.on_event)


class _StateAtLeast(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    n: float


class _KnowledgeCount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    flag: str | None = None
    at_least: int = Field(ge=1)


class ConstraintSpec(_OneOf):
    """One constraint."""

    state_at_least: _StateAtLeast | None = None
    knowledge_count: _KnowledgeCount | None = None
    predicate: str | None = Field(None, min_length=1)

    def build(self, host: Any) -> Constraint:
        """The constraint this table describes, bound to ``host`` for predicates."""
        if self.state_at_least is not None:
            return StateAtLeast(self.state_at_least.key, self.state_at_least.n)
        if self.knowledge_count is not None:
            return KnowledgeCount(self.knowledge_count.flag, self.knowledge_count.at_least)
        assert self.predicate is not None
        method = getattr(host, self.predicate, None)
        if not callable(method):
            raise StrategyError(
                f"predicate: {type(host).__name__} has no method {self.predicate!r}"
            )
        description = (method.__doc__ or self.predicate).strip().splitlines()[0].rstrip(".")
        return Predicate(method, description)


class ActionSpec(BaseModel):
    """One action: ``call`` (with ``args``/``kwargs``), ``set_state`` or ``stop``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call: str | None = Field(None, min_length=1)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    set_state: dict[str, Any] | None = None
    stop: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionSpec:
        given = [key for key in ("call", "set_state", "stop") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of call, set_state, stop, got {len(given)}")
        if self.call is None and (self.args or self.kwargs):
            raise ValueError("args and kwargs go with call")
        if self.stop is False:
            raise ValueError("stop must be true (leave the action out otherwise)")
        return self

    def build(self) -> list[Action]:
        """The action (a ``set_state`` of several keys is one action per key)."""
        if self.call is not None:
            return [Call(self.call, *self.args, **self.kwargs)]
        if self.set_state is not None:
            return [SetState(key, value) for key, value in self.set_state.items()]
        return [Stop()]


class StrategySpec(BaseModel):
    """One ``[[strategies]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    when: list[TriggerSpec] = Field(min_length=1)
    if_: list[ConstraintSpec] = Field(default_factory=list, alias="if")
    then: list[ActionSpec] = Field(min_length=1)

    def build(self, host: Any) -> Strategy:
        """The strategy, with predicates bound to ``host``."""
        trigger = functools.reduce(lambda a, b: a | b, (spec.build() for spec in self.when))
        constraints = [spec.build(host) for spec in self.if_]
        constraint = functools.reduce(lambda a, b: a & b, constraints) if constraints else None
        actions = [action for spec in self.then for action in spec.build()]
        return Strategy(self.name, when=trigger, if_=constraint, then=actions)


def parse_strategies(tables: Sequence[Mapping[str, Any]]) -> list[StrategySpec]:
    """Validate ``[[strategies]]`` tables.

    Raises:
        StrategyError: A table is malformed or two share a name; the message
            names the strategy (by name, else position), the key and the problem.
    """
    specs: list[StrategySpec] = []
    for index, table in enumerate(tables):
        label = f"strategies[{index}]"
        if isinstance(table, Mapping) and isinstance(table.get("name"), str):
            label = f"strategy {table['name']!r}"
        try:
            specs.append(StrategySpec.model_validate(table))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in detail['loc']) or 'table'}: "
                f"{str(detail['msg']).removeprefix('Value error, ')}"
                for detail in error.errors()
            )
            raise StrategyError(f"{label}: {problems}") from None
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise StrategyError(f"strategy {name!r} is defined twice")
    return specs


def build_strategies(specs: Sequence[StrategySpec], host: Any) -> list[Strategy]:
    """Build validated specs for ``host``.

    Raises:
        StrategyError: A predicate names a method ``host`` does not have.
    """
    built = []
    for spec in specs:
        try:
            built.append(spec.build(host))
        except StrategyError as error:
            raise StrategyError(f"strategy {spec.name!r}: {error}") from None
    return built

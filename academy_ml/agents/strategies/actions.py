"""Actions: the THEN of a strategy.

An action is anything with a ``name`` and ``async __call__(context) -> str``
returning an outcome text for the strategy log. The primitives are generic:
:class:`Call` invokes a method of the hosting agent (``Call("retrain")``,
``Call("pause_generation")``, ``Call("placement.redirect", "backup")``,
``Call("endpoints.set_max_blocks", "polaris", 4)``), :class:`SetState`
writes the agent's state, :class:`Stop` asks the host to stop, and
:class:`Chain` runs several in order.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from academy_ml.agents.strategies.constraints import StrategyContext
from academy_ml.exceptions import ActionError, StrategyError

__all__ = ["Action", "Call", "Chain", "SetState", "Stop", "describe_error"]


class Action(Protocol):
    """Something a strategy does when it fires."""

    @property
    def name(self) -> str:
        """Short name recorded in the strategy log."""
        ...

    async def __call__(self, context: StrategyContext) -> str:
        """Do the action and return a readable outcome."""
        ...


def describe_error(name: str, error: BaseException) -> str:
    """Return the outcome text recorded for an action that raised.

    Args:
        name: The action's name.
        error: What it raised.
    """
    return f"{name} failed: {type(error).__name__}: {error}"


class Call:
    """Call a method of the host, awaiting it if it is a coroutine.

    ``method`` may be dotted to reach an attribute of the host first
    (``"placement.redirect"`` calls ``host.placement.redirect``).
    """

    def __init__(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs

    @property
    def name(self) -> str:
        """The method name, as given."""
        return self.method

    async def __call__(self, context: StrategyContext) -> str:
        """Call the method and report what it returned.

        Raises:
            ActionError: The host has no such method.
        """
        target = context.host
        for part in self.method.split("."):
            if not hasattr(target, part):
                raise ActionError(
                    f"host {type(context.host).__name__} has no attribute {self.method!r}"
                )
            target = getattr(target, part)
        result = target(*self.args, **self.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return f"{self.method} done" if result is None else f"{self.method} -> {result!r}"

    def __repr__(self) -> str:
        return f"Call({self.method!r})"


class SetState:
    """Set ``state[key] = value`` on the hosting agent."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        self.value = value

    @property
    def name(self) -> str:
        """``set <key>``."""
        return f"set {self.key}"

    async def __call__(self, context: StrategyContext) -> str:
        """Write the value into the agent's state."""
        context.state[self.key] = self.value
        return f"{self.key} = {self.value!r}"


class Stop:
    """Ask the hosting agent to stop (sets ``context.stop_requested``)."""

    name = "stop"

    async def __call__(self, context: StrategyContext) -> str:
        """Raise the stop flag."""
        context.stop_requested = True
        return "stop requested"


class Chain:
    """Run several actions in order; the first one that raises stops the chain."""

    def __init__(self, *actions: Action) -> None:
        if not actions:
            raise StrategyError("Chain needs at least one action")
        self.actions = actions

    @property
    def name(self) -> str:
        """The chained names joined by ``->``."""
        return " -> ".join(action.name for action in self.actions)

    async def __call__(self, context: StrategyContext) -> str:
        """Run the actions; return their outcomes joined by ``;``.

        Raises:
            ActionError: An action raised; the message holds the outcomes so
                far and the failure, and the original error is its cause.
        """
        outcomes: list[str] = []
        for action in self.actions:
            try:
                outcomes.append(await action(context))
            except Exception as err:
                outcomes.append(describe_error(action.name, err))
                raise ActionError("; ".join(outcomes)) from err
        return "; ".join(outcomes)

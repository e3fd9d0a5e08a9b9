"""The base of every agent role: an Academy agent that hosts a strategy runner.

A :class:`StrategicAgent` owns a state dict, a knowledge base and a
:class:`~academy_ml.agents.strategies.StrategyRunner`, and wires them into Academy:

* one ``@loop`` sleeps until the runner's next time trigger is due and calls
  :meth:`~academy_ml.agents.strategies.StrategyRunner.on_time` (no second scheduler);
* actions declared with :func:`strategic_action` are Academy actions that,
  once they return, feed ``Signal("call", name)`` to the runner (``OnCall``);
* :meth:`StrategicAgent.emit` feeds ``Signal("event", name)`` (``OnEvent``);
* every evaluation is logged to the knowledge base as a
  :class:`~academy_ml.agents.knowledge.StrategyFiring`;
* the state is checkpointed (msgpack) to the knowledge base on a timer and at
  shutdown, and restored at startup when the agent's name has a checkpoint;
* every ``@loop`` runs its steps through :meth:`StrategicAgent.keep_stepping`:
  a step that raises is logged and counted (``state["loop_errors"]``) and the
  loop goes on after a short backoff, since an exception leaving an Academy
  loop shuts the whole agent down.

Evaluations are serialised by one lock, so a strategy never fires twice on
two concurrent calls. Strategic actions that a strategy's own actions call on
the same agent raise no further signal (no recursion, no self-deadlock).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from academy.agent import Agent, action, loop

from academy_ml.agents.knowledge import (
    KnowledgeBase,
    KnowledgeFactory,
    StrategyFiring,
    seal_state,
    unseal_state,
)
from academy_ml.agents.strategies import FiringRecord, Signal, Strategy, StrategyRunner
from academy_ml.agents.strategies.spec import build_strategies, parse_strategies
from academy_ml.exceptions import WireError

__all__ = ["StrategicAgent", "call_with_timeout", "strategic_action", "wait_any"]

logger = logging.getLogger(__name__)

#: Envelope kind of an agent's checkpointed state.
CHECKPOINT_KIND = "checkpoint"

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StrategicAgent")

#: How long shutdown waits for a strategy evaluation in progress before it checkpoints
#: (``up`` must stop within 10 s, so an action stuck on a gone peer cannot hold it).
SHUTDOWN_EVALUATION_WAIT_S = 2.0

#: Longest sleep of the strategy loop when no time trigger is due sooner.
MAX_SLEEP_S = 60.0

#: Pause after a loop step raised, doubled per failure in a row up to MAX_BACKOFF_S
#: (a step failing at once, e.g. with Redis down, must not spin).
BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0

#: True while the runner evaluates strategies (in that task and what it awaits).
_EVALUATING: ContextVar[bool] = ContextVar("academy_ml_evaluating", default=False)


def strategic_action(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Declare an Academy action whose calls fire ``OnCall(<method name>)`` strategies.

    The signal is raised after the method returns (so a strategy counting
    results sees the one just recorded), and not when the method raised.
    """
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result = await method(self, *args, **kwargs)
        await self.signal(Signal("call", name))
        return result

    return action(wrapper)


async def wait_any(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def call_with_timeout(call: Awaitable[R], timeout_s: float) -> R:
    """Await a call to another agent, raising TimeoutError after ``timeout_s`` seconds.

    An agent killed while running a request never answers it; callers that
    can go on without the answer (the ledger or a later review catches up)
    must not wait forever.

    When the caller is cancelled (an agent shutting down), Academy's handle
    sends a cancel request, which raises if the callee's mailbox is already
    gone; ``wait_for`` never retrieves that exception, and asyncio would print
    its traceback when the task is collected. It is retrieved and logged here.
    """
    task = asyncio.ensure_future(call)
    task.add_done_callback(_log_unretrieved)
    return await asyncio.wait_for(task, timeout_s)


def _log_unretrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.debug("a call to another agent ended with %r", error)


class StrategicAgent(Agent):
    """An Academy agent with strategies, a knowledge base and a durable state.

    Subclasses fill :attr:`state` in ``__init__`` (defaults, overwritten by a
    checkpoint) with msgpack-encodable values, and return their strategies
    from :meth:`strategies`.

    Args:
        knowledge: Opens the knowledge base at startup, in the agent's own
            process and event loop (:class:`~academy_ml.agents.knowledge.RedisKnowledge`,
            or :class:`~academy_ml.agents.knowledge.InMemoryKnowledge` within one
            process); the agent closes what it opened at shutdown.
        name: The agent's identity: its checkpoint key and name in the
            strategy log (default: the class name).
        checkpoint_interval_s: Seconds between checkpoints.
        strategies: Strategy specs (``[[strategies]]`` tables of an agent
            spec file, see :mod:`academy_ml.agents.strategies.spec`) that replace
            the class's :meth:`strategies`.

    Raises:
        StrategyError: A strategy spec is malformed.
    """

    def __init__(
        self,
        knowledge: KnowledgeFactory,
        *,
        name: str | None = None,
        checkpoint_interval_s: float = 5.0,
        strategies: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if checkpoint_interval_s <= 0:
            raise ValueError(f"checkpoint_interval_s must be positive, got {checkpoint_interval_s}")
        self.name = name or type(self).__name__
        self.state: dict[str, Any] = {}
        self._knowledge = knowledge
        self._checkpoint_interval_s = checkpoint_interval_s
        self._kb: KnowledgeBase | None = None
        self._runner: StrategyRunner | None = None
        self._lock: asyncio.Lock | None = None
        self._closing = False
        self._strategy_specs = None if strategies is None else parse_strategies(strategies)

    def strategies(self) -> Sequence[Strategy]:
        """The agent's strategies, built at startup (none by default)."""
        return ()

    @property
    def kb(self) -> KnowledgeBase:
        """The knowledge base (available from startup on)."""
        if self._kb is None:
            raise RuntimeError(f"agent {self.name!r} has not started")
        return self._kb

    @property
    def runner(self) -> StrategyRunner:
        """The strategy runner (available from startup on)."""
        if self._runner is None:
            raise RuntimeError(f"agent {self.name!r} has not started")
        return self._runner

    async def agent_on_startup(self) -> None:
        """Open the knowledge base, restore the last checkpoint and build the runner."""
        self._kb = self._knowledge.open()
        saved = await self._kb.load_checkpoint(self.name)
        if saved is not None:
            try:
                self.state.update(unseal_state(CHECKPOINT_KIND, saved))
            except WireError as exc:
                # Unreadable bytes must not keep the agent from starting; the
                # next checkpoint replaces them.
                logger.error("%s starts afresh: its checkpoint is unreadable: %s", self.name, exc)
            else:
                self.restored()
                logger.info("%s restored its state from a checkpoint", self.name)
        self._lock = asyncio.Lock()
        strategies = (
            self.strategies()
            if self._strategy_specs is None
            else build_strategies(self._strategy_specs, self)
        )
        self._runner = StrategyRunner(
            strategies, self, self.state, self._kb, self._log_firing, agent=self.name
        )
        self._runner.context.stop_requested = bool(self.state.get("strategies_stopped", False))
        logger.info(
            "%s started: strategies %s%s",
            self.name,
            ", ".join(strategy.name for strategy in strategies) or "none",
            " (stopped before)" if self._runner.stop_requested else "",
        )

    async def agent_on_shutdown(self) -> None:
        """Let a running evaluation finish, stop evaluating, checkpoint, close the knowledge base.

        Actions still being served during shutdown would otherwise evaluate
        strategies against a closed knowledge base; their signals are dropped.
        """
        if self._kb is None:
            return
        assert self._lock is not None
        try:
            await asyncio.wait_for(self._lock.acquire(), SHUTDOWN_EVALUATION_WAIT_S)
        except TimeoutError:
            logger.warning(
                "%s: a strategy evaluation outlived shutdown; checkpointing anyway", self.name
            )
        else:
            self._lock.release()
        self._closing = True
        try:
            await self.checkpoint()
        finally:
            await self._kb.close()

    def snapshot(self) -> None:
        """Hook: bring :attr:`state` up to date before a checkpoint (nothing by default)."""

    def restored(self) -> None:
        """Hook: called after :attr:`state` was restored from a checkpoint (nothing by default)."""

    async def checkpoint(self) -> None:
        """Save the state to the knowledge base under the agent's name."""
        self.snapshot()
        self.state["strategies_stopped"] = self.runner.stop_requested
        await self.kb.save_checkpoint(self.name, seal_state(CHECKPOINT_KIND, self.state))

    async def signal(self, signal: Signal) -> list[FiringRecord]:
        """Evaluate the strategies on ``signal``; return the records logged.

        Signals raised while the strategies are being evaluated are dropped.
        """
        if _EVALUATING.get():
            return []
        return await self._evaluate(self.runner.on_signal, signal)

    async def emit(self, event: str) -> list[FiringRecord]:
        """Raise the event ``event`` (fires ``OnEvent(event)`` strategies)."""
        return await self.signal(Signal("event", event))

    async def _evaluate(self, step: Callable[[Any], Any], argument: Any) -> list[FiringRecord]:
        """Run one runner step under the lock, marking the task as evaluating."""
        assert self._lock is not None
        async with self._lock:
            if self._closing:
                logger.debug("%s is shutting down: %s dropped", self.name, argument)
                return []
            token = _EVALUATING.set(True)
            try:
                records: list[FiringRecord] = await step(argument)
            finally:
                _EVALUATING.reset(token)
        return records

    async def _log_firing(self, record: FiringRecord) -> None:
        await self.kb.log_firing(StrategyFiring.model_validate(dict(record)))

    @action
    async def status(self) -> dict[str, Any]:
        """The agent's name, a copy of its state, and whether its strategies stopped.

        ``failures`` counts what raised without stopping anything: loop steps
        (by loop) and strategy constraints, actions and log writes (by strategy).
        """
        return {
            "name": self.name,
            "state": dict(self.state),
            "stopped": self.runner.stop_requested,
            "failures": {
                **self.state.get("loop_errors", {}),
                **{f"strategy {name}": n for name, n in self.runner.failures.items()},
            },
        }

    async def keep_stepping(
        self,
        where: str,
        shutdown: asyncio.Event,
        step: Callable[[], Awaitable[None]],
        *,
        done: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run ``step`` until shutdown or ``done()``; a step that raises never ends the loop.

        Args:
            where: The loop's name, counted in ``state["loop_errors"]``.
            shutdown: Academy's shutdown event.
            step: One iteration of the loop.
            done: Whether the loop has finished its work (checked before each step).
        """
        streak = 0
        while not shutdown.is_set() and not done():
            try:
                await step()
                streak = 0
            except Exception:
                streak += 1
                errors = self.state.setdefault("loop_errors", {})
                errors[where] = errors.get(where, 0) + 1
                logger.exception(
                    "%s: a %s step raised (%d in a row); the loop goes on", self.name, where, streak
                )
                await wait_any(shutdown, timeout=min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (streak - 1)))

    @loop
    async def run_strategies(self, shutdown: asyncio.Event) -> None:
        """Feed time to the runner until shutdown or until a strategy stops it."""
        runner = self.runner

        async def step() -> None:
            now = datetime.now(UTC)
            wake = runner.next_wakeup(now)
            delay = MAX_SLEEP_S if wake is None else max(0.0, (wake - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), min(delay, MAX_SLEEP_S))
            if not shutdown.is_set():
                await self._evaluate(runner.on_time, datetime.now(UTC))

        await self.keep_stepping(
            "run_strategies", shutdown, step, done=lambda: runner.stop_requested
        )

    @loop
    async def checkpoint_periodically(self, shutdown: asyncio.Event) -> None:
        """Checkpoint the state every ``checkpoint_interval_s`` seconds."""

        async def step() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), self._checkpoint_interval_s)
            if not shutdown.is_set():
                await self.checkpoint()

        await self.keep_stepping("checkpoint", shutdown, step)

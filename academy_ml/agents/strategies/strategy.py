"""Strategies (WHEN trigger IF constraint THEN actions) and the runner agents host.

The runner is pure: it never sleeps or starts threads. The hosting agent
feeds it signals from its Academy actions and events, and time from one
``@loop`` that sleeps until :meth:`StrategyRunner.next_wakeup`::

    @loop
    async def strategies(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set() and not self.runner.stop_requested:
            now = datetime.now(UTC)
            wake = self.runner.next_wakeup(now)
            delay = 60.0 if wake is None else max(0.0, (wake - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), min(delay, 60.0))
            await self.runner.on_time(datetime.now(UTC))

Every evaluation in which a strategy's trigger is satisfied is logged,
whether its constraint let it fire or not: to the knowledge base's strategy
log (what ``academy-ml status`` shows) and to the logs, one line per
evaluation naming the agent, the strategy, the trigger leaves seen, the
constraint's answer and, when it acted, the actions and their outcomes.
An evaluation that held is INFO on this module's logger
(``academy_ml.agents.strategies.strategy``); a firing that acted is WARNING
on its child :data:`FIRINGS` (``...strategy.firings``), which a terminal
showing warnings leaves to the log files: a long run acts often.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from academy_ml.agents.strategies.actions import Action, describe_error
from academy_ml.agents.strategies.constraints import Constraint, KnowledgeCounter, StrategyContext
from academy_ml.agents.strategies.triggers import (
    Signal,
    SignalTrigger,
    TimeTrigger,
    Trigger,
    require_aware,
)
from academy_ml.exceptions import StrategyError

__all__ = ["FIRINGS", "FiringLog", "FiringRecord", "Strategy", "StrategyRunner"]

logger = logging.getLogger(__name__)
#: The logger of firings that acted (WARNING).
FIRINGS = f"{__name__}.firings"
_firings = logging.getLogger(FIRINGS)


class FiringRecord(TypedDict):
    """One strategy evaluation, as written to the knowledge base's strategy log.

    Attributes:
        agent: The hosting agent.
        strategy: The strategy's name.
        trigger: The strategy's trigger, described.
        fired: Whether the actions ran (False: the constraint said no).
        reason: Which trigger leaves matched and what the constraint said.
        actions: Names of the actions that ran, in order (empty if not fired).
        outcome: The actions' outcomes joined by ``;`` (empty if not fired).
        created: Evaluation time, epoch seconds.
    """

    agent: str
    strategy: str
    trigger: str
    fired: bool
    reason: str
    actions: list[str]
    outcome: str
    created: float


FiringLog = Callable[[FiringRecord], Awaitable[None]]


@dataclass(frozen=True)
class Strategy:
    """WHEN ``when`` IF ``if_`` THEN ``then`` (run in order).

    Attributes:
        name: Unique name within an agent, used in logs.
        when: The trigger.
        if_: The constraint, or None to fire whenever the trigger does.
        then: The actions, run in order; one that raises ends the chain.
    """

    name: str
    when: Trigger
    if_: Constraint | None = None
    then: Sequence[Action] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise StrategyError("a strategy needs a name")
        if not self.then:
            raise StrategyError(f"strategy {self.name!r} has no actions")
        object.__setattr__(self, "then", tuple(self.then))


@dataclass
class _Memory:
    """What the runner remembers about one strategy."""

    pending: set[Trigger] = field(default_factory=set)
    due: dict[TimeTrigger, datetime | None] = field(default_factory=dict)


class StrategyRunner:
    """Evaluates an agent's strategies on signals and on time ticks.

    Args:
        strategies: The agent's strategies (unique names).
        host: The hosting agent;
            :class:`~academy_ml.agents.strategies.actions.Call` calls its methods.
        state: The agent's state dict, read by constraints, written by actions.
        kb: The knowledge base, queried by constraints.
        log: Async callable receiving a :class:`FiringRecord` per evaluation.
        agent: Agent name for the log (default: the host's class name).
    """

    def __init__(
        self,
        strategies: Sequence[Strategy],
        host: Any,
        state: dict[str, Any],
        kb: KnowledgeCounter,
        log: FiringLog,
        *,
        agent: str | None = None,
    ) -> None:
        names = [strategy.name for strategy in strategies]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise StrategyError(f"duplicate strategy names: {', '.join(duplicates)}")
        self.strategies = tuple(strategies)
        self.context = StrategyContext(
            agent=agent or type(host).__name__, host=host, state=state, kb=kb
        )
        self._log = log
        self._memory = {strategy.name: _Memory() for strategy in self.strategies}
        #: Per strategy: constraints, actions and log writes that raised (and were survived).
        self.failures: dict[str, int] = {}
        self._armed = False

    @property
    def stop_requested(self) -> bool:
        """True once a ``Stop`` action ran; the runner then evaluates nothing more."""
        return self.context.stop_requested

    def next_wakeup(self, now: datetime) -> datetime | None:
        """Return when the earliest time trigger is due, or None if none ever will be.

        The first call (or :meth:`on_time`) arms the time triggers from ``now``.
        """
        self._arm(require_aware(now, "next_wakeup(now)"))
        dues = [due for memory in self._memory.values() for due in memory.due.values()]
        return min((due for due in dues if due is not None), default=None)

    async def on_time(self, now: datetime) -> list[FiringRecord]:
        """Fire the time triggers due at ``now`` and evaluate their strategies.

        Firings missed while the agent was busy are coalesced into one.

        Returns:
            The records logged.
        """
        self._arm(require_aware(now, "on_time(now)"))
        records = []
        for strategy in self.strategies:
            memory = self._memory[strategy.name]
            matched: list[Trigger] = []
            for leaf, due in memory.due.items():
                if due is None or due > now:
                    continue
                matched.append(leaf)
                following = leaf.next_time(due)
                memory.due[leaf] = (
                    leaf.next_time(now) if following is not None and following <= now else following
                )
            record = await self._evaluate(strategy, matched, now, None)
            if record is not None:
                records.append(record)
        return records

    async def on_signal(self, signal: Signal, now: datetime | None = None) -> list[FiringRecord]:
        """Evaluate the strategies whose signal triggers match ``signal``.

        Args:
            signal: The call or event the agent received.
            now: Time of the signal (default: the current time, UTC).

        Returns:
            The records logged.
        """
        when = datetime.now(UTC) if now is None else require_aware(now, "on_signal(now)")
        records = []
        for strategy in self.strategies:
            matched = [
                leaf
                for leaf in strategy.when.leaves()
                if isinstance(leaf, SignalTrigger) and leaf.matches(signal)
            ]
            record = await self._evaluate(strategy, matched, when, signal)
            if record is not None:
                records.append(record)
        return records

    def _arm(self, now: datetime) -> None:
        """Compute the first due time of every time trigger, once."""
        if self._armed:
            return
        self._armed = True
        for strategy in self.strategies:
            due = self._memory[strategy.name].due
            for leaf in strategy.when.leaves():
                if isinstance(leaf, TimeTrigger):
                    due[leaf] = leaf.next_time(now)

    async def _evaluate(
        self, strategy: Strategy, matched: Sequence[Trigger], now: datetime, signal: Signal | None
    ) -> FiringRecord | None:
        """Record the matched leaves; if the trigger is satisfied, check and act, then log."""
        if not matched or self.stop_requested:
            return None
        memory = self._memory[strategy.name]
        memory.pending.update(matched)
        if not strategy.when.satisfied(memory.pending):
            return None
        # Taken before any await, so a concurrent evaluation cannot fire it twice.
        pending, memory.pending = memory.pending, set()
        context = self.context
        context.now, context.signal = now, signal
        ok, why = await self._check(strategy, context)
        seen = ", ".join(dict.fromkeys(leaf.describe() for leaf in matched))
        record = FiringRecord(
            agent=context.agent,
            strategy=strategy.name,
            trigger=strategy.when.describe(),
            fired=ok,
            reason=f"on {seen}: {why}",
            actions=[],
            outcome="",
            created=now.timestamp(),
        )
        if ok:
            record["actions"], record["outcome"] = await self._act(strategy, context)
        else:
            memory.pending |= pending
        _log_evaluation(record)
        try:
            await self._log(record)
        except Exception:
            # The actions ran; a lost log line (knowledge base down) must not undo that.
            logger.warning("strategy %r: writing its log failed", strategy.name, exc_info=True)
            self._failed(strategy)
        return record

    def _failed(self, strategy: Strategy) -> None:
        self.failures[strategy.name] = self.failures.get(strategy.name, 0) + 1

    async def _check(self, strategy: Strategy, context: StrategyContext) -> tuple[bool, str]:
        """Check the strategy's constraint; one that raises counts as not satisfied."""
        if strategy.if_ is None:
            return True, "no constraint"
        try:
            return await strategy.if_.check(context)
        except Exception as err:
            logger.warning("constraint of strategy %r raised", strategy.name, exc_info=True)
            self._failed(strategy)
            return False, f"constraint failed: {type(err).__name__}: {err}"

    async def _act(self, strategy: Strategy, context: StrategyContext) -> tuple[list[str], str]:
        """Run the actions in order until one raises; return their names and outcomes."""
        names: list[str] = []
        outcomes: list[str] = []
        for action in strategy.then:
            names.append(action.name)
            try:
                outcomes.append(await action(context))
            except Exception as err:
                logger.warning(
                    "action %r of strategy %r raised", action.name, strategy.name, exc_info=True
                )
                self._failed(strategy)
                outcomes.append(describe_error(action.name, err))
                break
        return names, "; ".join(outcomes)


def _log_evaluation(record: FiringRecord) -> None:
    """One line per evaluation: fired (WARNING, with actions and outcomes) or held (INFO), why."""
    if record["fired"]:
        _firings.warning(
            "%s: strategy %r fired (%s) -> %s: %s",
            record["agent"],
            record["strategy"],
            record["reason"],
            ", ".join(record["actions"]),
            record["outcome"] or "done",
        )
    else:
        logger.info(
            "%s: strategy %r held (%s)", record["agent"], record["strategy"], record["reason"]
        )

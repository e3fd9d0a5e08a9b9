"""Autonomic strategies: WHEN trigger IF constraint THEN actions.

Agents host a :class:`StrategyRunner` and feed it signals (calls, events)
and time; it evaluates the strategies, runs the actions and logs every
firing::

    from academy_ml.agents.strategies import Call, Interval, KnowledgeCount, OnEvent, Strategy

    retrain = Strategy(
        "retrain",
        when=Interval(30) | OnEvent("results"),
        if_=KnowledgeCount("stable", at_least=16),
        then=[Call("retrain")],
    )
"""

from __future__ import annotations

from academy_ml.agents.strategies.actions import Action, Call, Chain, SetState, Stop
from academy_ml.agents.strategies.constraints import (
    Constraint,
    KnowledgeCount,
    KnowledgeCounter,
    Predicate,
    StateAtLeast,
    StrategyContext,
)
from academy_ml.agents.strategies.strategy import FiringLog, FiringRecord, Strategy, StrategyRunner
from academy_ml.agents.strategies.triggers import (
    At,
    Cron,
    Interval,
    OnCall,
    OnEvent,
    Signal,
    Trigger,
)
from academy_ml.exceptions import ActionError, StrategyError

__all__ = [
    "Action",
    "ActionError",
    "At",
    "Call",
    "Chain",
    "Constraint",
    "Cron",
    "FiringLog",
    "FiringRecord",
    "Interval",
    "KnowledgeCount",
    "KnowledgeCounter",
    "OnCall",
    "OnEvent",
    "Predicate",
    "SetState",
    "Signal",
    "StateAtLeast",
    "Stop",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "StrategyRunner",
    "Trigger",
]

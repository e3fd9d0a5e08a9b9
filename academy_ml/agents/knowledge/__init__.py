"""The knowledge base: candidates, results, a model registry, the strategy log, checkpoints.

Agents share one :class:`KnowledgeBase`: :class:`RedisKnowledgeBase` in a
Redis deployment, :class:`SqliteKnowledgeBase` (one file) in an embedded one,
:class:`InMemoryKnowledgeBase` in tests; each agent opens it from a
:class:`KnowledgeFactory` (:class:`RedisKnowledge`, :class:`SqliteKnowledge`,
:class:`InMemoryKnowledge`).
Records are pydantic models stored as versioned msgpack.
"""

from __future__ import annotations

from academy_ml.agents.knowledge.base import FIRING_LOG_LENGTH, KnowledgeBase
from academy_ml.agents.knowledge.factory import (
    InMemoryKnowledge,
    KnowledgeFactory,
    RedisKnowledge,
    SqliteKnowledge,
)
from academy_ml.agents.knowledge.memory import InMemoryKnowledgeBase
from academy_ml.agents.knowledge.records import (
    RECORD_VERSION,
    CandidateRecord,
    ModelVersion,
    ResultRecord,
    StrategyFiring,
    seal_state,
    unseal_state,
)
from academy_ml.agents.knowledge.redis import RedisKnowledgeBase
from academy_ml.agents.knowledge.sqlite import SqliteKnowledgeBase
from academy_ml.exceptions import KnowledgeError, KnowledgeStoreError

__all__ = [
    "FIRING_LOG_LENGTH",
    "RECORD_VERSION",
    "CandidateRecord",
    "InMemoryKnowledge",
    "InMemoryKnowledgeBase",
    "KnowledgeBase",
    "KnowledgeError",
    "KnowledgeFactory",
    "KnowledgeStoreError",
    "ModelVersion",
    "RedisKnowledge",
    "RedisKnowledgeBase",
    "ResultRecord",
    "SqliteKnowledge",
    "SqliteKnowledgeBase",
    "StrategyFiring",
    "seal_state",
    "unseal_state",
]

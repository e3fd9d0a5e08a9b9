"""Knowledge-base factories: what an agent is given to open its knowledge base with.

An agent opens its knowledge base at startup, in the process and event loop
it runs in (a Redis connection is bound to the loop that first uses it), and
closes it at shutdown. So agents are given a small factory, not a client:

* :class:`RedisKnowledge` (a URL and a deployment name) pickles to any
  process, and each agent opening it gets its own connection;
* :class:`SqliteKnowledge` (a file) pickles too, and each agent opening it
  gets its own connection to the shared file;
* :class:`InMemoryKnowledge` hands every agent of one process the same
  :class:`InMemoryKnowledgeBase`; it refuses to be pickled, since a copy in
  another process would silently stop being shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from academy_ml.agents.knowledge.base import KnowledgeBase
from academy_ml.agents.knowledge.memory import InMemoryKnowledgeBase
from academy_ml.agents.knowledge.redis import RedisKnowledgeBase
from academy_ml.agents.knowledge.sqlite import SqliteKnowledgeBase

__all__ = ["InMemoryKnowledge", "KnowledgeFactory", "RedisKnowledge", "SqliteKnowledge"]


class KnowledgeFactory(Protocol):
    """Opens the knowledge base an agent uses (the agent closes it at shutdown)."""

    def open(self) -> KnowledgeBase:
        """A knowledge base for the caller (closing it must not affect other callers)."""
        ...


@dataclass(frozen=True)
class RedisKnowledge:
    """The knowledge base in Redis under a deployment's name.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL of the Redis server.
        name: The deployment's name, the prefix of every key.
    """

    url: str
    name: str = "academy_ml"

    def open(self) -> RedisKnowledgeBase:
        """A new connection to the knowledge base."""
        return RedisKnowledgeBase(self.url, self.name)


@dataclass(frozen=True)
class SqliteKnowledge:
    """The knowledge base in a SQLite file, shared by every process that opens it on this machine.

    Args:
        path: The database file (created with its directory on first use).
    """

    path: str

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", os.fspath(path))

    def open(self) -> SqliteKnowledgeBase:
        """A new connection to the knowledge base."""
        return SqliteKnowledgeBase(self.path)


@dataclass(frozen=True)
class InMemoryKnowledge:
    """One in-process knowledge base shared by every agent given this factory.

    Args:
        kb: The knowledge base (default: a new, empty one).
    """

    kb: InMemoryKnowledgeBase = field(default_factory=InMemoryKnowledgeBase)

    def open(self) -> InMemoryKnowledgeBase:
        """The shared knowledge base (its ``close`` releases nothing)."""
        return self.kb

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(
            "an in-memory knowledge base cannot leave its process; "
            "agents in other processes need SqliteKnowledge(path) or RedisKnowledge(url, name)"
        )

"""Affinity records: which endpoints computed a plan node.

The placer sends a plan to the endpoint whose node-local cache holds most of
its nodes. It learns that from records ``(endpoint, node key)`` written after
every successful batch. An endpoint holds a node once any batch computed it
there, so nodes every endpoint has (the data, the splits, a common imputer)
count for all of them and the nodes only one endpoint has decide. Records
expire (a cache is bounded, an endpoint may be redeployed), so a stale
record costs a cache miss, never a wrong result.

Two stores: :class:`InMemoryAffinity` (one client process) and
:class:`RedisAffinity` (shared by every agent that places work: what one
agent's batch computed attracts another agent's batch).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import redis

__all__ = ["AffinityStore", "InMemoryAffinity", "RedisAffinity"]

#: How long a record lives unless refreshed: one day.
DEFAULT_TTL_S = 24 * 3600.0


@runtime_checkable
class AffinityStore(Protocol):
    """Where ``(endpoint, node key)`` records live."""

    def record(self, keys: Iterable[str], endpoint: str) -> None:
        """Records that ``endpoint`` now holds ``keys``."""
        ...

    def held(self, keys: Sequence[str], endpoints: Sequence[str]) -> dict[str, int]:
        """How many of ``keys`` each of ``endpoints`` holds."""
        ...

    def forget(self, endpoint: str) -> None:
        """Drops every record of ``endpoint`` (its cache is gone)."""
        ...

    def close(self) -> None:
        """Releases connections."""
        ...


class InMemoryAffinity:
    """Records in a dict, each with an expiry time.

    Args:
        ttl_s: seconds a record lives after it was last written.
    """

    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.ttl_s = ttl_s
        self._records: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, keys: Iterable[str], endpoint: str) -> None:
        """Records that ``endpoint`` now holds ``keys``."""
        expires = time.monotonic() + self.ttl_s
        with self._lock:
            held = self._records.setdefault(endpoint, {})
            for key in keys:
                held[key] = expires

    def held(self, keys: Sequence[str], endpoints: Sequence[str]) -> dict[str, int]:
        """How many of ``keys`` each of ``endpoints`` holds (live records only)."""
        now = time.monotonic()
        with self._lock:
            counts = {}
            for endpoint in endpoints:
                held = self._records.get(endpoint, {})
                counts[endpoint] = sum(1 for key in keys if held.get(key, 0.0) > now)
        return counts

    def forget(self, endpoint: str) -> None:
        """Drops every record of ``endpoint``."""
        with self._lock:
            self._records.pop(endpoint, None)

    def close(self) -> None:
        """Nothing to release."""


class RedisAffinity:
    """Records in Redis hashes shared by every client that places work.

    Each endpoint's records live in hashes, one per *generation* of
    ``ttl_s`` seconds (``{prefix}:affinity:{endpoint}:{generation}``, one
    field per node key); a generation's hash expires ``2 * ttl_s`` after its
    last write, and lookups read the current and the previous generation, so
    a record lives between ``ttl_s`` and ``2 * ttl_s``. (Per-field expiry,
    ``HEXPIRE``, needs Redis 7.4; this works on any version.) A batch's
    records are one ``HSET`` and one ``PEXPIRE``; a lookup is two ``HMGET``
    per endpoint; each is one round trip.

    Args:
        url: Redis URL (``redis://[:password@]host:port/db``).
        prefix: namespace of the records' keys.
        ttl_s: a record lives at least this long after it was last written,
            and at most twice as long.
        client: a ``redis.Redis`` to use instead of connecting to ``url``.
    """

    def __init__(
        self,
        url: str | None = None,
        prefix: str = "academy-ml",
        *,
        ttl_s: float = DEFAULT_TTL_S,
        client: redis.Redis | None = None,
    ) -> None:
        if client is None and url is None:
            raise ValueError("RedisAffinity needs a url or a client")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.ttl_s = ttl_s
        self.prefix = f"{prefix}:affinity"
        self._owns_client = client is None
        self._redis: redis.Redis = client if client is not None else redis.Redis.from_url(url or "")

    def _hashes(self, endpoint: str) -> tuple[str, str]:
        """The endpoint's current and previous generation."""
        generation = int(time.time() // self.ttl_s)
        return (
            f"{self.prefix}:{endpoint}:{generation}",
            f"{self.prefix}:{endpoint}:{generation - 1}",
        )

    def record(self, keys: Iterable[str], endpoint: str) -> None:
        """Records that ``endpoint`` now holds ``keys``: one round trip."""
        fields: dict[Any, int] = dict.fromkeys(keys, 1)
        if not fields:
            return
        current, _ = self._hashes(endpoint)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(current, mapping=fields)
        pipe.pexpire(current, math.ceil(2000 * self.ttl_s))
        pipe.execute()

    def held(self, keys: Sequence[str], endpoints: Sequence[str]) -> dict[str, int]:
        """How many of ``keys`` each of ``endpoints`` holds: one round trip."""
        if not keys or not endpoints:
            return dict.fromkeys(endpoints, 0)
        pipe = self._redis.pipeline(transaction=False)
        for endpoint in endpoints:
            for name in self._hashes(endpoint):
                pipe.hmget(name, list(keys))
        replies = iter(pipe.execute())
        counts = {}
        for endpoint in endpoints:
            current, previous = next(replies), next(replies)
            counts[endpoint] = sum(
                1 for now, before in zip(current, previous, strict=True) if now or before
            )
        return counts

    def forget(self, endpoint: str) -> None:
        """Drops every record of ``endpoint``."""
        self._redis.delete(*self._hashes(endpoint))

    def close(self) -> None:
        """Closes the connection pool if this store opened it."""
        if self._owns_client:
            self._redis.close()

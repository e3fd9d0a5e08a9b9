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
agent's batch computed attracts another agent's batch; through the package's
RESP client, like the exchange and the knowledge base).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from academy_ml.core.reconnect import connection_error, with_reconnect
from academy_ml.core.resp import Connection

__all__ = ["AffinityStore", "InMemoryAffinity", "RedisAffinity"]

T = TypeVar("T")

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

    The placer asks from whatever thread it runs on (the caller's, a pool's
    done-callback, a timer), so the store talks to Redis through the
    package's asyncio RESP client on an event loop of its own, in a daemon
    thread started with the first call: one connection, and commands of
    concurrent callers share its round trips. A lost connection or a
    ``LOADING`` Redis is retried for up to ``timeout_s``; past that a call
    raises :class:`~academy_ml.exceptions.ExchangeConnectionError` (the
    placer then places by load).

    Args:
        url: Redis URL (``redis://[[user]:password@]host:port[/db]``,
            ``rediss://``, ``unix://``).
        prefix: namespace of the records' keys.
        ttl_s: a record lives at least this long after it was last written,
            and at most twice as long.
        timeout_s: most seconds one call waits for Redis, retries included.

    Raises:
        ValueError: ``url`` is not a Redis URL, or a bound is not positive.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "academy-ml",
        *,
        ttl_s: float = DEFAULT_TTL_S,
        timeout_s: float = 5.0,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.prefix = f"{prefix}:affinity"
        self._url = url
        self._connection = Connection(url, connect_timeout_s=timeout_s)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _hashes(self, endpoint: str) -> tuple[str, str]:
        """The endpoint's current and previous generation."""
        generation = int(time.time() // self.ttl_s)
        return (
            f"{self.prefix}:{endpoint}:{generation}",
            f"{self.prefix}:{endpoint}:{generation - 1}",
        )

    def record(self, keys: Iterable[str], endpoint: str) -> None:
        """Records that ``endpoint`` now holds ``keys``: one round trip."""
        fields = [part for key in dict.fromkeys(keys) for part in (key, b"1")]
        if not fields:
            return
        current, _ = self._hashes(endpoint)
        self._pipeline(
            f"recording {endpoint}'s affinity",
            (b"HSET", current, *fields),
            (b"PEXPIRE", current, math.ceil(2000 * self.ttl_s)),
        )

    def held(self, keys: Sequence[str], endpoints: Sequence[str]) -> dict[str, int]:
        """How many of ``keys`` each of ``endpoints`` holds: one round trip."""
        if not keys or not endpoints:
            return dict.fromkeys(endpoints, 0)
        commands = [
            (b"HMGET", name, *keys) for endpoint in endpoints for name in self._hashes(endpoint)
        ]
        replies = iter(self._pipeline("reading affinity", *commands))
        counts = {}
        for endpoint in endpoints:
            current, previous = next(replies), next(replies)
            counts[endpoint] = sum(
                1 for now, before in zip(current, previous, strict=True) if now or before
            )
        return counts

    def forget(self, endpoint: str) -> None:
        """Drops every record of ``endpoint``."""
        self._pipeline(f"forgetting {endpoint}", (b"DEL", *self._hashes(endpoint)))

    def close(self) -> None:
        """Closes the connection and stops the store's loop; later calls raise RuntimeError.

        Calls still waiting for Redis in other threads are cancelled.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _pipeline(self, what: str, *commands: tuple[Any, ...]) -> list[Any]:
        """Runs ``commands`` in one round trip on the store's loop; waits for the replies."""

        async def attempt() -> list[Any]:
            return await self._connection.pipeline(*commands)

        future = self._submit(self._bounded(attempt, what))
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError("the affinity store was closed during the call") from None

    async def _bounded(self, attempt: Callable[[], Awaitable[list[Any]]], what: str) -> list[Any]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await with_reconnect(
                    attempt, url=self._url, deadline_s=self.timeout_s, what=what
                )
        except TimeoutError as error:
            # Redis took the command but does not answer: start afresh next time.
            self._connection.abort()
            raise connection_error(
                self._url, TimeoutError(f"no answer within {self.timeout_s} s")
            ) from error

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        calls = [task for task in asyncio.all_tasks() if task is not current]
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await self._connection.close()

    def _submit(self, call: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Runs ``call`` on the store's loop, started in its thread on first use."""
        # Under the lock: close() cancels every call submitted before it.
        with self._lock:
            if self._closed:
                call.close()
                raise RuntimeError("the affinity store is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="academy-ml-affinity", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return asyncio.run_coroutine_threadsafe(call, self._loop)

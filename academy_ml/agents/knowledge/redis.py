"""The knowledge base in Redis, shared by every agent of a deployment.

Keys (all under ``{prefix}:kb:``; names inside keys are percent-encoded, so
no metric, flag, model or agent name can reach another's key):

- ``cand`` / ``res`` hashes: candidate id -> candidate / result record.
- ``top:{metric}`` sorted sets: candidate id scored by that metric, and
  ``top:{metric}:f:{flag}`` the same for results with that flag true, so
  :meth:`~RedisKnowledgeBase.top_k` is one ZREVRANGE (O(log n + k)).
- ``ver`` / ``ver:f:{flag}`` sorted sets: candidate id scored by model
  version, so :meth:`~RedisKnowledgeBase.count_since` is one ZCOUNT.
- ``model:{name}`` hash: version -> model record; ``models:{name}`` and
  ``stage:{name}:{stage}`` sorted sets of its versions.
- ``log``, ``log:agent:{agent}``, ``log:strategy:{strategy}`` streams of
  firings, each capped near :data:`FIRING_LOG_LENGTH`.
- ``ckpt`` hash: agent -> checkpointed state.
- The ledger: ``pend`` sorted set of candidates without a result, scored by
  the ``seq`` counter (oldest first); ``att`` hash: candidate id -> attempts.

Multi-key updates are Lua scripts, so they are atomic. Commands go through
:class:`academy_ml.core.resp.Connection` (one pipelined connection, bound
to the event loop that first uses it) and, like the exchange's, are retried
while Redis restarts or replays its append-only file (``-LOADING``), up to
``reconnect_timeout_s``. A retried write whose first try was applied
answers as a repeat would (a candidate or result already there), which every
caller already handles.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from academy_ml.agents.knowledge.base import FIRING_LOG_LENGTH
from academy_ml.agents.knowledge.records import (
    CandidateRecord,
    ModelVersion,
    ResultRecord,
    StrategyFiring,
    readable,
)
from academy_ml.core.reconnect import with_reconnect
from academy_ml.core.resp import Connection
from academy_ml.exceptions import KnowledgeError

__all__ = ["RedisKnowledgeBase"]

#: KEYS: candidates hash, results hash, pending set, sequence. ARGV: candidate id, record.
_ADD_CANDIDATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
end
return 1
"""

#: KEYS: results hash, pending set, then sorted sets. ARGV: candidate id, record, one
#: score per sorted set.
_ADD_RESULT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], ARGV[i], ARGV[1]) end
return 1
"""

#: KEYS: model hash, versions, stage set. ARGV: version, record.
_REGISTER_MODEL = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[1])
return 1
"""

#: KEYS: model hash, old stage set, new stage set. ARGV: version, old record, new record.
#: Returns 0 when the stored record is no longer the old one (the caller retries).
_SET_STAGE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[1])
return 1
"""

#: KEYS: a set of versions, model hash. Returns the highest version's record or nil.
_LATEST = """
local found = redis.call('ZREVRANGE', KEYS[1], 0, 0)
if #found == 0 then return false end
return redis.call('HGET', KEYS[2], found[1])
"""

#: KEYS: firing streams. ARGV: max length, record.
_LOG_FIRING = """
for i = 1, #KEYS do redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[2]) end
return 1
"""

#: Entries read per XREVRANGE when firings are filtered by strategy on read.
_SCAN_BATCH = 256


def _name(value: str) -> str:
    return quote(value, safe="")


class RedisKnowledgeBase:
    """A :class:`~academy_ml.agents.knowledge.base.KnowledgeBase` in Redis.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` or
            ``unix://`` (see :class:`academy_ml.core.resp.Connection`).
        prefix: Key prefix; knowledge bases with different prefixes on one
            Redis do not see each other.
        connect_timeout_s: Timeout of opening the connection.
        reconnect_timeout_s: How long commands retry while Redis is unreachable
            or loading its data.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "academy_ml",
        *,
        connect_timeout_s: float = 10.0,
        reconnect_timeout_s: float = 60.0,
    ):
        connection = Connection(url, connect_timeout_s=connect_timeout_s)
        self._conn = _Retrying(url, connection, reconnect_timeout_s)
        self._base = f"{prefix}:kb"

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    def _top(self, metric: str, flag: str | None) -> str:
        if flag is None:
            return self._key("top", _name(metric))
        return self._key("top", _name(metric), "f", _name(flag))

    def _versions(self, flag: str | None) -> str:
        return self._key("ver") if flag is None else self._key("ver", "f", _name(flag))

    async def add_candidate(self, candidate: CandidateRecord) -> bool:
        """See :meth:`KnowledgeBase.add_candidate`."""
        keys = [self._key("cand"), self._key("res"), self._key("pend"), self._key("seq")]
        return bool(
            await self._conn.script(_ADD_CANDIDATE, keys, [candidate.id, candidate.to_bytes()])
        )

    async def add_result(self, result: ResultRecord) -> bool:
        """See :meth:`KnowledgeBase.add_result`."""
        keys = [self._key("res"), self._key("pend")]
        scores: list[Any] = []
        for flag in [None, *(flag for flag, value in result.flags.items() if value)]:
            keys.append(self._versions(flag))
            scores.append(result.model_version)
            for metric, score in result.metrics.items():
                keys.append(self._top(metric, flag))
                scores.append(repr(score))
        args = [result.candidate_id, result.to_bytes(), *scores]
        return bool(await self._conn.script(_ADD_RESULT, keys, args))

    async def pending(self, limit: int = 1000) -> list[str]:
        """See :meth:`KnowledgeBase.pending`."""
        if limit <= 0:
            return []
        ids = await self._conn.call(b"ZRANGE", self._key("pend"), 0, limit - 1)
        return [cid.decode() for cid in ids]

    async def start_attempt(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.start_attempt`."""
        return int(await self._conn.call(b"HINCRBY", self._key("att"), candidate_id, 1))

    async def attempts(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.attempts`."""
        count = await self._conn.call(b"HGET", self._key("att"), candidate_id)
        return 0 if count is None else int(count)

    async def counts(self) -> dict[str, int]:
        """See :meth:`KnowledgeBase.counts`."""
        candidates, results, pending = await asyncio.gather(
            self._conn.call(b"HLEN", self._key("cand")),
            self._conn.call(b"HLEN", self._key("res")),
            self._conn.call(b"ZCARD", self._key("pend")),
        )
        return {"candidates": int(candidates), "results": int(results), "pending": int(pending)}

    async def candidate(self, candidate_id: str) -> CandidateRecord | None:
        """See :meth:`KnowledgeBase.candidate`."""
        data = await self._conn.call(b"HGET", self._key("cand"), candidate_id)
        return None if data is None else CandidateRecord.from_bytes(data)

    async def results_for(self, candidate_id: str) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results_for`."""
        data = await self._conn.call(b"HGET", self._key("res"), candidate_id)
        return [] if data is None else [ResultRecord.from_bytes(data)]

    async def results(self) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results`."""
        flat = await self._conn.call(b"HGETALL", self._key("res"))
        pairs = zip(flat[::2], flat[1::2], strict=True)
        found = readable(ResultRecord, pairs, self._base, "result")
        return sorted(found, key=lambda r: (r.created, r.candidate_id))

    async def top_k(self, metric: str, k: int, *, flag: str | None = None) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.top_k`."""
        if k <= 0:
            return []
        ids = await self._conn.call(b"ZREVRANGE", self._top(metric, flag), 0, k - 1)
        if not ids:
            return []
        found = await self._conn.call(b"HMGET", self._key("res"), *ids)
        return readable(ResultRecord, zip(ids, found, strict=True), self._base, "result")

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        """See :meth:`KnowledgeBase.count_since`."""
        count = await self._conn.call(b"ZCOUNT", self._versions(flag), model_version, b"+inf")
        return int(count)

    async def register_model(self, model: ModelVersion) -> None:
        """See :meth:`KnowledgeBase.register_model`."""
        name = _name(model.name)
        keys = [
            self._key("model", name),
            self._key("models", name),
            self._key("stage", name, _name(model.stage)),
        ]
        if not await self._conn.script(_REGISTER_MODEL, keys, [model.version, model.to_bytes()]):
            raise KnowledgeError(
                f"model {model.name!r} version {model.version} is registered already"
            )

    async def set_stage(self, name: str, version: int, stage: str) -> None:
        """See :meth:`KnowledgeBase.set_stage`."""
        models = self._key("model", _name(name))
        while True:
            old = await self._conn.call(b"HGET", models, version)
            if old is None:
                raise KnowledgeError(f"model {name!r} has no version {version}")
            model = ModelVersion.from_bytes(old)
            new = model.model_copy(update={"stage": stage}).to_bytes()
            keys = [
                models,
                self._key("stage", _name(name), _name(model.stage)),
                self._key("stage", _name(name), _name(stage)),
            ]
            if await self._conn.script(_SET_STAGE, keys, [version, old, new]):
                return

    async def latest_model(self, name: str, *, stage: str | None = None) -> ModelVersion | None:
        """See :meth:`KnowledgeBase.latest_model`."""
        versions = self._key("models", _name(name))
        if stage is not None:
            versions = self._key("stage", _name(name), _name(stage))
        data = await self._conn.script(_LATEST, [versions, self._key("model", _name(name))], [])
        return None if data is None else ModelVersion.from_bytes(data)

    async def log_firing(self, firing: StrategyFiring) -> None:
        """See :meth:`KnowledgeBase.log_firing`."""
        keys = [
            self._key("log"),
            self._key("log", "agent", _name(firing.agent)),
            self._key("log", "strategy", _name(firing.strategy)),
        ]
        await self._conn.script(_LOG_FIRING, keys, [FIRING_LOG_LENGTH, firing.to_bytes()])

    async def firings(
        self, *, agent: str | None = None, strategy: str | None = None, limit: int = 100
    ) -> list[StrategyFiring]:
        """See :meth:`KnowledgeBase.firings`."""
        key = self._key("log")
        if agent is not None:
            key = self._key("log", "agent", _name(agent))
        elif strategy is not None:
            key = self._key("log", "strategy", _name(strategy))
        # Only a strategy filter on an agent's log needs reading past ``limit``.
        batch = max(limit, _SCAN_BATCH) if agent is not None and strategy is not None else limit
        found: list[StrategyFiring] = []
        end = b"+"
        while len(found) < limit:
            entries = await self._conn.call(b"XREVRANGE", key, end, b"-", b"COUNT", batch)
            read = readable(
                StrategyFiring, ((pos, fields[1]) for pos, fields in entries), self._base, "firing"
            )
            found.extend(f for f in read if strategy is None or f.strategy == strategy)
            if len(entries) < batch:
                break
            end = b"(" + entries[-1][0]
        return found[: max(limit, 0)]

    async def save_checkpoint(self, agent: str, state: bytes) -> None:
        """See :meth:`KnowledgeBase.save_checkpoint`."""
        await self._conn.call(b"HSET", self._key("ckpt"), agent, state)

    async def load_checkpoint(self, agent: str) -> bytes | None:
        """See :meth:`KnowledgeBase.load_checkpoint`."""
        state: bytes | None = await self._conn.call(b"HGET", self._key("ckpt"), agent)
        return state

    async def close(self) -> None:
        """Closes the connection."""
        await self._conn.close()


class _Retrying:
    """A connection whose commands are retried across Redis outages (see the module)."""

    def __init__(self, url: str, conn: Connection, deadline_s: float) -> None:
        self._url = url
        self._conn = conn
        self.deadline_s = deadline_s

    async def call(self, *args: Any) -> Any:
        return await with_reconnect(
            lambda: self._conn.call(*args),
            url=self._url,
            deadline_s=self.deadline_s,
            what=f"knowledge base {args[0]!r}",
        )

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        return await with_reconnect(
            lambda: self._conn.script(source, keys, args),
            url=self._url,
            deadline_s=self.deadline_s,
            what="knowledge base script",
        )

    async def close(self) -> None:
        await self._conn.close()

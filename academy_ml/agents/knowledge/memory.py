"""The in-process knowledge base: the Redis one's twin, for tests and embedded runs.

Records are kept as the same msgpack bytes Redis would hold, so what a
caller gets back is always a fresh copy and a payload that Redis could not
store fails here too. Every method runs without awaiting under one lock, so
it is atomic for the tasks of an event loop and for threads sharing the
object.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import threading

from academy_ml.agents.knowledge.base import FIRING_LOG_LENGTH
from academy_ml.agents.knowledge.records import (
    CandidateRecord,
    ModelVersion,
    ResultRecord,
    StrategyFiring,
)
from academy_ml.exceptions import KnowledgeError

__all__ = ["InMemoryKnowledgeBase"]

#: Key of the firing log of everything, of one agent, of one strategy.
_LogKey = tuple[str, str]
_ALL: _LogKey = ("all", "")


class InMemoryKnowledgeBase:
    """A :class:`~academy_ml.agents.knowledge.base.KnowledgeBase` in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._candidates: dict[str, bytes] = {}
        self._results: dict[str, bytes] = {}
        # (metric, flag or None) -> candidate id -> score.
        self._scores: dict[tuple[str, str | None], dict[str, float]] = {}
        # flag or None -> candidate id -> model version.
        self._versions: dict[str | None, dict[str, int]] = {}
        self._models: dict[str, dict[int, bytes]] = {}
        self._logs: dict[_LogKey, collections.deque[bytes]] = {}
        self._checkpoints: dict[str, bytes] = {}
        # Insertion-ordered, so the oldest pending candidates come first.
        self._pending: dict[str, None] = {}
        self._attempts: collections.Counter[str] = collections.Counter()

    async def add_candidate(self, candidate: CandidateRecord) -> bool:
        """See :meth:`KnowledgeBase.add_candidate`."""
        data = candidate.to_bytes()
        with self._lock:
            if candidate.id in self._candidates:
                return False
            self._candidates[candidate.id] = data
            if candidate.id not in self._results:
                self._pending[candidate.id] = None
            return True

    async def add_result(self, result: ResultRecord) -> bool:
        """See :meth:`KnowledgeBase.add_result`."""
        data = result.to_bytes()
        cid = result.candidate_id
        flags = [None, *(flag for flag, value in result.flags.items() if value)]
        with self._lock:
            if cid in self._results:
                return False
            self._results[cid] = data
            self._pending.pop(cid, None)
            for flag in flags:
                self._versions.setdefault(flag, {})[cid] = result.model_version
                for metric, score in result.metrics.items():
                    self._scores.setdefault((metric, flag), {})[cid] = score
            return True

    async def pending(self, limit: int = 1000) -> list[str]:
        """See :meth:`KnowledgeBase.pending`."""
        with self._lock:
            return list(itertools.islice(self._pending, max(limit, 0)))

    async def start_attempt(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.start_attempt`."""
        with self._lock:
            self._attempts[candidate_id] += 1
            return self._attempts[candidate_id]

    async def attempts(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.attempts`."""
        with self._lock:
            return self._attempts[candidate_id]

    async def counts(self) -> dict[str, int]:
        """See :meth:`KnowledgeBase.counts`."""
        with self._lock:
            return {
                "candidates": len(self._candidates),
                "results": len(self._results),
                "pending": len(self._pending),
            }

    async def candidate(self, candidate_id: str) -> CandidateRecord | None:
        """See :meth:`KnowledgeBase.candidate`."""
        with self._lock:
            data = self._candidates.get(candidate_id)
        return None if data is None else CandidateRecord.from_bytes(data)

    async def results_for(self, candidate_id: str) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results_for`."""
        with self._lock:
            data = self._results.get(candidate_id)
        return [] if data is None else [ResultRecord.from_bytes(data)]

    async def results(self) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results`."""
        with self._lock:
            found = list(self._results.values())
        return sorted(
            (ResultRecord.from_bytes(data) for data in found),
            key=lambda r: (r.created, r.candidate_id),
        )

    async def top_k(self, metric: str, k: int, *, flag: str | None = None) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.top_k`."""
        with self._lock:
            scores = self._scores.get((metric, flag), {})
            best = heapq.nlargest(max(k, 0), scores.items(), key=lambda item: (item[1], item[0]))
            found = [self._results[cid] for cid, _ in best]
        return [ResultRecord.from_bytes(data) for data in found]

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        """See :meth:`KnowledgeBase.count_since`."""
        with self._lock:
            versions = list(self._versions.get(flag, {}).values())
        return sum(1 for version in versions if version >= model_version)

    async def register_model(self, model: ModelVersion) -> None:
        """See :meth:`KnowledgeBase.register_model`."""
        data = model.to_bytes()
        with self._lock:
            versions = self._models.setdefault(model.name, {})
            if model.version in versions:
                raise KnowledgeError(
                    f"model {model.name!r} version {model.version} is registered already"
                )
            versions[model.version] = data

    async def set_stage(self, name: str, version: int, stage: str) -> None:
        """See :meth:`KnowledgeBase.set_stage`."""
        with self._lock:
            data = self._models.get(name, {}).get(version)
            if data is None:
                raise KnowledgeError(f"model {name!r} has no version {version}")
            model = ModelVersion.from_bytes(data).model_copy(update={"stage": stage})
            self._models[name][version] = model.to_bytes()

    async def latest_model(self, name: str, *, stage: str | None = None) -> ModelVersion | None:
        """See :meth:`KnowledgeBase.latest_model`."""
        with self._lock:
            versions = dict(self._models.get(name, {}))
        for version in sorted(versions, reverse=True):
            model = ModelVersion.from_bytes(versions[version])
            if stage is None or model.stage == stage:
                return model
        return None

    async def log_firing(self, firing: StrategyFiring) -> None:
        """See :meth:`KnowledgeBase.log_firing`."""
        data = firing.to_bytes()
        with self._lock:
            for key in (_ALL, ("agent", firing.agent), ("strategy", firing.strategy)):
                log = self._logs.get(key)
                if log is None:
                    log = self._logs[key] = collections.deque(maxlen=FIRING_LOG_LENGTH)
                log.append(data)

    async def firings(
        self, *, agent: str | None = None, strategy: str | None = None, limit: int = 100
    ) -> list[StrategyFiring]:
        """See :meth:`KnowledgeBase.firings`."""
        key = _ALL
        if agent is not None:
            key = ("agent", agent)
        elif strategy is not None:
            key = ("strategy", strategy)
        with self._lock:
            entries = list(self._logs.get(key, ()))
        found: list[StrategyFiring] = []
        for data in reversed(entries):
            if len(found) >= limit:
                break
            firing = StrategyFiring.from_bytes(data)
            if strategy is None or firing.strategy == strategy:
                found.append(firing)
        return found

    async def save_checkpoint(self, agent: str, state: bytes) -> None:
        """See :meth:`KnowledgeBase.save_checkpoint`."""
        with self._lock:
            self._checkpoints[agent] = bytes(state)

    async def load_checkpoint(self, agent: str) -> bytes | None:
        """See :meth:`KnowledgeBase.load_checkpoint`."""
        with self._lock:
            return self._checkpoints.get(agent)

    async def close(self) -> None:
        """Nothing to release."""

"""The knowledge base protocol, and what its implementations share.

Agents record candidates, results, model versions and strategy firings, and
checkpoint their state, through a :class:`KnowledgeBase`. Three
implementations behave the same (one test suite runs against each):
:class:`~academy_ml.agents.knowledge.memory.InMemoryKnowledgeBase` inside one
process, :class:`~academy_ml.agents.knowledge.sqlite.SqliteKnowledgeBase` in
one file on one machine, and
:class:`~academy_ml.agents.knowledge.redis.RedisKnowledgeBase` shared by every
agent of a deployment.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from academy_ml.agents.knowledge.records import (
    CandidateRecord,
    ModelVersion,
    ResultRecord,
    StrategyFiring,
)

__all__ = ["FIRING_LOG_LENGTH", "KnowledgeBase"]

#: Firings kept per log (all firings, each agent's, each strategy's); older ones are dropped.
FIRING_LOG_LENGTH = 10_000


@runtime_checkable
class KnowledgeBase(Protocol):
    """Candidates, results, a model registry, the strategy log and agent checkpoints.

    Candidates and results are never removed. Ties in :meth:`top_k` are
    broken by candidate id, highest first.
    """

    async def add_candidate(self, candidate: CandidateRecord) -> bool:
        """Stores ``candidate``; False (and nothing changes) when its id exists."""
        ...

    async def add_result(self, result: ResultRecord) -> bool:
        """Stores ``result``; False (and nothing changes) when its candidate has a result.

        Atomic: of concurrent calls for one candidate, exactly one returns True.
        """
        ...

    async def pending(self, limit: int = 1000) -> list[str]:
        """Up to ``limit`` ids of candidates without a result, oldest first (the ledger).

        A candidate enters this list when it is added and leaves it when its
        result is stored, so whatever a crash interrupted can be found again.
        """
        ...

    async def start_attempt(self, candidate_id: str) -> int:
        """Counts an evaluation of ``candidate_id`` as started; returns its attempt number."""
        ...

    async def attempts(self, candidate_id: str) -> int:
        """How many evaluations of ``candidate_id`` were started."""
        ...

    async def counts(self) -> dict[str, int]:
        """``candidates``, ``results`` and ``pending`` (candidates without a result)."""
        ...

    async def candidate(self, candidate_id: str) -> CandidateRecord | None:
        """The candidate with this id, or None."""
        ...

    async def results_for(self, candidate_id: str) -> list[ResultRecord]:
        """The results of a candidate (at most one)."""
        ...

    async def results(self) -> list[ResultRecord]:
        """Every stored result, oldest first, ties by candidate id (reads them all)."""
        ...

    async def top_k(self, metric: str, k: int, *, flag: str | None = None) -> list[ResultRecord]:
        """The ``k`` results with the highest ``metric``, best first.

        Results without that metric are left out, and so, when ``flag`` is
        given, are those whose ``flags[flag]`` is not true.
        """
        ...

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        """How many results have ``model_version`` or later (and ``flags[flag]`` true if given)."""
        ...

    async def register_model(self, model: ModelVersion) -> None:
        """Adds a model version to the registry.

        Raises:
            KnowledgeError: This name and version are registered already.
        """
        ...

    async def set_stage(self, name: str, version: int, stage: str) -> None:
        """Moves a registered model version to ``stage``.

        Raises:
            KnowledgeError: No such model version.
        """
        ...

    async def latest_model(self, name: str, *, stage: str | None = None) -> ModelVersion | None:
        """The highest version of ``name`` (in ``stage`` if given), or None."""
        ...

    async def log_firing(self, firing: StrategyFiring) -> None:
        """Appends a strategy firing to the log."""
        ...

    async def firings(
        self, *, agent: str | None = None, strategy: str | None = None, limit: int = 100
    ) -> list[StrategyFiring]:
        """Up to ``limit`` logged firings, newest first, of ``agent`` and ``strategy`` if given."""
        ...

    async def save_checkpoint(self, agent: str, state: bytes) -> None:
        """Stores ``agent``'s state, replacing its previous checkpoint."""
        ...

    async def load_checkpoint(self, agent: str) -> bytes | None:
        """The last state saved for ``agent``, or None."""
        ...

    async def close(self) -> None:
        """Releases connections; the knowledge base is not used afterwards."""
        ...

"""Agents for the chaos soak: the MOFA planner, noting every result it is told of.

Each ``record_result`` the planner receives is appended as one line
(``<candidate id>``) to the file named by ``CHAOS_DELIVERIES``, with one
``write`` on an ``O_APPEND`` descriptor, so lines survive a SIGKILL of the
process whole. The soak counts, per candidate, how often its result reached
the planner: more than once is a duplicated message.
"""

from __future__ import annotations

import os

from academy.agent import action
from mofa.agents import MofaPlanner

__all__ = ["DELIVERIES_ENV", "RecordingPlanner"]

#: Environment variable naming the deliveries file.
DELIVERIES_ENV = "CHAOS_DELIVERIES"


class RecordingPlanner(MofaPlanner):
    """A :class:`~mofa.agents.MofaPlanner` that notes each result delivered to it."""

    @action
    async def record_result(self, candidate_id: str, queue_depth: int) -> None:
        """Note the delivery, then as the MOFA planner (strategies fire there)."""
        fd = os.open(os.environ[DELIVERIES_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{candidate_id}\n".encode())
        finally:
            os.close(fd)
        await super().record_result(candidate_id, queue_depth)

"""Where a deployment keeps its agents' identities: the knowledge base.

``up`` registers each agent once and records ``name -> AgentId`` here, so a
host started again (by ``up``'s supervisor or by hand) and ``academy-ml
status`` find the same mailboxes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from academy.identifier import AgentId

from academy_ml.agents.knowledge import KnowledgeBase, seal_state, unseal_state
from academy_ml.exceptions import WireError

__all__ = ["load_identities", "save_identities"]

#: Checkpoint slot of the identities (no agent is named like this: names are ``[\w-]+``).
_SLOT = "deployment/agents"


async def save_identities(kb: KnowledgeBase, ids: Mapping[str, AgentId[Any]]) -> None:
    """Record the agents' identities."""
    table = {name: [str(agent_id.uid), agent_id.name] for name, agent_id in ids.items()}
    await kb.save_checkpoint(_SLOT, seal_state(_SLOT, table))


async def load_identities(kb: KnowledgeBase) -> dict[str, AgentId[Any]] | None:
    """The recorded identities, or None when none were recorded.

    Raises:
        WireError: The recorded table is unreadable (an
            :class:`~academy_ml.exceptions.EnvelopeError` names what it holds).
    """
    data = await kb.load_checkpoint(_SLOT)
    if data is None:
        return None
    table = unseal_state(_SLOT, data)
    try:
        return {
            name: AgentId(uid=uuid.UUID(uid), name=label) for name, (uid, label) in table.items()
        }
    except (TypeError, ValueError) as exc:
        raise WireError(f"{_SLOT}: an entry is not [uuid, name]: {exc}") from exc

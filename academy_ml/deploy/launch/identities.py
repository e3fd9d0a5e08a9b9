"""Where a deployment keeps its agents' identities: the knowledge base.

``up`` registers each agent once and records ``name -> AgentId`` here, so a
host started again (by ``up``'s supervisor or by hand) and ``academy-ml
status`` find the same mailboxes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import msgpack
from academy.identifier import AgentId

from academy_ml.agents.knowledge import KnowledgeBase

__all__ = ["load_identities", "save_identities"]

#: Checkpoint slot of the identities (no agent is named like this: names are ``[\w-]+``).
_SLOT = "deployment/agents"


async def save_identities(kb: KnowledgeBase, ids: Mapping[str, AgentId[Any]]) -> None:
    """Record the agents' identities."""
    table = {name: [str(agent_id.uid), agent_id.name] for name, agent_id in ids.items()}
    await kb.save_checkpoint(_SLOT, msgpack.packb(table, use_bin_type=True))


async def load_identities(kb: KnowledgeBase) -> dict[str, AgentId[Any]] | None:
    """The recorded identities, or None when none were recorded."""
    data = await kb.load_checkpoint(_SLOT)
    if data is None:
        return None
    table = msgpack.unpackb(data, raw=False)
    return {name: AgentId(uid=uuid.UUID(uid), name=label) for name, (uid, label) in table.items()}

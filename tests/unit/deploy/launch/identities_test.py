from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from academy.identifier import AgentId

from academy_ml.agents.knowledge import InMemoryKnowledgeBase, seal_state
from academy_ml.deploy.launch.identities import load_identities, save_identities
from academy_ml.exceptions import EnvelopeError, WireError


def test_identities_round_trip() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        assert await load_identities(kb) is None
        ids: dict[str, AgentId[Any]] = {
            "planner": AgentId.new("planner"),
            "analysis": AgentId.new(None),
        }
        await save_identities(kb, ids)
        assert await load_identities(kb) == ids

    asyncio.run(main())


@pytest.mark.parametrize(
    ("saved", "error"),
    [
        (msgpack.packb({"planner": ["not-a-uuid", None]}), WireError),
        (seal_state("deployment/agents", {"planner": ["not-a-uuid", None]}), WireError),
        (seal_state("deployment/agents", {"planner": 5}), WireError),
        (seal_state("checkpoint", {}), EnvelopeError),
    ],
    ids=["unsealed", "bad-uuid", "not-a-pair", "another-kind"],
)
def test_an_unreadable_identity_table_is_a_wire_error(saved: bytes, error: type[Exception]) -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        await kb.save_checkpoint("deployment/agents", saved)
        with pytest.raises(error, match="deployment/agents"):
            await load_identities(kb)

    asyncio.run(main())

"""Knowledge-base factories: agents open (and close) their own knowledge base from one."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

from redis_server import RedisServer

from academy_ml.agents import StrategicAgent
from academy_ml.agents.knowledge import (
    RedisKnowledge,
    RedisKnowledgeBase,
    SqliteKnowledge,
    SqliteKnowledgeBase,
    unseal_state,
)
from academy_ml.agents.strategic import CHECKPOINT_KIND


def test_agents_open_their_own_redis_knowledge_base_from_a_pickled_factory(
    redis_server: RedisServer,
) -> None:
    factory = pickle.loads(pickle.dumps(RedisKnowledge(redis_server.url, "deployment")))
    assert factory == RedisKnowledge(redis_server.url, "deployment")

    async def main() -> None:
        first = StrategicAgent(factory, name="first")
        second = StrategicAgent(factory, name="second")
        await first.agent_on_startup()
        await second.agent_on_startup()
        assert first.kb is not second.kb  # one connection each, bound to its own loop
        first.state["n"] = 1
        await first.agent_on_shutdown()  # checkpoints, then closes its own connection only
        second.state["n"] = 2
        await second.checkpoint()
        reader = RedisKnowledgeBase(redis_server.url, "deployment")
        try:
            saved = await reader.load_checkpoint("first")
            assert saved is not None
            assert unseal_state(CHECKPOINT_KIND, saved)["n"] == 1
            other = RedisKnowledgeBase(redis_server.url, "other")
            assert await other.load_checkpoint("first") is None  # the name is the prefix
            await other.close()
        finally:
            await reader.close()
        await second.agent_on_shutdown()

    asyncio.run(asyncio.wait_for(main(), 30.0))


def test_agents_open_their_own_sqlite_knowledge_base_from_a_pickled_factory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deployment" / "knowledge.sqlite"
    factory = pickle.loads(pickle.dumps(SqliteKnowledge(path)))
    assert factory == SqliteKnowledge(str(path))

    async def main() -> None:
        first = StrategicAgent(factory, name="first")
        second = StrategicAgent(factory, name="second")
        await first.agent_on_startup()
        await second.agent_on_startup()
        assert first.kb is not second.kb  # one connection each
        first.state["n"] = 1
        await first.agent_on_shutdown()  # checkpoints, then closes its own connection only
        second.state["n"] = 2
        await second.checkpoint()
        reader = SqliteKnowledgeBase(path)
        try:
            for name, n in (("first", 1), ("second", 2)):
                saved = await reader.load_checkpoint(name)
                assert saved is not None
                assert unseal_state(CHECKPOINT_KIND, saved)["n"] == n
        finally:
            await reader.close()
        await second.agent_on_shutdown()

    asyncio.run(asyncio.wait_for(main(), 30.0))

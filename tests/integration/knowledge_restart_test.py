"""Scenario: redis-server is killed and restarted (AOF) under a knowledge base in use.

The chaos soak found ``up`` dying of ``LOADING`` from the knowledge base (and
agents' knowledge calls failing) while Redis replayed its append-only file.
The knowledge base retries, like the exchange: calls issued while Redis is
down or loading answer once it is back, from the data it persisted.
"""

from __future__ import annotations

import asyncio
import threading

from redis_server import RedisServer

from academy_ml.agents.knowledge import CandidateRecord, RedisKnowledgeBase, ResultRecord


def test_knowledge_calls_wait_out_a_redis_restart(redis_aof_server: RedisServer) -> None:
    async def main() -> None:
        kb = RedisKnowledgeBase(redis_aof_server.url, "restart")
        try:
            for i in range(20):
                await kb.add_candidate(CandidateRecord(id=f"c{i}", model_version=0, payload={}))
            redis_aof_server.kill()
            # Issued while Redis is down; the restart comes later, from another thread.
            counts = [asyncio.ensure_future(kb.counts()) for _ in range(8)]
            pending = asyncio.ensure_future(kb.pending())
            stored = ResultRecord(candidate_id="c3", model_version=0, metrics={"score": 1.0})
            added = asyncio.ensure_future(kb.add_result(stored))
            await asyncio.sleep(0.3)
            restart = threading.Thread(target=redis_aof_server.start)
            restart.start()
            answers = await asyncio.gather(*counts)
            restart.join()
            assert all(a["candidates"] == 20 for a in answers)
            assert len(await pending) in (19, 20)  # before or after the result
            assert await added
            assert (await kb.counts())["pending"] == 19
        finally:
            await kb.close()

    asyncio.run(asyncio.wait_for(main(), 120.0))

"""Scenario: an agent sits idle, then gets a burst of calls.

Academy 1.0's own Redis exchange breaks on both with redis-py 8: its blocking
listener dies after the 5 s default socket timeout, and bursts beyond the
100-connection pool limit fail.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from academy.manager import Manager
from exchange_agents import Calculator, Recorder, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory

IDLE_S = 7.0  # longer than redis-py's default socket_timeout of 5 s
BURST = 1_000


def test_idle_agent_still_answers(redis_server: RedisServer) -> None:
    async def main() -> None:
        # Reads block for 2 s at a time: the idle spell spans several of them.
        factory = RedisExchangeFactory(redis_server.url, listen_block_s=2.0)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            assert await step(calc.double(1)) == 2
            # Idling is the scenario itself, not a synchronisation: nothing to wait on.
            await asyncio.sleep(IDLE_S)
            assert await step(calc.double(2), timeout=5) == 4
            info = await step(factory.mailbox_info(calc.agent_id))
            assert info.status == "ACTIVE"
            assert info.dropped == 0

    run(main, timeout=40)


def test_thousand_concurrent_calls(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            recorder = await manager.launch(Recorder)
            calc = await manager.launch(Calculator)
            assert await step(calc.double(0)) == 0
            tokens = list(range(BURST))
            results = await step(
                asyncio.gather(
                    *(recorder.record(t) for t in tokens),
                    *(calc.double(t) for t in tokens),
                ),
                timeout=25,
            )
            assert results[:BURST] == tokens
            assert results[BURST:] == [2 * t for t in tokens]
            assert sorted(await step(recorder.seen())) == tokens  # each exactly once

    run(main, timeout=40)

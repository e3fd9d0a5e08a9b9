"""Scenario: agents run in worker processes (spawned), the caller in the test.

The factory travels to the workers by pickle, each worker connects to Redis
on its own, and the agents answer from other processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from academy.handle import Handle
from academy.manager import Manager
from exchange_agents import Calculator, Recorder, Relay, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory


def test_agents_in_spawned_processes(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, prefix="pool")
        pool = ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn"))
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            recorder: Handle[Recorder] = await manager.launch(Recorder)
            relay = await manager.launch(Relay)

            pids = {await step(calc.pid(), 60), await step(recorder.pid(), 60)}
            assert os.getpid() not in pids
            assert len(pids) == 2

            array = np.arange(12, dtype=np.float64).reshape(3, 4)
            np.testing.assert_array_equal(await step(calc.increment_in_place(array)), array + 1)
            assert await step(relay.ask_double(calc, 21)) == 42
            with pytest.raises(ValueError, match="from a worker"):
                await step(calc.fail("from a worker"))

            tokens = list(range(50))
            assert await step(_gather(recorder, tokens)) == tokens
            assert sorted(await step(recorder.seen())) == tokens

    run(main, timeout=120)


async def _gather(recorder: Handle[Recorder], tokens: list[int]) -> list[int]:
    return list(await asyncio.gather(*(recorder.record(t) for t in tokens)))

"""Scenario: things restart under a running workflow.

(a) An agent is stopped without terminating its mailbox and launched again
from the same registration: requests sent while it was down wait in the
mailbox and are answered by the new incarnation.

(b) redis-server is killed with SIGKILL in the middle of a stream of actions
and restarted on the same port (append-only file, fsync always): agents and
caller reconnect by themselves, no acknowledged action is lost, and later
actions work.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from academy.exchange.client_config import ExchangeClientConfig
from academy.handle import Handle
from academy.manager import Manager
from academy.runtime import RuntimeConfig
from exchange_agents import Calculator, Recorder, poll, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory

FAST = ExchangeClientConfig(heartbeat_interval=0.5)
QUEUED_WHILE_DOWN = 10


def test_agent_restarts_from_its_registration(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, config=FAST)
        async with (
            await Manager.from_exchange_factory(
                factory, executors=ThreadPoolExecutor(1)
            ) as first_run,
            await Manager.from_exchange_factory(
                factory, executors=ThreadPoolExecutor(1)
            ) as second_run,
        ):
            registration = await step(first_run.register_agent(Recorder, name="durable"))
            recorder: Handle[Recorder] = await first_run.launch(Recorder, registration=registration)
            assert await step(recorder.record(-1)) == -1
            await step(first_run.shutdown(recorder, terminate=False, blocking=True))
            assert not first_run.running()

            info = await step(factory.mailbox_info(registration.agent_id))
            assert info.status == "ACTIVE"
            calls = [
                asyncio.create_task(recorder.record(token)) for token in range(QUEUED_WHILE_DOWN)
            ]

            async def all_queued() -> bool:
                failed = [c for c in calls if c.done()]
                assert not failed, [c.exception() for c in failed]  # sends must not fail
                info = await factory.mailbox_info(registration.agent_id)
                return bool(info.queued == QUEUED_WHILE_DOWN)

            await poll(all_queued, what="the requests to wait in the mailbox")

            # An operator relaunches it (a Manager launches a registration once).
            again: Handle[Recorder] = await second_run.launch(
                Recorder, registration=registration, config=RuntimeConfig()
            )
            assert again.agent_id == recorder.agent_id
            results = await step(asyncio.gather(*calls))
            assert results == list(range(QUEUED_WHILE_DOWN))
            # the new incarnation answered them (its state starts empty)
            assert sorted(await step(again.seen())) == list(range(QUEUED_WHILE_DOWN))

    run(main)


STREAM = 300  # actions in flight around the crash
CONCURRENCY = 8


def test_redis_killed_and_restarted_mid_stream(redis_aof_server: RedisServer) -> None:
    server = redis_aof_server

    async def main() -> None:
        factory = RedisExchangeFactory(server.url, config=FAST, reconnect_timeout_s=30.0)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            recorder: Handle[Recorder] = await manager.launch(Recorder)
            calc: Handle[Calculator] = await manager.launch(Calculator)
            assert await step(recorder.record(-1)) == -1
            assert await step(calc.double(1)) == 2

            done: list[int] = []
            errors: list[BaseException] = []
            semaphore = asyncio.Semaphore(CONCURRENCY)

            async def one(token: int) -> None:
                async with semaphore:
                    try:
                        assert await recorder.record(token) == token
                    except Exception as exc:
                        errors.append(exc)
                    else:
                        done.append(token)

            stream = asyncio.gather(*(one(token) for token in range(STREAM)))

            async def midway() -> bool:
                return len(done) >= STREAM // 3

            await poll(midway, what="the stream to get going")
            await asyncio.to_thread(server.kill)
            acknowledged_before_crash = set(done)
            # Redis stays down a moment (an outage, not a synchronisation).
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)

            await step(stream, timeout=40)
            assert not errors, errors[:3]
            assert sorted(done) == list(range(STREAM))

            seen = await step(recorder.seen())
            assert acknowledged_before_crash <= set(seen)
            assert set(range(STREAM)) <= set(seen)  # nothing lost
            duplicates = len(seen) - len(set(seen))
            assert duplicates == 0, f"{duplicates} requests were executed twice"

            # later actions work, in both directions and for both agents
            assert await step(calc.double(21)) == 42
            assert await step(recorder.record(STREAM)) == STREAM
            info: Any = await step(factory.mailbox_info(recorder.agent_id))
            assert info.status == "ACTIVE"
            assert info.dropped == 0

    run(main, timeout=90)

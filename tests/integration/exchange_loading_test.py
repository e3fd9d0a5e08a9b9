"""Scenario: redis-server restarts mid-traffic and replays a sizeable append-only file.

While Redis loads its AOF it answers every command with ``-LOADING``. The
exchange retries those replies like a lost connection: every action of a
steady stream (started before, during and after the restart) succeeds, the
agent's listener survives, and no ``LOADING`` error reaches a caller.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from academy.exchange.client_config import ExchangeClientConfig
from academy.handle import Handle
from academy.manager import Manager
from exchange_agents import Recorder, poll, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory

#: Filler written before the traffic starts: ~40 MB of AOF to replay.
FILL_KEYS, FILL_VALUE_BYTES, FILL_BATCH = 40_000, 1_000, 2_000
#: Concurrent callers of the steady stream.
CALLERS = 8
#: Actions that must succeed after the restart before the stream stops.
AFTER_RESTART = 200


def _fill(server: RedisServer) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        value = b"x" * FILL_VALUE_BYTES
        for start in range(0, FILL_KEYS, FILL_BATCH):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + FILL_BATCH):
                pipe.set(f"fill:{i}", value)
            pipe.execute()
    finally:
        client.close()


def test_actions_survive_a_restart_that_replays_a_large_aof(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="academy_ml.messaging")
    # No rewrite: the AOF stays a long list of commands, slow to replay.
    server = RedisServer(appendonly=True, extra_args=["--auto-aof-rewrite-percentage", "0"])

    async def main() -> None:
        await asyncio.to_thread(_fill, server)
        assert server.aof_bytes() > 30 * 2**20
        factory = RedisExchangeFactory(
            server.url,
            config=ExchangeClientConfig(heartbeat_interval=0.5),
            reconnect_timeout_s=120.0,
        )
        async with await Manager.from_exchange_factory(
            factory, executors=ThreadPoolExecutor(1)
        ) as manager:
            recorder: Handle[Recorder] = await manager.launch(Recorder)
            assert await step(recorder.record(-1)) == -1

            done: list[int] = []
            errors: list[BaseException] = []
            restarted = asyncio.Event()
            after: list[int] = []
            stop = asyncio.Event()
            tokens = iter(range(10**9))

            async def caller() -> None:
                while not stop.is_set():
                    token = next(tokens)
                    try:
                        assert await recorder.record(token) == token
                    except Exception as exc:
                        errors.append(exc)
                        return
                    done.append(token)
                    if restarted.is_set():
                        after.append(token)
                        if len(after) >= AFTER_RESTART:
                            stop.set()

            callers = asyncio.gather(*(caller() for _ in range(CALLERS)))

            async def going() -> bool:
                assert not errors, errors[:3]
                return len(done) >= 100

            await poll(going, what="the stream to get going")
            # SIGKILL, then start again: start() returns once the AOF is loaded,
            # while the callers keep sending all along.
            await asyncio.to_thread(server.restart, True)
            restarted.set()
            await step(callers, timeout=120)

            assert not errors, errors[:3]
            assert len(after) >= AFTER_RESTART
            seen = set(await step(recorder.seen()))
            assert set(done) <= seen  # every acknowledged action ran
            info = await step(factory.mailbox_info(recorder.agent_id))
            assert info.status == "ACTIVE"

    with server:
        run(main, timeout=240)
        assert "DB loaded from append only file" in server.log_tail(100)
    retried = [r for r in caplog.records if "LOADING" in r.getMessage()]
    assert retried, "no caller met redis-server while it was loading its AOF"

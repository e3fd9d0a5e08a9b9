"""Scenario: an operator points the exchange at a password-protected Redis.

The right password works end to end; a wrong one or a dead port fails fast
with an error that says what is wrong, not a hang or a bare redis-py error.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from academy.manager import Manager
from exchange_agents import Calculator, run, step
from redis_server import RedisServer, free_port

from academy_ml.exceptions import ExchangeConnectionError
from academy_ml.messaging import RedisExchangeFactory


def test_right_password_works(redis_password_server: RedisServer) -> None:
    assert ":" in redis_password_server.url.split("@")[0]  # the url carries the password

    async def main() -> None:
        factory = RedisExchangeFactory(redis_password_server.url)
        pool = ThreadPoolExecutor(1)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            assert await step(calc.double(21)) == 42

    run(main)


def test_wrong_password_is_reported(redis_password_server: RedisServer) -> None:
    url = f"redis://:wrong-password@127.0.0.1:{redis_password_server.port}"
    no_password = f"redis://127.0.0.1:{redis_password_server.port}"

    async def main() -> None:
        for bad in (url, no_password):
            factory = RedisExchangeFactory(bad)
            started = time.monotonic()
            with pytest.raises(ExchangeConnectionError) as info:
                await step(Manager.from_exchange_factory(factory))
            assert time.monotonic() - started < 5
            message = str(info.value).lower()
            assert "auth" in message
            assert "wrong-password" not in message  # no credentials in error messages

    run(main)


def test_unreachable_redis_fails_fast() -> None:
    port = free_port()  # nobody listens on it

    async def main() -> None:
        factory = RedisExchangeFactory(f"redis://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(ExchangeConnectionError) as info:
            await step(Manager.from_exchange_factory(factory))
        assert time.monotonic() - started < 10
        assert str(port) in str(info.value)

    run(main)

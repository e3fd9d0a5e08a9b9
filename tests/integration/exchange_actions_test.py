"""Scenario: a workflow author drives agents through the Redis exchange.

Agents run on a thread pool next to the caller, on a real redis-server: values
of every supported kind travel both ways, errors keep their type, loops run,
handles travel as arguments, discovery finds agents by type, termination is
final, and deployments with different key prefixes do not see each other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from academy.exception import AgentTerminatedError
from academy.exchange import MailboxStatus
from academy.exchange.client_config import ExchangeClientConfig
from academy.handle import Handle
from academy.identifier import AgentId
from academy.manager import Manager
from exchange_agents import Calculator, Relay, SpecialCalculator, Ticker, poll, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory


def _manager(factory: RedisExchangeFactory, workers: int = 4) -> Any:
    return Manager.from_exchange_factory(factory, executors=ThreadPoolExecutor(workers))


def test_values_round_trip_with_their_types(redis_server: RedisServer) -> None:
    floats = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    ints = np.arange(10, dtype=np.int64)[::2]  # not contiguous
    nested: dict[str, Any] = {
        "ints": [1, -2, 2**62],
        "floats": [0.5, float("inf")],
        "text": "héllo ✓",
        "raw": b"\x00\xffbytes",
        "array": floats,
        "deeper": {"list": [ints, {"t": (1, "two", b"3")}], "none": None, "flag": True},
    }

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            calc = await manager.launch(Calculator)
            for value in (7, -(2**63), 3.25, "text", b"\x00\x01\x02", True, None):
                result = await step(calc.echo(value))
                assert result == value
                assert type(result) is type(value)
            assert await step(calc.echo((1, "a", (2.5, b"b")))) == (1, "a", (2.5, b"b"))
            assert await step(calc.describe((1, 2))) == "tuple"
            assert await step(calc.describe([1, 2])) == "list"

            for array in (floats, ints, np.array([True, False]), np.array(["ab", "c"])):
                back = await step(calc.echo(array))
                assert isinstance(back, np.ndarray)
                assert back.dtype == array.dtype
                assert back.shape == array.shape
                np.testing.assert_array_equal(back, array)
                assert back.flags.writeable

            incremented = await step(calc.increment_in_place(ints))
            np.testing.assert_array_equal(incremented, ints + 1)
            np.testing.assert_array_equal(ints, np.arange(10)[::2])  # the caller's copy

            back = await step(calc.echo(nested))
            assert back.keys() == nested.keys()
            assert back["ints"] == nested["ints"]
            assert back["floats"] == nested["floats"]
            assert back["text"] == nested["text"]
            assert back["raw"] == nested["raw"]
            np.testing.assert_array_equal(back["array"], floats)
            assert back["array"].dtype == np.float32
            inner = back["deeper"]
            np.testing.assert_array_equal(inner["list"][0], ints)
            assert inner["list"][1] == {"t": (1, "two", b"3")}
            assert inner["none"] is None
            assert inner["flag"] is True

            assert await step(calc.echo(value=[1, 2])) == [1, 2]  # keyword arguments

    run(main)


#: Arrays and numpy scalars beyond the everyday float/int matrices.
NUMPY_EDGE_CASES: dict[str, Any] = {
    "empty 2-d": np.zeros((0, 3)),
    "empty 1-d int": np.array([], dtype=np.int32),
    "0-d array": np.array(5.0),
    "float64 scalar": np.float64(1.5),
    "int32 scalar": np.int32(-3),
    "bool scalar": np.bool_(True),
    "big-endian": np.arange(4, dtype=">f8"),
    "fortran order": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "complex": np.array([1 + 2j, -1j]),
    "datetime64": np.array(["2024-01-01", "2024-02-29"], dtype="datetime64[D]"),
    "timedelta64": np.array([1, 2], dtype="timedelta64[s]"),
    "fixed bytes": np.array([b"ab", b"c"]),
    "3-d strided": np.arange(60, dtype=np.int16).reshape(3, 4, 5)[:, ::2, 1:],
}


def test_numpy_edge_cases_round_trip(redis_server: RedisServer) -> None:
    """Every case is tried; the failure lists all cases that did not survive."""

    async def main() -> list[str]:
        factory = RedisExchangeFactory(redis_server.url)
        broken: list[str] = []
        async with await _manager(factory) as manager:
            calc = await manager.launch(Calculator)
            for name, value in NUMPY_EDGE_CASES.items():
                try:
                    back = await step(calc.echo(value))
                except Exception as exc:
                    broken.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                if type(back) is not type(value):
                    broken.append(f"{name}: came back as {type(back).__name__}")
                elif back.dtype != value.dtype or back.shape != value.shape:
                    broken.append(
                        f"{name}: {value.dtype}{value.shape} came back as {back.dtype}{back.shape}"
                    )
                elif not np.array_equal(back, value):
                    broken.append(f"{name}: values differ")
                elif isinstance(back, np.ndarray) and not back.flags.writeable:
                    broken.append(f"{name}: read-only")
            assert await step(calc.double(2)) == 4  # the failures did not break the agent
        return broken

    broken = run(main)
    assert not broken, "\n".join(broken)


def test_exceptions_keep_their_type(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            calc = await manager.launch(Calculator)
            with pytest.raises(ValueError, match="bad input 42"):
                await step(calc.fail("bad input 42"))
            with pytest.raises(KeyError, match="missing"):
                await step(calc.fail_key("missing"))
            with pytest.raises(AttributeError, match="no_such_action"):
                await step(calc.action("no_such_action"))
            assert await step(calc.double(21)) == 42  # the agent survives its errors

    run(main)


def test_loop_runs_while_actions_are_served(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            ticker = await manager.launch(Ticker)
            first = await step(ticker.ticks())

            async def advanced() -> bool:
                return bool(await step(ticker.ticks()) >= first + 3)

            await poll(advanced, what="the loop to tick")

    run(main)


def test_handle_passed_as_argument(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            calc = await manager.launch(Calculator)
            relay = await manager.launch(Relay)
            assert await step(relay.peer_id(calc)) == str(calc.agent_id)
            assert await step(relay.ask_double(calc, 5)) == 10
            # and a handle coming back as a result
            back = await step(calc.echo(calc))
            assert back.agent_id == calc.agent_id
            assert await step(back.double(4)) == 8

    run(main)


def test_discover_by_type(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            plain = await manager.launch(Calculator)
            special = await manager.launch(SpecialCalculator)
            relay = await manager.launch(Relay)
            client = manager.exchange_client

            found = set(await step(client.discover(Calculator)))
            assert found == {plain.agent_id, special.agent_id}
            exact = set(await step(client.discover(Calculator, allow_subclasses=False)))
            assert exact == {plain.agent_id}
            assert set(await step(client.discover(SpecialCalculator))) == {special.agent_id}
            assert set(await step(client.discover(Relay))) == {relay.agent_id}

            await manager.shutdown(plain, blocking=True, timeout=20)
            # terminated agents are not discovered any more
            assert set(await step(client.discover(Calculator))) == {special.agent_id}

    run(main)


def test_terminated_agent_rejects_calls(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        async with await _manager(factory) as manager:
            calc = await manager.launch(Calculator)
            assert await step(calc.double(1)) == 2
            await manager.shutdown(calc, blocking=True, timeout=20)
            with pytest.raises(AgentTerminatedError):
                await step(calc.double(2))
            assert await step(manager.exchange_client.status(calc.agent_id)) == (
                MailboxStatus.TERMINATED
            )
            info = await step(factory.mailbox_info(calc.agent_id))
            assert info.status == "TERMINATED"

    run(main)


def test_prefixes_isolate_deployments(redis_server: RedisServer) -> None:
    async def main() -> None:
        blue = RedisExchangeFactory(redis_server.url, prefix="blue")
        green = RedisExchangeFactory(redis_server.url, prefix="green")
        probe = AgentId.new()  # type: ignore[var-annotated]
        assert blue.queue_key(probe) != green.queue_key(probe)
        async with await _manager(blue) as blue_manager, await _manager(green) as green_manager:
            blue_client = blue_manager.exchange_client
            green_client = green_manager.exchange_client
            # Nested managers: the inner one is the context's client, so bind explicitly.
            blue_calc = Handle(
                (await blue_manager.launch(Calculator)).agent_id,
                exchange=blue_client,
                ignore_context=True,
            )
            green_calc = await green_manager.launch(SpecialCalculator)
            assert await step(blue_calc.double(1)) == 2
            assert await step(green_calc.double(2)) == 4

            assert set(await step(blue_client.discover(Calculator))) == {blue_calc.agent_id}
            assert set(await step(green_client.discover(Calculator))) == {green_calc.agent_id}
            assert await step(blue_client.discover(SpecialCalculator)) == ()
            assert await step(green_client.status(blue_calc.agent_id)) == MailboxStatus.MISSING
            assert await step(blue_client.status(green_calc.agent_id)) == MailboxStatus.MISSING

    run(main)


def test_mailbox_info_counts(redis_server: RedisServer) -> None:
    async def main() -> None:
        # Agents publish their counters with heartbeats: make them frequent.
        factory = RedisExchangeFactory(
            redis_server.url, config=ExchangeClientConfig(heartbeat_interval=0.2)
        )
        async with await _manager(factory) as manager:
            calc = await manager.launch(SpecialCalculator, name="counter")
            calls = 5
            for i in range(calls):
                assert await step(calc.double(i)) == 2 * i

            async def settled() -> bool:
                info = await factory.mailbox_info(calc.agent_id)
                return info.completed >= calls and info.queued == 0

            await poll(settled, what="the completed count")
            info = await step(factory.mailbox_info(calc.agent_id))
            assert info.status == "ACTIVE"
            assert info.name == "counter"
            assert "SpecialCalculator" in (info.agent_type or "")
            assert info.completed == calls
            assert info.queued == 0
            assert info.dropped == 0
            assert info.heartbeat_age_s is not None
            assert 0 <= info.heartbeat_age_s < 60

            user = await step(factory.mailbox_info(manager.user_id))
            assert user.status == "ACTIVE"
            assert user.queued == 0  # the caller consumed its responses

    run(main)

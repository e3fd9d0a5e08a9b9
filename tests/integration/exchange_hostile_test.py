"""Scenario: garbage and hostile bytes land in an agent's mailbox.

Anyone who can write to Redis can put bytes in a mailbox. The agent must drop
what it cannot decode (and count it), never unpickle by default, and keep
answering. Senders get clear errors for values that are too large or that
cannot travel without pickle.
"""

from __future__ import annotations

import random
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
import redis
from academy.exception import DeserializationMethodProhibitedError
from academy.exchange.client_config import ExchangeClientConfig
from academy.handle import Handle
from academy.identifier import EntityId
from academy.manager import Manager
from academy.message import ActionRequest, Message
from academy.runtime import RuntimeConfig
from academy.serialize import SerializationStrategy
from exchange_agents import Calculator, poll, run, step
from redis_server import RedisServer

from academy_ml.exceptions import MessageTooLargeError, UnsupportedPayloadError
from academy_ml.messaging import RedisExchangeFactory

#: Publish mailbox counters quickly, so dropped counts show up fast.
FAST = ExchangeClientConfig(heartbeat_interval=0.2)


class Opaque:
    """A type the exchange has no encoding for."""

    def __init__(self, value: int = 7) -> None:
        self.value = value


class Tripwire:
    """Unpickling it creates a file: proof that a receiver unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def _inject(client: redis.Redis, key: str, payload: bytes) -> None:
    """Append raw bytes to a mailbox, whatever Redis type the exchange uses for it."""
    kind = client.type(key)
    if kind == b"list":
        client.rpush(key, payload)
    elif kind == b"stream":
        # the stream entry layout is the exchange's: one field ``m`` carrying the frame
        client.xadd(key, {b"m": payload})
    else:
        raise AssertionError(f"mailbox key {key!r} is a {kind!r}, expected a list or stream")


def _raw_queue(client: redis.Redis, key: str) -> list[bytes]:
    kind = client.type(key)
    if kind == b"list":
        return cast(list[bytes], client.lrange(key, 0, -1))
    assert kind == b"stream", kind
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))
    return [fields[b"m"] for _, fields in entries]


def _hostile_payloads() -> list[bytes]:
    rng = random.Random(1234)
    return [
        b"",
        rng.randbytes(257),
        b"AMX\x01",  # a frame prefix cut short
        b"AMX\x01" + struct.pack("<I", 0xFFFFFFF0) + b"\x90",  # header length beyond the frame
        b"AMX\x09" + struct.pack("<I", 1) + b"\x90",  # another wire version
        b"AMX\x01" + struct.pack("<I", 1) + b"\x90",  # an empty header list
        msgpack.packb({"action": "double", "args": [1], "sender": "me"}),  # wrong fields
        msgpack.packb([1, 2, 3]),
        b"\xc6\xff\xff\xff\xff" + b"x" * 16,  # bin32 claiming 4 GiB
        b"\xdd\xff\xff\xff\xff\xc0",  # array32 claiming 4 billion items
        b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 billion pairs
        b"\x91" * 100_000 + b"\xc0",  # 100k nested arrays
    ]


def test_hostile_bytes_are_dropped_and_counted(redis_server: RedisServer, tmp_path: Path) -> None:
    tripwire = tmp_path / "unpickled"

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, prefix="hostile", config=FAST)
        pickling = RedisExchangeFactory(
            redis_server.url, prefix="hostile", config=FAST, allow_pickle=True
        )
        raw = redis.Redis.from_url(redis_server.url)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            registration = await step(manager.register_agent(Calculator))
            agent_id = registration.agent_id
            key = factory.queue_key(agent_id)

            # A well-formed message whose argument is a pickle: produced by a sender
            # that allows pickle, captured off the wire before the agent runs.
            sender = await step(pickling.create_user_client(start_listener=False))
            try:
                await step(sender.send(_action(sender.client_id, agent_id, Tripwire(tripwire))))
            finally:
                await sender.close()
            queued = _raw_queue(raw, key)
            assert len(queued) == 1
            pickled_frame = queued[0]
            assert b"pathlib" in pickled_frame  # the pickle is in there

            payloads = [*_hostile_payloads(), pickled_frame]
            for payload in _hostile_payloads():
                _inject(raw, key, payload)
            total = len(payloads)  # the captured frame is already queued

            calc: Handle[Calculator] = await manager.launch(Calculator, registration=registration)
            assert await step(calc.double(21)) == 42
            for payload in _hostile_payloads():  # and again while it runs
                _inject(raw, key, payload)
            total += len(payloads) - 1
            assert await step(calc.double(4)) == 8

            async def all_dropped() -> bool:
                info = await factory.mailbox_info(agent_id)
                return bool(info.dropped >= total)

            await poll(all_dropped, what=f"{total} dropped messages")
            info = await step(factory.mailbox_info(agent_id))
            assert info.dropped == total
            assert info.status == "ACTIVE"
            assert not tripwire.exists(), "the agent unpickled a value from the wire"
            assert await step(calc.echo("still here")) == "still here"
        raw.close()

    run(main)


def _action(src: EntityId, dest: Any, *args: Any) -> Message[ActionRequest]:
    return Message.create(
        src=src,
        dest=dest,
        body=ActionRequest(action="echo", pargs=args, serialization=SerializationStrategy.PICKLE),
    )


def test_too_large_and_unsupported_arguments(redis_server: RedisServer) -> None:
    limit = 1 << 20

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, max_message_bytes=limit)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            assert await step(calc.echo(b"x" * (limit // 2))) == b"x" * (limit // 2)

            with pytest.raises(MessageTooLargeError):
                await step(calc.echo(b"x" * (limit + 1)))
            with pytest.raises(UnsupportedPayloadError, match="Opaque"):
                await step(calc.echo(Opaque()))
            with pytest.raises(UnsupportedPayloadError, match="Opaque"):
                await step(calc.echo({"nested": [1, Opaque()]}))
            # the failed sends left nothing behind: the agent still answers
            assert await step(calc.double(3)) == 6

    run(main)


def test_unsendable_results_reach_the_caller_as_errors(redis_server: RedisServer) -> None:
    """The agent cannot send these results; each caller must get an error, not hang."""
    limit = 1 << 20

    async def main() -> list[str]:
        factory = RedisExchangeFactory(redis_server.url, max_message_bytes=limit)
        pool = ThreadPoolExecutor(2)
        problems: list[str] = []
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            calls = {
                "too large": calc.blob(2 * limit),
                "object": calc.unsendable("object"),
                "object array": calc.unsendable("object array"),
                "recursive": calc.unsendable("recursive"),
            }
            for name, call in calls.items():
                try:
                    await step(call, timeout=10)
                except TimeoutError:
                    problems.append(f"{name}: the caller got no answer")
                except Exception:
                    pass
                else:
                    problems.append(f"{name}: no error")
            assert await step(calc.double(3)) == 6
        return problems

    problems = run(main)
    assert not problems, "\n".join(problems)


def test_pickle_when_the_deployment_allows_it(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, allow_pickle=True)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            back = await step(calc.echo(Opaque(11)))
            assert type(back).__name__ == "Opaque"
            assert back.value == 11

    run(main)


def test_the_deserializer_allow_list_holds_when_pickle_is_allowed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    tripwire = tmp_path / "unpickled"

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, allow_pickle=True)
        pool = ThreadPoolExecutor(2)
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            strict = RuntimeConfig(allowed_deserializers={SerializationStrategy.JSON})
            calc: Handle[Calculator] = await manager.launch(Calculator, config=strict)
            calc.request_serializer = SerializationStrategy.PICKLE
            with pytest.raises(DeserializationMethodProhibitedError):
                await step(calc.echo(Tripwire(tripwire)))
            assert not tripwire.exists(), "the agent unpickled despite its allow-list"
            # the same agent answers what its allow-list accepts
            calc.request_serializer = SerializationStrategy.JSON
            assert await step(calc.double(21)) == 42

    run(main)

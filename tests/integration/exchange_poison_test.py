"""Scenario: poisoned entries in an agent's mailbox, before and while it runs.

A 714-byte frame of ~200 nested msgpack extensions once overflowed the C
stack of any decoder (the agent died, the entry stayed in the stream, and
the restarted agent died again on it). Here such frames (in the body and in
the header), the bare nested extensions and garbage are written straight
into the mailbox stream of an agent hosted in a spawned worker process: it
drops each entry once (deleted from the stream, counted in ``dropped``),
keeps answering, and its next incarnation does not see them again.
"""

from __future__ import annotations

import multiprocessing
import random
import struct
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgpack
import redis
from academy.exchange.client_config import ExchangeClientConfig
from academy.handle import Handle
from academy.identifier import AgentId, EntityId
from academy.manager import Manager
from academy.message import ActionRequest, Message
from exchange_agents import Calculator, poll, run, step
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory, wire
from academy_ml.messaging.codec import Ext
from academy_ml.messaging.keys import FRAME_FIELD

#: Nesting of the extension bomb: far past any decoder's depth limit.
LEVELS = 200
#: Index of the body length among a frame's header fields (see wire.encode).
BODY_LENGTH = 8
FAST = ExchangeClientConfig(heartbeat_interval=0.2)


def nested_extensions(levels: int = LEVELS) -> bytes:
    """msgpack of a tuple inside a tuple ... ``levels`` deep."""
    packed: bytes = msgpack.packb(0)
    for _ in range(levels):
        packed = msgpack.packb(msgpack.ExtType(Ext.TUPLE, b"\x91" + packed))
    return packed


def _frame(header_fields: list[Any], body: bytes) -> bytes:
    header_fields[BODY_LENGTH] = len(body)
    header: bytes = msgpack.packb(header_fields)
    return struct.pack("<3sBI", wire.MAGIC, wire.WIRE_VERSION, len(header)) + header + body


def poisoned_frames(sender: EntityId, agent_id: AgentId[Any]) -> list[bytes]:
    """Frames whose header routes them to ``agent_id`` and whose values are hostile."""
    request = Message.create(
        src=sender,
        dest=agent_id,
        body=ActionRequest(action="echo", pargs=(1,), serialization="json"),
    )
    good = b"".join(wire.encode(request, allow_pickle=False, limit=2**20))
    _, _, header_len = struct.unpack_from("<3sBI", good)
    fields = msgpack.unpackb(good[8 : 8 + header_len])
    bomb = nested_extensions()
    # action-request body: [action, args, kwargs, serialization, result_s, exception_s]
    body_bomb = b"\x96\xa4echo\x91" + bomb + b"\x80\xa4json\xc0\xc0"
    header_bomb = list(fields)
    header_bomb[0] = msgpack.ExtType(Ext.ENTITY, bomb)
    return [
        _frame(list(fields), body_bomb),
        _frame(header_bomb, b"\x90"),
        bomb,
        random.Random(7).randbytes(714),
    ]


def test_poisoned_entries_are_dropped_once_and_never_replayed(redis_server: RedisServer) -> None:
    raw = redis.Redis(host="127.0.0.1", port=redis_server.port)

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, config=FAST, prefix="poison")
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            registration = await manager.register_agent(Calculator)
            agent_id = registration.agent_id
            queue = factory.queue_key(agent_id)
            frames = poisoned_frames(manager.user_id, agent_id)
            assert len(frames[0]) < 1100  # about a kilobyte, like the reported 714-byte frame
            # Waiting for the agent when it starts: its first read meets them.
            for frame in frames:
                raw.xadd(queue, {FRAME_FIELD: frame})
            calc: Handle[Calculator] = await manager.launch(Calculator, registration=registration)
            assert await step(calc.double(21), 60) == 42

            async def counted(expected: int) -> bool:
                return (await factory.mailbox_info(agent_id)).dropped == expected

            await poll(lambda: counted(len(frames)), what="the waiting entries counted")
            # And while it runs: more of them (new tags), between normal requests.
            for frame in poisoned_frames(manager.user_id, agent_id):
                raw.xadd(queue, {FRAME_FIELD: frame})
            assert await step(calc.echo("still serving")) == "still serving"
            await poll(lambda: counted(2 * len(frames)), what="every poisoned entry counted")

            # Deleted, not left for a restart: entries taken (the last good
            # request too) go with the XDEL pipelined onto the agent's next read.
            async def drained() -> bool:
                return raw.xlen(queue) == 0

            await poll(drained, what="the mailbox stream emptied")

            await step(manager.shutdown(calc, terminate=False, blocking=True))

        # A new incarnation reads the mailbox from the start: nothing to replay.
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            again: Handle[Calculator] = await manager.launch(Calculator, registration=registration)
            assert await step(again.double(2), 60) == 4
            info = await factory.mailbox_info(agent_id)
            assert info.dropped == 2 * len(frames)
            assert info.status == "ACTIVE"

    try:
        run(main, timeout=180)
    finally:
        raw.close()

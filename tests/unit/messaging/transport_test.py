"""The transport against a real redis-server: routing, lifecycle, delivery, costs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from academy.agent import Agent
from academy.exception import BadEntityIdError, MailboxTerminatedError
from academy.exchange import MailboxStatus
from academy.exchange.client_config import ExchangeClientConfig
from academy.exchange.transport import ExchangeTransport
from academy.identifier import AgentId
from academy.message import (
    AcademyErrorResponse,
    ActionRequest,
    ActionResponse,
    ErrorCode,
    Message,
    UserErrorResponse,
)
from redis_server import RedisServer, free_port

from academy_ml.exceptions import ExchangeConnectionError, WireError
from academy_ml.messaging import RedisExchangeFactory, RedisExchangeTransport


class Base(Agent):
    pass


class Derived(Base):
    pass


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), 60))


async def user(factory: RedisExchangeFactory) -> RedisExchangeTransport:
    return await factory._create_transport()


async def agent(
    factory: RedisExchangeFactory, cls: type[Agent] = Base
) -> tuple[RedisExchangeTransport, AgentId[Any]]:
    admin = await user(factory)
    registration = await admin.register_agent(cls)
    await admin.close()
    transport = await factory._create_transport(mailbox_id=registration.agent_id)
    return transport, registration.agent_id


def request(src: Any, dest: Any, *args: Any, serialization: str = "json") -> Message[Any]:
    body = ActionRequest(action="act", pargs=args, kargs={}, serialization=serialization)
    return Message.create(src=src, dest=dest, body=body, label=uuid.uuid4())


async def next_message(transport: RedisExchangeTransport, timeout: float = 10) -> Message[Any]:
    async for message in transport.listen(timeout=timeout):
        return message
    raise AssertionError("listen ended")


def test_request_and_response_are_delivered(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        assert isinstance(caller, ExchangeTransport)  # Academy's protocol
        sent = request(caller.mailbox_id, worker_id, 41)
        await caller.send(sent)
        received = await next_message(worker)
        assert received.header == sent.header
        assert received.get_body().get_args() == (41,)
        await worker.send(received.create_response(ActionResponse(result=42, serialization="json")))
        answer = await next_message(caller)
        assert answer.tag == sent.tag
        assert answer.get_body().get_result() == 42
        for transport in (caller, worker):
            await transport.close()

    run(main)


def test_one_way_message_costs_at_most_three_redis_commands(redis_server: RedisServer) -> None:
    plain = redis.Redis.from_url(redis_server.url)

    def calls() -> int:
        stats = plain.info("commandstats")
        return sum(value["calls"] for value in stats.values())

    async def main() -> float:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        reader = worker.listen()
        for _ in range(5):  # warm up: first read, scripts loaded
            await caller.send(request(caller.mailbox_id, worker_id))
            await reader.__anext__()
        n = 200
        before = calls()
        for _ in range(n):
            await caller.send(request(caller.mailbox_id, worker_id))
            await reader.__anext__()
        per_message = (calls() - before - 1) / n  # minus INFO itself
        await reader.aclose()
        await caller.close()
        await worker.close()
        return per_message

    per_message = run(main)
    print(f"redis commands per one-way message: {per_message:.2f}")
    assert per_message <= 3.05


def test_sending_to_missing_or_terminated_mailboxes_fails_clearly(
    redis_server: RedisServer,
) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        with pytest.raises(BadEntityIdError):
            await caller.send(request(caller.mailbox_id, AgentId.new()))
        worker, worker_id = await agent(factory)
        await caller.terminate(worker_id)
        with pytest.raises(MailboxTerminatedError):
            await caller.send(request(caller.mailbox_id, worker_id))
        with pytest.raises(MailboxTerminatedError):
            await worker.heartbeat_status(worker_id)
        with pytest.raises(MailboxTerminatedError):
            await next_message(worker)
        await caller.terminate(AgentId.new())  # a no-op, as in Academy
        await caller.close()
        await worker.close()

    run(main)


def test_terminate_answers_queued_requests_and_wakes_the_reader(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, terminated_ttl_s=120)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        first = request(caller.mailbox_id, worker_id, 1)
        await caller.send(first)
        assert (await next_message(worker)).tag == first.tag
        queued = [request(caller.mailbox_id, worker_id, i) for i in range(3)]
        for message in queued:
            await caller.send(message)

        async def drain() -> list[Message[Any]]:
            seen = []
            try:
                async for message in worker.listen():
                    seen.append(message)
            except MailboxTerminatedError:
                return seen
            raise AssertionError("listen ended without MailboxTerminatedError")

        reader = asyncio.create_task(drain())
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await caller.terminate(worker_id)
        seen = await reader
        assert time.monotonic() - start < 2  # woken by the close marker, not a timeout
        replies = [await next_message(caller) for _ in range(3 - len(seen))]
        for reply in replies:
            body = reply.get_body()
            assert isinstance(body, AcademyErrorResponse)
            assert body.error_code == ErrorCode.MAILBOX_TERMINATED
        assert {m.tag for m in seen} | {r.tag for r in replies} == {m.tag for m in queued}
        plain = redis.Redis.from_url(redis_server.url)
        assert 0 < plain.ttl(f"academy_ml:mb:{worker_id.uid}") <= 120
        assert not plain.exists(factory.queue_key(worker_id))
        await caller.close()
        await worker.close()

    run(main)


def test_discover_reads_type_sets_exactly_or_with_subclasses(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        other = RedisExchangeFactory(redis_server.url, prefix="other")
        admin = await user(factory)
        base = (await admin.register_agent(Base, name="b")).agent_id
        derived = (await admin.register_agent(Derived)).agent_id
        assert set(await admin.discover(Base)) == {base, derived}
        assert await admin.discover(Base, allow_subclasses=False) == (base,)
        assert await admin.discover(f"{Derived.__module__}.Derived") == (derived,)
        assert (await admin.discover(Base, allow_subclasses=False))[0].name == "b"
        await admin.terminate(derived)
        assert await admin.discover(Base) == (base,)
        stranger = await user(other)
        assert await stranger.discover(Base) == ()
        await admin.close()
        await stranger.close()

    run(main)


def test_discover_lists_agents_in_registration_order(redis_server: RedisServer) -> None:
    async def main() -> None:
        admin = await user(RedisExchangeFactory(redis_server.url, prefix="ordered"))
        registered = [(await admin.register_agent(Derived)).agent_id for _ in range(30)]
        assert await admin.discover(Base) == tuple(registered)
        assert await admin.discover(Derived, allow_subclasses=False) == tuple(registered)
        await admin.terminate(registered[10])
        assert await admin.discover(Base) == tuple(registered[:10] + registered[11:])
        await admin.close()

    run(main)


def test_heartbeats_and_stats(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        assert await caller.heartbeat_status(worker_id) is None
        await worker.update_heartbeat()
        age = await caller.heartbeat_status(worker_id)
        assert age is not None
        assert 0 <= age < 5
        with pytest.raises(BadEntityIdError):
            await caller.heartbeat_status(AgentId.new())
        for i in range(4):
            await caller.send(request(caller.mailbox_id, worker_id, i))
        received = await next_message(worker)
        await worker.send(received.create_response(ActionResponse(result=0, serialization="json")))
        await worker.update_heartbeat()
        stats = await caller.agent_stats(worker_id)
        assert stats.completed == 1
        assert stats.queued == 3
        assert stats.incoming >= 4
        info = await factory.mailbox_info(worker_id)
        assert info.status == "ACTIVE"
        assert info.agent_type == f"{Base.__module__}.Base"
        await caller.close()
        await worker.close()

    run(main)


def test_listen_times_out(redis_server: RedisServer) -> None:
    async def main() -> None:
        worker, _ = await agent(RedisExchangeFactory(redis_server.url))
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await next_message(worker, timeout=0.3)
        assert time.monotonic() - start < 3
        await worker.close()

    run(main)


def test_taken_messages_are_acknowledged_and_the_rest_redelivered(
    redis_server: RedisServer,
) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        sent = [request(caller.mailbox_id, worker_id, i) for i in range(3)]
        for message in sent:
            await caller.send(message)
        reader = worker.listen()
        assert (await reader.__anext__()).tag == sent[0].tag
        await reader.aclose()  # like an agent shutting down after one message
        await worker.close()
        restarted = await factory._create_transport(mailbox_id=worker_id)
        tags = [(await next_message(restarted)).tag]
        async for message in restarted.listen(timeout=1):
            tags.append(message.tag)
            if len(tags) == 2:
                break
        assert tags == [m.tag for m in sent[1:]]
        for transport in (caller, restarted):
            await transport.close()

    run(main)


def test_duplicates_of_a_retried_send_are_dropped(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        caller = await user(factory)
        worker, worker_id = await agent(factory)
        message = request(caller.mailbox_id, worker_id)
        await caller.send(message)
        await caller.send(message)  # what a send retried after a lost reply does
        await caller.send(request(caller.mailbox_id, worker_id))
        tags = [(await next_message(worker)).tag]
        async for received in worker.listen(timeout=1):
            tags.append(received.tag)
            break
        assert tags[0] == message.tag
        assert tags[1] != message.tag
        await caller.close()
        await worker.close()

    run(main)


def test_a_request_with_a_bad_body_gets_a_wire_error_reply(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url)
        sloppy = RedisExchangeFactory(redis_server.url, allow_pickle=True)
        caller = await user(sloppy)
        worker, worker_id = await agent(factory)
        await caller.send(request(caller.mailbox_id, worker_id, Opaque(), serialization="pickle"))
        await caller.send(request(caller.mailbox_id, worker_id, "fine"))
        received = await next_message(worker)
        assert received.get_body().get_args() == ("fine",)
        reply = (await next_message(caller)).get_body()
        assert isinstance(reply, UserErrorResponse)
        error = reply.get_exception()
        assert isinstance(error, WireError)
        assert "allow_pickle=False" in str(error)
        assert (await factory.mailbox_info(worker_id)).dropped == 1
        await caller.close()
        await worker.close()

    run(main)


class Opaque:
    pass


def test_unreachable_redis_is_a_connection_error_after_the_deadline() -> None:
    url = f"redis://127.0.0.1:{free_port()}"

    async def main() -> None:
        factory = RedisExchangeFactory(url, reconnect_timeout_s=0.3, connect_timeout_s=0.5)
        with pytest.raises(ExchangeConnectionError, match="cannot reach Redis"):
            await user(factory)

    run(main)


def test_academy_status_follows_heartbeats_and_termination(redis_server: RedisServer) -> None:
    async def main() -> None:
        factory = RedisExchangeFactory(
            redis_server.url, config=ExchangeClientConfig(heartbeat_interval=0.1)
        )
        client = await factory.create_user_client(start_listener=False)
        assert await client.status(AgentId.new()) == MailboxStatus.MISSING
        registration = await client.register_agent(Base)
        agent_id = registration.agent_id
        assert await client.status(agent_id) == MailboxStatus.INACTIVE  # no heartbeat yet
        worker = await factory._create_transport(mailbox_id=agent_id)
        await worker.update_heartbeat()
        assert await client.status(agent_id) == MailboxStatus.ACTIVE
        await asyncio.sleep(0.5)  # three intervals (0.3 s) without a heartbeat
        assert await client.status(agent_id) == MailboxStatus.INACTIVE
        await client.terminate(agent_id)
        assert await client.status(agent_id) == MailboxStatus.TERMINATED
        await worker.close()
        await client.close()

    run(main)

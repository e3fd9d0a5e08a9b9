"""The Redis exchange transport: one mailbox's connection to the exchange.

A send is one ``XADD`` (written with concurrent sends). The mailbox is read
by one blocking ``XREAD`` over its stream and its control stream; entries
the agent has taken are deleted by the next read's pipelined ``XDEL``, so
a one-way message costs three commands and two round trips, fewer under
load. Messages wait in Redis while their agent is down and are delivered
when it comes back; the reader survives idle periods and Redis restarts
(retrying through the ``-LOADING`` replies of one that replays its
append-only file). An entry that cannot be decoded is deleted and counted at
once (``dropped``), so no restart replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from academy.exception import BadEntityIdError, MailboxTerminatedError
from academy.exchange.transport import ExchangeTransportMixin
from academy.identifier import AgentId, EntityId
from academy.message import (
    AcademyErrorResponse,
    ErrorCode,
    Message,
    UserErrorResponse,
)
from academy.serialize import NoPickleMixin, SerializationStrategy
from academy.stats import AgentStats
from pydantic import BaseModel, Field

from academy_ml.core.reconnect import with_reconnect
from academy_ml.core.resp import Connection
from academy_ml.exceptions import MessageTooLargeError, WireError
from academy_ml.messaging import keys, wire
from academy_ml.messaging.keys import Keys

if TYPE_CHECKING:
    from academy.agent import Agent, AgentT

    from academy_ml.messaging.factory import ExchangeOptions, RedisExchangeFactory
else:
    from academy.identifier import AgentT

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Tags of recently received messages kept to drop duplicates of retried sends.
_SEEN_TAGS = 65_536
#: Entries taken per read.
_READ_COUNT = 64
#: Time past a read's block time after which its connection counts as dead.
_READ_MARGIN_S = 10.0
#: Counters are published at most this often from the read loop.
_PUBLISH_EVERY_S = 1.0


class RedisAgentRegistration(BaseModel, Generic[AgentT]):
    """Registration of an agent in the academy_ml Redis exchange."""

    agent_id: AgentId[AgentT]
    exchange_type: Literal["academy_ml.redis"] = Field("academy_ml.redis", repr=False)


class RedisExchangeTransport(ExchangeTransportMixin, NoPickleMixin):
    """Redis exchange transport bound to one mailbox.

    Created by :class:`~academy_ml.messaging.RedisExchangeFactory`; not picklable.

    Args:
        mailbox_id: The mailbox this transport reads.
        factory: The factory that made it (URL and options).
        connection: Connection for every command but the mailbox's blocking read.
    """

    def __init__(
        self,
        mailbox_id: EntityId,
        factory: RedisExchangeFactory,
        connection: Connection,
    ) -> None:
        self._mailbox_id = mailbox_id
        self._factory = factory
        self._options: ExchangeOptions = factory.options
        self._url = factory.url
        self._keys = Keys(self._options.prefix)
        self._conn = connection
        self._queue = self._keys.queue(mailbox_id)
        self._seen: OrderedDict[uuid.UUID, None] = OrderedDict()
        # Counters since the last publication: incoming, outgoing, completed.
        self._unpublished = [0, 0, 0]
        self._published_at = time.monotonic()

    @property
    def mailbox_id(self) -> EntityId:
        """ID of the mailbox this transport is bound to."""
        return self._mailbox_id

    async def _call(self, what: str, script: str, keys_: list[str], args: list[Any]) -> Any:
        return await self._retrying(what, lambda: self._conn.script(script, keys_, args))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await with_reconnect(
            call, url=self._url, deadline_s=self._options.reconnect_timeout_s, what=what
        )

    async def register(self, uid: EntityId, mro: tuple[str, ...]) -> None:
        """Create the mailbox of ``uid`` (an agent of type ``mro[0]``, or a user)."""
        kind = "agent" if isinstance(uid, AgentId) else "user"
        await self._call(
            f"registering {uid}",
            keys.REGISTER,
            [self._keys.mailbox(uid), self._keys.queue(uid)],
            [kind, uid.name or "", ",".join(mro), self._options.prefix, str(uid.uid)],
        )

    async def close(self) -> None:
        """Publish the counters and close the connection (the mailbox stays)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._publish_counters(), self._options.connect_timeout_s)
        await self._conn.close()

    async def discover(
        self,
        agent: type[Agent] | str,
        *,
        allow_subclasses: bool = True,
    ) -> tuple[AgentId[Any], ...]:
        """Active agents of type ``agent`` (or derived from it), from its type set."""
        name = agent if isinstance(agent, str) else f"{agent.__module__}.{agent.__qualname__}"
        found = await self._call(
            f"discovering {name}",
            keys.DISCOVER,
            [self._keys.agent_type(name, exact=not allow_subclasses)],
            [self._options.prefix],
        )
        return tuple(
            AgentId(uid=uuid.UUID(uid.decode()), name=agent_name.decode() or None)
            for uid, agent_name in found
        )

    def factory(self) -> RedisExchangeFactory:
        """The factory this transport was created by."""
        return self._factory

    async def listen(self, timeout: float | None = None) -> AsyncGenerator[Message[Any]]:
        """Yield the mailbox's messages until it is terminated.

        Malformed, oversized or hostile entries are dropped, logged and
        counted; a request among them is answered with a :class:`WireError`
        when its sender can be read. Connection failures are retried until
        Redis is back, for up to ``reconnect_timeout_s``.

        Raises:
            MailboxTerminatedError: The mailbox was terminated.
            BadEntityIdError: The mailbox does not exist.
            TimeoutError: Nothing arrived within ``timeout`` seconds.
            ExchangeConnectionError: Redis stayed away past ``reconnect_timeout_s``
                (the agent then shuts down, as on any listener error).
        """
        status = await self._status(self._mailbox_id)
        if status[0] is None:
            raise BadEntityIdError(self._mailbox_id)
        if status[0] != keys.STATUS_ACTIVE:
            raise MailboxTerminatedError(self._mailbox_id)
        queue, control = self._keys.queue(self._mailbox_id), self._keys.control(self._mailbox_id)
        block_s = self._options.listen_block_s
        reader = Connection(self._url, connect_timeout_s=self._options.connect_timeout_s)
        last = {queue: b"0-0", control: b"0-0"}
        taken: list[bytes] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait_s = block_s
                if deadline is not None:
                    wait_s = min(wait_s, max(deadline - time.monotonic(), 0.001))
                streams = await with_reconnect(
                    lambda: _read(reader, queue, taken, last, wait_s),  # noqa: B023
                    url=self._url,
                    deadline_s=self._options.reconnect_timeout_s,
                    what=f"reading {self._mailbox_id}",
                )
                taken = []
                if not streams:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"no message for {self._mailbox_id} within {timeout} s")
                    await self._maybe_publish()
                    continue
                for stream, entries in streams:
                    if stream.decode() == control:
                        raise MailboxTerminatedError(self._mailbox_id)
                    for entry_id, fields in entries:
                        last[queue] = entry_id
                        message = await self._receive(entry_id, _frame_field(fields))
                        if message is not None:
                            taken.append(entry_id)
                            yield message
                if deadline is not None:
                    deadline = time.monotonic() + timeout  # type: ignore[operator]
                # Let the handlers just woken (an action, a waiting caller) write
                # first: the acknowledgement and next read are off the critical path.
                await asyncio.sleep(0)
                await self._maybe_publish()
        finally:
            if taken:
                # Entries handed to the agent must not come back on its restart.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._conn.call(b"XDEL", queue, *taken))
            await reader.close()

    async def _receive(self, entry_id: bytes, data: bytes | None) -> Message[Any] | None:
        """The message of a stream entry, or None when the entry is dropped.

        An entry that cannot be decoded (or is a duplicate) is deleted at
        once, before anything else reads the mailbox, so a restarted reader
        never sees it again; a bad one is counted once in ``dropped``.
        """
        if data is None:
            await self._drop(entry_id, None, "a stream entry without a frame field")
            return None
        try:
            frame = wire.Frame(data)
        except Exception as exc:  # nothing read off the wire may stop the reader
            await self._drop(entry_id, None, str(exc))
            return None
        if frame.header.tag in self._seen:
            logger.debug("dropping a duplicate of message %s", frame.header.tag)
            await self._retrying(
                "deleting a duplicate", lambda: self._conn.call(b"XDEL", self._queue, entry_id)
            )
            return None
        self._seen[frame.header.tag] = None
        if len(self._seen) > _SEEN_TAGS:
            self._seen.popitem(last=False)
        try:
            if len(data) > self._options.max_message_bytes:
                raise MessageTooLargeError(
                    f"a message of {len(data):,} bytes exceeds this exchange's limit of "
                    f"{self._options.max_message_bytes:,} bytes"
                )
            message = frame.message(allow_pickle=self._options.allow_pickle)
        except Exception as exc:  # nothing read off the wire may stop the reader
            await self._drop(entry_id, frame, str(exc))
            if frame.header.kind == "request":
                error = exc if isinstance(exc, WireError | MessageTooLargeError) else WireError(exc)
                await self._reply_error(frame, error)
            return None
        if message.is_request():
            self._unpublished[0] += 1
        return message

    async def _drop(self, entry_id: bytes, frame: wire.Frame | None, reason: str) -> None:
        sender = "an unknown sender" if frame is None else str(frame.header.src)
        logger.warning("%s dropped a message from %s: %s", self._mailbox_id, sender, reason)
        await self._call(
            f"dropping an entry of {self._mailbox_id}",
            keys.DROP,
            [self._queue, self._keys.mailbox(self._mailbox_id)],
            [entry_id],
        )

    async def _reply_error(self, frame: wire.Frame, exc: Exception) -> None:
        response: Message[Any] = Message(
            header=frame.header.create_response_header(),
            body=UserErrorResponse(exception=exc, serialization=SerializationStrategy.JSON),
        )
        with contextlib.suppress(Exception):
            await self.send(response)

    async def register_agent(
        self,
        agent: type[AgentT],
        *,
        name: str | None = None,
    ) -> RedisAgentRegistration[AgentT]:
        """Register a new agent of type ``agent`` and create its mailbox."""
        aid: AgentId[AgentT] = AgentId.new(name=name)
        await self.register(aid, agent._agent_mro())
        return RedisAgentRegistration(agent_id=aid)

    async def send(self, message: Message[Any]) -> None:
        """Append ``message`` to its destination's mailbox.

        A response that cannot be encoded (or is too large) is replaced by an
        error response that tells the requester why.

        Raises:
            BadEntityIdError: The destination mailbox does not exist.
            MailboxTerminatedError: The destination mailbox was terminated.
            UnsupportedPayloadError: A request argument cannot travel.
            MessageTooLargeError: The request exceeds ``max_message_bytes``.
        """
        options = self._options
        try:
            chunks = wire.encode(
                message, allow_pickle=options.allow_pickle, limit=options.max_message_bytes
            )
        except Exception as exc:
            # A response that cannot travel must still answer its request.
            if not message.is_response():
                raise
            error: Message[Any] = Message(
                header=message.header,
                body=UserErrorResponse(exception=exc, serialization=SerializationStrategy.JSON),
            )
            chunks = wire.encode(error, allow_pickle=False, limit=options.max_message_bytes)
        queue = self._keys.queue(message.dest)
        entry = await self._retrying(
            f"sending to {message.dest}",
            lambda: self._conn.call(b"XADD", queue, b"NOMKSTREAM", b"*", keys.FRAME_FIELD, chunks),
        )
        if entry is None:
            status = await self._status(message.dest)
            if status[0] is None:
                raise BadEntityIdError(message.dest)
            raise MailboxTerminatedError(message.dest)
        if message.is_request():
            self._unpublished[1] += 1
        elif isinstance(self._mailbox_id, AgentId):
            self._unpublished[2] += 1

    async def terminate(self, uid: EntityId) -> None:
        """Terminate the mailbox of ``uid``; queued requests get an error reply.

        A no-op when the mailbox does not exist. Its keys expire after
        ``terminated_ttl_s``.
        """
        queued = await self._call(
            f"terminating {uid}",
            keys.TERMINATE,
            [self._keys.mailbox(uid), self._keys.queue(uid), self._keys.control(uid)],
            [max(1, round(self._options.terminated_ttl_s)), self._options.prefix, str(uid.uid)],
        )
        for data in queued or ():
            try:
                header = wire.Frame(data).header
            except WireError:
                continue
            if header.kind != "request":
                continue
            response: Message[Any] = Message(
                header=header.create_response_header(),
                body=AcademyErrorResponse(error_code=ErrorCode.MAILBOX_TERMINATED, mailbox_id=uid),
            )
            with contextlib.suppress(MailboxTerminatedError, BadEntityIdError):
                await self.send(response)

    async def update_heartbeat(self) -> None:
        """Record a heartbeat (server time) and publish this mailbox's counters.

        Raises:
            MailboxTerminatedError: This mailbox was terminated.
        """
        status = await self._publish_counters()
        if status is not None and status != keys.STATUS_ACTIVE:
            raise MailboxTerminatedError(self._mailbox_id)

    async def _publish_counters(self) -> bytes | None:
        deltas, self._unpublished = self._unpublished, [0, 0, 0]
        self._published_at = time.monotonic()
        status: bytes | None = await self._call(
            "publishing a heartbeat", keys.HEARTBEAT, [self._keys.mailbox(self._mailbox_id)], deltas
        )
        return status

    async def _maybe_publish(self) -> None:
        if any(self._unpublished) and time.monotonic() - self._published_at > _PUBLISH_EVERY_S:
            await self._publish_counters()

    async def _status(self, uid: EntityId) -> tuple[bytes | None, float | None]:
        status, heartbeat, now = await self._call(
            f"reading the status of {uid}", keys.STATUS, [self._keys.mailbox(uid)], []
        )
        age = None if heartbeat is None else float(now) - float(heartbeat)
        return status, age

    async def heartbeat_status(self, uid: EntityId) -> float | None:
        """Seconds since the last heartbeat of ``uid`` (None before the first).

        Raises:
            BadEntityIdError: The mailbox does not exist.
            MailboxTerminatedError: The mailbox was terminated.
        """
        status, age = await self._status(uid)
        if status is None:
            raise BadEntityIdError(uid)
        if status != keys.STATUS_ACTIVE:
            raise MailboxTerminatedError(uid)
        return age

    async def agent_stats(self, uid: EntityId) -> AgentStats:
        """Counters of ``uid``: queued is live, the rest as of its last publication."""
        info = await self._factory.mailbox_info(uid, connection=self._conn)
        return AgentStats(
            incoming=info.incoming + info.queued,
            outgoing=info.outgoing,
            completed=info.completed,
            in_progress=max(0, info.incoming - info.completed),
            queued=info.queued,
        )


async def _read(
    reader: Connection,
    queue: str,
    taken: list[bytes],
    last: dict[str, bytes],
    wait_s: float,
) -> Any:
    """Acknowledge ``taken`` and block for new entries, in one round trip."""
    block_ms = max(1, int(wait_s * 1000))
    read = (b"XREAD", b"COUNT", _READ_COUNT, b"BLOCK", block_ms, b"STREAMS", *last, *last.values())
    # A read that outlives its block time by far has lost its connection silently.
    watchdog = asyncio.get_running_loop().call_later(wait_s + _READ_MARGIN_S, reader.abort)
    try:
        if not taken:
            return await reader.call(*read)
        _, streams = await reader.pipeline((b"XDEL", queue, *taken), read)
        return streams
    finally:
        watchdog.cancel()


def _frame_field(fields: list[bytes]) -> bytes | None:
    """The frame of a stream entry (a flat field/value list), if it has one."""
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == keys.FRAME_FIELD:
            return fields[i + 1]
    return None

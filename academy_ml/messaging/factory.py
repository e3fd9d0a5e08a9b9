"""The factory users hand to Academy: ``RedisExchangeFactory(url)``."""

from __future__ import annotations

from typing import Any

from academy.exception import BadEntityIdError
from academy.exchange.client_config import ExchangeClientConfig
from academy.exchange.factory import ExchangeFactory
from academy.exchange.transport import AgentRegistration
from academy.identifier import EntityId, UserId
from pydantic import BaseModel, ConfigDict, Field, field_validator

from academy_ml.core.reconnect import redacted, with_reconnect
from academy_ml.core.resp import Address, Connection
from academy_ml.messaging import keys
from academy_ml.messaging.keys import Keys
from academy_ml.messaging.transport import RedisExchangeTransport


class ExchangeOptions(BaseModel):
    """Settings of one exchange deployment (shared by every process in it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str = Field("academy_ml", description="Key prefix of this deployment.")
    max_message_bytes: int = Field(
        64 * 2**20, ge=1024, le=512 * 2**20, description="Largest encoded message."
    )
    allow_pickle: bool = Field(
        False, description="Pickle values without a wire encoding, and unpickle them."
    )
    terminated_ttl_s: float = Field(
        3600.0, gt=0, description="Expiry of a terminated mailbox's keys."
    )
    reconnect_timeout_s: float = Field(
        60.0, ge=0, description="How long commands retry while Redis is unreachable."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout of a connection attempt.")
    listen_block_s: float = Field(
        10.0, gt=0, description="Server-side block time of one mailbox read."
    )

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, prefix: str) -> str:
        if not prefix or any(c.isspace() or c in "{}*?[]" for c in prefix):
            raise ValueError(
                "prefix must be non-empty, without whitespace, braces or glob characters"
            )
        return prefix


class MailboxInfo(BaseModel):
    """What the exchange knows about one mailbox."""

    status: str
    kind: str
    name: str | None
    agent_type: str | None
    heartbeat_age_s: float | None
    queued: int
    incoming: int
    outgoing: int
    completed: int
    dropped: int


class RedisExchangeFactory(ExchangeFactory[RedisExchangeTransport]):
    """Academy exchange over Redis: binary frames, never unpickles by default.

    Use it wherever Academy takes an exchange factory::

        factory = RedisExchangeFactory("redis://localhost:6379")
        async with await Manager.from_exchange_factory(factory, executors=pool) as m:
            handle = await m.launch(MyAgent)

    It pickles as its URL and options, so agents launched in other
    processes connect to the same deployment.

    Args:
        url: ``redis://`` or ``rediss://`` (TLS) URL, with ``user:password@``
            for ACLs and ``/db`` for a database number.
        config: Academy's exchange client configuration (heartbeats).
        options: Keyword arguments of :class:`ExchangeOptions`.

    Raises:
        pydantic.ValidationError: An option is out of range.
        ValueError: ``url`` is not a Redis URL, or has unknown parameters.
    """

    def __init__(
        self,
        url: str,
        *,
        config: ExchangeClientConfig | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config)
        Address.parse(url)
        self.url = url
        self.options = ExchangeOptions(**options)

    def __repr__(self) -> str:
        return f"RedisExchangeFactory({redacted(self.url)!r}, prefix={self.options.prefix!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self.config, self.options))

    def queue_key(self, uid: EntityId) -> str:
        """Redis key of the stream that holds ``uid``'s messages."""
        return Keys(self.options.prefix).queue(uid)

    def _connection(self) -> Connection:
        return Connection(self.url, connect_timeout_s=self.options.connect_timeout_s)

    async def _create_transport(
        self,
        mailbox_id: EntityId | None = None,
        *,
        name: str | None = None,
        registration: AgentRegistration[Any] | None = None,
    ) -> RedisExchangeTransport:
        connection = self._connection()
        try:
            await with_reconnect(
                lambda: connection.call(b"PING"),
                url=self.url,
                deadline_s=self.options.reconnect_timeout_s,
                what="connecting",
                retry_lost=False,
            )
        except BaseException:
            await connection.close()
            raise
        if mailbox_id is not None:
            return RedisExchangeTransport(mailbox_id, self, connection)
        user = UserId.new(name=name)
        transport = RedisExchangeTransport(user, self, connection)
        await transport.register(user, ())
        return transport

    async def mailbox_info(
        self, uid: EntityId, *, connection: Connection | None = None
    ) -> MailboxInfo:
        """Status, heartbeat and counters of ``uid``'s mailbox.

        Raises:
            academy.exception.BadEntityIdError: The mailbox does not exist.
        """
        own = connection is None
        conn = self._connection() if connection is None else connection
        key_names = Keys(self.options.prefix)
        try:
            fields, queued, now = await with_reconnect(
                lambda: conn.script(keys.INFO, [key_names.mailbox(uid), key_names.queue(uid)], []),
                url=self.url,
                deadline_s=self.options.reconnect_timeout_s,
                what=f"reading the mailbox of {uid}",
                retry_lost=not own,
            )
        finally:
            if own:
                await conn.close()
        info = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
        if "status" not in info:
            raise BadEntityIdError(uid)
        mro = info.get("mro", "")
        heartbeat = info.get("heartbeat")
        return MailboxInfo(
            status=info["status"],
            kind=info.get("kind", ""),
            name=info.get("name") or None,
            agent_type=mro.split(",")[0] if mro else None,
            heartbeat_age_s=None if heartbeat is None else float(now) - float(heartbeat),
            queued=queued,
            incoming=int(info.get("incoming", 0)),
            outgoing=int(info.get("outgoing", 0)),
            completed=int(info.get("completed", 0)),
            dropped=int(info.get("dropped", 0)),
        )


def _rebuild(
    url: str, config: ExchangeClientConfig | None, options: ExchangeOptions
) -> RedisExchangeFactory:
    return RedisExchangeFactory(url, config=config, **options.model_dump())

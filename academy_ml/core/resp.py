"""A lean asyncio Redis connection: hiredis parsing, implicit pipelining.

redis-py's asyncio client spends ~110 us of Python per round trip on
loopback (measured here with redis-py 8.1: PING 112 us, XADD 129 us); an
``asyncio.Protocol`` that writes each command as soon as it is issued and
resolves replies in order with hiredis takes ~60 us, and concurrent commands
share the round trip (~7 us each). The exchange issues few kinds of
commands, so it talks RESP2 itself; redis-py stays for everything else.

A connection is opened lazily, authenticates and selects its database from
the URL, and fails every waiting command with :class:`ConnectionLost` when
the socket breaks; the next command opens a new one.

A socket belongs to the event loop that opened it. A connection used from
another loop while that one still runs (another thread) raises
:class:`~academy_ml.exceptions.ExchangeLoopError` instead of waiting forever
for replies that loop would deliver; once that loop has stopped (a client
made in one ``asyncio.run`` and used in the next), the stale socket is
dropped and the new loop opens its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import hiredis

from academy_ml.exceptions import ExchangeLoopError

#: Query parameters a Redis URL may carry (redis-py's names).
URL_OPTIONS = frozenset({"db", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})


class ConnectionLost(ConnectionError):
    """The connection to Redis broke (or never opened); the command may be retried."""


class ReplyError(Exception):
    """Redis answered a command with an error reply."""


class AuthError(ReplyError):
    """Redis refused the credentials (WRONGPASS, NOAUTH, NOPERM)."""


class TransientReplyError(ReplyError):
    """Redis cannot serve the command yet; it may be retried as it is.

    ``LOADING`` (replaying its append-only file after a restart), ``BUSY`` (a
    script runs), ``TRYAGAIN`` and ``MASTERDOWN``: the command was not
    applied, and Redis will answer once the condition passes.
    """


#: Error reply prefixes of :class:`TransientReplyError`.
TRANSIENT_REPLIES = ("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN")


#: Size of the reused receive buffer. asyncio's default allocates a fresh
#: bytes object per read; above 128 KiB each is a new mmap (page faults).
_RECEIVE_BUFFER = 256 * 1024
#: Chunks at least this large are written without joining them to others.
_JOIN_LIMIT = 64 * 1024


class _Protocol(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._buffer = bytearray(_RECEIVE_BUFFER)
        self._view = memoryview(self._buffer)
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._corked = False
        self._held: list[bytes | memoryview] = []
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self._reader.feed(self._buffer, 0, nbytes)  # type: ignore[arg-type]  # any buffer works
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_reply_error(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = ConnectionLost(f"connection to Redis lost: {exc or 'closed by the server'}")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, *commands: tuple[Any, ...]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in commands]
        if self._transport is None:
            for future in futures:
                future.set_exception(ConnectionLost("connection to Redis is closed"))
            return futures
        chunks: list[bytes | memoryview] = []
        for args in commands:
            _pack(args, chunks)
        self._waiters.extend(futures)
        if self._corked:
            self._held.extend(chunks)
            return futures
        self._write(chunks)
        # What else is issued in this loop iteration (a burst of concurrent
        # calls) is held and written at once when the iteration ends.
        self._corked = True
        loop.call_soon(self._uncork)
        return futures

    def _uncork(self) -> None:
        self._corked = False
        held, self._held = self._held, []
        if held and self._transport is not None:
            self._write(held)

    def _write(self, chunks: list[bytes | memoryview]) -> None:
        assert self._transport is not None
        # Small chunks are joined into one write (one syscall); large values
        # are written as they are, so a 10 MB frame is not copied to join it.
        small: list[bytes | memoryview] = []
        for chunk in chunks:
            if len(chunk) < _JOIN_LIMIT:
                small.append(chunk)
                continue
            if small:
                self._transport.write(b"".join(small))
                small = []
            self._transport.write(chunk)
        if small:
            self._transport.write(b"".join(small))

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _reply_error(text: str) -> ReplyError:
    if text.startswith(("WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password")):
        return AuthError(text)
    if text.startswith(TRANSIENT_REPLIES):
        return TransientReplyError(text)
    return ReplyError(text)


def _pack(args: tuple[Any, ...], chunks: list[bytes | memoryview]) -> None:
    chunks.append(b"*%d\r\n" % len(args))
    for arg in args:
        if isinstance(arg, list):
            # One bulk string given as several chunks (a frame).
            chunks.append(b"$%d\r\n" % sum(map(len, arg)))
            chunks.extend(arg)
            chunks.append(b"\r\n")
            continue
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int | float):
            arg = str(arg).encode()
        chunks.append(b"$%d\r\n" % len(arg))
        chunks.append(arg)
        chunks.append(b"\r\n")


@dataclass(frozen=True)
class Address:
    """Where and how to connect, parsed from a Redis URL."""

    host: str
    port: int
    unix_path: str | None
    username: str | None
    password: str | None
    db: int
    tls: ssl.SSLContext | None

    @classmethod
    def parse(cls, url: str) -> Address:
        """Parse ``redis://``, ``rediss://`` or ``unix://`` URLs.

        TLS takes ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile`` and
        ``ssl_cert_reqs=none|required`` query parameters, as redis-py does.

        Raises:
            ValueError: Another scheme, an unknown query parameter or a bad db.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {parts.scheme}://")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - URL_OPTIONS
        if unknown:
            raise ValueError(
                f"unknown Redis URL parameter(s) {sorted(unknown)}; known: {sorted(URL_OPTIONS)}"
            )
        db = query.get("db") or (parts.path.lstrip("/") if parts.scheme != "unix" else "") or "0"
        if not db.isdigit():
            raise ValueError(f"Redis database number must be an integer, got {db!r}")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            unix_path=parts.path if parts.scheme == "unix" else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            db=int(db),
            tls=_tls_context(query) if parts.scheme == "rediss" else None,
        )


def _tls_context(query: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if "ssl_certfile" in query:
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    requirement = query.get("ssl_cert_reqs", "required")
    if requirement not in ("required", "none"):
        raise ValueError(f"ssl_cert_reqs must be 'required' or 'none', got {requirement!r}")
    if requirement == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Connection:
    """One Redis connection whose commands are pipelined as they are issued.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for
            TLS, or ``unix:///path/to/socket[?db=N]``.
        connect_timeout_s: Timeout of opening the connection (and authenticating).
    """

    def __init__(self, url: str, *, connect_timeout_s: float) -> None:
        self._address = Address.parse(url)
        self._connect_timeout_s = connect_timeout_s
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Task[_Protocol] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, bytes] = {}

    def _current(self) -> _Protocol | None:
        """The open protocol of the running loop, if any.

        Raises:
            ExchangeLoopError: The connection is in use by another running loop.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_running():
                raise ExchangeLoopError(
                    "this exchange connection belongs to an event loop running in another "
                    "thread; create the exchange client (or transport) in the loop that uses it"
                )
            stale, self._protocol, self._opening = self._protocol, None, None
            if stale is not None:
                # Its loop is stopped: closing completes if it ever runs again.
                with contextlib.suppress(RuntimeError):
                    stale.abort()
            self._loop = loop
        protocol = self._protocol
        return None if protocol is None or protocol.closed.done() else protocol

    async def call(self, *args: Any) -> Any:
        """Send one command and wait for its reply.

        Raises:
            ConnectionLost: The connection broke; the command may or may not
                have been applied.
            AuthError: Redis refused the credentials.
            ReplyError: Redis answered with an error.
            ExchangeLoopError: Used from a loop other than its running one.
        """
        protocol = self._current() or await self._open()
        return await protocol.send(args)[0]

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send several commands in one write and wait for all their replies.

        Raises:
            ConnectionLost, AuthError, ReplyError: As :meth:`call`, for the
                first command that failed.
        """
        protocol = self._current() or await self._open()
        futures = protocol.send(*commands)
        # Replies arrive in order: once the last is in, all are.
        try:
            await futures[-1]
        except asyncio.CancelledError:
            # Awaiting cancelled only the last: the others' replies (or a lost
            # connection's error) would otherwise be logged as never retrieved.
            for future in futures:
                future.cancel()
            raise
        except Exception:
            pass
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its SHA1, loading it when the server lacks it."""
        sha = self._scripts.get(source)
        if sha is None:
            sha = self._scripts[source] = hashlib.sha1(source.encode()).hexdigest().encode()
        try:
            return await self.call(b"EVALSHA", sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call(b"SCRIPT", b"LOAD", source)
        return await self.call(b"EVALSHA", sha, len(keys), *keys, *args)

    def abort(self) -> None:
        """Drop the connection at once; waiting commands fail with ConnectionLost."""
        if self._protocol is not None:
            self._protocol.abort()

    async def close(self) -> None:
        """Close the connection."""
        self._current()
        opening, self._opening = self._opening, None
        protocol, self._protocol = self._protocol, None
        if opening is not None:
            if not opening.done():
                opening.cancel()
                # Let it close the socket it may have opened before we return.
                await asyncio.wait([opening])
            elif protocol is None and not opening.cancelled() and opening.exception() is None:
                # Opened, but its caller has not taken it yet: it is ours to close.
                protocol = opening.result()
        if protocol is not None:
            protocol.abort()
            await protocol.closed

    async def _open(self) -> _Protocol:
        opening = self._opening
        if opening is not None and opening.done() and not opening.cancelled():
            orphan = None if opening.exception() else opening.result()
            if orphan is not None and orphan is not self._protocol and not orphan.closed.done():
                # Opened for a caller cancelled meanwhile (shielded): taking it
                # keeps its socket from leaking when the next attempt replaces it.
                self._protocol = orphan
                return orphan
        # Concurrent callers share one attempt.
        if self._opening is None or self._opening.done():
            self._opening = asyncio.create_task(self._connect())
        protocol = await asyncio.shield(self._opening)
        self._protocol = protocol
        return protocol

    async def _connect(self) -> _Protocol:
        address = self._address
        loop = asyncio.get_running_loop()
        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if address.unix_path is not None:
                    _, protocol = await loop.create_unix_connection(_Protocol, address.unix_path)
                else:
                    _, protocol = await loop.create_connection(
                        _Protocol, address.host, address.port, ssl=address.tls
                    )
                await _handshake(protocol, address)
        except BaseException as exc:
            # A handshake that timed out, failed or was cancelled (close()) must
            # not leave its socket open (a ResourceWarning on a busy machine).
            if protocol is not None:
                protocol.abort()
            if isinstance(exc, TimeoutError):
                raise ConnectionLost(f"no answer within {self._connect_timeout_s} s") from exc
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionLost):
                raise ConnectionLost(str(exc) or type(exc).__name__) from exc
            raise
        assert protocol is not None
        return protocol


async def _handshake(protocol: _Protocol, address: Address) -> None:
    try:
        if address.password is not None:
            auth: tuple[Any, ...] = (b"AUTH", address.password)
            if address.username:
                auth = (b"AUTH", address.username, address.password)
            await protocol.send(auth)[0]
        if address.db:
            await protocol.send((b"SELECT", address.db))[0]
    except ReplyError:
        protocol.abort()
        raise

"""The RESP connection against a real redis-server."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme
from redis_server import RedisServer, free_port

from academy_ml.core.reconnect import with_reconnect
from academy_ml.core.resp import (
    Address,
    AuthError,
    Connection,
    ConnectionLost,
    ReplyError,
    TransientReplyError,
)
from academy_ml.exceptions import ExchangeLoopError


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), 30))


def test_commands_pipeline_and_replies_keep_their_order(redis_server: RedisServer) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        replies = await asyncio.gather(*(conn.call(b"INCR", b"n") for _ in range(500)))
        assert replies == list(range(1, 501))
        assert await conn.pipeline((b"SET", b"k", "v"), (b"GET", b"k")) == [b"OK", b"v"]
        with pytest.raises(ReplyError, match="WRONGTYPE"):
            await conn.pipeline((b"GET", b"k"), (b"LPUSH", b"k", b"x"))
        assert await conn.call(b"GET", b"missing") is None
        await conn.close()

    run(main)


def test_a_value_given_in_chunks_arrives_whole(redis_server: RedisServer) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        chunks: list[bytes | memoryview] = [b"head", memoryview(b"x" * 100_000), b"tail"]
        await conn.call(b"SET", b"k", chunks)
        assert await conn.call(b"GET", b"k") == b"head" + b"x" * 100_000 + b"tail"
        await conn.close()

    run(main)


def test_scripts_are_reloaded_when_the_server_forgot_them(redis_server: RedisServer) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        source = "return ARGV[1] .. KEYS[1]"
        assert await conn.script(source, ["k"], ["a"]) == b"ak"
        await conn.call(b"SCRIPT", b"FLUSH")
        assert await conn.script(source, ["k"], ["b"]) == b"bk"
        await conn.close()

    run(main)


def test_database_number_from_the_url(redis_server: RedisServer) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url + "/3", connect_timeout_s=5)
        await conn.call(b"SET", b"in-db-3", b"1")
        await conn.close()

    run(main)
    assert redis.Redis.from_url(redis_server.url + "/3").get("in-db-3") == b"1"
    assert redis.Redis.from_url(redis_server.url).get("in-db-3") is None


def test_acl_users_and_wrong_passwords(redis_password_server: RedisServer) -> None:
    admin = redis.Redis.from_url(redis_password_server.url)
    admin.acl_setuser("alice", enabled=True, passwords=["+wonder"], keys=["*"], commands=["+@all"])
    port = redis_password_server.port

    async def main() -> None:
        alice = Connection(f"redis://alice:wonder@127.0.0.1:{port}", connect_timeout_s=5)
        assert await alice.call(b"ACL", b"WHOAMI") == b"alice"
        await alice.close()
        for url in (f"redis://alice:nope@127.0.0.1:{port}", f"redis://127.0.0.1:{port}"):
            conn = Connection(url, connect_timeout_s=5)
            with pytest.raises(AuthError):
                await conn.call(b"PING")
            await conn.close()

    run(main)


def test_a_broken_connection_fails_waiters_and_reopens(redis_server: RedisServer) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        blocked = asyncio.ensure_future(conn.call(b"BLPOP", b"never", 0))
        await asyncio.sleep(0.1)
        conn.abort()
        with pytest.raises(ConnectionLost):
            await blocked
        assert await conn.call(b"PING") == b"PONG"  # a new connection
        await conn.close()

    run(main)


def test_unreachable_server_is_connection_lost() -> None:
    url = f"redis://127.0.0.1:{free_port()}"

    async def main() -> None:
        conn = Connection(url, connect_timeout_s=1)
        with pytest.raises(ConnectionLost):
            await conn.call(b"PING")

    run(main)


def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    tls_port = free_port()
    tls_args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert)]
    tls_args += ["--tls-key-file", str(key), "--tls-ca-cert-file", str(ca_file)]
    tls_args += ["--tls-auth-clients", "no"]
    base = f"rediss://127.0.0.1:{tls_port}"

    async def main() -> None:
        trusted = Connection(f"{base}?ssl_ca_certs={ca_file}", connect_timeout_s=5)
        assert await trusted.call(b"PING") == b"PONG"
        await trusted.close()
        untrusted = Connection(base, connect_timeout_s=5)
        with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.call(b"PING")

    with RedisServer(extra_args=tls_args):
        run(main)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost", "not a Redis URL"),
        ("redis://localhost?timeout=3", "unknown Redis URL parameter"),
        ("redis://localhost/zero", "integer"),
        ("rediss://localhost?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ],
)
def test_bad_urls_are_refused_up_front(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Address.parse(url)


def test_a_burst_of_commands_goes_out_in_two_writes(redis_server: RedisServer) -> None:
    async def main() -> int:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        await conn.call(b"PING")
        transport = conn._protocol._transport  # type: ignore[union-attr]
        assert transport is not None
        writes = 0
        write = transport.write

        def counting(data: Any) -> None:
            nonlocal writes
            writes += 1
            write(data)

        transport.write = counting  # type: ignore[method-assign]
        replies = await asyncio.gather(*(conn.call(b"INCR", b"n") for _ in range(1000)))
        assert sorted(replies) == list(range(1, 1001))
        await conn.close()
        return writes

    assert run(main) == 2  # the first command at once, the other 999 together


#: A Lua script that keeps redis-server busy for ``ARGV[1]`` seconds of its own clock.
_BUSY_SCRIPT = """
local start = redis.call('TIME')
local until_s = start[1] + start[2] / 1e6 + tonumber(ARGV[1])
repeat
  local now = redis.call('TIME')
until now[1] + now[2] / 1e6 >= until_s
return 1
"""


def test_transient_replies_are_retried_until_redis_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="academy_ml.core.reconnect")
    # BUSY after 50 ms of script; the script runs 1 s (20x), the retries outlast it.
    with RedisServer(extra_args=["--busy-reply-threshold", "50"]) as server:

        async def main() -> None:
            busy = Connection(server.url, connect_timeout_s=5)
            conn = Connection(server.url, connect_timeout_s=5)
            await conn.call(b"PING")
            script = asyncio.create_task(busy.call(b"EVAL", _BUSY_SCRIPT, 0, 1.0))
            await asyncio.sleep(0.2)  # let the script start (a BUSY reply needs it running)
            with pytest.raises(TransientReplyError, match="BUSY"):
                await conn.call(b"SET", b"k", b"v")
            result = await with_reconnect(
                lambda: conn.call(b"SET", b"k", b"v"), url=server.url, deadline_s=30, what="set"
            )
            assert result == b"OK"
            assert await script == 1
            await conn.close()
            await busy.close()

        run(main)
    assert any("BUSY" in record.getMessage() for record in caplog.records)


def test_a_connection_follows_a_stopped_loop_and_refuses_a_running_one(
    redis_server: RedisServer,
) -> None:
    conn = Connection(redis_server.url, connect_timeout_s=5)
    first, second, owner = (asyncio.new_event_loop() for _ in range(3))
    thread = threading.Thread(target=owner.run_forever)
    try:
        assert first.run_until_complete(conn.call(b"INCR", b"n")) == 1
        # The loop that opened it is stopped: another loop opens its own socket.
        assert second.run_until_complete(conn.call(b"INCR", b"n")) == 2
        # Now owned by a loop running in another thread: refused, not hung.
        thread.start()
        opened = asyncio.run_coroutine_threadsafe(conn.call(b"INCR", b"n"), owner)
        assert opened.result(30) == 3
        with pytest.raises(ExchangeLoopError, match="another thread"):
            first.run_until_complete(asyncio.wait_for(conn.call(b"INCR", b"n"), 30))
        asyncio.run_coroutine_threadsafe(conn.close(), owner).result(30)
        owner.call_soon_threadsafe(owner.stop)
        thread.join()
        assert first.run_until_complete(conn.call(b"GET", b"n")) == b"3"
        first.run_until_complete(conn.close())
        second.run_until_complete(asyncio.sleep(0))  # its dropped socket closes
    finally:
        if thread.is_alive():
            owner.call_soon_threadsafe(owner.stop)
            thread.join()
        for loop in (first, second, owner):
            loop.close()


@pytest.mark.parametrize("how", ["timeout", "close"])
def test_a_handshake_cut_short_leaves_no_socket_open(how: str) -> None:
    # A server that accepts and never answers AUTH: the handshake times out, or
    # close() cancels it. Either way the socket it opened is closed (a leaked one
    # is a ResourceWarning, an error under filterwarnings=error).
    accepted: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: accepted.append((r, w)), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        timeout = 0.5 if how == "timeout" else 60.0
        conn = Connection(f"redis://:pw@127.0.0.1:{port}", connect_timeout_s=timeout)
        try:
            if how == "timeout":
                with pytest.raises(ConnectionLost, match="no answer"):
                    await conn.call(b"PING")
            else:
                call = asyncio.create_task(conn.call(b"PING"))
                while not accepted:
                    await asyncio.sleep(0.01)
                await conn.close()
                with pytest.raises((ConnectionLost, asyncio.CancelledError)):
                    await call
            # The client closed its end: the server reads EOF (it read the AUTH first).
            for reader, _ in accepted:
                await asyncio.wait_for(reader.read(), 10)
                assert reader.at_eof()
        finally:
            await conn.close()
            for _, writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    gc.collect()


def test_a_connection_opened_for_a_cancelled_caller_is_used_not_leaked(
    redis_server: RedisServer,
) -> None:
    async def main() -> None:
        conn = Connection(redis_server.url, connect_timeout_s=5)
        try:
            call = asyncio.create_task(conn.call(b"PING"))
            await asyncio.sleep(0)  # the opening started, shielded from its caller
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await asyncio.sleep(0.5)  # the opening completes with no caller
            assert await conn.call(b"CLIENT", b"INFO")
            clients = await conn.call(b"CLIENT", b"LIST")
            assert clients.count(b"cmd=") == 1, clients  # one socket, not two
        finally:
            await conn.close()

    asyncio.run(main())
    gc.collect()

"""Affinity records in memory and in a real redis-server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis_server import RedisServer, free_port

from academy_ml.compute.placement import AffinityStore, InMemoryAffinity, RedisAffinity
from academy_ml.exceptions import ExchangeConnectionError


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[AffinityStore]:
    if request.param == "memory":
        yield InMemoryAffinity()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    affinity = RedisAffinity(server.url, prefix="t")
    yield affinity
    affinity.close()


def test_record_and_count(store: AffinityStore) -> None:
    assert isinstance(store, AffinityStore)
    assert store.held([], ["ep1"]) == {"ep1": 0}
    assert store.held(["a"], []) == {}
    assert store.held(["a", "b"], ["ep1", "ep2"]) == {"ep1": 0, "ep2": 0}
    store.record(["a", "b"], "ep1")
    store.record(["b", "c"], "ep2")
    store.record([], "ep3")
    # b is on both: it counts for both
    assert store.held(["a", "b", "c", "d"], ["ep1", "ep2", "ep3"]) == {"ep1": 2, "ep2": 2, "ep3": 0}
    assert store.held(["a", "b", "d"], ["ep1", "ep2"]) == {"ep1": 2, "ep2": 1}


def test_forget_an_endpoint(store: AffinityStore) -> None:
    store.record(["a", "b"], "ep1")
    store.record(["a", "c"], "ep2")
    store.forget("ep1")
    assert store.held(["a", "b", "c"], ["ep1", "ep2"]) == {"ep1": 0, "ep2": 2}


def test_memory_records_expire() -> None:
    store = InMemoryAffinity(ttl_s=0.2)
    store.record(["a"], "ep")
    assert store.held(["a"], ["ep"]) == {"ep": 1}
    time.sleep(0.3)
    assert store.held(["a"], ["ep"]) == {"ep": 0}


def test_redis_records_expire_between_ttl_and_twice_ttl(redis_server: RedisServer) -> None:
    store = RedisAffinity(redis_server.url, prefix="t", ttl_s=0.5)
    store.record(["a"], "ep")
    time.sleep(0.45)
    assert store.held(["a"], ["ep"]) == {"ep": 1}  # this generation or the previous one
    time.sleep(0.6)
    assert store.held(["a"], ["ep"]) == {"ep": 0}
    store.close()


def test_redis_batch_writes_in_one_round_trip(redis_server: RedisServer) -> None:
    store = RedisAffinity(redis_server.url, prefix="t")
    client = redis.Redis.from_url(redis_server.url)
    client.config_resetstat()
    keys = [f"node-{i}" for i in range(500)]
    store.record(keys, "ep")
    assert store.held(keys, ["ep", "other"]) == {"ep": 500, "other": 0}
    stats = client.info("commandstats")
    assert stats["cmdstat_hset"]["calls"] == 1
    assert stats["cmdstat_hmget"]["calls"] == 4  # per endpoint: this generation, the previous
    store.close()
    client.close()


def test_redis_shared_between_clients(redis_server: RedisServer) -> None:
    writer = RedisAffinity(redis_server.url, prefix="shared")
    reader = RedisAffinity(redis_server.url, prefix="shared")
    other = RedisAffinity(redis_server.url, prefix="other")
    writer.record(["a"], "ep")
    assert reader.held(["a"], ["ep"]) == {"ep": 1}
    assert other.held(["a"], ["ep"]) == {"ep": 0}
    for store in (writer, reader, other):
        store.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        InMemoryAffinity(ttl_s=0)
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisAffinity("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="ttl_s"):
        RedisAffinity("redis://127.0.0.1:1", ttl_s=-1)
    with pytest.raises(ValueError, match="timeout_s"):
        RedisAffinity("redis://127.0.0.1:1", timeout_s=0)


def test_unreachable_redis_is_a_connection_error_after_retrying() -> None:
    store = RedisAffinity(f"redis://127.0.0.1:{free_port()}", timeout_s=0.3)
    with pytest.raises(
        ExchangeConnectionError, match=r"cannot reach Redis at redis://127\.0\.0\.1"
    ):
        store.held(["a"], ["ep"])
    with pytest.raises(ExchangeConnectionError):
        store.record(["a"], "ep")
    store.close()


def test_a_paused_redis_is_given_up_on_and_the_next_call_reconnects(
    redis_server: RedisServer,
) -> None:
    store = RedisAffinity(redis_server.url, prefix="t", timeout_s=0.5)
    store.record(["a"], "ep")
    client = redis.Redis.from_url(redis_server.url)
    client.client_pause(2000)  # commands are taken and not answered (this client's too)
    with pytest.raises(ExchangeConnectionError, match=r"no answer within 0\.5 s"):
        store.held(["a"], ["ep"])
    store.timeout_s = 60  # answered once the pause ends
    assert store.held(["a"], ["ep"]) == {"ep": 1}
    store.close()
    client.close()


def test_a_closed_store_refuses_calls_and_closes_once(redis_server: RedisServer) -> None:
    store = RedisAffinity(redis_server.url, prefix="t")
    store.record(["a"], "ep")
    threads = {t.name for t in threading.enumerate()}
    assert "academy-ml-affinity" in threads
    store.close()
    store.close()
    assert "academy-ml-affinity" not in {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="affinity store is closed"):
        store.held(["a"], ["ep"])
    never_used = RedisAffinity(redis_server.url)
    never_used.close()  # no loop was started


def test_close_cancels_calls_waiting_in_other_threads(redis_server: RedisServer) -> None:
    store = RedisAffinity(redis_server.url, prefix="t", timeout_s=60)
    store.record(["a"], "ep")
    client = redis.Redis.from_url(redis_server.url)
    client.client_pause(60_000)  # ends with the server, after the test
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            store.held(["a"], ["ep"])
        except BaseException as error:
            failures.append(error)

    waiting = [threading.Thread(target=wait) for _ in range(8)]
    for thread in waiting:
        thread.start()
    # Every call is on the store's loop (8 tasks), waiting for the paused server.
    loop = store._loop
    assert loop is not None
    while asyncio.run_coroutine_threadsafe(_tasks(), loop).result() < 8:
        time.sleep(0.01)
    store.close()
    for thread in waiting:
        thread.join()
    client.close()
    assert len(failures) == 8
    assert all(isinstance(f, RuntimeError) for f in failures), failures
    assert all("closed during the call" in str(f) for f in failures), failures


async def _tasks() -> int:
    """Tasks on the running loop besides this one."""
    return len(asyncio.all_tasks()) - 1

"""Affinity records in a real redis-server under stress: many threads, killed connections, pauses.

The placer reads and writes records from whatever thread it runs on; the
Redis store serves them all through one RESP connection on a loop of its
own. These tests hammer it from many threads while another client kills
that connection and pauses the server, and check that every record is read
back exactly and that placements follow them.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis_server import RedisServer

from academy_ml.compute.placement import LocalEndpoint, Placer, RedisAffinity
from academy_ml.compute.tasks import BatchRequest, BatchResult

ENDPOINTS = ("a", "b", "c", "d")
#: Connections the chaos must have killed before the workers may stop.
KILLS = 3


class Chaos:
    """Kills the store's connections and pauses the server until stopped."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.kills = 0
        self.pauses = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos")

    def _run(self) -> None:
        rng = random.Random(0)
        while not self._stop.wait(0.02):
            if rng.random() < 0.5:
                self.kills += self.client.client_kill_filter(_type="normal", skipme=True)
            else:
                self.client.client_pause(20)
                self.pauses += 1

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()


@pytest.fixture
def affinity(redis_server: RedisServer) -> Iterator[RedisAffinity]:
    # Generous: a bound on a stuck call, not a speed claim (both cores may be busy).
    store = RedisAffinity(redis_server.url, prefix="stress", timeout_s=60)
    yield store
    store.close()


def test_many_threads_read_back_their_records_while_connections_die(
    redis_server: RedisServer, affinity: RedisAffinity
) -> None:
    errors: list[str] = []

    def worker(thread: int, chaos: Chaos) -> int:
        calls = 0
        while calls < 40 or chaos.kills < KILLS:
            endpoint = ENDPOINTS[(thread + calls) % len(ENDPOINTS)]
            keys = [f"t{thread}-{calls}-{j}" for j in range(5)]
            affinity.record(keys, endpoint)
            counts = affinity.held([*keys, f"t{thread}-{calls}-missing"], ENDPOINTS)
            expected = {name: 5 if name == endpoint else 0 for name in ENDPOINTS}
            if counts != expected:
                errors.append(f"thread {thread} call {calls}: {counts} != {expected}")
            calls += 1
        return calls

    with Chaos(redis_server.url) as chaos, ThreadPoolExecutor(24) as pool:
        calls = sum(pool.map(worker, range(24), [chaos] * 24))

    print(f"{calls} record+held pairs; {chaos.kills} connections killed, {chaos.pauses} pauses")
    assert errors == []
    assert chaos.kills >= KILLS
    # every thread's last records are still there, for every reader
    fresh = RedisAffinity(redis_server.url, prefix="stress")
    assert fresh.held(["t0-0-0", "t23-39-4"], ENDPOINTS) == {"a": 1, "b": 0, "c": 1, "d": 0}
    fresh.close()


def _request(plan: str, keys: list[str]) -> BatchRequest:
    return BatchRequest(
        plan_key=plan, node_keys=keys, pipelines=b"", cv=2, scoring=None, dataset="0" * 32
    )


def _run(payload: bytes) -> bytes:
    """A task that takes a random few milliseconds and says where it ran."""
    request = BatchRequest.from_bytes(payload)
    time.sleep(random.uniform(0, 0.01))
    return BatchResult(
        plan_key=request.plan_key,
        host=threading.current_thread().name.rsplit("_", 1)[0],
        pid=os.getpid(),
        results=[],
        executed=len(request.node_keys),
        cache_hits=0,
        seconds=0.0,
    ).to_bytes()


def _placer(url: str, names: tuple[str, ...]) -> Placer[BatchResult]:
    return Placer(
        [LocalEndpoint(name, workers=4) for name in names],
        RedisAffinity(url, prefix="placer", timeout_s=60),
        run_fn=_run,
        push_datasets=False,
    )


def test_concurrent_placements_follow_records_another_placer_wrote(
    redis_server: RedisServer,
) -> None:
    # Two agents' placers over the same endpoints share their records in Redis.
    # The second lists them in reverse: without the records, its ties would
    # send round 1's batches elsewhere (round 1 prefers "a", round 2 "d").
    first = _placer(redis_server.url, ENDPOINTS)
    second = _placer(redis_server.url, ENDPOINTS[::-1])
    families = {f"f{i}": [f"f{i}-{j}" for j in range(4)] for i in range(96)}
    try:
        with Chaos(redis_server.url) as chaos, ThreadPoolExecutor(16) as submitters:
            # Round 1: many threads place at once; a result is there only once
            # its records are (whoever waits for it places the next batch by them).
            round1 = dict(
                zip(
                    families,
                    submitters.map(
                        lambda f: first.submit(_request(f"{f}-1", families[f])).result(120),
                        families,
                    ),
                    strict=True,
                )
            )
            for family, result in round1.items():
                held = first.affinity.held(families[family], ENDPOINTS)
                assert held == {e: 4 if e == result.host else 0 for e in ENDPOINTS}, family
            # Round 2, through the other placer: each batch extends one of round 1.
            round2 = dict(
                zip(
                    families,
                    submitters.map(
                        lambda f: second.submit(
                            _request(f"{f}-2", [*families[f], f"{f}-new"])
                        ).result(120),
                        families,
                    ),
                    strict=True,
                )
            )
    finally:
        first.close()
        second.close()

    print(f"{chaos.kills} connections killed, {chaos.pauses} pauses during the placements")
    print(f"round 1 hosts: {sorted(r.host for r in round1.values())}")
    moved = {
        f: (round1[f].host, round2[f].host) for f in families if round1[f].host != round2[f].host
    }
    assert moved == {}, "a batch left the endpoint that holds its nodes"
    assert all(o.status == "ok" for o in [*first.outcomes, *second.outcomes])

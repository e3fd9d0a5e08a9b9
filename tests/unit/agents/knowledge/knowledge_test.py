"""One suite for every knowledge base: the in-process twin, SQLite and Redis (a real server)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import pytest
import redis
from pydantic import ValidationError
from redis_server import RedisServer

from academy_ml.agents.knowledge import (
    RECORD_VERSION,
    CandidateRecord,
    InMemoryKnowledgeBase,
    KnowledgeBase,
    KnowledgeError,
    ModelVersion,
    RedisKnowledgeBase,
    ResultRecord,
    SqliteKnowledgeBase,
    StrategyFiring,
)
from academy_ml.agents.knowledge.records import Record
from academy_ml.exceptions import EnvelopeError, UnsupportedPayloadError, WireError

Opener = Callable[[], KnowledgeBase]
Body = Callable[[KnowledgeBase], Awaitable[None]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def open_kb(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a knowledge base; each one opened in a test shares the same data."""
    if request.param == "memory":
        kb = InMemoryKnowledgeBase()
        return lambda: kb
    if request.param == "sqlite":
        return lambda: SqliteKnowledgeBase(tmp_path / "kb" / "knowledge.sqlite")
    server: RedisServer = request.getfixturevalue("redis_server")
    return lambda: RedisKnowledgeBase(server.url, prefix="test")


def run(open_kb: Opener, body: Body) -> None:
    async def main() -> None:
        kb = open_kb()
        try:
            await body(kb)
        finally:
            await kb.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def result(cid: str, version: int = 1, **metrics: float) -> ResultRecord:
    return ResultRecord(candidate_id=cid, model_version=version, metrics=metrics, created=1.0)


def firing(agent: str, strategy: str, n: int) -> StrategyFiring:
    return StrategyFiring(
        agent=agent, strategy=strategy, trigger="Interval(1)", fired=True, reason=str(n), created=n
    )


# --- records -------------------------------------------------------------------

RECORDS: list[Record] = [
    CandidateRecord(id="c1", model_version=3, payload={"smiles": "CCO", "x": [1, 2.5, None]}),
    ResultRecord(candidate_id="c1", model_version=3, metrics={"auc": 0.9}, flags={"stable": True}),
    ModelVersion(name="gen", version=2, metrics={"loss": 0.1}, stage="production"),
    StrategyFiring(agent="planner", strategy="retrain", trigger="OnEvent('r')", fired=False,
                   reason="too few results", actions=["retrain"], outcome="ok"),
]  # fmt: skip


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip_through_bytes(record: Record) -> None:
    assert type(record).from_bytes(record.to_bytes()) == record


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not a msgpack CandidateRecord"),
        (b"\xc1", "not a msgpack CandidateRecord"),
        (RECORDS[0].to_bytes()[:-3], "not a msgpack CandidateRecord"),
        (msgpack.packb({"id": "c1"}), r"expected \[version, kind, body\], got dict"),
        (msgpack.packb([RECORD_VERSION, "CandidateRecord", {"id": "c1"}]), "model_version"),
    ],
    ids=["empty", "reserved-byte", "truncated", "not-an-envelope", "invalid-fields"],
)
def test_bad_bytes_raise_wire_error(data: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match) as raised:
        CandidateRecord.from_bytes(data)
    assert not isinstance(raised.value, EnvelopeError)


@pytest.mark.parametrize(
    ("data", "match", "found"),
    [
        (
            msgpack.packb([RECORD_VERSION + 1, "CandidateRecord", {}]),
            "a CandidateRecord of version 2; this reader knows version 1",
            ("CandidateRecord", 2),
        ),
        (
            RECORDS[1].to_bytes(),
            r"expected a CandidateRecord, got 'ResultRecord' \(version 1\)",
            ("ResultRecord", 1),
        ),
    ],
)
def test_another_version_or_kind_is_an_envelope_error(
    data: bytes, match: str, found: tuple[str, int]
) -> None:
    with pytest.raises(EnvelopeError, match=match) as raised:
        CandidateRecord.from_bytes(data)
    assert (raised.value.kind, raised.value.versions) == ("CandidateRecord", (RECORD_VERSION,))
    assert (raised.value.found_kind, raised.value.found_version) == found


def test_records_written_before_the_shared_envelope_still_read() -> None:
    # The knowledge base's layout before core/envelope.py, as redis holds it.
    fields = {"name": "g", "version": 2, "metrics": {}, "stage": "x", "created": 1.0}
    old = msgpack.packb([1, "ModelVersion", fields], use_bin_type=True)
    assert ModelVersion.from_bytes(old) == ModelVersion(name="g", version=2, stage="x", created=1.0)


def test_a_payload_msgpack_cannot_carry_is_refused() -> None:
    record = CandidateRecord(id="c", model_version=0, payload={"f": object()})
    with pytest.raises(UnsupportedPayloadError, match="CandidateRecord"):
        record.to_bytes()


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_metrics_must_be_finite(value: float) -> None:
    with pytest.raises(ValidationError):
        result("c", auc=value)


# --- every implementation ----------------------------------------------------------


def test_each_implements_the_protocol(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert isinstance(kb, KnowledgeBase)

    run(open_kb, body)


def test_adding_a_candidate_twice_keeps_the_first(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        first = CandidateRecord(id="c1", model_version=1, payload={"a": 1}, created=5.0)
        assert await kb.add_candidate(first)
        assert not await kb.add_candidate(first.model_copy(update={"payload": {"a": 2}}))
        assert await kb.candidate("c1") == first
        assert await kb.candidate("missing") is None

    run(open_kb, body)


def test_a_candidate_gets_exactly_one_result(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert await kb.results_for("c1") == []
        assert await kb.add_result(result("c1", auc=0.5))
        assert not await kb.add_result(result("c1", auc=0.99))
        assert await kb.results_for("c1") == [result("c1", auc=0.5)]
        assert await kb.top_k("auc", 10) == [result("c1", auc=0.5)]

    run(open_kb, body)


def test_the_ledger_lists_candidates_without_a_result_oldest_first(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        for cid in ["c3", "c1", "c2"]:
            await kb.add_candidate(CandidateRecord(id=cid, model_version=0, payload={}))
        assert await kb.pending() == ["c3", "c1", "c2"]
        assert await kb.pending(limit=2) == ["c3", "c1"]
        assert await kb.pending(limit=0) == []
        await kb.add_result(result("c1", auc=0.5))
        assert await kb.pending() == ["c3", "c2"]
        # A result that arrives before its candidate keeps it out of the ledger.
        await kb.add_result(result("c9", auc=0.1))
        await kb.add_candidate(CandidateRecord(id="c9", model_version=0, payload={}))
        assert await kb.pending() == ["c3", "c2"]
        assert await kb.counts() == {"candidates": 4, "results": 2, "pending": 2}
        assert [r.candidate_id for r in await kb.results()] == ["c1", "c9"]

    run(open_kb, body)


def test_attempts_are_counted_per_candidate(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert await kb.attempts("c1") == 0
        assert await kb.start_attempt("c1") == 1
        assert await kb.start_attempt("c1") == 2
        assert await kb.start_attempt("c2") == 1
        assert await kb.attempts("c1") == 2

    run(open_kb, body)


def test_concurrent_results_for_one_candidate_one_wins(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        attempts = [result("c1", auc=i / 100) for i in range(50)]
        added = await asyncio.gather(*(kb.add_result(r) for r in attempts))
        assert sum(added) == 1
        winner = attempts[added.index(True)]
        assert await kb.results_for("c1") == [winner]
        assert await kb.top_k("auc", 100) == [winner]
        assert await kb.count_since(0) == 1

    run(open_kb, body)


def test_top_k_is_best_first_with_ties_by_id_and_a_flag_filter(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        scores = {"a": 0.5, "b": 0.9, "c": 0.1, "d": 0.9, "e": -3.25, "f": 0.7}
        for cid, auc in scores.items():
            flags = {"stable": cid in "bcf", "novel": cid == "b"}
            record = ResultRecord(
                candidate_id=cid, model_version=1, metrics={"auc": auc}, flags=flags
            )
            assert await kb.add_result(record)
        await kb.add_result(result("g", loss=1.0))  # no auc: never ranked by it

        best = await kb.top_k("auc", 10)
        assert [r.candidate_id for r in best] == ["d", "b", "f", "a", "c", "e"]
        assert best[-1].metrics == {"auc": -3.25}
        assert [r.candidate_id for r in await kb.top_k("auc", 2)] == ["d", "b"]
        stable = await kb.top_k("auc", 10, flag="stable")
        assert [r.candidate_id for r in stable] == ["b", "f", "c"]
        assert [r.candidate_id for r in await kb.top_k("auc", 1, flag="novel")] == ["b"]
        assert await kb.top_k("auc", 0) == []
        assert await kb.top_k("auc", 3, flag="unknown") == []
        assert await kb.top_k("unknown", 3) == []

    run(open_kb, body)


def test_metric_and_flag_names_never_share_an_index(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        odd = ResultRecord(candidate_id="x", model_version=1, metrics={"a:f:b": 1.0})
        await kb.add_result(odd)
        assert await kb.top_k("a", 5, flag="b") == []
        assert await kb.top_k("a:f:b", 5) == [odd]

    run(open_kb, body)


def test_count_since_a_version(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        for i, version in enumerate([0, 1, 1, 2, 3, 3, 3]):
            flags = {"stable": i % 2 == 0}
            record = ResultRecord(
                candidate_id=f"c{i}", model_version=version, metrics={"auc": 0.5}, flags=flags
            )
            await kb.add_result(record)
        assert await kb.count_since(0) == 7
        assert await kb.count_since(2) == 4
        assert await kb.count_since(4) == 0
        # stable: c0 (v0), c2 (v1), c4 (v3), c6 (v3)
        assert await kb.count_since(1, flag="stable") == 3
        assert await kb.count_since(3, flag="stable") == 2
        assert await kb.count_since(0, flag="unknown") == 0

    run(open_kb, body)


def test_model_registry_versions_and_stages(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert await kb.latest_model("gen") is None
        for version in (1, 3, 2):
            await kb.register_model(ModelVersion(name="gen", version=version, created=version))
        await kb.register_model(ModelVersion(name="other", version=9))
        with pytest.raises(KnowledgeError, match="'gen' version 3 is registered already"):
            await kb.register_model(ModelVersion(name="gen", version=3, stage="production"))

        latest = await kb.latest_model("gen")
        assert latest is not None
        assert (latest.version, latest.stage, latest.created) == (3, "candidate", 3.0)
        assert await kb.latest_model("gen", stage="production") is None

        await kb.set_stage("gen", 1, "production")
        await kb.set_stage("gen", 2, "production")
        await kb.set_stage("gen", 2, "archived")
        production = await kb.latest_model("gen", stage="production")
        assert production is not None
        assert (production.version, production.stage) == (1, "production")
        archived = await kb.latest_model("gen", stage="archived")
        assert archived is not None
        assert archived.version == 2
        candidate = await kb.latest_model("gen", stage="candidate")
        assert candidate is not None
        assert candidate.version == 3
        with pytest.raises(KnowledgeError, match="'gen' has no version 7"):
            await kb.set_stage("gen", 7, "production")

    run(open_kb, body)


def test_firings_newest_first_filtered_and_limited(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert await kb.firings() == []
        for n in range(600):
            agent = "planner" if n % 3 else "generator"
            strategy = "rare" if n % 100 == 1 else f"s{n % 2}"
            await kb.log_firing(firing(agent, strategy, n))

        newest = await kb.firings(limit=5)
        assert [f.created for f in newest] == [599, 598, 597, 596, 595]
        assert len(await kb.firings()) == 100
        assert len(await kb.firings(limit=1000)) == 600
        assert await kb.firings(limit=0) == []

        by_agent = await kb.firings(agent="generator", limit=3)
        assert [f.created for f in by_agent] == [597, 594, 591]
        by_strategy = await kb.firings(strategy="s0", limit=2)
        assert [f.created for f in by_strategy] == [598, 596]
        # Rare matches far apart: the filter reads past the first batch.
        both = await kb.firings(agent="planner", strategy="rare", limit=10)
        assert [f.created for f in both] == [401, 301, 101, 1]  # 501, 201: generator
        assert await kb.firings(agent="nobody") == []

    run(open_kb, body)


def test_checkpoints_round_trip(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        assert await kb.load_checkpoint("planner") is None
        await kb.save_checkpoint("planner", b"\x00state-1")
        await kb.save_checkpoint("planner", b"\x00state-2")
        await kb.save_checkpoint("generator", b"")
        assert await kb.load_checkpoint("planner") == b"\x00state-2"
        assert await kb.load_checkpoint("generator") == b""

    run(open_kb, body)


def test_another_client_sees_the_same_data(open_kb: Opener) -> None:
    async def body(kb: KnowledgeBase) -> None:
        await kb.add_candidate(CandidateRecord(id="c1", model_version=1, payload={}))
        other = open_kb()
        try:
            assert not await other.add_candidate(
                CandidateRecord(id="c1", model_version=1, payload={})
            )
        finally:
            if other is not kb:
                await other.close()

    run(open_kb, body)


# --- Redis only ----------------------------------------------------------------------


def test_prefixes_do_not_see_each_other(redis_server: RedisServer) -> None:
    async def fill(kb: KnowledgeBase, tag: str) -> None:
        await kb.add_candidate(CandidateRecord(id="c1", model_version=1, payload={"tag": tag}))
        await kb.add_result(ResultRecord(candidate_id="c1", model_version=1,
                                         metrics={"auc": 0.5}, flags={"stable": True}))  # fmt: skip
        await kb.register_model(ModelVersion(name="gen", version=1, stage=tag))
        await kb.log_firing(firing("planner", tag, 1))
        await kb.save_checkpoint("planner", tag.encode())

    async def main() -> None:
        one = RedisKnowledgeBase(redis_server.url, prefix="one")
        two = RedisKnowledgeBase(redis_server.url, prefix="two")
        await fill(one, "one")
        await fill(two, "two")  # would fail (duplicate model) if it saw "one"
        for kb, tag in ((one, "one"), (two, "two")):
            candidate = await kb.candidate("c1")
            assert candidate is not None
            assert candidate.payload == {"tag": tag}
            assert await kb.count_since(0, flag="stable") == 1
            assert len(await kb.top_k("auc", 10)) == 1
            model = await kb.latest_model("gen")
            assert model is not None
            assert model.stage == tag
            assert [f.strategy for f in await kb.firings()] == [tag]
            assert await kb.load_checkpoint("planner") == tag.encode()
        await one.close()
        await two.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_every_key_is_under_the_prefix(redis_server: RedisServer) -> None:
    async def main() -> None:
        kb = RedisKnowledgeBase(redis_server.url, prefix="mine")
        await kb.add_candidate(CandidateRecord(id="c", model_version=1, payload={}))
        await kb.add_result(ResultRecord(candidate_id="c", model_version=1,
                                         metrics={"m": 1.0}, flags={"f": True}))  # fmt: skip
        await kb.register_model(ModelVersion(name="gen", version=1))
        await kb.log_firing(firing("a", "s", 1))
        await kb.save_checkpoint("a", b"x")
        await kb.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    with redis.Redis.from_url(redis_server.url) as client:
        keys = client.keys("*")
    assert len(keys) >= 10
    assert all(key.startswith(b"mine:kb:") for key in keys)


def test_an_unreadable_redis_record_is_reported_and_left_out_of_listings(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def fill() -> None:
        kb = RedisKnowledgeBase(redis_server.url, prefix="hurt")
        for cid, auc in (("a", 0.1), ("b", 0.9), ("c", 0.5)):
            await kb.add_result(result(cid, auc=auc))
        await kb.log_firing(firing("p", "s", 1))
        await kb.close()

    asyncio.run(asyncio.wait_for(fill(), 30))
    with redis.Redis.from_url(redis_server.url) as client:
        client.hset("hurt:kb:res", "b", b"\xc1")
        client.xadd("hurt:kb:log", {"r": b"text"})

    async def read() -> None:
        kb = RedisKnowledgeBase(redis_server.url, prefix="hurt")
        try:
            assert sorted(r.candidate_id for r in await kb.results()) == ["a", "c"]
            assert [r.candidate_id for r in await kb.top_k("auc", 3)] == ["c", "a"]
            assert [f.reason for f in await kb.firings()] == ["1"]
            with pytest.raises(WireError):
                await kb.results_for("b")
        finally:
            await kb.close()

    with caplog.at_level("WARNING"):
        asyncio.run(asyncio.wait_for(read(), 30))
    assert "hurt:kb: result b'b' is unreadable; left out" in caplog.text
    assert "hurt:kb: firing" in caplog.text

"""The SQLite knowledge base beyond the shared suite: reopening, processes, bad files, records."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from academy_ml.agents.knowledge import (
    CandidateRecord,
    KnowledgeStoreError,
    ModelVersion,
    ResultRecord,
    SqliteKnowledgeBase,
    StrategyFiring,
)
from academy_ml.exceptions import WireError

#: Writers per process (threads, each with its own connection and event loop).
THREADS = 3
#: Candidates each writer adds and evaluates.
PER_WRITER = 150
#: Candidates every writer of every process races to give a result.
CONTESTED = 20


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(body(), 120))


def result(cid: str, auc: float, **flags: bool) -> ResultRecord:
    return ResultRecord(candidate_id=cid, model_version=1, metrics={"auc": auc}, flags=flags)


def test_everything_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deployment" / "knowledge.sqlite"

    async def write() -> None:
        kb = SqliteKnowledgeBase(path)
        for i in range(5):
            await kb.add_candidate(CandidateRecord(id=f"c{i}", model_version=1, payload={"i": i}))
        await kb.add_result(result("c1", 0.5, stable=True))
        await kb.add_result(result("c3", 0.9))
        await kb.start_attempt("c0")
        await kb.start_attempt("c0")
        await kb.register_model(ModelVersion(name="gen", version=1))
        await kb.set_stage("gen", 1, "production")
        await kb.log_firing(
            StrategyFiring(agent="planner", strategy="retrain", trigger="t", fired=True, reason="r")
        )
        await kb.save_checkpoint("planner", b"\x00state")
        await kb.close()

    async def read() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            assert await kb.counts() == {"candidates": 5, "results": 2, "pending": 3}
            assert await kb.pending() == ["c0", "c2", "c4"]
            assert await kb.attempts("c0") == 2
            candidate = await kb.candidate("c2")
            assert candidate is not None
            assert candidate.payload == {"i": 2}
            assert [r.candidate_id for r in await kb.top_k("auc", 5)] == ["c3", "c1"]
            assert [r.candidate_id for r in await kb.top_k("auc", 5, flag="stable")] == ["c1"]
            assert await kb.count_since(1) == 2
            model = await kb.latest_model("gen", stage="production")
            assert model is not None
            assert model.version == 1
            assert [f.strategy for f in await kb.firings(agent="planner")] == ["retrain"]
            assert await kb.load_checkpoint("planner") == b"\x00state"
        finally:
            await kb.close()

    run(write)
    assert path.exists()
    run(read)


def _writer(path: str, tag: str, thread: int, errors: list[str]) -> None:
    """One agent-like writer: its own candidates, results, attempts and firings, plus a race."""

    async def main() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            for i in range(PER_WRITER):
                cid = f"{tag}-{thread}-{i}"
                assert await kb.add_candidate(CandidateRecord(id=cid, model_version=0, payload={}))
                await kb.start_attempt("shared")
                assert await kb.add_result(result(cid, i / PER_WRITER))
                await kb.log_firing(
                    StrategyFiring(agent=tag, strategy=f"s{thread}", trigger="t", fired=True,
                                   reason=str(i))
                )  # fmt: skip
                if i < CONTESTED:
                    await kb.add_result(result(f"contested-{i}", 0.0, won=True))
        finally:
            await kb.close()

    try:
        asyncio.run(main())
    except Exception as error:  # reported to the parent, which fails the test
        errors.append(f"{tag}/{thread}: {type(error).__name__}: {error}")


def _process(path: str, tag: str, queue: Any) -> None:
    """A host process of its own with THREADS writers; puts the errors they met on ``queue``."""
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(path, tag, t, errors)) for t in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(errors)


def test_processes_and_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "knowledge.sqlite"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_process, args=(str(path), tag, queue)) for tag in ("p0", "p1")
    ]
    for process in processes:
        process.start()
    # Meanwhile a third connection takes the write lock again and again, so
    # writers certainly meet a locked file and wait for it.
    holder = sqlite3.connect(path, timeout=30, isolation_level=None)
    reports: list[list[str]] = []
    while len(reports) < len(processes):
        holder.execute("BEGIN IMMEDIATE")
        threading.Event().wait(0.05)
        holder.execute("COMMIT")
        while not queue.empty():
            reports.append(queue.get())
        threading.Event().wait(0.05)
    holder.close()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert reports == [[], []]  # no "database is locked" (nor anything else) escaped

    writers = 2 * THREADS

    async def check() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            counts = await kb.counts()
            assert counts == {
                "candidates": writers * PER_WRITER,
                "results": writers * PER_WRITER + CONTESTED,
                "pending": 0,
            }
            assert await kb.attempts("shared") == writers * PER_WRITER
            assert await kb.count_since(0, flag="won") == CONTESTED  # one winner per race
            assert len(await kb.firings(limit=10**6)) == writers * PER_WRITER
            for tag in ("p0", "p1"):
                mine = await kb.firings(agent=tag, strategy="s2", limit=10**6)
                assert sorted(int(f.reason) for f in mine) == list(range(PER_WRITER))
        finally:
            await kb.close()

    run(check)


def test_sqlite_calls_leave_the_event_loop_free(tmp_path: Path) -> None:
    """A write waiting for another connection's lock holds up no other task of the loop."""
    path = tmp_path / "knowledge.sqlite"

    async def main() -> None:
        kb = SqliteKnowledgeBase(path, busy_timeout_s=60)
        await kb.add_candidate(CandidateRecord(id="c0", model_version=0, payload={}))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(
            kb.add_candidate(CandidateRecord(id="c1", model_version=0, payload={}))
        )
        ticks = 0
        for _ in range(20):  # the loop turns while the write waits in its own thread
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        assert ticks == 20
        holder.execute("COMMIT")  # only the loop can release it: blocked, it never would
        holder.close()
        assert await write
        assert await kb.pending() == ["c0", "c1"]
        await kb.close()

    run(main)


async def _filled(path: Path) -> None:
    kb = SqliteKnowledgeBase(path)
    for i in range(400):
        cid = f"c{i}"
        await kb.add_candidate(CandidateRecord(id=cid, model_version=0, payload={"x": "y" * 500}))
        await kb.add_result(result(cid, i / 400))
    await kb.close()  # the last connection folds the WAL into the file


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda path: path.write_bytes(b"not a database, just text" * 100), "not a usable"),
        (lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
         "not a usable"),
        (lambda path: path.write_bytes(path.read_bytes()[:50]), "not a usable"),
    ],
    ids=["garbage", "truncated", "header only"],
)  # fmt: skip
def test_a_corrupt_or_truncated_file_is_a_store_error_naming_it(
    tmp_path: Path, spoil: Callable[[Path], Any], problem: str
) -> None:
    path = tmp_path / "knowledge.sqlite"
    run(lambda: _filled(path))
    spoil(path)

    async def main() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            with pytest.raises(KnowledgeStoreError) as raised:
                await kb.results()  # reads every page of the results
            assert str(path) in str(raised.value)
            assert problem in str(raised.value)
        finally:
            await kb.close()

    run(main)


def test_another_programs_database_and_a_newer_schema_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    newer = tmp_path / "newer.sqlite"
    run(lambda: _filled(newer))
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()

    async def main() -> None:
        for path, problem in (
            (foreign, "not an academy-ml knowledge base"),
            (newer, r"written by a newer academy-ml \(schema 99; this one reads 1\)"),
        ):
            kb = SqliteKnowledgeBase(path)
            with pytest.raises(KnowledgeStoreError, match=problem) as raised:
                await kb.pending()
            assert str(path) in str(raised.value)
            await kb.close()

    run(main)
    with sqlite3.connect(foreign) as conn:  # left as it was
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    conn.close()


def test_an_unreadable_record_is_reported_and_left_out_of_listings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "knowledge.sqlite"

    async def fill() -> None:
        kb = SqliteKnowledgeBase(path)
        for cid, auc in (("a", 0.1), ("b", 0.9), ("c", 0.5)):
            await kb.add_result(result(cid, auc))
            await kb.log_firing(
                StrategyFiring(agent="p", strategy="s", trigger="t", fired=True, reason=cid)
            )
        await kb.close()

    run(fill)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE results SET record = x'c1' WHERE candidate_id = 'b'")
        conn.execute("UPDATE firings SET record = 'text' WHERE pos = 2")
    conn.close()

    async def read() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            with caplog.at_level(logging.WARNING):
                assert [r.candidate_id for r in await kb.results()] == ["a", "c"]
                assert [r.candidate_id for r in await kb.top_k("auc", 3)] == ["c", "a"]
                assert [f.reason for f in await kb.firings()] == ["c", "a"]
            assert f"{path}: result 'b' is unreadable; left out" in caplog.text
            assert "firing 2 is unreadable; left out" in caplog.text
            with pytest.raises(WireError, match="not a msgpack ResultRecord"):
                await kb.results_for("b")
            assert await kb.counts() == {"candidates": 0, "results": 3, "pending": 0}
        finally:
            await kb.close()

    run(read)

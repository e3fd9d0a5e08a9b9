"""The knowledge base in one SQLite file: an embedded deployment's, kept across runs.

The standard library's :mod:`sqlite3` in WAL mode, so readers never wait for
the writer and every agent (a thread of ``academy-ml up`` or a host process
of its own) opens the same file with a connection of its own. Records are
the same sealed msgpack bytes the other knowledge bases hold
(:mod:`academy_ml.agents.knowledge.records`); the tables beside them index
what :meth:`~SqliteKnowledgeBase.top_k`, :meth:`~SqliteKnowledgeBase.count_since`
and the ledger look up. Every update is one short ``BEGIN IMMEDIATE``
transaction, so it is atomic across processes; a writer that finds the file
locked waits (``busy_timeout``) and retries up to ``busy_timeout_s`` before
giving up with a :class:`~academy_ml.exceptions.KnowledgeStoreError`.

Each knowledge base runs its SQLite calls on one thread of its own, never on
the event loop: a call waiting for another process's transaction holds up
only that knowledge base's queue. ``synchronous = NORMAL``: a commit
survives the process being killed; an operating-system crash may lose the
last commits but never corrupts the file.

A file that is not a knowledge base (corrupt, truncated, another program's
database, a newer schema) raises :class:`KnowledgeStoreError` naming it. A
record that does not decode raises :class:`~academy_ml.exceptions.WireError`
when asked for by its key, and is logged and left out of listings
(:meth:`results`, :meth:`top_k`, :meth:`firings`), which go on with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from academy_ml.agents.knowledge.base import FIRING_LOG_LENGTH
from academy_ml.agents.knowledge.records import (
    CandidateRecord,
    ModelVersion,
    ResultRecord,
    StrategyFiring,
    decode_stored,
    readable,
)
from academy_ml.exceptions import KnowledgeError, KnowledgeStoreError, WireError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteKnowledgeBase"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``PRAGMA application_id`` of a knowledge base ("AcML"): another program's database is refused.
APPLICATION_ID = 0x41634D4C
#: ``PRAGMA user_version``: the layout of the tables below; bumped on any change.
SCHEMA_VERSION = 1

# Scopes index every result ('') or those with a flag true ('f:' + flag), and
# the firing logs are every firing's (''), an agent's ('a:' + name) or a
# strategy's ('s:' + name): no name can reach another scope.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, pending INTEGER NOT NULL,
    record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS candidates_pending ON candidates (seq) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS results (
    candidate_id TEXT PRIMARY KEY, created REAL NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS results_created ON results (created, candidate_id);
CREATE TABLE IF NOT EXISTS scores (
    scope TEXT NOT NULL, metric TEXT NOT NULL, score REAL NOT NULL, candidate_id TEXT NOT NULL,
    PRIMARY KEY (scope, metric, score, candidate_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    scope TEXT NOT NULL, model_version INTEGER NOT NULL, candidate_id TEXT NOT NULL,
    PRIMARY KEY (scope, model_version, candidate_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (candidate_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL, version INTEGER NOT NULL, stage TEXT NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS models_stage ON models (name, stage, version);
CREATE TABLE IF NOT EXISTS firings (
    scope TEXT NOT NULL, pos INTEGER NOT NULL, strategy TEXT NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (scope, pos));
CREATE TABLE IF NOT EXISTS checkpoints (agent TEXT PRIMARY KEY, state BLOB NOT NULL);
"""

#: Seconds one SQLite call waits for a lock before this module's own retry takes over.
_BUSY_WAIT_S = 5.0


def _busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _result_scopes(result: ResultRecord) -> list[str]:
    return ["", *(f"f:{flag}" for flag, value in result.flags.items() if value)]


class SqliteKnowledgeBase:
    """A :class:`~academy_ml.agents.knowledge.base.KnowledgeBase` in a SQLite file.

    The file (and its directory) is created on first use.

    Args:
        path: The database file; every knowledge base opened on it shares its data.
        busy_timeout_s: How long an update waits for other connections' locks
            before it raises :class:`KnowledgeStoreError`.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        # One thread owns the connection: calls are queued, never run on the loop.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="academy-ml-sqlite")
        self._conn: sqlite3.Connection | None = None

    # --- the worker thread ----------------------------------------------------------

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.005
        while True:
            try:
                return work(self._connection())
            except sqlite3.Error as error:
                if _busy(error) and time.monotonic() < deadline:
                    time.sleep(pause)
                    pause = min(pause * 2, 0.2)
                    continue
                raise self._store_error(error) from error

    def _store_error(self, error: sqlite3.Error) -> KnowledgeStoreError:
        if _busy(error):
            return KnowledgeStoreError(
                f"{self.path}: still locked by another connection after "
                f"{self._busy_timeout_s:g} s: {error}"
            )
        return KnowledgeStoreError(
            f"{self.path}: not a usable knowledge base ({type(error).__name__}: {error}); "
            "if it is corrupt or truncated, move it aside to start afresh"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=_BUSY_WAIT_S, isolation_level=None)
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode, then the schema, unless the file is another program's or newer."""
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise KnowledgeStoreError(
                f"{self.path}: SQLite cannot use WAL mode here (journal mode {mode!r}; "
                "a network file system?); put the deployment's directory on a local disk"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        with _transaction(conn):
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app != APPLICATION_ID and (tables or version):
                raise KnowledgeStoreError(
                    f"{self.path}: not an academy-ml knowledge base (application id {app:#x})"
                )
            if version > SCHEMA_VERSION:
                raise KnowledgeStoreError(
                    f"{self.path}: written by a newer academy-ml (schema {version}; "
                    f"this one reads {SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- candidates, results and the ledger -------------------------------------------

    async def add_candidate(self, candidate: CandidateRecord) -> bool:
        """See :meth:`KnowledgeBase.add_candidate`."""
        data = candidate.to_bytes()

        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                done = conn.execute(
                    "SELECT 1 FROM results WHERE candidate_id = ?", (candidate.id,)
                ).fetchone()
                added = conn.execute(
                    "INSERT OR IGNORE INTO candidates (id, pending, record) VALUES (?, ?, ?)",
                    (candidate.id, int(done is None), data),
                )
                return added.rowcount == 1

        return await self._call(work)

    async def add_result(self, result: ResultRecord) -> bool:
        """See :meth:`KnowledgeBase.add_result`."""
        data = result.to_bytes()
        cid = result.candidate_id
        scopes = _result_scopes(result)

        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                added = conn.execute(
                    "INSERT OR IGNORE INTO results VALUES (?, ?, ?)",
                    (cid, result.created, data),
                )
                if added.rowcount != 1:
                    return False
                conn.execute("UPDATE candidates SET pending = 0 WHERE id = ?", (cid,))
                conn.executemany(
                    "INSERT INTO versions VALUES (?, ?, ?)",
                    [(scope, result.model_version, cid) for scope in scopes],
                )
                conn.executemany(
                    "INSERT INTO scores VALUES (?, ?, ?, ?)",
                    [
                        (scope, metric, score, cid)
                        for scope in scopes
                        for metric, score in result.metrics.items()
                    ],
                )
                return True

        return await self._call(work)

    async def pending(self, limit: int = 1000) -> list[str]:
        """See :meth:`KnowledgeBase.pending`."""
        rows = await self._call(
            lambda conn: conn.execute(
                "SELECT id FROM candidates WHERE pending = 1 ORDER BY seq LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        )
        return [cid for (cid,) in rows]

    async def start_attempt(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.start_attempt`."""

        def work(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                row = conn.execute(
                    "INSERT INTO attempts VALUES (?, 1) ON CONFLICT (candidate_id) "
                    "DO UPDATE SET n = n + 1 RETURNING n",
                    (candidate_id,),
                ).fetchone()
            return int(row[0])

        return await self._call(work)

    async def attempts(self, candidate_id: str) -> int:
        """See :meth:`KnowledgeBase.attempts`."""
        row = await self._call(
            lambda conn: conn.execute(
                "SELECT n FROM attempts WHERE candidate_id = ?", (candidate_id,)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def counts(self) -> dict[str, int]:
        """See :meth:`KnowledgeBase.counts`."""

        def work(conn: sqlite3.Connection) -> dict[str, int]:
            with _transaction(conn, "BEGIN"):  # one snapshot for the three counts
                return {
                    "candidates": conn.execute("SELECT count(*) FROM candidates").fetchone()[0],
                    "results": conn.execute("SELECT count(*) FROM results").fetchone()[0],
                    "pending": conn.execute(
                        "SELECT count(*) FROM candidates WHERE pending = 1"
                    ).fetchone()[0],
                }

        return await self._call(work)

    async def candidate(self, candidate_id: str) -> CandidateRecord | None:
        """See :meth:`KnowledgeBase.candidate`."""
        row = await self._call(
            lambda conn: conn.execute(
                "SELECT record FROM candidates WHERE id = ?", (candidate_id,)
            ).fetchone()
        )
        return None if row is None else decode_stored(CandidateRecord, row[0])

    async def results_for(self, candidate_id: str) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results_for`."""
        row = await self._call(
            lambda conn: conn.execute(
                "SELECT record FROM results WHERE candidate_id = ?", (candidate_id,)
            ).fetchone()
        )
        return [] if row is None else [decode_stored(ResultRecord, row[0])]

    async def results(self) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.results`; unreadable records are logged and left out."""
        return await self._call(
            lambda conn: readable(
                ResultRecord,
                conn.execute(
                    "SELECT candidate_id, record FROM results ORDER BY created, candidate_id"
                ),
                str(self.path),
                "result",
            )
        )

    async def top_k(self, metric: str, k: int, *, flag: str | None = None) -> list[ResultRecord]:
        """See :meth:`KnowledgeBase.top_k`; unreadable records are logged and left out."""
        scope = "" if flag is None else f"f:{flag}"
        return await self._call(
            lambda conn: readable(
                ResultRecord,
                conn.execute(
                    "SELECT s.candidate_id, r.record FROM scores s "
                    "JOIN results r ON r.candidate_id = s.candidate_id "
                    "WHERE s.scope = ? AND s.metric = ? "
                    "ORDER BY s.score DESC, s.candidate_id DESC LIMIT ?",
                    (scope, metric, max(k, 0)),
                ),
                str(self.path),
                "result",
            )
        )

    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        """See :meth:`KnowledgeBase.count_since`."""
        scope = "" if flag is None else f"f:{flag}"
        row = await self._call(
            lambda conn: conn.execute(
                "SELECT count(*) FROM versions WHERE scope = ? AND model_version >= ?",
                (scope, model_version),
            ).fetchone()
        )
        return int(row[0])

    # --- the model registry -------------------------------------------------------------

    async def register_model(self, model: ModelVersion) -> None:
        """See :meth:`KnowledgeBase.register_model`."""
        data = model.to_bytes()

        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                added = conn.execute(
                    "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)",
                    (model.name, model.version, model.stage, data),
                )
                return added.rowcount == 1

        if not await self._call(work):
            raise KnowledgeError(
                f"model {model.name!r} version {model.version} is registered already"
            )

    async def set_stage(self, name: str, version: int, stage: str) -> None:
        """See :meth:`KnowledgeBase.set_stage`."""

        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT record FROM models WHERE name = ? AND version = ?", (name, version)
                ).fetchone()
                if row is None:
                    raise KnowledgeError(f"model {name!r} has no version {version}")
                model = decode_stored(ModelVersion, row[0]).model_copy(update={"stage": stage})
                conn.execute(
                    "UPDATE models SET stage = ?, record = ? WHERE name = ? AND version = ?",
                    (stage, model.to_bytes(), name, version),
                )

        await self._call(work)

    async def latest_model(self, name: str, *, stage: str | None = None) -> ModelVersion | None:
        """See :meth:`KnowledgeBase.latest_model`."""
        query = "SELECT record FROM models WHERE name = ?"
        args: tuple[Any, ...] = (name,)
        if stage is not None:
            query += " AND stage = ?"
            args = (name, stage)
        row = await self._call(
            lambda conn: conn.execute(query + " ORDER BY version DESC LIMIT 1", args).fetchone()
        )
        return None if row is None else decode_stored(ModelVersion, row[0])

    # --- the strategy log and checkpoints -----------------------------------------------

    async def log_firing(self, firing: StrategyFiring) -> None:
        """See :meth:`KnowledgeBase.log_firing`."""
        data = firing.to_bytes()
        scopes = ("", f"a:{firing.agent}", f"s:{firing.strategy}")

        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                for scope in scopes:
                    (pos,) = conn.execute(
                        "SELECT coalesce(max(pos), 0) + 1 FROM firings WHERE scope = ?", (scope,)
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO firings VALUES (?, ?, ?, ?)",
                        (scope, pos, firing.strategy, data),
                    )
                    conn.execute(
                        "DELETE FROM firings WHERE scope = ? AND pos <= ?",
                        (scope, pos - FIRING_LOG_LENGTH),
                    )

        await self._call(work)

    async def firings(
        self, *, agent: str | None = None, strategy: str | None = None, limit: int = 100
    ) -> list[StrategyFiring]:
        """See :meth:`KnowledgeBase.firings`; unreadable records are logged and left out."""
        query = "SELECT pos, record FROM firings WHERE scope = ?"
        args: tuple[Any, ...] = ("",)
        if agent is not None:
            args = (f"a:{agent}",)
            if strategy is not None:
                query += " AND strategy = ?"
                args = (f"a:{agent}", strategy)
        elif strategy is not None:
            args = (f"s:{strategy}",)
        query += " ORDER BY pos DESC LIMIT ?"
        return await self._call(
            lambda conn: readable(
                StrategyFiring,
                conn.execute(query, (*args, max(limit, 0))),
                str(self.path),
                "firing",
            )
        )

    async def save_checkpoint(self, agent: str, state: bytes) -> None:
        """See :meth:`KnowledgeBase.save_checkpoint`."""
        blob = bytes(state)

        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "INSERT INTO checkpoints VALUES (?, ?) "
                    "ON CONFLICT (agent) DO UPDATE SET state = excluded.state",
                    (agent, blob),
                )

        await self._call(work)

    async def load_checkpoint(self, agent: str) -> bytes | None:
        """See :meth:`KnowledgeBase.load_checkpoint`."""
        row = await self._call(
            lambda conn: conn.execute(
                "SELECT state FROM checkpoints WHERE agent = ?", (agent,)
            ).fetchone()
        )
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise WireError(f"{self.path}: the checkpoint of {agent!r} is not bytes")
        return row[0]

    async def close(self) -> None:
        """Closes the connection (the last one to close folds the WAL into the file)."""

        def work() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._executor.shutdown(wait=False)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back when it raises.

    ``BEGIN IMMEDIATE`` takes the write lock first, so a transaction that
    reads then writes never fails half-way on another writer's commit.
    """
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also when COMMIT itself failed: the retry begins afresh
            conn.rollback()
        raise

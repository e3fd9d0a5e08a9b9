"""``up`` refuses a finished deployment; ``reset``, ``results`` and ``down`` on a config.

Knowledge bases are written directly (a real SQLite file, a real
redis-server), then the CLI is run as a user would: a subprocess of
``python -m academy_ml`` with no terminal on stdin.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from redis_server import RedisServer

from academy_ml.agents.knowledge import (
    CandidateRecord,
    KnowledgeBase,
    RedisKnowledgeBase,
    ResultRecord,
    SqliteKnowledgeBase,
    seal_state,
)
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.core.resp import Connection
from academy_ml.deploy.launch.config import load_deployment
from academy_ml.deploy.launch.lifecycle import finished_counts

PLANNER = (
    '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
    "[agent.init]\nbudget = 4\n"
)


def _config(directory: Path, extra: str = "") -> Path:
    (directory / "planner.toml").write_text(PLANNER)
    config = directory / "deployment.toml"
    config.write_text(
        f'[deployment]\nname = "dep"\nagents = ["planner.toml"]\nstop_with = "planner"\n{extra}'
    )
    return config


def _cli(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", *map(str, args)],
        capture_output=True, text=True, timeout=120, input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )  # fmt: skip


async def _fill(kb: KnowledgeBase, *, results: int, pending: int = 0, stopped: bool = True) -> None:
    """``results`` evaluated candidates, ``pending`` unevaluated ones, the planner's checkpoint."""
    try:
        for i in range(results + pending):
            await kb.add_candidate(CandidateRecord(id=f"c{i}", model_version=0, payload={"i": i}))
        for i in range(results):
            await kb.add_result(
                ResultRecord(
                    candidate_id=f"c{i}",
                    model_version=0,
                    metrics={"score": i / 2},
                    flags={"stable": i % 2 == 0},
                )
            )
        await kb.save_checkpoint(
            "planner", seal_state(CHECKPOINT_KIND, {"strategies_stopped": stopped})
        )
    finally:
        await kb.close()


def _sqlite(config: Path) -> Path:
    return config.parent / "runinfo" / "dep" / "knowledge.sqlite"


@pytest.mark.parametrize(
    ("pending", "stopped", "finished"),
    [(0, True, True), (2, True, False), (0, False, False)],
)
def test_finished_means_the_stop_agent_stopped_and_nothing_is_pending(
    tmp_path: Path, pending: int, stopped: bool, finished: bool
) -> None:
    config = _config(tmp_path)
    deployment = load_deployment(config)
    assert asyncio.run(finished_counts(deployment)) is None  # never launched
    path = _sqlite(config)
    asyncio.run(_fill(SqliteKnowledgeBase(path), results=3, pending=pending, stopped=stopped))

    counts = asyncio.run(finished_counts(deployment))

    assert (counts is not None) == finished
    if finished:
        assert counts == {"candidates": 3, "results": 3, "pending": 0}


def test_up_refuses_a_finished_deployment_in_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    asyncio.run(_fill(SqliteKnowledgeBase(_sqlite(config)), results=5))

    done = _cli("up", config)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"academy-ml: error: {config}: finished with 5 results; "
        f"`academy-ml up --resume {config}` continues it, `academy-ml reset {config}` forgets it"
    ]


def test_results_in_every_format(tmp_path: Path) -> None:
    config = _config(tmp_path)
    asyncio.run(_fill(SqliteKnowledgeBase(_sqlite(config)), results=3, pending=1))

    as_json = _cli("results", config, "--format", "json")
    as_csv = _cli("results", config)
    parquet = tmp_path / "out.parquet"
    as_parquet = _cli("results", config, "--format", "parquet", "--output", parquet)

    assert as_json.returncode == as_csv.returncode == as_parquet.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert [r["candidate_id"] for r in records] == ["c0", "c1", "c2"]
    assert [r["metrics"]["score"] for r in records] == [0.0, 0.5, 1.0]
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "candidate_id,model_version,created,error,metric.score,flag.stable"
    assert [line.split(",")[4:] for line in lines[1:]] == [
        ["0.0", "True"],
        ["0.5", "False"],
        ["1.0", "True"],
    ]
    table = pq.read_table(parquet).to_pydict()
    assert table["candidate_id"] == ["c0", "c1", "c2"]
    assert table["metric.score"] == [0.0, 0.5, 1.0]
    assert table["flag.stable"] == [True, False, True]
    assert as_parquet.stderr.strip() == f"3 results written to {parquet}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "xml"), "--format 'xml': expected one of csv, json, parquet"),
        (("--format", "parquet"), "--format parquet writes a binary file: name it with --output"),
    ],
)
def test_results_refuses_a_bad_format(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = _cli("results", _config(tmp_path), *args)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert message in done.stderr


def test_results_of_a_deployment_never_launched(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _cli("results", config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"academy-ml: error: {config}: no knowledge base at {_sqlite(config)} yet "
        f"(`academy-ml up {config}` creates it)"
    ]


def test_reset_without_a_terminal_and_without_yes_refuses(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _sqlite(config)
    asyncio.run(_fill(SqliteKnowledgeBase(path), results=1))

    done = _cli("reset", config)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"academy-ml: error: {config}: reset forgets the knowledge base {path}; "
        "no terminal to ask on: pass --yes"
    ]
    assert path.exists()


def test_reset_yes_removes_the_file_and_its_sidecars(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _sqlite(config)
    asyncio.run(_fill(SqliteKnowledgeBase(path), results=1))
    for suffix in ("-wal", "-shm"):  # left by a process that died with the file open
        path.with_name(path.name + suffix).write_bytes(b"")

    done = _cli("reset", config, "--yes")

    assert done.returncode == 0, done.stderr
    assert f"dep: removed {path}, {path}-wal, {path}-shm" in done.stdout
    assert list(path.parent.iterdir()) == []
    again = _cli("reset", config, "--yes")
    assert f"dep: nothing to forget at {path}" in again.stdout


def test_reset_of_a_memory_deployment_refuses(tmp_path: Path) -> None:
    config = _config(tmp_path, 'knowledge = "memory"\n')
    done = _cli("reset", config, "--yes")
    assert done.returncode == 2
    assert "knowledge = 'memory' keeps nothing between runs" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_down_of_an_embedded_deployment_refuses(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _cli("down", config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"academy-ml: error: {config}: an embedded deployment's agents are threads of its "
        "`academy-ml up` process; stop that process (Ctrl-C) instead"
    ]


async def _keys(url: str, pattern: str) -> set[bytes]:
    connection = Connection(url, connect_timeout_s=5.0)
    try:
        found: set[bytes] = set()
        cursor = b"0"
        while True:
            cursor, keys = await connection.call(b"SCAN", cursor, b"MATCH", pattern, b"COUNT", 100)
            found.update(keys)
            if cursor == b"0":
                return found
    finally:
        await connection.close()


async def _noise(url: str, n: int) -> None:
    connection = Connection(url, connect_timeout_s=5.0)
    try:
        await connection.pipeline(*((b"SET", f"noise:{i}", b"x") for i in range(n)))
    finally:
        await connection.close()


def test_reset_forgets_only_the_deployments_redis_keys(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.url
    config = _config(tmp_path, f'exchange = "{url}"\nknowledge = "exchange"\n')
    asyncio.run(_fill(RedisKnowledgeBase(url, "dep"), results=3))
    asyncio.run(_noise(url, 3000))  # the deployment's keys are then spread over SCAN steps
    asyncio.run(_fill(RedisKnowledgeBase(url, "dep-2"), results=2))  # a name it is a prefix of
    assert asyncio.run(finished_counts(load_deployment(config))) is not None
    other = asyncio.run(_keys(url, "dep-2:*")) | asyncio.run(_keys(url, "noise:*"))
    assert asyncio.run(_keys(url, "dep:kb:*"))

    done = _cli("reset", config, "--yes")

    assert done.returncode == 0, done.stderr
    assert "removed" in done.stdout
    assert "matching dep:kb:*" in done.stdout
    assert asyncio.run(_keys(url, "dep:kb:*")) == set()
    assert asyncio.run(_keys(url, "dep-2:*")) | asyncio.run(_keys(url, "noise:*")) == other
    assert asyncio.run(finished_counts(load_deployment(config))) is None

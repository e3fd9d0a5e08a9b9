"""Scenario: a deployment keeps its results in SQLite; `status` reads them, no Redis needed.

``academy-ml up`` runs the toy loop with Academy's in-process exchange and
the default knowledge base, a SQLite file in the deployment's directory
(``runinfo/<name>/knowledge.sqlite`` beside the config). Once the process
has exited, ``academy-ml status`` on the same config shows the results and
the agents' last checkpoints, and the file holds every result. A run stopped
with SIGINT resumes where it stopped: the second ``up`` evaluates what the
first left pending and proposes nothing twice. Agents in host processes of
their own (the Redis exchange) share the file as threads do.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from loop_toys import write_deployment
from redis_server import RedisServer

from academy_ml.agents.knowledge import SqliteKnowledgeBase

#: Results the completed run is asked for.
BUDGET = 12


def up(config: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--timeout", "240", *options],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def status(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", "status", str(config)],
        capture_output=True, text=True, timeout=120, env={**env, "COLUMNS": "200"},
    )  # fmt: skip


def stored(path: Path) -> tuple[dict[str, int], list[float]]:
    """The file's counts and every result's score, read after the run."""

    async def read() -> tuple[dict[str, int], list[float]]:
        kb = SqliteKnowledgeBase(path)
        try:
            return await kb.counts(), [r.metrics["score"] for r in await kb.results()]
        finally:
            await kb.close()

    return asyncio.run(read())


def test_up_keeps_its_results_and_status_reads_them_after_it_exits(tmp_path: Path) -> None:
    config = write_deployment(tmp_path, 'name = "durable"', planner=f"budget = {BUDGET}")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log)}
    path = tmp_path / "runinfo" / "durable" / "knowledge.sqlite"

    before = status(config, env)
    assert before.returncode == 2
    assert f"no knowledge base at {path} yet" in before.stderr

    done = up(config, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "durable: done" in done.stderr

    counts, scores = stored(path)  # the process is gone; the file holds the run
    assert counts["results"] == counts["candidates"] >= BUDGET
    assert counts["pending"] == 0
    assert sorted(scores) == sorted(float(x) for x in log.read_text().split())

    shown = status(config, env)
    assert shown.returncode == 0, shown.stderr
    assert (
        f"durable: {counts['candidates']} candidates, {counts['results']} results, 0 pending"
        in shown.stdout
    )
    assert "never launched" not in shown.stdout
    for name in ("planner", "analysis", "generation", "no (last checkpoint)", "budget"):
        assert name in shown.stdout


def test_a_run_stopped_with_sigint_resumes_where_it_stopped(tmp_path: Path) -> None:
    config = write_deployment(tmp_path, 'name = "resumed"', planner="budget = 100000")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log), "LOOP_TOYS_DELAY_S": "0.05"}
    path = tmp_path / "runinfo" / "resumed" / "knowledge.sqlite"

    first = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "up", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not log.exists() or len(log.read_text().split()) < 8:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "fewer than 8 evaluations within 120 s"
            select.select([], [], [], 0.2)
        os.killpg(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == 128 + signal.SIGINT, err[-3000:]
    interrupted, _ = stored(path)
    assert interrupted["results"] >= 8

    budget = interrupted["results"] + 8
    second = up(config, env, f"--set=planner.budget={budget}")
    assert second.returncode == 0, second.stderr[-3000:]
    final, scores = stored(path)
    assert final["results"] == final["candidates"] >= budget
    assert final["pending"] == 0  # what the first run left pending was evaluated
    evaluated = Counter(log.read_text().split())
    assert len(evaluated) == final["candidates"]  # one log for both runs: nothing lost
    # The generator resumed its counter: no payload was proposed (so scored) twice.
    assert len(set(scores)) == len(scores)


def test_host_processes_share_the_sqlite_file(tmp_path: Path, redis_server: RedisServer) -> None:
    """With the Redis exchange each agent is a process of its own; all of them open the file."""
    settings = f'name = "hosts"\nexchange = "{redis_server.url}"'  # knowledge: the default
    config = write_deployment(tmp_path, settings, planner=f"budget = {BUDGET}")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log)}
    done = up(config, env, "--logs", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr[-3000:]
    counts, scores = stored(tmp_path / "runinfo" / "hosts" / "knowledge.sqlite")
    assert counts["results"] == counts["candidates"] >= BUDGET
    assert sorted(scores) == sorted(float(x) for x in log.read_text().split())
    shown = status(config, env)
    assert shown.returncode == 0, shown.stderr
    assert f"hosts: {counts['candidates']} candidates, {counts['results']} results" in shown.stdout

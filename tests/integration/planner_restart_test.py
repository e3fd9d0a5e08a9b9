"""Scenario: the process hosting the planner is killed mid-run and started again.

``academy-ml up`` runs a toy generation -> analysis -> planner loop over the
Redis exchange, one host process per agent. Once results flow, the planner's
process gets SIGKILL; the supervisor starts it again, it restores its
checkpoint, catches up from the knowledge base, and the run completes with
every candidate evaluated exactly once and stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from loop_toys import write_deployment
from processes import alive
from redis_server import RedisServer

from academy_ml.agents.knowledge import RedisKnowledgeBase

BUDGET = 48


def counts(url: str) -> dict[str, int]:
    """The knowledge base's counts, and ``checkpointed``: whether the planner saved its state."""

    async def read() -> dict[str, int]:
        kb = RedisKnowledgeBase(url, "restart")
        try:
            saved = await kb.load_checkpoint("planner")
            return {**await kb.counts(), "checkpointed": int(saved is not None)}
        finally:
            await kb.close()

    return asyncio.run(read())


def test_killed_planner_restarts_and_the_run_loses_and_repeats_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_deployment(
        tmp_path,
        f'name = "restart"\nexchange = "{redis_server.url}"\nknowledge = "exchange"',
        planner=f"budget = {BUDGET}\nretrain_after = 6\nhigh_water = 16",
    )
    log = tmp_path / "evaluated.txt"
    logs = tmp_path / "logs"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log), "LOOP_TOYS_DELAY_S": "0.05"}
    up = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--logs", str(logs),
         "--timeout", "150"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while (now := counts(redis_server.url))["results"] < 12 or not now["checkpointed"]:
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            assert time.monotonic() < deadline, "no results within 90 s"
            time.sleep(0.2)
        planner = int((logs / "planner.pid").read_text())
        os.kill(planner, signal.SIGKILL)
        output, _ = up.communicate(timeout=180)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = output.decode()
    assert up.returncode == 0, text
    assert "done" in text
    assert not alive({planner})
    planner_log = (logs / "planner.log").read_text()
    assert "planner restored its state from a checkpoint" in planner_log

    final = counts(redis_server.url)
    del final["checkpointed"]
    assert final["pending"] == 0
    assert final["results"] == final["candidates"] >= BUDGET
    evaluated = Counter(log.read_text().split())
    assert len(evaluated) == final["candidates"]  # no candidate lost
    assert max(evaluated.values()) == 1, [x for x, n in evaluated.items() if n > 1]

    async def check() -> None:
        kb = RedisKnowledgeBase(redis_server.url, "restart")
        try:
            assert await kb.latest_model("generation") is not None  # retrained by strategy
            firings = await kb.firings(agent="planner", limit=1000)
            assert any(f.strategy == "retrain" and f.fired for f in firings)
            assert any(f.strategy == "budget" and f.fired for f in firings)
        finally:
            await kb.close()

    asyncio.run(check())

    # `academy-ml status` reads the finished deployment: agents from their
    # checkpoints (they are gone), and the strategy log.
    status = subprocess.run(
        [sys.executable, "-m", "academy_ml", "status", str(config)],
        capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "200"},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert f"restart: {final['candidates']} candidates, {final['results']} results" in status.stdout
    for name in ("planner", "analysis", "generation", "no (last checkpoint)", "budget"):
        assert name in status.stdout

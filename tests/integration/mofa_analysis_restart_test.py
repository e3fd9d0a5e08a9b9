"""Scenario: the MOFA analysis agent is killed mid-run and started again; no candidate is lost.

``academy-ml up configs/redis.toml`` runs the example over the Redis
exchange, one process per agent. Once simulations flow, the analysis
agent's process gets SIGKILL with simulations in flight. The supervisor
starts it again; its ledger sweep finds every candidate without a result
(those in flight included) and the run ends with one result per candidate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis_server import RedisServer

from academy_ml.agents.knowledge import RedisKnowledgeBase

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "redis.toml"


async def state(url: str) -> tuple[dict[str, int], list[int]]:
    kb = RedisKnowledgeBase(url, "mofa-kill")
    try:
        counts = await kb.counts()
        attempts = [await kb.attempts(r.candidate_id) for r in await kb.results()]
        return counts, attempts
    finally:
        await kb.close()


def test_killed_analysis_agent_loses_no_candidate(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    up = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "up", str(CONFIG), "--logs", str(logs),
         "--timeout", "200",
         f"--set=deployment.exchange={redis_server.url}", "--set=deployment.name=mofa-kill",
         "--set=planner.budget=40", "--set=analysis.placement.endpoint=local-pool",
         "--set=analysis.sweep_interval_s=1.0", "--set=planner.review_interval_s=0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(state(redis_server.url))[0]["results"] < 10:
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            assert time.monotonic() < deadline, "no results within 120 s"
            time.sleep(0.2)
        os.kill(int((logs / "analysis.pid").read_text()), signal.SIGKILL)
        output, _ = up.communicate(timeout=240)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 0, output.decode()
    assert "analysis exited (-9); starting it again" in output.decode()
    counts, attempts = asyncio.run(state(redis_server.url))
    assert counts["pending"] == 0
    assert counts["results"] == counts["candidates"] >= 40
    assert min(attempts) == 1  # evaluated once, except those the kill interrupted

"""Scenario: the planner pauses generation when analysis falls behind, and resumes it.

A fast generator feeds a slow evaluation (one worker, 50 ms each) over the
Redis exchange, with the agents as threads of one ``up``. The planner's
backpressure strategies must pause generation once the analysis queue is
deeper than ``high_water`` and resume it once the queue has drained to
``low_water``, more than once in the run; the queue never grows far past the
mark (one batch in flight at most).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from loop_toys import write_deployment
from redis_server import RedisServer

from academy_ml.agents.knowledge import RedisKnowledgeBase
from academy_ml.deploy.launch import Progress, load_deployment, up

HIGH, LOW, BATCH = 6, 2, 4


def test_backpressure_engages_and_releases(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_TOYS_DELAY_S", "0.05")
    config = write_deployment(
        tmp_path,
        f'name = "bp"\nexchange = "{redis_server.url}"\nknowledge = "exchange"\nprocesses = false',
        planner=f"budget = 60\nretrain_after = 1000\nhigh_water = {HIGH}\nlow_water = {LOW}",
    )
    (tmp_path / "analysis.toml").write_text(
        (tmp_path / "analysis.toml").read_text()
        + "\n[agent.init.endpoint]\nclass = 'academy_ml.compute.placement.LocalEndpoint'\n"
        "name = 'one-worker'\nworkers = 1\n"
    )
    deployment = load_deployment(config)
    pending: list[int] = []

    def watch(progress: Progress) -> None:
        pending.append(progress.counts["pending"])

    outcome = asyncio.run(up(deployment, on_progress=watch, timeout_s=120))
    assert outcome.reason == "done"

    async def firings() -> tuple[int, int]:
        kb = RedisKnowledgeBase(redis_server.url, "bp")
        try:
            log = await kb.firings(agent="planner", limit=10_000)
        finally:
            await kb.close()
        fired = [f.strategy for f in log if f.fired]
        return fired.count("backpressure-pause"), fired.count("backpressure-resume")

    pauses, resumes = asyncio.run(firings())
    assert pauses >= 2
    assert resumes >= 2
    # The queue stops growing one batch (plus one being chosen) past the mark.
    assert max(pending) <= HIGH + 2 * BATCH

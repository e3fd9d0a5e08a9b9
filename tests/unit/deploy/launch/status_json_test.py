"""``academy-ml status --json``: one JSON document; firings that acted come before evaluations.

The knowledge base is a real SQLite file (or a real redis-server) written
directly; the CLI runs in this process (``main``), as a user's command would.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from academy.identifier import AgentId
from redis_server import RedisServer
from rich.console import Console

from academy_ml.agents.knowledge import (
    CandidateRecord,
    RedisKnowledgeBase,
    ResultRecord,
    SqliteKnowledgeBase,
    StrategyFiring,
    seal_state,
)
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.core.resp import ConnectionLost
from academy_ml.deploy.cli import main
from academy_ml.deploy.launch import status_view
from academy_ml.deploy.launch.config import load_deployment
from academy_ml.deploy.launch.identities import save_identities
from academy_ml.deploy.launch.status import collect_status

PLANNER = (
    '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
    "[agent.init]\nbudget = 4\n"
)
GENERATION = '[agent]\nclass = "academy_ml.agents.GenerationAgent"\nname = "generation"\n'


def _config(directory: Path, extra: str = "") -> Path:
    (directory / "planner.toml").write_text(PLANNER)
    (directory / "generation.toml").write_text(GENERATION)
    config = directory / "deployment.toml"
    config.write_text(
        '[deployment]\nname = "dep"\nagents = ["planner.toml", "generation.toml"]\n'
        f'stop_with = "planner"\n{extra}'
    )
    return config


def _firing(agent: str, strategy: str, fired: bool, created: float) -> StrategyFiring:
    return StrategyFiring(
        agent=agent,
        strategy=strategy,
        trigger="on call record_result",
        fired=fired,
        reason="on call record_result: " + ("yes" if fired else "no"),
        actions=["retrain_generator"] if fired else [],
        outcome="retrained" if fired else "",
        created=created,
    )


def _fill(path: Path) -> None:
    """Two results, the planner's checkpoint, identities; 50 evaluations, of which 2 acted."""

    async def fill() -> None:
        kb = SqliteKnowledgeBase(path)
        try:
            for i in range(2):
                await kb.add_candidate(CandidateRecord(id=f"c{i}", model_version=0, payload={}))
                await kb.add_result(
                    ResultRecord(candidate_id=f"c{i}", model_version=0, metrics={"score": i})
                )
            state = {"results": 2, "strategies_stopped": False}
            await kb.save_checkpoint("planner", seal_state(CHECKPOINT_KIND, state))
            await save_identities(kb, {"planner": AgentId.new(name="planner")})
            await kb.log_firing(_firing("generation", "finish", True, 1000.0))
            await kb.log_firing(_firing("planner", "retrain", True, 1001.0))
            for i in range(48):  # the planner's later evaluations, none acting
                await kb.log_firing(_firing("planner", "budget", False, 1002.0 + i))
        finally:
            await kb.close()

    path.parent.mkdir(parents=True)
    asyncio.run(fill())


def _status_json(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exited:
        main(["status", str(config), "--json"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one document, one line
    document: dict[str, Any] = json.loads(out)
    return document


def test_status_json_has_agents_counts_endpoints_and_firings_that_acted_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        '[endpoints.pool]\nkind = "local"\nworkers = 1\n',
    )
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    document = _status_json(config, capsys)
    assert document["name"] == "dep"
    assert document["registered"] is True
    assert document["counts"] == {"candidates": 2, "results": 2, "pending": 0}
    planner = document["agents"][0]
    assert planner["name"] == "planner"
    assert planner["answering"] is False
    assert planner["state"]["results"] == 2
    assert [a["name"] for a in document["agents"]] == ["planner", "generation"]
    assert [e["name"] for e in document["endpoints"]] == ["pool"]
    # The 48 later evaluations did not push the two firings that acted out.
    assert [(f["agent"], f["strategy"]) for f in document["firings"]] == [
        ("planner", "retrain"),
        ("generation", "finish"),
    ]
    assert all(f["fired"] for f in document["firings"])
    evaluations = document["evaluations"]
    assert len(evaluations) == 10
    assert [f["created"] for f in evaluations] == sorted(
        (f["created"] for f in evaluations), reverse=True
    )
    assert evaluations[0]["created"] == 1049.0


def test_the_table_shows_firings_that_acted_under_their_own_title(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    config = _config(tmp_path)
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    with pytest.raises(SystemExit) as exited:
        main(["status", str(config)])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    _, title, rest = out.partition("recent firings (strategies that acted)")
    assert title
    acted, _, latest = rest.partition("latest evaluations")
    assert acted.count("│ yes ") == 2
    assert "│ no " not in acted
    assert latest.count("│ no ") == 10


def test_collect_status_reads_each_agents_window(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    status = asyncio.run(collect_status(load_deployment(config), firings=1))
    assert [(f.agent, f.strategy) for f in status.firings] == [("planner", "retrain")]
    assert [(f.strategy, f.fired) for f in status.evaluations] == [("budget", False)]


@pytest.mark.parametrize("watch", ["0", "-1", "nan"])
def test_a_watch_interval_that_is_not_positive_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], watch: str
) -> None:
    config = _config(tmp_path)
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    with pytest.raises(SystemExit) as exited:
        main(["status", str(config), "--watch", watch])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"academy-ml: error: --watch {float(watch):g}: expected a positive number of seconds"
    ]


@pytest.mark.parametrize("options", [["--json"], ["--watch"], ["--json", "--watch", "1"]])
def test_a_deployment_never_launched_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    config = _config(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["status", str(config), *options])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    path = tmp_path / "runinfo" / "dep" / "knowledge.sqlite"
    assert captured.err.splitlines() == [
        f"academy-ml: error: {config}: no knowledge base at {path} yet "
        f"(`academy-ml up {config}` creates it)"
    ]


def test_a_watch_redraws_and_shows_a_failed_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Collections after the first go on past a failure, which the table notes."""
    config = _config(tmp_path)
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    deployment = load_deployment(config)
    calls: list[int] = []

    async def flaky(deployment: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ConnectionLost("redis://127.0.0.1:1: connection refused")
        return await collect_status(deployment)

    monkeypatch.setattr(status_view, "collect_status", flaky)
    out = io.StringIO()

    async def watch() -> None:
        first = await collect_status(deployment)
        task = asyncio.ensure_future(
            status_view.watch_status(deployment, first, 0.01, False, Console(file=out, width=200))
        )
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(watch())
    assert "dep: 2 candidates, 2 results, 0 pending" in out.getvalue()
    assert len(calls) >= 3  # the failure did not end the watch


def test_a_json_watch_prints_a_line_per_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    _fill(tmp_path / "runinfo" / "dep" / "knowledge.sqlite")
    deployment = load_deployment(config)
    calls: list[int] = []
    collected: list[int] = []  # shown as soon as returned: no await between the two

    async def failing_once(deployment: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 2:
            raise ConnectionLost("redis://127.0.0.1:1: connection refused")
        status = await collect_status(deployment)
        collected.append(len(collected))
        return status

    monkeypatch.setattr(status_view, "collect_status", failing_once)

    async def watch() -> None:
        first = await collect_status(deployment)
        task = asyncio.ensure_future(
            status_view.watch_status(deployment, first, 0.01, True, Console(file=io.StringIO()))
        )
        while len(collected) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(watch())
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1 + len(collected)  # the first status, then each collected one
    assert all(json.loads(line)["name"] == "dep" for line in lines)
    assert "academy-ml status: refresh at " in captured.err
    assert "failed: redis://127.0.0.1:1: connection refused; showing the last status" in (
        captured.err
    )


def test_status_json_reads_a_redis_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_server: RedisServer
) -> None:
    config = _config(tmp_path, f'exchange = "{redis_server.url}"\nknowledge = "exchange"\n')

    async def fill() -> None:
        kb = RedisKnowledgeBase(redis_server.url, "dep")
        try:
            await kb.log_firing(_firing("planner", "retrain", True, 1000.0))
            await kb.log_firing(_firing("planner", "budget", False, 1001.0))
        finally:
            await kb.close()

    asyncio.run(fill())
    document = _status_json(config, capsys)
    assert document["registered"] is False
    assert [f["strategy"] for f in document["firings"]] == ["retrain"]
    assert [f["strategy"] for f in document["evaluations"]] == ["budget", "retrain"]

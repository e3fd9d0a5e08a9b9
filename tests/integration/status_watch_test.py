"""Scenario: an operator watches a run: logs with strategy decisions, Parsl's logs, ``--watch``.

The toy loop runs embedded (its analysis on a local Parsl endpoint) with a
tiny budget: ``up.log`` in the deployment's directory holds every strategy
evaluation (the budget's firing among them) and none of Parsl's chatter,
which is in Parsl's own log in the same directory. ``status --watch 1
--json`` then prints one JSON line per collection until Ctrl-C, which ends
it with exit status 0. With host processes (the Redis exchange) ``up``
says nothing about the planner not answering while its host starts, and
the planner's log holds its strategy decisions.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from loop_toys import write_deployment
from redis_server import RedisServer

#: Results the runs are asked for.
BUDGET = 8

PARSL = (
    '\n[endpoints.parsl]\nkind = "parsl"\nprovider = "local"\n'
    'address = "127.0.0.1"\nworkers_per_node = 1\n'
)


def up(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--timeout", "240", *options],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "1000"},  # rich folds a long path at the terminal's width
    )  # fmt: skip


def test_an_embedded_run_logs_its_decisions_and_status_watches_it(tmp_path: Path) -> None:
    config = write_deployment(tmp_path, 'name = "watched"', planner=f"budget = {BUDGET}")
    config.write_text(config.read_text() + PARSL)
    analysis = tmp_path / "analysis.toml"
    analysis.write_text(analysis.read_text() + '[placement]\nendpoint = "parsl"\n')
    run_dir = tmp_path / "runinfo" / "watched"

    done = up(config, "--log-level", "INFO")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"logs in {run_dir}" in " ".join(done.stderr.split())
    assert "strategy 'budget' fired" not in done.stderr  # firings stay off the terminal
    log = (run_dir / "up.log").read_text()
    assert "planner started: strategies reopen, backpressure-pause" in log
    assert "planner: strategy 'budget' fired (on " in log
    assert f"at least {BUDGET} results: yes) -> finish_generation, stop: " in log
    assert "planner: strategy 'retrain' held (on " in log
    assert " parsl" not in log.replace("'parsl'", "")  # no Parsl record below WARNING
    (parsl_log,) = (run_dir / "parsl").glob("*/parsl.log")
    assert "DataFlowKernel" in parsl_log.read_text()

    watch = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "status", str(config), "--watch", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while len(lines) < 2:  # a second collection: the watch goes on by itself
            assert time.monotonic() < deadline, f"{len(lines)} collection(s) within 120 s"
            ready, _, _ = select.select([watch.stdout], [], [], 1.0)
            if ready:
                line = watch.stdout.readline()
                assert line, watch.stderr.read() if watch.stderr else ""
                lines.append(line)
        os.killpg(watch.pid, signal.SIGINT)
        _, err = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            os.killpg(watch.pid, signal.SIGKILL)
            watch.wait()
    assert watch.returncode == 0, err[-3000:]
    for line in lines:
        status = json.loads(line)
        assert status["name"] == "watched"
        assert status["counts"]["results"] >= BUDGET
        assert status["firings"][0]["strategy"] == "budget"
        assert all(firing["fired"] for firing in status["firings"])
        assert [a["name"] for a in status["agents"]] == ["planner", "analysis", "generation"]
        assert [e["name"] for e in status["endpoints"]] == ["parsl"]


def test_host_processes_start_without_a_status_warning(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = f'name = "hosted"\nexchange = "{redis_server.url}"'
    config = write_deployment(tmp_path, settings, planner=f"budget = {BUDGET}")
    done = up(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "did not answer" not in done.stderr
    assert "Traceback" not in done.stderr
    planner = (tmp_path / "runinfo" / "hosted" / "planner.log").read_text()
    assert (
        "planner WARNING academy_ml.agents.strategies.strategy.firings: "
        "planner: strategy 'budget' fired (on "
    ) in planner

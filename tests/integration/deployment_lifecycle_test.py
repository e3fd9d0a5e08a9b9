"""Scenario: an embedded deployment keeps its results in SQLite; refuses, resumes, resets.

``academy-ml up`` runs the toy loop to its budget with Academy's in-process
exchange and the default knowledge base, a SQLite file in the deployment's
directory (``runinfo/<name>/knowledge.sqlite`` beside the config). Once the
process has exited, ``academy-ml status`` shows the results and the agents'
last checkpoints, and the file holds every result. A second ``up`` refuses
in one line (exit status 2) naming ``--resume`` and ``reset``; ``up
--resume`` with a larger budget continues it to that budget (the planner had
stopped at the old one), evaluating nothing twice; ``results --format json``
lists every result the evaluator produced; ``reset --yes`` forgets the
file, and the next ``up`` runs the loop again from nothing. With host
processes (the Redis exchange), every agent process opens the same file, and
``down`` has the supervising ``up`` stop the run; every agent checkpoints;
the next ``up`` continues it. One ``up`` of each kind proves all of it (each
start costs seconds of imports per process).
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

import pytest
from loop_toys import stored, write_deployment
from redis_server import RedisServer

#: Results the run is asked for.
BUDGET = 8


def cli(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.timeout(600)  # four `up`s and five other CLI processes, one after the other
def test_a_finished_deployment_keeps_refuses_lists_its_results_and_resets(
    tmp_path: Path,
) -> None:
    config = write_deployment(tmp_path, 'name = "cycle"', planner=f"budget = {BUDGET}")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log)}
    path = tmp_path / "runinfo" / "cycle" / "knowledge.sqlite"

    before = cli("status", config, env=env)
    assert before.returncode == 2
    assert f"no knowledge base at {path} yet" in before.stderr

    first = cli("up", config, "--timeout", "240", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "cycle: done" in first.stderr
    evaluated = sorted(float(x) for x in log.read_text().split())
    assert len(evaluated) >= BUDGET

    counts, scores = stored(path)  # the process is gone; the file holds the run
    assert counts["results"] == counts["candidates"] >= BUDGET
    assert counts["pending"] == 0
    assert sorted(scores) == evaluated

    shown = cli("status", config, env={**env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert (
        f"cycle: {counts['candidates']} candidates, {counts['results']} results, 0 pending"
        in shown.stdout
    )
    assert "never launched" not in shown.stdout
    for name in ("planner", "analysis", "generation", "no (last checkpoint)", "budget"):
        assert name in shown.stdout

    again = cli("up", config, env=env)
    assert again.returncode == 2, again.stderr[-3000:]
    assert again.stderr.splitlines() == [
        f"academy-ml: error: {config}: finished with {len(evaluated)} results; "
        f"`academy-ml up --resume {config}` continues it, `academy-ml reset {config}` forgets it"
    ]

    raised = len(evaluated) + 4
    resumed = cli(
        "up", config, "--resume", "--timeout", "240", f"--set=planner.budget={raised}", env=env
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "cycle: done" in resumed.stderr
    evaluated = sorted(float(x) for x in log.read_text().split())
    assert len(set(evaluated)) == len(evaluated) >= raised  # continued, nothing twice
    assert f"{len(evaluated)} results, 0 pending" in resumed.stderr

    listed = cli("results", config, "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert sorted(r["metrics"]["score"] for r in records) == evaluated
    assert len({r["candidate_id"] for r in records}) == len(records)

    reset = cli("reset", config, "--yes", env=env)
    assert reset.returncode == 0, reset.stderr
    assert not path.exists()

    log.unlink()
    afresh = cli("up", config, "--timeout", "240", env=env)
    assert afresh.returncode == 0, afresh.stderr[-3000:]
    assert len(log.read_text().split()) >= BUDGET  # evaluated again, from nothing
    final = json.loads(cli("results", config, "--format", "json", env=env).stdout)
    assert len(final) == len(log.read_text().split())


def test_host_processes_share_the_sqlite_file_and_down_stops_them(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With the Redis exchange each agent is a process of its own; all of them open the file.

    ``down`` asks the supervising ``up``; it stops its hosts in order and exits 0.
    """
    settings = f'name = "downed"\nexchange = "{redis_server.url}"'  # knowledge: SQLite
    config = write_deployment(tmp_path, settings, planner="budget = 100000")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log), "LOOP_TOYS_DELAY_S": "0.05"}
    path = tmp_path / "runinfo" / "downed" / "knowledge.sqlite"

    alone = cli("down", config, "--wait", "1", env=env)  # never launched
    assert alone.returncode == 2
    assert alone.stderr.splitlines() == [
        f"academy-ml: error: {config}: no knowledge base at "
        f"{path} yet "
        f"(`academy-ml up {config}` creates it)"
    ]

    running = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--logs", str(tmp_path / "logs")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not log.exists() or len(log.read_text().split()) < 4:
            assert running.poll() is None, running.stderr.read() if running.stderr else ""
            assert time.monotonic() < deadline, "fewer than 4 evaluations within 180 s"
            select.select([], [], [], 0.2)
        down = cli("down", config, env=env)
        _, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()
    assert down.returncode == 0, down.stderr
    assert down.stdout == "downed: stopped; its agents checkpointed\n"
    assert running.returncode == 0, err[-3000:]
    assert "downed: down after" in err
    shown = cli("status", config, env={**env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("no (last checkpoint)") == 3  # every agent checkpointed

    again = cli("down", config, "--wait", "1", env=env)  # no `up` is running now
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        f"academy-ml: error: {config}: no `academy-ml up` stopped the run within 1 s "
        "(none is running; hosts started by hand stop with SIGTERM)"
    ]
    # Not finished: no refusal; the next `up` continues to a budget a few results on.
    interrupted, _ = stored(path)
    budget = interrupted["results"] + 4
    resumed = cli(
        "up", config, "--timeout", "240", f"--set=planner.budget={budget}",
        "--logs", str(tmp_path / "logs"), env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    counts, scores = stored(path)  # every host wrote its part into the one file
    assert counts["results"] == counts["candidates"] >= budget
    assert counts["pending"] == 0
    assert len(set(scores)) == len(scores)
    # A candidate in flight at `down` may be evaluated again after it, never lost.
    assert sorted(scores) == sorted({float(x) for x in log.read_text().split()})
    shown = cli("status", config, env={**env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert f"downed: {counts['candidates']} candidates, {counts['results']} results" in shown.stdout

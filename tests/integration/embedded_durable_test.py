"""Scenario: an embedded run stopped with SIGINT resumes where it stopped.

``academy-ml up`` runs the toy loop with Academy's in-process exchange and
the default knowledge base, a SQLite file in the deployment's directory. The
second ``up`` evaluates what the first left pending and proposes nothing
twice. (A finished run, ``status`` on the file and host processes sharing it
are proved by deployment_lifecycle_test.py, one ``up`` of each kind.)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from loop_toys import stored, write_deployment


def up(config: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--timeout", "240", *options],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


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

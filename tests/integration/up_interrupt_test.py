"""Scenario: an operator presses Ctrl-C during ``academy-ml up``; everything stops cleanly.

The terminal sends SIGINT to the whole process group: ``up`` and, with the
Redis exchange, every agent's host process. ``up`` must report the run as
interrupted, shut the agents down (they checkpoint), restart none of them,
and leave no process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from loop_toys import write_deployment
from processes import alive

from academy_ml.exchange.local_server import RedisServer


@pytest.mark.parametrize("exchange", ["local", "redis"])
def test_ctrl_c_stops_the_run_and_leaves_nothing_running(
    exchange: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if exchange == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        settings = f'name = "ctrl-c"\nexchange = "{server.url}"\nknowledge = "exchange"'
    else:
        settings = 'name = "ctrl-c"'
    config = write_deployment(tmp_path, settings, planner="budget = 100000")
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "LOOP_TOYS_LOG": str(log), "LOOP_TOYS_DELAY_S": "0.05"}
    up = subprocess.Popen(
        [sys.executable, "-m", "academy_ml", "up", str(config), "--logs", str(tmp_path / "logs")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not log.exists() or len(log.read_text().split()) < 8:
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            assert time.monotonic() < deadline, "no evaluations within 90 s"
            time.sleep(0.2)
        if exchange == "redis":  # a live deployment's agents answer `academy-ml status`
            status = subprocess.run(
                [sys.executable, "-m", "academy_ml", "status", str(config)],
                capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "200"},
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            assert "no (last checkpoint)" not in status.stdout
            assert status.stdout.count(" yes ") >= 3
        family = {p.pid for p in psutil.Process(up.pid).children(recursive=True)}
        os.killpg(up.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        output, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    text = output.decode()
    assert up.returncode == 1, text
    assert "ctrl-c: interrupted after" in text
    assert "starting it again" not in text
    assert not alive(family)

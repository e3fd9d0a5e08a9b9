"""Scenario: an operator stops ``academy-ml up`` with Ctrl-C or SIGTERM; nothing outlives it.

``up`` runs here in a session of its own, as a shell runs a foreground job in
a process group of its own, and ``os.killpg(up, SIGINT)`` is what the
terminal does on Ctrl-C: every process of the foreground group gets it. The
analysis agent runs its evaluations on a Parsl HighThroughputExecutor
(LocalProvider), so an interchange and a worker pool are part of the run.

``up`` must report the run as interrupted with 130 (143 for SIGTERM), shut
the agents down, restart none of them and leave no process behind: none in
its session nor in its hosts' sessions (the interchange and the worker
pools stay in the session of whoever started them, whatever their process
group or parent). A second signal forces the exit. When an agent's host is
SIGKILLed, the supervisor ends the interchange and workers it left before
starting it again.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loop_toys import write_deployment
from processes import alive, in_sessions
from redis_server import RedisServer

PARSL_ENDPOINT = """
[endpoints.parsl]
kind = "parsl"
workers_per_node = 2
run_dir = "{run_dir}"
"""


class Up:
    """``academy-ml up`` on a toy deployment whose analysis runs on Parsl."""

    def __init__(
        self, tmp_path: Path, exchange: str, request: pytest.FixtureRequest, *options: str
    ) -> None:
        if exchange == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            settings = f'name = "ctrl-c"\nexchange = "{server.url}"\nknowledge = "exchange"'
        else:
            settings = 'name = "ctrl-c"'
        config = write_deployment(tmp_path, settings, planner="budget = 100000")
        with (tmp_path / "analysis.toml").open("a") as spec:
            spec.write('[placement]\nendpoint = "parsl"\n')
        with config.open("a") as file:
            file.write(PARSL_ENDPOINT.format(run_dir=tmp_path / "runinfo"))
        self.evaluated = tmp_path / "evaluated.txt"
        self.logs = tmp_path / "logs"
        env = {**os.environ, "LOOP_TOYS_LOG": str(self.evaluated), "LOOP_TOYS_DELAY_S": "0.05"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "academy_ml", "up", str(config), "--logs", str(self.logs),
             *options],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.head = b""  # output read before finish()

    def wait_for_output(self, text: str) -> None:
        """Read ``up``'s output until ``text`` appears (within 120 s)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while text.encode() not in self.head:
            assert time.monotonic() < deadline, f"no {text!r} within 120 s: {self.head!r}"
            ready, _, _ = select.select([self.process.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                assert chunk, f"up exited before printing {text!r}: {self.head!r}"
                self.head += chunk

    def wait_for_evaluations(self, n: int) -> None:
        deadline = time.monotonic() + 120
        while not self.evaluated.exists() or len(self.evaluated.read_text().split()) < n:
            assert self.process.poll() is None, self.finish()
            assert time.monotonic() < deadline, f"fewer than {n} evaluations within 120 s"
            time.sleep(0.2)

    def host_pid(self, agent: str) -> int | None:
        """The pid (and session) of ``agent``'s current host process (Redis deployments)."""
        try:
            return int((self.logs / f"{agent}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def sessions(self) -> set[int]:
        """``up``'s session and its hosts' (a host is the leader of its own)."""
        hosts = {self.host_pid(p.stem) for p in self.logs.glob("*.pid")}
        return {self.process.pid} | {pid for pid in hosts if pid is not None}

    def finish(self, timeout: float = 120) -> str:
        try:
            output, _ = self.process.communicate(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return (self.head + output).decode()


def _parts_of_the_run(members: dict[int, str]) -> None:
    """The run has the processes this scenario is about, or it proves nothing.

    The interchange leads a process group of its own, out of reach of the
    terminal's SIGINT (Parsl puts worker pools in groups of their own).
    """
    commands = list(members.values())
    assert any("process_worker_pool" in c for c in commands), commands
    interchanges = [pid for pid, command in members.items() if "interchange" in command]
    assert interchanges, commands
    assert all(os.getpgid(pid) == pid for pid in interchanges)


def assert_agents_answer_status(tmp_path: Path) -> None:
    """A live Redis deployment's agents answer ``academy-ml status``."""
    status = subprocess.run(
        [sys.executable, "-m", "academy_ml", "status", str(tmp_path / "deployment.toml")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "no (last checkpoint)" not in status.stdout
    assert status.stdout.count(" yes ") >= 3


@pytest.mark.parametrize(
    ("exchange", "signals"),
    [
        ("local", [signal.SIGINT]),
        ("local", [signal.SIGTERM]),
        ("redis", [signal.SIGTERM]),
    ],
    # Redis and SIGINT: test_a_killed_hosts_interchange_and_workers_are_reaped ends that way.
    ids=["local-SIGINT", "local-SIGTERM", "redis-SIGTERM"],
)
def test_a_signal_stops_the_run_and_leaves_nothing_running(
    exchange: str, signals: list[signal.Signals], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    up = Up(tmp_path, exchange, request)
    try:
        up.wait_for_evaluations(8)
        if exchange == "redis":
            assert_agents_answer_status(tmp_path)
        sessions = up.sessions()
        before = in_sessions(sessions)
        _parts_of_the_run(before)
        sent = time.monotonic()
        if signals[0] == signal.SIGINT:
            os.killpg(up.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        else:
            up.process.send_signal(signal.SIGTERM)  # what `kill` or a batch system does
    finally:
        text = up.finish()
    stop_s = time.monotonic() - sent
    print(f"\n{exchange} {signals[0].name}: up exited {stop_s:.2f} s after the signal")
    assert up.process.returncode == 128 + signals[0], text
    assert f"ctrl-c: interrupted by {signals[0].name} after" in text
    assert "Traceback" not in text
    assert "starting it again" not in text
    assert stop_s < 60, text  # the goal is 10 s; this bound is 6x that, for a busy machine
    assert not alive(set(before))
    assert not in_sessions(sessions)
    for log in up.logs.glob("*.log"):  # no Parsl future was cancelled through asyncio
        assert "NotImplementedError" not in log.read_text(), log


@pytest.mark.parametrize("exchange", ["local", "redis"])
def test_a_second_ctrl_c_forces_the_exit_and_still_kills_the_run(
    exchange: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    up = Up(tmp_path, exchange, request)
    try:
        up.wait_for_evaluations(8)
        sessions = up.sessions()
        before = in_sessions(sessions)
        _parts_of_the_run(before)
        os.killpg(up.process.pid, signal.SIGINT)
        up.wait_for_output("stopping the run")  # agents are shutting down
        os.killpg(up.process.pid, signal.SIGINT)
    finally:
        text = up.finish()
    assert up.process.returncode == 130, text
    assert "second SIGINT" in text
    assert not alive(set(before))
    assert not in_sessions(sessions)


def test_a_killed_hosts_interchange_and_workers_are_reaped(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The supervisor reaps and restarts a SIGKILLed host; then Ctrl-C stops the whole run.

    The Redis deployment's Ctrl-C is this test's end, so it is checked as the
    signal tests check theirs (one ``up`` for both: each start costs seconds).
    """
    up = Up(tmp_path, "redis", request)
    try:
        up.wait_for_evaluations(8)
        assert_agents_answer_status(tmp_path)
        host = up.host_pid("analysis")
        assert host is not None
        left = in_sessions({host})
        _parts_of_the_run(left)
        sessions = up.sessions()
        os.kill(host, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while up.host_pid("analysis") == host:
            assert up.process.poll() is None, up.finish()
            assert time.monotonic() < deadline, "the analysis host was not started again"
            time.sleep(0.2)
        # The supervisor reaps a dead host's processes before it starts it again.
        assert not alive(set(left) - {host}), in_sessions({host})
        sessions |= up.sessions()
        up.wait_for_evaluations(len(up.evaluated.read_text().split()) + 4)
        before = in_sessions(sessions)
        _parts_of_the_run(before)
        os.killpg(up.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    finally:
        text = up.finish()
    assert up.process.returncode == 130, text
    assert "analysis exited (-9); killed" in text
    assert text.count("starting it again") == 1, text  # the kill's restart; none after Ctrl-C
    assert "ctrl-c: interrupted by SIGINT after" in text
    assert "Traceback" not in text
    assert not alive(set(before))
    assert not in_sessions(sessions)
    for log in up.logs.glob("*.log"):  # no Parsl future was cancelled through asyncio
        assert "NotImplementedError" not in log.read_text(), log


def test_a_timeout_ends_the_run_with_one_line_and_124(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    up = Up(tmp_path, "local", request, "--timeout", "20")
    text = up.finish(timeout=240)
    assert up.process.returncode == 124, text
    assert "Traceback" not in text
    assert "NotImplementedError" not in text
    assert text.count("ctrl-c: timeout after") == 1
    assert not in_sessions({up.process.pid})

"""Scenario: Ctrl-C stops the embedded MOFA loop while native batches run on worker threads.

``academy-ml up configs/local.toml`` runs its agents as threads of one
process; the planner refits its surrogate with a pipeline batch on a worker
thread (``asyncio.to_thread``), where no signal arrives. The agent's event
loop waits for that thread before it closes, so a batch nobody interrupts
holds the exit up for as long as it runs. ``up`` runs in a session of its
own and gets SIGINT as a terminal delivers it (to the whole group).

The first test is the loop as shipped, stopped once results come in; the
second swaps in a planner whose refit (from the first result on) starts
with a batch of minutes, so that a batch is certainly in flight when the
signal comes: without ``_runtime.interrupt_runs()`` the run
would outlive the bound by minutes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from processes import in_sessions

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "local.toml"

#: Makes rich draw the progress bar into a pipe as into a terminal (wide
#: enough for "results N"), so the test sees the run progress.
TERMINAL = {"FORCE_COLOR": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "200"}

#: Seconds ``up`` may take to exit after SIGINT. It takes 2-9 s with the
#: cores busy (the agents checkpoint, Parsl's interchange and workers stop);
#: the long batch of the second test, waited for, would take minutes.
EXIT_BOUND_S = 60.0


class Up:
    """``academy-ml up`` in a session of its own; its output read as it comes."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "academy_ml", "up", str(config), *options],
            cwd=ROOT, env={**os.environ, **TERMINAL, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.output = b""

    def read_until(self, done: Callable[[], bool], what: str, timeout: float = 240) -> None:
        """Read output until ``done()`` is true (within ``timeout`` seconds)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"no {what} within {timeout} s: {self.tail()}"
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                assert chunk, f"up exited before {what}: {self.tail()}"
                self.output += chunk

    def interrupt(self) -> tuple[int, float, str]:
        """SIGINT to the session; returns the exit status, seconds to exit, and the output."""
        os.killpg(self.process.pid, signal.SIGINT)
        start = time.monotonic()
        try:
            rest, _ = self.process.communicate(timeout=EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            rest, _ = self.process.communicate()
            raise AssertionError(
                f"up still ran {EXIT_BOUND_S} s after SIGINT: {(self.output + rest)[-2000:]!r}"
            ) from None
        took = time.monotonic() - start
        return self.process.returncode, took, (self.output + rest).decode(errors="replace")

    def results(self) -> int:
        """The ledger's result count on the last progress line (0 before the first)."""
        marker = self.output.rfind(b"results ")
        if marker < 0:
            return 0
        digits = self.output[marker + 8 :].split(b" ", 1)[0]
        return int(digits) if digits.isdigit() else 0

    def tail(self) -> str:
        return self.output[-2000:].decode(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _stopped(up: Up, status: int, took: float, output: str) -> None:
    print(f"SIGINT to exit: {took:.2f} s")  # the figure (-s shows it); the bound is generous
    assert status == 128 + signal.SIGINT, output[-3000:]
    assert "interrupted by SIGINT" in output, output[-3000:]
    assert in_sessions({up.process.pid}) == {}


def test_ctrl_c_stops_the_embedded_mofa_loop(tmp_path: Path) -> None:
    # A knowledge base of its own: the shipped config's file (under configs/)
    # outlives the run, and would resume whatever the last run there left.
    up = Up(CONFIG, None, f"--set=deployment.knowledge=sqlite:{tmp_path / 'knowledge.sqlite'}")
    try:
        up.read_until(lambda: up.results() >= 1, "a result")
        status, took, output = up.interrupt()
    finally:
        up.kill()
    _stopped(up, status, took, output)


def test_ctrl_c_interrupts_a_native_batch_on_a_worker_thread(tmp_path: Path) -> None:
    marker = tmp_path / "batch-running"
    planner = (ROOT / "agents" / "planner.toml").read_text()
    planner = planner.replace(
        'class = "mofa.agents.MofaPlanner"', 'class = "interrupt_toys.SlowRefitPlanner"'
    ).replace("refit_every = 16\n", "refit_every = 1\n")  # the long batch from the first result
    assert "interrupt_toys" in planner
    assert "refit_every = 1\n" in planner
    (tmp_path / "planner.toml").write_text(planner)
    config = CONFIG.read_text()
    config = config.replace('"../agents/planner.toml"', f'"{tmp_path / "planner.toml"}"')
    config = config.replace('"../agents/', f'"{ROOT / "agents"}/')
    config = config.replace(
        'python_path = ["../examples"]',
        f'python_path = ["{ROOT / "examples"}", "{Path(__file__).parent}"]',
    )
    (tmp_path / "local.toml").write_text(config)
    up = Up(tmp_path / "local.toml", {"INTERRUPT_TOYS_MARKER": str(marker)})
    try:
        up.read_until(marker.exists, "long batch")
        status, took, output = up.interrupt()
    finally:
        up.kill()
    _stopped(up, status, took, output)

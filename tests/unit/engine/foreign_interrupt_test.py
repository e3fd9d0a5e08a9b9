"""Ctrl-C during the foreign phase: the process stops promptly and leaves no worker behind.

A child process runs two foreign tails that sleep for ten minutes, each in
its own worker; once both have started, the test sends SIGINT to the child.
The child must raise KeyboardInterrupt out of ``aml.evaluate`` and exit, and
every worker it started must be gone. The bounds only turn a hang into a
failure; they are far above the idle time (well under a second).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

#: Seconds the child may take to start both workers (imports on a loaded machine).
START_BOUND_S = 240.0

#: Seconds the child may take to exit once interrupted, and its workers to vanish.
STOP_BOUND_S = 60.0

CHILD = textwrap.dedent(
    """
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, sys.argv[1])
    from foreign_toys import Sleep
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import academy_ml as aml

    X, y = load_diabetes(return_X_y=True)
    batch = [make_pipeline(StandardScaler(), Sleep(600, sys.argv[2]), Ridge()) for _ in range(2)]
    try:
        aml.evaluate(batch, X, y, cv=3, threads=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
    """
)


def _pids(log_dir: Path) -> set[int]:
    return {int(f.name.split("-")[0]) for f in log_dir.iterdir()}


def test_ctrl_c_stops_the_foreign_phase_and_its_workers(tmp_path: Path) -> None:
    toys = str(Path(__file__).parent)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, toys, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_BOUND_S
        while len(_pids(tmp_path)) < 2:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the two foreign tails never ran at once"
            time.sleep(0.05)
        workers = _pids(tmp_path)
        assert child.pid not in workers, "foreign steps run in worker processes"

        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=STOP_BOUND_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, (out, err)
    assert out.strip() == "interrupted", (out, err)
    deadline = time.monotonic() + STOP_BOUND_S
    while alive := [pid for pid in workers if psutil.pid_exists(pid)]:
        assert time.monotonic() < deadline, f"workers {alive} outlived their parent"
        time.sleep(0.05)

"""Scenario: a user presses Ctrl-C while a long batch runs in Rust."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent(
    """
    import signal
    # As in a terminal: Python's own handler, whatever this process inherited
    # (a child started with SIGINT ignored never raises KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    from sklearn.neighbors import KNeighborsRegressor
    import academy_ml as aml

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30_000, 24))
    y = X[:, 0] + rng.normal(size=30_000)
    pipelines = [KNeighborsRegressor(n_neighbors=k) for k in range(1, 60)]
    plan = aml.compile(pipelines, cv=5, X=X, y=y, scoring="r2")
    print("ready", flush=True)
    try:
        aml.run(plan, threads=1)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    else:
        print("finished", flush=True)
    """
)


def test_ctrl_c_stops_a_running_plan() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    # The plan takes minutes on one thread; cancellation is checked between
    # nodes, so the child stops well before the timeout.
    out, err = child.communicate(timeout=120)
    assert out.strip() == "interrupted", (out, err)
    assert child.returncode == 0

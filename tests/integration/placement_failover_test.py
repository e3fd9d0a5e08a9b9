"""Scenario: one endpoint's workers are killed mid-batch; the batch completes.

Two Parsl HighThroughputExecutors with LocalProvider act as two endpoints.
While a batch runs, a thread SIGKILLs every worker process of endpoint
``a`` that starts a batch (the task function writes its pid first; a
worker killed idle would lose nothing). Parsl reports each lost task (WorkerLost); the placer
resubmits it to ``b``. Parsl sometimes loses a task without reporting it
(the manager's watchdog finds the killed worker "not busy"): then the
attempt's timeout fails it over. Every request ends with exactly one
result, and every failed attempt is in the outcomes.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from placement_support import parsl_endpoint, rounds, venv_path, wait_gone
from processes import descendants

from academy_ml.compute.placement import Placer
from academy_ml.compute.tasks import BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore


def worker_pids(run_dir: str) -> set[int]:
    """The worker processes of the HTEX manager logging under ``run_dir``.

    LocalProvider detaches the worker pool from this process: look at all.
    """
    pids = set()
    for process in psutil.process_iter():
        try:
            cmdline = " ".join(process.cmdline())
            if "process_worker_pool" in cmdline and run_dir in cmdline:
                pids |= {c.pid for c in process.children() if "spawn_main" in " ".join(c.cmdline())}
        except psutil.NoSuchProcess:
            pass
    return pids


def test_killed_workers_fail_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", venv_path())
    before = descendants()
    client_store = tmp_path / "client-datasets"
    requests = [request for batch in rounds(client_store) for request in batch]
    a, b = parsl_endpoint("a", tmp_path), parsl_endpoint("b", tmp_path)
    running = tmp_path / "a" / "running"

    stop = threading.Event()
    killed: set[int] = set()

    def killer() -> None:
        while not stop.wait(0.05):
            for pid in {int(p.name) for p in running.iterdir()} - killed:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with Placer[BatchResult](
            [a, b],
            timeout_s=15,
            run_fn="placement_support.announce_and_run",
            datasets=DatasetStore(client_store),
        ) as placer:
            results = placer.run_all(requests, timeout=100)
            b_workers = worker_pids(b.run_dir)
            outcomes = placer.outcomes
            stop.set()
            thread.join()
    finally:
        stop.set()

    assert killed, "endpoint a never started a worker"
    # every request has exactly one result, its own
    assert [r.plan_key for r in results] == [q.plan_key for q in requests]
    ok = Counter(o.plan_key for o in outcomes if o.status == "ok")
    assert ok == Counter(q.plan_key for q in requests)
    failed = [o for o in outcomes if o.status in ("failed", "timeout")]
    # what failed on a completed on b
    where = {o.plan_key: o.endpoint for o in outcomes if o.status == "ok"}
    assert all(where[o.plan_key] == "b" for o in failed)
    assert {r.pid for r in results if where[r.plan_key] == "b"} <= b_workers
    print(f"\n{len(killed)} workers killed on a; failed attempts: {len(failed)}")
    for outcome in failed[:3]:
        print(f"  {outcome.plan_key[:12]} on {outcome.endpoint}: {outcome.status}: {outcome.error}")
    assert failed
    assert all(o.endpoint == "a" and o.attempt == 1 for o in failed)
    assert not [o for o in outcomes if o.status == "duplicate"]
    assert wait_gone(descendants() - before) == []

"""Endpoint kinds that run in this process or its children."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from academy_ml.placement import Endpoint, LocalEndpoint, resolve_task
from academy_ml.placement.endpoints import RUN_BATCH


def test_resolve_task_by_path_or_callable() -> None:
    from academy_ml.endpoint import run_batch

    assert resolve_task(RUN_BATCH) is run_batch
    assert resolve_task("academy_ml.endpoint:run_batch") is run_batch
    assert resolve_task(run_batch) is run_batch


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("run_batch", "expected 'package.module.function'"),
        ("academy_ml.endpoint.nothing_here", "has no function 'nothing_here'"),
        ("academy_ml.endpoint.__doc__", "has no function '__doc__'"),
    ],
)
def test_resolve_task_errors(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        resolve_task(path)


def test_resolve_task_unknown_module() -> None:
    with pytest.raises(ImportError):
        resolve_task("academy_ml.no_such_module.f")


def test_thread_endpoint_counts_in_flight() -> None:
    endpoint = LocalEndpoint("threads", workers=1)
    assert isinstance(endpoint, Endpoint)
    gate = threading.Event()
    running = endpoint.submit(lambda _: gate.wait(10), b"")
    queued = endpoint.submit("placement_twin.pid", b"!")
    assert endpoint.in_flight == 2
    gate.set()
    assert queued.result(10).endswith(b"!")
    running.result(10)
    assert endpoint.in_flight == 0
    endpoint.close()
    with pytest.raises(RuntimeError, match="'threads' is closed"):
        endpoint.submit("placement_twin.pid", b"")


def test_process_endpoint_sets_worker_environment(tmp_path: Path) -> None:
    endpoint = LocalEndpoint(
        "procs", workers=1, processes=True, env={"ACADEMY_ML_CACHE_DIR": str(tmp_path)}
    )
    try:
        reply = endpoint.submit("placement_twin.pid", b"").result(60).decode()
    finally:
        endpoint.close()
    pid, cache_dir = reply.split(" ")
    assert int(pid) != os.getpid()
    assert cache_dir == str(tmp_path)


def test_env_needs_processes() -> None:
    with pytest.raises(ValueError, match="env needs processes=True"):
        LocalEndpoint("t", env={"A": "b"})


def test_submit_that_raises_leaves_no_load() -> None:
    endpoint = LocalEndpoint("t")
    with pytest.raises(ValueError, match=r"expected 'package\.module\.function'"):
        endpoint.submit("nope", b"")
    assert endpoint.in_flight == 0
    endpoint.close()

"""Endpoint kinds that run in this process or its children."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from academy_ml.compute.placement import Endpoint, LocalEndpoint, resolve_task
from academy_ml.compute.placement.endpoints import RUN_BATCH


def test_resolve_task_by_path_or_callable() -> None:
    from academy_ml.compute.tasks import run_batch

    assert resolve_task(RUN_BATCH) is run_batch
    assert resolve_task("academy_ml.compute.tasks:run_batch") is run_batch
    assert resolve_task(run_batch) is run_batch


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("run_batch", "expected 'package.module.function'"),
        ("academy_ml.compute.tasks.nothing_here", "has no function 'nothing_here'"),
        ("academy_ml.compute.tasks.__doc__", "has no function '__doc__'"),
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


def test_parsl_endpoint_max_blocks_changes_while_it_runs(tmp_path: Path) -> None:
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    from academy_ml.compute.placement import ParslEndpoint, Scalable

    provider = LocalProvider(init_blocks=0, min_blocks=0, max_blocks=1)  # type: ignore[no-untyped-call]
    executor = HighThroughputExecutor(label="htex", address="127.0.0.1", provider=provider)
    # initialize_logging=False: parsl.log's handler would outlive the kernel.
    config = Config(
        executors=[executor], run_dir=str(tmp_path), strategy="none", initialize_logging=False
    )
    endpoint = ParslEndpoint("scalable", config)
    try:
        assert isinstance(endpoint, Scalable)
        endpoint.set_max_blocks(3)
        assert provider.max_blocks == 3
        with pytest.raises(ValueError, match="below scalable's min_blocks 0"):
            endpoint.set_max_blocks(-1)
        assert provider.max_blocks == 3
    finally:
        endpoint.close()
    assert not isinstance(LocalEndpoint("pool"), Scalable)


REPO = Path(__file__).resolve().parents[4]
#: A Parsl endpoint of the shipped deployment runs a task; Python run as
#: .venv/bin/python, in an environment that was never activated.
NOT_ACTIVATED = """
import sys
from academy_ml.compute.placement import build_placer

with build_placer(sys.argv[1]) as placer:
    print(placer.endpoints["local-parsl"].submit("builtins.len", b"abc").result(timeout=120))
"""


def test_a_parsl_endpoint_starts_from_an_environment_that_was_not_activated(
    tmp_path: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    done = subprocess.run(
        [sys.executable, "-c", NOT_ACTIVATED, str(REPO / "configs")],
        cwd=tmp_path,  # Parsl's runinfo/ goes here
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "3"

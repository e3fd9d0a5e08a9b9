"""Scenario: the slurm endpoint kit's Parsl config runs tasks through a real Slurm.

A one-node Slurm cluster (munged, slurmctld, slurmd of this machine, see
``tests/slurm_cluster.py``) stands in for an HPC site. The slurm kit is
rendered for it as an operator would, and the Parsl config of the registry
entry it writes (``endpoint.toml``, a ``ParslSpec``) is loaded as it is:
SlurmProvider submits a block with
``sbatch``, SrunLauncher starts the worker pool with ``srun``, the kit's
worker_init activates this virtualenv and points the cache at the kit's
``cache_dir``. The tasks push a dataset and run ``academy_ml.compute.tasks.run_batch``
twice (the second time from the node-local cache).

Skipped, with the reason in the test output, only where Slurm cannot start
(not installed, or a daemon fails here).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from parsl import python_app
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernel
from slurm_cluster import SlurmCluster, job_environment, slurm_cluster_or_skip

import academy_ml as aml
from academy_ml.agents.search_space import explored_batch
from academy_ml.compute.placement import ParslSpec, load_registry
from academy_ml.compute.tasks import BatchResult, make_request, put_dataset, run_batch
from academy_ml.compute.tasks.datasets import ENV_VAR as DATASET_DIR_VAR
from academy_ml.deploy.kits import render_kit

TESTS = Path(__file__).resolve().parent.parent
#: The whole scenario's budget; a block normally starts in a few seconds.
TASK_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[SlurmCluster]:
    with slurm_cluster_or_skip() as cluster:
        print(f"\nslurm cluster up in {cluster.root} (node {cluster.node})")
        yield cluster
        print(f"slurm cluster: stopping; jobs left: {cluster.jobs()}")
    left = cluster.leftovers()
    assert not left, f"processes of the Slurm cluster outlived it: {left}"


def _load_kit_config(output: Path, values: dict[str, str]) -> Config:
    render_kit("slurm", values, output, name="academy-ml-slurm")
    spec = load_registry(output / "endpoint.toml")["academy-ml-slurm"]
    assert isinstance(spec, ParslSpec)
    return spec.parsl_config("academy-ml-slurm")


def test_slurm_kit_runs_batches_in_slurm_jobs(
    slurm_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "node-cache"
    values = {
        "venv": sys.prefix,
        "partition": slurm_cluster.partition,
        "walltime": "00:05:00",
        "cache_dir": str(cache_dir),
        "address": "127.0.0.1",
        "max_blocks": "1",
        "nodes_per_block": "1",
        "workers_per_node": "2",
    }
    config = _load_kit_config(tmp_path / "kit", values)
    config.run_dir = str(tmp_path / "runinfo")
    config.strategy_period = 0.2  # scale out on the first task in ~0.2 s, not 5 s
    config.initialize_logging = False  # parsl.log's handler outlives the DFK
    # The login node side: the venv's scripts on PATH (Parsl starts
    # interchange.py by name), tests/ on PYTHONPATH (workers import
    # job_environment from slurm_cluster). Jobs inherit this environment
    # (sbatch --export=ALL), so the client gets another cache dir and no
    # VIRTUAL_ENV: what the workers see of those, the kit's worker_init set.
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "client-cache"))
    monkeypatch.delenv(DATASET_DIR_VAR, raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)

    X, y, pipelines = explored_batch(6, 300)
    request = make_request(pipelines, X, y, cv=3, scoring="r2", dataset_dir=str(tmp_path / "ds"))
    dataset = (tmp_path / "ds" / f"{request.dataset}.arrow").read_bytes()

    start = time.perf_counter()
    dfk = DataFlowKernel(config)
    try:
        label = config.executors[0].label
        probe = python_app(job_environment, data_flow_kernel=dfk, executors=[label])
        push = python_app(put_dataset, data_flow_kernel=dfk, executors=[label])
        run = python_app(run_batch, data_flow_kernel=dfk, executors=[label])

        envs = [probe() for _ in range(3)]
        first_env = envs[0].result(timeout=TASK_TIMEOUT_S)
        first_task_s = time.perf_counter() - start
        jobs_running = slurm_cluster.jobs()
        provider: Any = getattr(config.executors[0], "provider", None)
        submitted = sorted(provider.resources) if provider is not None else []
        assert push(dataset).result(timeout=TASK_TIMEOUT_S) == request.dataset
        first = BatchResult.from_bytes(run(request.to_bytes()).result(timeout=TASK_TIMEOUT_S))
        again = BatchResult.from_bytes(run(request.to_bytes()).result(timeout=TASK_TIMEOUT_S))
        seen = [first_env] + [e.result(timeout=TASK_TIMEOUT_S) for e in envs[1:]]
        tasks_s = time.perf_counter() - start
    finally:
        dfk.cleanup()
    cleanup_s = time.perf_counter() - start - tasks_s

    print(f"first task back after {first_task_s:.1f} s; all tasks after {tasks_s:.1f} s")
    print(
        f"jobs the SlurmProvider submitted: {submitted}; in squeue: {jobs_running};"
        f" dfk cleanup {cleanup_s:.1f} s"
    )
    for env in seen:
        print(f"  task on {env['host']} pid {env['pid']}: {env}")
    print(
        f"  run_batch: {first.executed} executed / {first.cache_hits} hits in "
        f"{first.seconds:.2f} s (host {first.host} pid {first.pid}); again: "
        f"{again.executed} executed / {again.cache_hits} hits"
    )

    # Every task ran in a Slurm job (a step srun started), the block the
    # provider submitted, with the environment the kit's worker_init made.
    job_ids = {env["SLURM_JOB_ID"] for env in seen}
    assert len(job_ids) == 1, seen
    assert "" not in job_ids, seen
    assert job_ids == set(submitted), (job_ids, submitted)
    assert job_ids <= set(jobs_running), (job_ids, jobs_running)
    for env in seen:
        assert env["SLURM_STEP_ID"] != "", env
        assert env["SLURM_JOB_PARTITION"] == slurm_cluster.partition
        assert env["ACADEMY_ML_CACHE_DIR"] == str(cache_dir)
        assert env["VIRTUAL_ENV"] == sys.prefix  # worker_init's `source .../activate`
        assert Path(env["prefix"]).resolve() == Path(sys.prefix).resolve()
        assert env["host"] == socket.gethostname()
        assert int(env["pid"]) != os.getpid()

    # The batch ran on a worker, scored as evaluate does here, and the second
    # run came from the node-local cache the kit configured.
    assert first.plan_key == request.plan_key
    assert first.pid != os.getpid()
    assert (cache_dir / "datasets" / f"{request.dataset}.arrow").is_file()
    assert not (tmp_path / "client-cache").exists()
    expected = aml.evaluate(pipelines, X, y, cv=3, scoring="r2")
    for ours, reference in zip(first.results, expected, strict=True):
        np.testing.assert_allclose(ours.fold_scores, reference.fold_scores, atol=1e-9)
    assert first.executed > 0
    assert again.executed == 0
    assert again.cache_hits > 0

    # The DFK cancelled its block (scancel): no job is left in the queue.
    waited = time.monotonic()
    deadline = waited + 20
    while slurm_cluster.jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"queue empty {time.monotonic() - waited:.1f} s after dfk cleanup")
    assert slurm_cluster.jobs() == []

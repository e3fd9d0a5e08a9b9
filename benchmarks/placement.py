"""Per-task cost of academy_ml's endpoint function on a Parsl endpoint.

One Parsl HighThroughputExecutor with a LocalProvider (one block, address
127.0.0.1, a worker per core) is the endpoint; its workers get their own
node-local cache and dataset store through ``worker_init``. Side by side, on
the same executor and in the same run:

  noop        a raw Parsl task: ``len`` of the same request bytes
  run_batch   ``academy_ml.compute.tasks.run_batch`` on a trivial plan (one Ridge
              on 20 rows, 2 folds; every task another alpha, so every task
              compiles and runs a plan of its own): decode, read the dataset
              (kept by the worker after its first task), compile, run
              against the node cache, encode the result

Reported: the median time of one task submitted alone (sequential, after a
warm-up) and tasks/s with many in flight, for both, and the difference per
task (what academy_ml adds), then run_batch's own time on the worker (the
rest of the difference is the way through Parsl). The results are checked (every run_batch task
returns the plan key it was given); times are printed, never asserted.

``--quick`` (few tasks) runs in ``make test`` as a check that the endpoint
function works on a real HTEX worker.

Usage: python benchmarks/placement.py [--tasks 300] [--burst 1000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from parsl.app.app import python_app
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernel
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider
from sklearn.linear_model import Ridge

from academy_ml.compute.tasks import BatchResult, make_request, put_dataset, run_batch
from academy_ml.compute.tasks.datasets import DatasetStore


def endpoint(workdir: Path) -> DataFlowKernel:
    # Parsl starts interchange.py and process_worker_pool.py by name: the
    # environment's scripts must be on PATH, as when it is activated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    cache, datasets = workdir / "cache", workdir / "datasets"
    init = f"export ACADEMY_ML_CACHE_DIR={cache} ACADEMY_ML_DATASET_DIR={datasets}"
    executor = HighThroughputExecutor(
        label="endpoint",
        address="127.0.0.1",
        max_workers_per_node=2,
        provider=LocalProvider(init_blocks=1, max_blocks=1, worker_init=init),  # type: ignore[no-untyped-call]
    )
    return DataFlowKernel(
        Config(executors=[executor], strategy_period=0.2, run_dir=str(workdir / "runinfo"))
    )


def timed(
    submit: Callable[[], Future[Any]], n: int, results: list[Any] | None = None
) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = submit().result()
        times.append(time.perf_counter() - start)
        if results is not None:
            results.append(result)
    return times


def burst(submit: Callable[[], Future[Any]], n: int) -> float:
    start = time.perf_counter()
    futures = [submit() for _ in range(n)]
    for future in futures:
        future.result()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=300, help="sequential tasks per variant")
    parser.add_argument("--burst", type=int, default=1000, help="tasks in flight at once")
    parser.add_argument("--quick", action="store_true", help="a few tasks: a smoke check")
    args = parser.parse_args()
    tasks, n_burst = (20, 40) if args.quick else (args.tasks, args.burst)

    with tempfile.TemporaryDirectory(prefix="academy-ml-placement-") as tmp:
        workdir = Path(tmp)
        X = np.random.default_rng(0).normal(size=(20, 3))
        y = X @ np.array([1.0, -2.0, 0.5])
        client_store = workdir / "client"
        # One request per task: distinct alphas, distinct plans.
        alphas = iter(np.geomspace(1e-3, 1e3, 40 + 2 * tasks + n_burst + 2))
        requests = [
            make_request([Ridge(alpha=a)], X, y, cv=2, dataset_dir=str(client_store))
            for a in alphas
        ]
        payloads = iter([r.to_bytes() for r in requests])
        keys = {r.plan_key for r in requests}
        dataset = DatasetStore(client_store).path(requests[0].dataset).read_bytes()

        dfk = endpoint(workdir)
        try:
            noop_app = python_app(len, data_flow_kernel=dfk)
            batch_app = python_app(run_batch, data_flow_kernel=dfk)
            # The workers share the node's dataset store: one push serves both.
            pushed = python_app(put_dataset, data_flow_kernel=dfk)(dataset).result()
            assert pushed == requests[0].dataset
            size = len(requests[0].to_bytes())

            def noop() -> Future[Any]:
                return noop_app(b"x" * size)  # type: ignore[no-any-return]

            def batch() -> Future[Any]:
                return batch_app(next(payloads))  # type: ignore[no-any-return]

            first = BatchResult.from_bytes(batch().result())
            assert first.plan_key in keys
            assert noop().result() == size
            timed(noop, 20)
            timed(batch, 20)
            replies: list[bytes] = []
            noop_times, batch_times = timed(noop, tasks), timed(batch, tasks, replies)
            noop_rate, batch_rate = burst(noop, n_burst), burst(batch, n_burst)
            last = BatchResult.from_bytes(batch().result())
            assert last.plan_key in keys
            assert all(r.error is None for r in last.results)
        finally:
            dfk.cleanup()

    noop_ms = statistics.median(noop_times) * 1e3
    batch_ms = statistics.median(batch_times) * 1e3
    print(f"one Parsl HTEX endpoint (LocalProvider, 2 workers); {tasks} sequential tasks")
    print(f"{'':24}{'median ms/task':>16}{'tasks/s (' + str(n_burst) + ' in flight)':>28}")
    print(f"{'raw Parsl no-op':24}{noop_ms:16.2f}{noop_rate:28.0f}")
    print(f"{'run_batch, trivial plan':24}{batch_ms:16.2f}{batch_rate:28.0f}")
    added = batch_ms - noop_ms
    print(f"added per task: {added:.2f} ms (goal <= 1 ms: {'met' if added <= 1 else 'not met'})")
    own_ms = statistics.median(BatchResult.from_bytes(r).seconds for r in replies) * 1e3
    print(
        f"run_batch's own time on the worker: {own_ms:.2f} ms median, "
        f"{first.seconds * 1e3:.2f} ms first (cold)"
    )


if __name__ == "__main__":
    main()

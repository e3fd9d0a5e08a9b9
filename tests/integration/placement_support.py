"""Shared by the placement scenarios: Parsl endpoints, a workload, leak checks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from processes import alive
from sklearn.datasets import load_diabetes
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from academy_ml.compute.placement import ParslEndpoint, ParslSpec
from academy_ml.compute.tasks import BatchRequest, make_request, run_batch

HERE = Path(__file__).resolve().parent
#: Where :func:`announce_and_run` writes pids.
RUNNING_ENV = "PLACEMENT_TEST_RUNNING"

#: Three preprocessing prefixes (imputer, scaler) sharing no step: an odd
#: count, so round-robin over two endpoints sends a prefix's second batch to
#: the other endpoint.
PREFIXES = (("mean", StandardScaler), ("median", MinMaxScaler), ("most_frequent", MaxAbsScaler))


def venv_path() -> str:
    """``PATH`` with the venv's scripts first (Parsl starts its interchange and
    worker pool by name)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def parsl_endpoint(name: str, root: Path, workers: int = 1) -> ParslEndpoint:
    """A local HTEX endpoint through the registry's spec, with its own cache dir.

    Heartbeats every second: a manager notices a dead worker that often.
    Workers can import this module, and :func:`announce_and_run` writes the
    pids of the workers running a batch to ``root/name/running``.
    """
    running = root / name / "running"
    running.mkdir(parents=True)
    spec = ParslSpec(
        kind="parsl",
        worker_init=f"export PYTHONPATH={HERE}\nexport {RUNNING_ENV}={running}",
        workers_per_node=workers,
        heartbeat_period=1,
        heartbeat_threshold=10,
        cache_dir=str(root / name / "cache"),
        run_dir=str(root / name / "runinfo"),
    )
    endpoint = spec.build(name)
    assert isinstance(endpoint, ParslEndpoint)
    return endpoint


def announce_and_run(payload: bytes) -> bytes:
    """``run_batch``, after writing this worker's pid where the test looks."""
    (Path(os.environ[RUNNING_ENV]) / str(os.getpid())).touch()
    return run_batch(payload)


def rounds(dataset_dir: Path, n_rounds: int = 2) -> list[list[BatchRequest]]:
    """Batches that share preprocessing across rounds: round ``r``'s batch ``i``
    reuses round 0's batch ``i`` prefix (imputer, scaler, PCA) with new models."""
    X, y = load_diabetes(return_X_y=True)
    batches = []
    for r in range(n_rounds):
        alphas = (10.0 ** (2 * r - 1), 10.0 ** (2 * r))
        batches.append(
            [
                make_request(
                    [
                        Pipeline(
                            [
                                ("impute", SimpleImputer(strategy=strategy)),
                                ("scale", scaler()),
                                ("pca", PCA(n_components=5)),
                                ("model", Ridge(alpha=alpha)),
                            ]
                        )
                        for alpha in alphas
                    ],
                    X,
                    y,
                    cv=3,
                    threads=1,
                    dataset_dir=str(dataset_dir),
                )
                for strategy, scaler in PREFIXES
            ]
        )
    return batches


def wait_gone(pids: set[int], timeout: float = 20.0) -> list[int]:
    """Waits for ``pids`` to exit; the ones still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        running = alive(pids)
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.2)

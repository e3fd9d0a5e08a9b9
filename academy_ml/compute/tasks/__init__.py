"""What runs on an endpoint: batches of pipelines, datasets by reference.

Endpoint workers (Parsl, Globus Compute, a local pool) import these
functions; nothing is pickled by value. Requests and results are msgpack
bytes (:mod:`~academy_ml.compute.tasks.request`); pipelines travel as specs that
name only allow-listed classes and functions (:mod:`~academy_ml.compute.tasks.specs`); the
dataset is named by fingerprint and read from the endpoint's dataset store
(:mod:`~academy_ml.compute.tasks.datasets`). The node-local cache is the one
``$ACADEMY_ML_CACHE_DIR`` names, which the endpoint kits point at
node-local disk.
"""

from __future__ import annotations

import functools
import os
import socket
import time

from academy_ml.compute.tasks.datasets import DatasetStore
from academy_ml.compute.tasks.plans import PlanCache
from academy_ml.compute.tasks.request import (
    BatchRequest,
    BatchResult,
    PipelineScores,
    compile_request,
    make_request,
)
from academy_ml.engine.cache import ENV_VAR as CACHE_ENV
from academy_ml.engine.cache import Cache
from academy_ml.engine.data import Table, Target, prepare_features, prepare_target
from academy_ml.engine.plan import Plan
from academy_ml.engine.run import run
from academy_ml.exceptions import PlanError

__all__ = [
    "BatchRequest",
    "BatchResult",
    "DatasetStore",
    "PipelineScores",
    "compile_request",
    "has_dataset",
    "make_request",
    "put_dataset",
    "run_batch",
]


def run_batch(request: bytes) -> bytes:
    """Run a batch request on this node; the msgpack :class:`BatchResult`.

    The same request always yields the same scores: running it twice costs
    cache lookups the second time, and a caller discards the duplicate by
    its plan key. A pipeline naming something this endpoint does not trust
    gets a ``WireError`` as its result; the others of the batch still run.

    Raises:
        WireError: The request is malformed or out of bounds (more threads than
            this node has cores, more folds than the dataset has rows, a split
            holding rows beyond it...).
        DataError: The dataset is not in this endpoint's store.
        PlanError: This endpoint compiles another plan than the client did
            (different academy_ml or scikit-learn versions).
    """
    start = time.perf_counter()
    task = BatchRequest.from_bytes(request)
    table, y = _dataset(str(DatasetStore().root), task.dataset)
    compiled = _PLANS.compiled(task, table, y)
    scores = {
        i: PipelineScores(index=i, fold_scores=[], error=error)
        for i, error in compiled.refused.items()
    }
    executed = cache_hits = 0
    if compiled.plan is not None:
        _check_plan(compiled.plan, task, complete=compiled.complete)
        cache = _node_cache(os.environ.get(CACHE_ENV))
        report = run(compiled.plan, threads=task.threads, cache=cache)
        for r in report.results:
            index = compiled.runnable[r.index]
            scores[index] = PipelineScores(
                index=index,
                fold_scores=[float(s) for s in r.fold_scores],
                error=r.error,
                backends=dict(r.backends),
            )
        executed, cache_hits = report.executed, report.cache_hits
    result = BatchResult(
        plan_key=task.plan_key,
        host=socket.gethostname(),
        pid=os.getpid(),
        results=[scores[i] for i in sorted(scores)],
        executed=executed,
        cache_hits=cache_hits,
        seconds=time.perf_counter() - start,
    )
    return result.to_bytes()


def _check_plan(plan: Plan, task: BatchRequest, *, complete: bool) -> None:
    """Refuse to run when this endpoint compiles the batch otherwise than its client.

    With pipelines refused, the plan is a part of the client's: its nodes
    (content keys) must all be among the client's.
    """
    if complete and plan.key == task.plan_key:
        return
    if not complete and plan.node_keys <= set(task.node_keys):
        return
    raise PlanError(
        f"this endpoint compiles plan {plan.key} where the client compiled "
        f"{task.plan_key}: are academy_ml and scikit-learn the same versions on both?"
    )


# A worker process serves many batches on few datasets: it keeps the last
# datasets it read prepared (a fingerprint names immutable content), the
# last plans it compiled, and one handle on the node cache per directory.
_PLANS = PlanCache()


@functools.lru_cache(maxsize=2)
def _dataset(root: str, fingerprint: str) -> tuple[Table, Target]:
    X, y = DatasetStore(root).get(fingerprint)
    table = prepare_features(X)
    return table, prepare_target(y, table.n_rows)


@functools.lru_cache(maxsize=4)
def _node_cache(directory: str | None) -> Cache:
    return Cache(directory)


def put_dataset(data: bytes) -> str:
    """Store a dataset (Arrow IPC bytes) in this node's store; its fingerprint.

    Raises:
        DataError: The bytes are not an academy_ml dataset.
    """
    return DatasetStore().put_bytes(data)


def has_dataset(fingerprint: str) -> bool:
    """Whether this node's store holds dataset ``fingerprint``."""
    return fingerprint in DatasetStore()

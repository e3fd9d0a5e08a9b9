"""Scenario: the real Globus Compute SDK Executor drives real endpoint engines.

Two Globus Compute endpoints: a ``ProcessPoolEngine`` and a
``GlobusComputeEngine`` (a Parsl HighThroughputExecutor with LocalProvider
inside). Our :class:`GlobusComputeEndpoint` wraps the real
``globus_compute_sdk.Executor``, the same code that talks to a deployed
endpoint; only the cloud service is stood in for (``placement_gc_service``):
web-service calls answered locally, results delivered over AMQP to the
Executor's own result watcher.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from globus_compute_endpoint.engines import (  # type: ignore[import-untyped]
    GlobusComputeEngine,
    ProcessPoolEngine,
)
from parsl.providers import LocalProvider
from placement_gc_service import LoopbackBroker, LoopbackService
from placement_support import rounds, venv_path, wait_gone
from processes import descendants

from academy_ml.compute.placement import GlobusComputeEndpoint, GlobusComputeSpec, Placer
from academy_ml.compute.tasks import BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore

POOL_ID = uuid.UUID("11111111-2222-4444-8888-000000000001")
HTEX_ID = uuid.UUID("11111111-2222-4444-8888-000000000002")


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackService]:
    monkeypatch.setenv("PATH", venv_path())
    before = descendants()
    # ProcessPoolEngine's workers inherit this process's environment
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "pool-cache"))
    pool = ProcessPoolEngine(max_workers=1)
    htex = GlobusComputeEngine(
        address="127.0.0.1",
        max_workers_per_node=1,
        heartbeat_period=1,
        heartbeat_threshold=10,
        job_status_kwargs={"max_idletime": 60, "strategy_period": 0.2},
        provider=LocalProvider(  # type: ignore[no-untyped-call]
            init_blocks=1,
            min_blocks=0,
            max_blocks=1,
            worker_init=f"export ACADEMY_ML_CACHE_DIR={tmp_path / 'htex-cache'}",
        ),
    )
    pool.start(endpoint_id=POOL_ID, run_dir=str(tmp_path / "pool"))
    htex.start(endpoint_id=HTEX_ID, run_dir=str(tmp_path / "htex"))
    broker = LoopbackBroker()
    try:
        yield LoopbackService({POOL_ID: pool, HTEX_ID: htex}, broker)
    finally:
        broker.close()
        pool.shutdown(block=True)
        htex.shutdown()
    assert wait_gone(descendants() - before) == []


def test_placer_on_globus_compute_endpoints(service: LoopbackService, tmp_path: Path) -> None:
    client_store = tmp_path / "client-datasets"
    requests = rounds(client_store)
    endpoints = [
        GlobusComputeSpec(kind="globus_compute", endpoint_id=POOL_ID).build("pool", service),
        GlobusComputeSpec(kind="globus_compute", endpoint_id=HTEX_ID).build("htex", service),
    ]
    assert all(isinstance(e, GlobusComputeEndpoint) for e in endpoints)
    with Placer[BatchResult](
        endpoints, timeout_s=120, datasets=DatasetStore(client_store)
    ) as placer:
        results = [placer.run_all(batch, timeout=120) for batch in requests]
        outcomes = placer.outcomes

    # every request one result, its own; round 2 went where its prefix was
    for batch, batch_results in zip(requests, results, strict=True):
        assert [r.plan_key for r in batch_results] == [q.plan_key for q in batch]
    ran = {o.plan_key: o.endpoint for o in outcomes if o.status == "ok"}
    assert len(ran) == 6
    assert [o for o in outcomes if o.status != "ok"] == []
    for first, second in zip(requests[0], requests[1], strict=True):
        assert ran[first.plan_key] == ran[second.plan_key]
    assert {ran[q.plan_key] for q in requests[0]} == {"pool", "htex"}
    assert all(r.executed < 39 for r in results[1])  # the prefix came from the cache
    # the SDK sent tasks in batches: one put_dataset + runs per endpoint, coalesced
    print(f"\ntasks per batch request: {service.batches}")
    assert sum(service.batches) == 6 + 2
    assert max(service.batches) > 1

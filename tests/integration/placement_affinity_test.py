"""Scenario: cache-affinity routing beats round-robin on repeated prefixes.

Two Parsl HighThroughputExecutors with LocalProvider act as two endpoints,
each with its own node-local cache. Round 1 runs three batches (three
preprocessing prefixes); round 2 runs three batches reusing them with new
models. Affinity placement sends every round-2 batch to the endpoint that
computed its prefix; round-robin sends each to the other one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from placement_support import parsl_endpoint, rounds, venv_path, wait_gone
from processes import descendants

from academy_ml.compute.placement import Placer, Policy
from academy_ml.compute.tasks import BatchRequest, BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore


def run_rounds(
    policy: Policy, root: Path, requests: list[list[BatchRequest]], client_store: Path
) -> list[BatchResult]:
    endpoints = [parsl_endpoint(f"{policy}-a", root), parsl_endpoint(f"{policy}-b", root)]
    results: list[BatchResult] = []
    with Placer[BatchResult](
        endpoints, policy=policy, timeout_s=120, datasets=DatasetStore(client_store)
    ) as placer:
        for batch in requests:
            results += placer.run_all(batch, timeout=120)
        assert all(o.status == "ok" for o in placer.outcomes), placer.outcomes
    return results


def test_affinity_yields_more_cache_hits_than_round_robin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", venv_path())
    before = descendants()
    client_store = tmp_path / "client-datasets"

    requests = rounds(client_store)
    rr_results = run_rounds("round_robin", tmp_path, requests, client_store)
    affinity_results = run_rounds("affinity", tmp_path, requests, client_store)

    # Round 2 (round 1 starts with cold caches either way). A plan node is
    # served from the cache when it is not executed: a hit on a deep node
    # (the PCA output) serves its whole ancestry. BatchResult.cache_hits
    # counts the lookups that hit, which stop at the deepest cached nodes,
    # so it rewards shallow hits (the fold splits every endpoint holds).
    round2 = {"affinity": affinity_results[3:], "round-robin": rr_results[3:]}
    served = {
        k: sum(len(q.node_keys) - r.executed for q, r in zip(requests[1], v, strict=True))
        for k, v in round2.items()
    }
    executed = {k: sum(r.executed for r in v) for k, v in round2.items()}
    lookups = {k: sum(r.cache_hits for r in v) for k, v in round2.items()}
    print(
        f"\nround 2, plan nodes served from cache: {served}"
        f"\nround 2, operations executed: {executed}"
        f"\nround 2, cache lookups that hit (BatchResult.cache_hits): {lookups}"
    )
    assert served["affinity"] > served["round-robin"]
    assert executed["affinity"] < executed["round-robin"]
    # same scores whichever endpoint ran a batch, and every batch ran on a worker
    for a, b in zip(affinity_results, rr_results, strict=True):
        assert a.plan_key == b.plan_key
        assert [s.fold_scores for s in a.results] == [s.fold_scores for s in b.results]
    # each endpoint got the dataset once, into its own store
    for name in ("affinity-a", "affinity-b"):
        assert len(list((tmp_path / name / "cache" / "datasets").glob("*.arrow"))) == 1
    assert wait_gone(descendants() - before) == []

"""The placer's choices and fail-over, with in-process endpoints running a twin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import placement_twin as twin
import pytest

from academy_ml.compute.placement import (
    InMemoryAffinity,
    LocalEndpoint,
    PlacementError,
    Placer,
)
from academy_ml.compute.tasks import BatchRequest, BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore

DATASET = "0123456789abcdef0123456789abcdef"


def request(plan: str, keys: list[str], dataset: str = DATASET) -> BatchRequest:
    return BatchRequest(
        plan_key=plan, node_keys=keys, pipelines=b"", cv=2, scoring=None, dataset=dataset
    )


@pytest.fixture(autouse=True)
def _fresh_twin() -> Iterator[None]:
    twin.reset()
    yield
    twin.reset()


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    """A client store holding DATASET (its bytes are the fingerprint: the twin's put)."""
    datasets = DatasetStore(tmp_path / "datasets")
    datasets.root.mkdir()
    datasets.path(DATASET).write_bytes(DATASET.encode())
    return datasets


def make_placer(
    store: DatasetStore, names: tuple[str, ...] = ("a", "b"), **options: Any
) -> Placer[BatchResult]:
    endpoints = [LocalEndpoint(name, workers=2) for name in names]
    return Placer(
        endpoints,
        run_fn="placement_twin.run",
        put_fn="placement_twin.put",
        datasets=store,
        **options,
    )


def test_affinity_sends_a_plan_where_most_of_its_nodes_are(store: DatasetStore) -> None:
    with make_placer(store, ("a", "b", "c")) as placer:
        placer.affinity.record(["k1", "k2"], "b")
        placer.affinity.record(["k3"], "c")
        assert [e.name for e in placer.rank(request("p", ["k1", "k2", "k3", "k4"]))] == [
            "b",
            "c",
            "a",
        ]
        result = placer.submit(request("p", ["k1", "k2", "k3", "k4"])).result(10)
        assert result.host == "b"
        # b now holds all the batch's nodes; c still holds k3
        assert placer.affinity.held(["k1", "k3", "k4"], ["a", "b", "c"]) == {"a": 0, "b": 3, "c": 1}


def test_no_record_means_least_loaded_then_registry_order(store: DatasetStore) -> None:
    with make_placer(store, ("a", "b", "c")) as placer:
        assert [e.name for e in placer.rank(request("p", ["x"]))] == ["a", "b", "c"]
        blocker = threading.Event()
        busy = placer.endpoints["a"].submit(lambda _: blocker.wait(10), b"")
        assert placer.endpoints["a"].in_flight == 1
        assert [e.name for e in placer.rank(request("p", ["x"]))] == ["b", "c", "a"]
        blocker.set()
        busy.result(10)
        assert placer.endpoints["a"].in_flight == 0


def test_round_robin_rotates(store: DatasetStore) -> None:
    with make_placer(store, ("a", "b", "c"), policy="round_robin") as placer:
        placer.affinity.record(["k"], "c")
        firsts = [placer.rank(request(f"p{i}", ["k"]))[0].name for i in range(4)]
        assert firsts == ["a", "b", "c", "a"]


def test_dataset_pushed_once_per_endpoint(store: DatasetStore) -> None:
    with make_placer(store, policy="round_robin") as placer:
        results = placer.run_all([request(f"p{i}", [f"k{i}"]) for i in range(6)], timeout=20)
    assert [r.plan_key for r in results] == [f"p{i}" for i in range(6)]
    assert twin.PUSHED == {("a", DATASET): 1, ("b", DATASET): 1}


def test_dataset_not_in_client_store_is_not_pushed(store: DatasetStore) -> None:
    other = "f" * 32
    with make_placer(store) as placer:
        placer.submit(request("p", ["k"], dataset=other)).result(10)
    assert not twin.PUSHED


def test_failed_endpoint_fails_over_and_every_outcome_is_recorded(store: DatasetStore) -> None:
    twin.BEHAVIOUR["a"] = "fail"
    with make_placer(store) as placer:
        results = placer.run_all([request(f"p{i}", [f"k{i}"]) for i in range(4)], timeout=20)
        outcomes = placer.outcomes
        assert {r.host for r in results} == {"b"}
        assert sorted(r.plan_key for r in results) == [f"p{i}" for i in range(4)]
        # no record names the endpoint that failed
        keys = [f"k{i}" for i in range(4)]
        assert placer.affinity.held(keys, ["a", "b"]) == {"a": 0, "b": 4}
    failed = [o for o in outcomes if o.status == "failed"]
    assert failed, "some requests went to a first"
    assert all(o.endpoint == "a" and o.attempt == 1 for o in failed)
    assert all(o.error is not None and "ConnectionError" in o.error for o in failed)
    ok = [o for o in outcomes if o.status == "ok"]
    assert sorted(o.plan_key for o in ok) == [f"p{i}" for i in range(4)]
    assert all(o.endpoint == "b" for o in ok)


def test_every_attempt_failing_raises_with_the_outcomes(store: DatasetStore) -> None:
    twin.BEHAVIOUR.update(a="fail", b="fail")
    with make_placer(store, attempts=3) as placer:
        future = placer.submit(request("p", ["k"]))
        with pytest.raises(PlacementError, match="every attempt failed") as caught:
            future.result(10)
    assert [(o.endpoint, o.attempt) for o in caught.value.outcomes] == [
        ("a", 1),
        ("b", 2),
        ("a", 3),
    ]
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_task_errors_are_not_retried(store: DatasetStore) -> None:
    twin.BEHAVIOUR.update(a="bad_data")
    with make_placer(store) as placer:
        with pytest.raises(PlacementError, match="NaN reached a model"):
            placer.submit(request("p", ["k"])).result(10)
        assert [o.status for o in placer.outcomes] == ["failed"]
    assert twin.RAN == {"a": ["p"]}


def test_timeout_fails_over_and_the_late_result_is_discarded(store: DatasetStore) -> None:
    twin.BEHAVIOUR["a"] = "hang"  # answers after 1.5 s
    with make_placer(store, timeout_s=0.5) as placer:
        future = placer.submit(request("p", ["k"]))
        assert future.result(10).host == "b"
        # wait for the hung attempt to answer, then look at what was recorded
        while len(placer.outcomes) < 3:
            threading.Event().wait(0.1)
        statuses = [(o.endpoint, o.status) for o in placer.outcomes]
        assert future.result().host == "b"
    assert statuses == [("a", "timeout"), ("b", "ok"), ("a", "duplicate")]


def test_a_plan_in_flight_is_joined_not_run_twice(store: DatasetStore) -> None:
    twin.BEHAVIOUR["a"] = "hang"
    with make_placer(store, ("a",)) as placer:
        first = placer.submit(request("p", ["k"]))
        second = placer.submit(request("p", ["k"]))
        assert first is second
        first.result(10)
        # settled: submitting again runs again
        placer.submit(request("p", ["k"])).result(10)
    assert twin.RAN == {"a": ["p", "p"]}


def test_a_result_for_another_plan_is_refused(store: DatasetStore) -> None:
    def wrong(payload: bytes) -> bytes:
        reply = BatchRequest.from_bytes(payload)
        return BatchResult(
            plan_key=reply.plan_key + "x", host="h", pid=1, results=[], executed=0,
            cache_hits=0, seconds=0.0,
        ).to_bytes()  # fmt: skip

    with make_placer(store, ("a",), attempts=1) as placer:
        placer.run_fn = wrong
        with pytest.raises(PlacementError, match="result is for plan px"):
            placer.submit(request("p", ["k"])).result(10)


class BrokenAffinity(InMemoryAffinity):
    def held(self, keys: Any, endpoints: Any) -> dict[str, int]:
        raise ConnectionError("redis is gone")

    def record(self, keys: Any, endpoint: str) -> None:
        raise ConnectionError("redis is gone")


def test_unreachable_affinity_store_places_by_load(store: DatasetStore) -> None:
    endpoints = [LocalEndpoint("a"), LocalEndpoint("b")]
    with Placer[BatchResult](
        endpoints,
        BrokenAffinity(),
        run_fn="placement_twin.run",
        put_fn="placement_twin.put",
        datasets=store,
    ) as placer:
        assert placer.submit(request("p", ["k"])).result(10).host == "a"


def test_closed_endpoint_counts_as_a_failed_attempt(store: DatasetStore) -> None:
    with make_placer(store) as placer:
        placer.endpoints["a"].close()
        assert placer.submit(request("p", ["k"])).result(10).host == "b"
        assert [(o.endpoint, o.status) for o in placer.outcomes] == [("a", "failed"), ("b", "ok")]


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="at least one endpoint"):
        Placer([])
    twins = [LocalEndpoint("a"), LocalEndpoint("a")]
    with pytest.raises(ValueError, match="unique"):
        Placer(twins)
    with pytest.raises(ValueError, match="attempts"):
        Placer(twins[:1], attempts=0)
    for endpoint in twins:
        endpoint.close()

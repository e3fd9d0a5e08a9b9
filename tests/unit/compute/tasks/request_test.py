"""Requests carry any splitter as explicit row indices, checked by the endpoint before use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile_specs import request_fields
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import academy_ml.compute.tasks as tasks
from academy_ml.compute.tasks import BatchRequest, BatchResult, make_request, put_dataset, run_batch
from academy_ml.compute.tasks.datasets import ENV_VAR
from academy_ml.compute.tasks.plans import PlanCache
from academy_ml.compute.tasks.request import MAX_FOLDS, MAX_SPLIT_INDICES, SPLIT_DTYPE, Split
from academy_ml.exceptions import DataError, ParameterError, WireError


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PlanCache:
    """This process plays an endpoint with its own cache, dataset store and plans."""
    plans = PlanCache()
    monkeypatch.setattr(tasks, "_PLANS", plans)
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "datasets"))
    return plans


def regression(n: int = 120) -> tuple[Any, Any, Any, list[Any]]:
    X, y = make_regression(n, 6, noise=5.0, random_state=0)
    groups = np.random.default_rng(0).integers(0, 8, n)
    pipelines = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in (0.1, 10.0)]
    return X, y, groups, pipelines


def sent(request: BatchRequest, tmp_path: Path) -> BatchResult:
    """What the endpoint answers once the client pushed the request's dataset."""
    put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
    result: BatchResult = BatchResult.from_bytes(run_batch(request.to_bytes()))
    return result


def assert_scores_as_cross_validate(
    result: BatchResult, pipelines: list[Any], **kwargs: Any
) -> None:
    for ours, pipeline in zip(result.results, pipelines, strict=True):
        assert ours.error is None
        expected = cross_validate(pipeline, **kwargs)["test_score"]
        np.testing.assert_allclose(ours.fold_scores, expected, atol=1e-9)


def test_a_group_kfold_request_scores_as_cross_validate(
    endpoint: PlanCache, tmp_path: Path
) -> None:
    X, y, groups, pipelines = regression()
    request = make_request(
        pipelines, X, y, cv=GroupKFold(4), groups=groups, dataset_dir=str(tmp_path / "client")
    )
    assert request.cv == 4
    assert request.splits is not None
    assert len(request.splits) == 4
    # The endpoint compiled the plan the client keyed (run_batch refuses another).
    result = sent(request, tmp_path)
    assert result.plan_key == request.plan_key
    assert result.executed > 0
    assert_scores_as_cross_validate(result, pipelines, X=X, y=y, groups=groups, cv=GroupKFold(4))


def test_splitters_and_iterables_of_splits_travel_explicitly(
    endpoint: PlanCache, tmp_path: Path
) -> None:
    X, y = make_classification(90, 5, random_state=1)
    pipelines = [make_pipeline(StandardScaler(), LogisticRegression(C=c)) for c in (0.1, 1.0)]
    shuffled = StratifiedKFold(3, shuffle=True, random_state=2)  # stratifies on the client's y
    iterable = list(ShuffleSplit(3, test_size=0.25, random_state=3).split(X))
    for cv in (shuffled, iter(iterable)):
        request = make_request(pipelines, X, y, cv=cv, dataset_dir=str(tmp_path / "client"))
        assert request.splits is not None
        reference = shuffled if cv is shuffled else iterable
        assert_scores_as_cross_validate(sent(request, tmp_path), pipelines, X=X, y=y, cv=reference)
    # Two splittings of one dataset are two plans on the endpoint, never a stale one.
    assert endpoint.misses == 2


def test_an_integer_cv_stays_compact(tmp_path: Path) -> None:
    X, y, groups, pipelines = regression()
    request = make_request(pipelines, X, y, cv=3, dataset_dir=str(tmp_path))
    assert (request.cv, request.splits) == (3, None)
    with pytest.warns(UserWarning, match="groups are ignored by cv=3"):
        grouped = make_request(pipelines, X, y, cv=3, groups=groups, dataset_dir=str(tmp_path))
    assert grouped == request


def test_clients_learn_what_a_splitter_cannot_do(tmp_path: Path) -> None:
    X, y, groups, pipelines = regression()
    with pytest.raises(ParameterError, match="groups"):
        make_request(pipelines, X, y, cv=GroupKFold(4), dataset_dir=str(tmp_path))
    with pytest.raises(DataError, match="one label per row"):
        make_request(
            pipelines, X, y, cv=GroupKFold(4), groups=groups[:5], dataset_dir=str(tmp_path)
        )
    with pytest.raises(ParameterError, match=r"fold 0 .* the test indices are empty"):
        make_request(pipelines, X, y, cv=[([0, 1], [])], dataset_dir=str(tmp_path))
    with pytest.raises(
        ParameterError,
        match="an endpoint would refuse this batch: cv: Input should be less than or equal to 100",
    ):
        make_request(pipelines, X, y, cv=ShuffleSplit(MAX_FOLDS + 1), dataset_dir=str(tmp_path))
    with pytest.raises(TypeError, match="cv must be"):
        make_request(pipelines, X, y, cv="five", dataset_dir=str(tmp_path))


def rows(*indices: int) -> bytes:
    return np.array(indices, dtype=SPLIT_DTYPE).tobytes()


def split(train: Any, test: Any) -> dict[str, Any]:
    """A split's fields as an attacker writes them."""
    return {"train": train, "test": test}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"cv": 1}, "cv must be at least 2 folds without explicit splits"),
        ({"cv": 2, "splits": [split(rows(0), rows(1))]}, "cv says 2 folds but 1 splits"),
        ({"cv": 1, "splits": []}, "splits: List should have at least 1 item"),
        ({"cv": 1, "splits": [split(b"", rows(1))]}, "fold 0: the train indices are empty"),
        (
            {"cv": 2, "splits": [split(rows(0), rows(1)), split(rows(0), b"\x01\x00\x00")]},
            "fold 1: the test indices are 3 bytes, not whole 4-byte integers",
        ),
        ({"cv": 1, "splits": [split(rows(0), [1])]}, "splits.0.test"),
        ({"cv": 1, "splits": [{"train": rows(0)}]}, "splits.0.test"),
        ({"cv": 1, "splits": [{**split(rows(0), rows(1)), "x": 1}]}, "splits.0.x"),
        (
            {"cv": MAX_FOLDS, "splits": [split(rows(0), rows(1))] * (MAX_FOLDS + 1)},
            "splits: List should have at most 100 items",
        ),
        (
            {"cv": 1, "splits": [split(b"\x00" * 4 * MAX_SPLIT_INDICES, rows(1))]},
            f"{MAX_SPLIT_INDICES + 1:,} row indices exceed {MAX_SPLIT_INDICES:,}",
        ),
    ],
)
def test_split_fields_are_bounded(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(WireError, match=match) as raised:
        BatchRequest.from_bytes(request_fields(**changes))
    assert len(str(raised.value)) < 1000


def test_the_endpoint_checks_splits_against_the_datasets_rows(
    endpoint: PlanCache, tmp_path: Path
) -> None:
    X, y, _, pipelines = regression(40)
    request = make_request(pipelines, X, y, cv=KFold(2), dataset_dir=str(tmp_path / "client"))
    assert request.splits is not None
    beyond = [request.splits[0], Split(train=request.splits[1].train, test=rows(3, 40))]
    forged = request.model_copy(update={"splits": beyond})
    put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
    with pytest.raises(
        WireError, match="fold 1: the test indices hold 40, outside the dataset's 40"
    ):
        run_batch(forged.to_bytes())
    # Nothing was compiled from the forged folds; the genuine request still runs.
    assert len(endpoint) == 0
    assert [len(r.fold_scores) for r in sent(request, tmp_path).results] == [2, 2]

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor

import academy_ml as aml
from academy_ml.endpoint import BatchRequest, BatchResult, make_request, put_dataset, run_batch
from academy_ml.endpoint.datasets import ENV_VAR, to_arrow, to_bytes
from academy_ml.exceptions import DataError, PlanError, WireError
from academy_ml.pipeline.generate import explored_batch


@pytest.fixture
def endpoint_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This process plays an endpoint with its own cache and dataset store."""
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "datasets"))
    return tmp_path / "cache", tmp_path / "datasets"


def test_a_batch_scores_as_evaluate_does_and_reruns_from_the_cache(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    X, y, pipelines = explored_batch(12, 600)
    forest = clone(pipelines[0])
    forest.steps[-1] = ("forest", RandomForestRegressor(5, random_state=0))  # Python backend
    pipelines.append(forest)
    request = make_request(
        pipelines, X, y, cv=3, scoring="r2", dataset_dir=str(tmp_path / "client")
    )
    assert (
        put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
        == request.dataset
    )
    first = BatchResult.from_bytes(run_batch(request.to_bytes()))
    expected = aml.evaluate(pipelines, X, y, cv=3, scoring="r2")
    assert first.plan_key == request.plan_key
    assert [r.index for r in first.results] == list(range(13))
    for ours, reference in zip(first.results, expected, strict=True):
        np.testing.assert_allclose(ours.fold_scores, reference.fold_scores, atol=1e-9)
        assert ours.backends == reference.backends
    assert first.executed > 0
    again = BatchResult.from_bytes(run_batch(request.to_bytes()))
    assert again.executed == 0
    assert again.cache_hits > 0
    assert first.results[-1].error is None
    assert first.results[-1].backends["forest"] == "python"
    np.testing.assert_array_equal(
        [r.fold_scores for r in again.results], [r.fold_scores for r in first.results]
    )


def test_a_missing_dataset_is_a_clear_error(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    X, y, pipelines = explored_batch(2, 100)
    request = make_request(pipelines, X, y, cv=2, dataset_dir=str(tmp_path / "client"))
    with pytest.raises(DataError, match="push it to this endpoint first"):
        run_batch(request.to_bytes())


def test_a_plan_key_mismatch_is_refused(endpoint_dirs: tuple[Path, Path]) -> None:
    X, y, pipelines = explored_batch(2, 100)
    put_dataset(to_bytes(to_arrow(X, y)))
    request = make_request(pipelines, X, y, cv=2)
    forged = request.model_copy(update={"plan_key": "0" * 32})
    with pytest.raises(PlanError, match="same versions"):
        run_batch(forged.to_bytes())


def test_malformed_requests_are_wire_errors(endpoint_dirs: tuple[Path, Path]) -> None:
    with pytest.raises(WireError):
        run_batch(b"\x93garbage")
    with pytest.raises(WireError, match="BatchRequest"):
        BatchRequest.from_bytes(
            BatchResult(
                plan_key="k", host="h", pid=1, results=[], executed=0, cache_hits=0, seconds=0.0
            ).to_bytes()
        )

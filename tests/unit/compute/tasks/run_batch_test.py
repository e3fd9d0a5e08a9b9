from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pytest
from hostile_specs import ATTACK_PATHS, rename, request_fields
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVR

import academy_ml as aml
import academy_ml.compute.tasks as tasks
from academy_ml.agents.search_space import explored_batch
from academy_ml.compute.tasks import BatchRequest, BatchResult, make_request, put_dataset, run_batch
from academy_ml.compute.tasks.datasets import ENV_VAR, to_arrow, to_bytes
from academy_ml.compute.tasks.plans import PlanCache
from academy_ml.compute.tasks.request import MAX_FOLDS, MAX_NODE_KEYS
from academy_ml.compute.tasks.specs import MAX_SPEC_BYTES, TRUSTED_NAMES_ENV
from academy_ml.engine import lower as lower_module
from academy_ml.engine import plan as plan_module
from academy_ml.exceptions import DataError, ParameterError, PlanError, WireError


@pytest.fixture
def endpoint_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This process plays an endpoint with its own cache, dataset store and plans."""
    monkeypatch.setattr(tasks, "_PLANS", PlanCache())
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "datasets"))
    return tmp_path / "cache", tmp_path / "datasets"


def test_a_batch_scores_as_evaluate_does_and_reruns_from_the_cache(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    X, y, pipelines = explored_batch(12, 600)
    foreign = clone(pipelines[0])
    foreign.steps[-1] = ("svr", SVR())  # Python backend
    pipelines.append(foreign)
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
    assert first.results[-1].backends["svr"] == "python"
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
                plan_key="0" * 32,
                host="h",
                pid=1,
                results=[],
                executed=0,
                cache_hits=0,
                seconds=0.0,
            ).to_bytes()
        )


def command_dataset(marker: Path) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """A dataset whose column names are a command line (issue 14's attack)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["touch", str(marker)])
    return X, X.to_numpy() @ [1.0, -2.0] + rng.normal(scale=0.1, size=60)


def hostile_request(tmp_path: Path, function_path: str) -> tuple[BatchRequest, list[Any]]:
    """A batch of a fine pipeline and one whose FunctionTransformer names ``function_path``."""
    X, y = command_dataset(tmp_path / "marker")
    fine = make_pipeline(StandardScaler(), Ridge())
    pipelines = [fine, make_pipeline(FunctionTransformer(np.absolute), Ridge())]
    request = make_request(pipelines, X, y, cv=3, dataset_dir=str(tmp_path / "client"))
    put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
    hostile = rename(request.pipelines, "numpy:absolute", function_path)
    return request.model_copy(update={"pipelines": hostile}), [fine, X, y]


@pytest.mark.parametrize("path", ATTACK_PATHS)
def test_issue_14_function_transformer_attack_runs_nothing(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path, path: str
) -> None:
    request, (fine, X, y) = hostile_request(tmp_path, path)
    result = BatchResult.from_bytes(run_batch(request.to_bytes()))
    assert not (tmp_path / "marker").exists()
    scored, refused = result.results
    assert refused.index == 1
    assert refused.fold_scores == []
    assert refused.error is not None
    assert refused.error.startswith("WireError: pipeline 1:")
    assert f"{path} is not on this endpoint's allow-list of functions" in refused.error
    # The other pipeline of the batch still scores, as evaluate scores it.
    (expected,) = aml.evaluate([fine], X, y, cv=3)
    assert scored.error is None
    np.testing.assert_allclose(scored.fold_scores, expected.fold_scores, atol=1e-9)


def test_the_attack_is_real_when_an_operator_trusts_the_function(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the test above guards against: trusted, the function runs the column names.
    monkeypatch.setenv(TRUSTED_NAMES_ENV, "subprocess:run")
    request, _ = hostile_request(tmp_path, "subprocess:run")
    run_batch(request.to_bytes())
    assert (tmp_path / "marker").exists()


def test_a_forged_batch_with_refused_pipelines_still_checks_the_plan(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    request, _ = hostile_request(tmp_path, ATTACK_PATHS[0])
    forged = request.model_copy(update={"node_keys": ["0" * 32]})
    with pytest.raises(PlanError, match="same versions"):
        run_batch(forged.to_bytes())


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"threads": 100_000}, "threads"),
        ({"threads": 0}, "threads"),
        ({"threads": 2.5}, "threads"),
        ({"cv": 1}, "cv"),
        ({"cv": MAX_FOLDS + 1}, "cv"),
        ({"cv": 2.5}, "cv"),
        ({"cv": True}, "cv"),
        ({"plan_key": "k" * 10_000_000}, "plan_key"),
        ({"dataset": "../../etc/passwd"}, "dataset"),
        ({"node_keys": ["b" * 32] * (MAX_NODE_KEYS + 1)}, "node_keys"),
        ({"node_keys": ["../x"]}, "node_keys.0"),
        ({"pipelines": b"\x90" * (MAX_SPEC_BYTES + 1)}, "pipelines"),
        ({"scoring": "r2; rm -rf /"}, "scoring"),
        ({"version": 2}, "version"),
        ({"extra": 1}, "extra"),
    ],
)
def test_request_fields_are_bounded(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(WireError, match=match) as raised:
        BatchRequest.from_bytes(request_fields(**changes))
    # An attacker's field is never echoed at its own length.
    assert len(str(raised.value)) < 1000


def test_folds_are_bounded_by_the_datasets_rows(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    X, y, pipelines = explored_batch(2, 40)
    request = make_request(pipelines, X, y, cv=2, dataset_dir=str(tmp_path / "client"))
    put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
    too_many = request.model_copy(update={"cv": 41})
    with pytest.raises(WireError, match="41 folds of a dataset of 40 rows"):
        run_batch(too_many.to_bytes())


def test_clients_learn_the_bounds_before_sending(tmp_path: Path) -> None:
    X, y, pipelines = explored_batch(1, 120)
    with pytest.raises(ParameterError, match="cv: Input should be less than or equal to 100"):
        make_request(pipelines, X, y, cv=MAX_FOLDS + 1, dataset_dir=str(tmp_path))


def test_threads_are_bounded_by_this_nodes_cores(endpoint_dirs: tuple[Path, Path]) -> None:
    cores = os.cpu_count() or 1
    assert BatchRequest.from_bytes(request_fields(threads=cores)).threads == cores
    with pytest.raises(WireError, match=f"{cores + 1} threads; this endpoint has {cores} cores"):
        run_batch(request_fields(threads=cores + 1))


def test_hostile_envelopes_are_wire_errors() -> None:
    nested: Any = msgpack.packb([])
    for _ in range(300):
        nested = msgpack.packb([msgpack.ExtType(1, nested)])
    for data in [
        nested,
        b"\x91" * 1000 + b"\xc0",
        msgpack.packb({"plan_key": msgpack.ExtType(13, b"cos\nsystem\n.")}),
        b"\xdf\xff\xff\xff\xff",
        b"",
        "not bytes",
    ]:
        for parse in (BatchRequest.from_bytes, BatchResult.from_bytes):
            with pytest.raises(WireError):
                parse(data)


def test_a_batch_is_lowered_once_per_side(
    endpoint_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lowered: list[str] = []
    real = lower_module.lower

    def lower(ir: Any, *args: Any, **kwargs: Any) -> Any:
        lowered.append(type(ir.source).__name__)
        return real(ir, *args, **kwargs)

    monkeypatch.setattr(plan_module, "lower", lower)
    X, y, pipelines = explored_batch(6, 120)
    request = make_request(pipelines, X, y, cv=3, dataset_dir=str(tmp_path / "client"))
    put_dataset((tmp_path / "client" / f"{request.dataset}.arrow").read_bytes())
    assert len(lowered) == len(pipelines)  # the client, for the plan key

    lowered.clear()
    result = BatchResult.from_bytes(run_batch(request.to_bytes()))
    assert len(lowered) == len(pipelines)  # the endpoint, from the specs it decoded
    assert result.plan_key == request.plan_key
    assert all(r.error is None for r in result.results)

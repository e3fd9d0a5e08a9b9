from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile_specs import rename
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import academy_ml.compute.tasks as tasks
from academy_ml import engine
from academy_ml.compute.tasks import BatchRequest, BatchResult, make_request, put_dataset, run_batch
from academy_ml.compute.tasks import plans as plans_module
from academy_ml.compute.tasks.datasets import ENV_VAR
from academy_ml.compute.tasks.plans import PlanCache
from academy_ml.compute.tasks.specs import TRUSTED_NAMES_ENV
from academy_ml.compute.tasks.trust import allow_lists
from academy_ml.exceptions import PlanError


@pytest.fixture
def compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], PlanCache]:
    """An endpoint in this process with a fresh plan cache; counts its compilations."""
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "datasets"))
    cache = PlanCache(max_plans=3)
    monkeypatch.setattr(tasks, "_PLANS", cache)
    counted: list[int] = []

    def compile_batch(pipelines: list[Any], **kwargs: Any) -> Any:
        counted.append(len(pipelines))
        return engine.compile_batch(pipelines, **kwargs)

    monkeypatch.setattr(plans_module, "compile_batch", compile_batch)
    return counted, cache


def request(tmp_path: Path, alpha: float, pipelines: list[Any] | None = None) -> BatchRequest:
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    made = make_request(
        pipelines or [Ridge(alpha=alpha)], X, y, cv=3, dataset_dir=str(tmp_path / "client")
    )
    put_dataset((tmp_path / "client" / f"{made.dataset}.arrow").read_bytes())
    return made


def test_a_repeated_request_compiles_once(
    compiles: tuple[list[int], PlanCache], tmp_path: Path
) -> None:
    counted, cache = compiles
    task = request(tmp_path, 1.0)
    first = BatchResult.from_bytes(run_batch(task.to_bytes()))
    again = BatchResult.from_bytes(run_batch(task.to_bytes()))
    assert counted == [1]
    assert (cache.hits, cache.misses) == (1, 1)
    assert again.plan_key == first.plan_key == task.plan_key
    assert [r.fold_scores for r in again.results] == [r.fold_scores for r in first.results]
    assert again.executed == 0  # the node cache serves the run itself


def test_the_plan_cache_is_bounded_least_recently_used_out(
    compiles: tuple[list[int], PlanCache], tmp_path: Path
) -> None:
    counted, cache = compiles
    tasks_ = [request(tmp_path, alpha) for alpha in (0.1, 1.0, 10.0, 100.0)]
    for task in tasks_[:3]:
        run_batch(task.to_bytes())
    run_batch(tasks_[0].to_bytes())  # used again: the second is now the oldest
    run_batch(tasks_[3].to_bytes())
    assert len(cache) == 3
    assert len(counted) == 4
    run_batch(tasks_[0].to_bytes())
    assert len(counted) == 4
    run_batch(tasks_[1].to_bytes())
    assert len(counted) == 5


def test_a_cached_plan_is_still_checked_against_each_request(
    compiles: tuple[list[int], PlanCache], tmp_path: Path
) -> None:
    counted, _ = compiles
    task = request(tmp_path, 1.0)
    run_batch(task.to_bytes())
    forged = task.model_copy(update={"plan_key": "0" * 32})
    with pytest.raises(PlanError, match="same versions"):
        run_batch(forged.to_bytes())
    assert counted == [1]


def test_what_the_endpoint_trusts_is_part_of_the_key(
    compiles: tuple[list[int], PlanCache], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted, _ = compiles
    assert "numpy:asarray" not in allow_lists()["function"]
    pipelines = [
        make_pipeline(StandardScaler(), Ridge()),
        make_pipeline(FunctionTransformer(np.absolute), Ridge()),
    ]
    task = request(tmp_path, 1.0, pipelines)
    renamed = task.model_copy(
        update={"pipelines": rename(task.pipelines, "numpy:absolute", "numpy:asarray")}
    )
    untrusted = BatchResult.from_bytes(run_batch(renamed.to_bytes()))
    assert untrusted.results[1].error is not None
    assert "allow-list" in untrusted.results[1].error
    monkeypatch.setenv(TRUSTED_NAMES_ENV, "numpy:asarray")
    # The same bytes, now trusted: compiled again, and the pipeline runs.
    trusted = BatchResult.from_bytes(run_batch(renamed.to_bytes()))
    assert trusted.results[1].error is None
    assert counted == [1, 2]

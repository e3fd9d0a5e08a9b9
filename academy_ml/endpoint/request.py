"""What a batch task carries to an endpoint and back, as msgpack.

A :class:`BatchRequest` holds the batch's pipelines as specs
(:mod:`~academy_ml.endpoint.specs`), its folds and scoring, the dataset's
fingerprint, the plan key the client compiled (the task's idempotency key;
the endpoint checks that it compiles the same plan) and the plan's node keys
(what a placer routes on for cache affinity). A :class:`BatchResult` holds
the scores and what the run cost.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgpack
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from academy_ml.endpoint import datasets, specs
from academy_ml.exceptions import WireError
from academy_ml.pipeline import compile_batch
from academy_ml.pipeline.plan import Plan


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        """Msgpack form."""
        return bytes(msgpack.packb(self.model_dump(), use_bin_type=True))

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """Parse the msgpack form.

        Raises:
            WireError: Malformed, or of another version.
        """
        try:
            fields = msgpack.unpackb(data, raw=False)
            return cls.model_validate(fields)
        except (ValueError, TypeError, ValidationError) as exc:
            raise WireError(f"not a valid {cls.__name__}: {exc}") from exc


class BatchRequest(_Message):
    """A batch of pipelines to cross-validate on an endpoint."""

    #: Layout version; a request of another version is refused.
    version: Literal[1] = 1
    plan_key: str
    node_keys: list[str]
    pipelines: bytes
    cv: int = Field(ge=2)
    scoring: str | None = None
    dataset: str
    threads: int | None = Field(None, ge=1)


class PipelineScores(BaseModel):
    """Scores of one pipeline of a batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    fold_scores: list[float]
    error: str | None = None
    backends: dict[str, str] = Field(default_factory=dict)

    @property
    def mean_score(self) -> float:
        """Mean fold score (NaN when the pipeline failed)."""
        if self.error is not None or not self.fold_scores:
            return math.nan
        return float(np.mean(self.fold_scores))


class BatchResult(_Message):
    """Scores of a batch and what computing them took."""

    version: Literal[1] = 1
    plan_key: str
    host: str
    pid: int
    results: list[PipelineScores]
    executed: int
    cache_hits: int
    seconds: float


def compile_request(
    pipelines: list[Any],
    table: pa.Table,
    *,
    cv: int,
    scoring: str | None,
    threads: int | None = None,
) -> tuple[BatchRequest, Plan]:
    """Compile ``pipelines`` on a dataset table and describe the task.

    Args:
        pipelines: Unfitted scikit-learn estimators or Pipelines.
        table: The dataset, as :func:`~academy_ml.endpoint.datasets.to_arrow` makes it.
        cv: Number of folds (``cross_val_score``'s choice of splitter).
        scoring: A scikit-learn scoring name, or None.
        threads: Runtime threads on the endpoint (default: all its cores).

    Raises:
        UnsupportedPayloadError: A pipeline cannot be described as a spec.
    """
    X, y = datasets.split(table)
    plan = compile_batch(pipelines, cv=cv, X=X, y=y, scoring=scoring)
    # Compiled with X and y, so the plan is bound to both.
    assert plan.table is not None
    assert plan.target is not None
    request = BatchRequest(
        plan_key=plan.key,
        node_keys=sorted({node["key"] for node in plan.nodes if node.get("key")}),
        pipelines=specs.encode_pipelines(pipelines),
        cv=cv,
        scoring=scoring,
        dataset=datasets.prepared_fingerprint(plan.table, plan.target),
        threads=threads,
    )
    return request, plan


def make_request(
    pipelines: list[Any],
    X: Any,
    y: Any,
    *,
    cv: int = 5,
    scoring: str | None = None,
    threads: int | None = None,
    dataset_dir: str | None = None,
) -> BatchRequest:
    """Describe a batch task and keep its dataset in the client's store.

    The dataset goes to :class:`~academy_ml.endpoint.datasets.DatasetStore`
    (``dataset_dir``, default the node's), from where a placer pushes it to
    an endpoint once, or which endpoints on a shared filesystem read.

    Raises:
        DataError: ``X`` and ``y`` do not make a dataset.
        UnsupportedPayloadError: A pipeline cannot be described as a spec.
    """
    table = datasets.to_arrow(X, y)
    request, _ = compile_request(pipelines, table, cv=cv, scoring=scoring, threads=threads)
    datasets.DatasetStore(dataset_dir).put(table, request.dataset)
    return request

"""What a batch task carries to an endpoint and back, as msgpack.

A :class:`BatchRequest` holds the batch's pipelines as specs
(:mod:`~academy_ml.compute.tasks.specs`), its folds and scoring, the dataset's
fingerprint, the plan key the client compiled (the task's idempotency key;
the endpoint checks that it compiles the same plan) and the plan's node keys
(what a placer routes on for cache affinity). A :class:`BatchResult` holds
the scores and what the run cost.

Both travel sealed in the one envelope of :mod:`academy_ml.core.envelope`
(their class name as the kind, :data:`MESSAGE_VERSION`) and arrive from
another machine, so they are decoded within size and depth limits and
every field is bounded: a
request cannot make an endpoint start more threads than it has cores, run
more than :data:`MAX_FOLDS` folds or hold more than a few tens of megabytes.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from academy_ml.compute.tasks import datasets, specs
from academy_ml.core.envelope import seal_model, summarize, unseal_model
from academy_ml.engine import compile_batch
from academy_ml.engine.data import Table, Target
from academy_ml.engine.plan import Plan
from academy_ml.exceptions import ParameterError, WireError

#: Layout version of requests and results (2: sealed in the core envelope).
MESSAGE_VERSION = 2
#: Longest request or result accepted (the specs and a batch's node keys).
MAX_MESSAGE_BYTES = specs.MAX_SPEC_BYTES + 16 * 2**20
#: Most folds a request may ask for.
MAX_FOLDS = 100
#: Most node keys a request may carry (a batch of 1,000 pipelines of 5 steps
#: in 5 folds has about 25,000).
MAX_NODE_KEYS = 200_000
#: Most pipelines a result may report.
MAX_RESULTS = 100_000
#: Longest error message a result may carry for a pipeline.
MAX_ERROR_CHARS = 10_000
# Requests and results are flat: a model of lists of models of lists.
_MAX_DEPTH = 8

#: A plan or node key (128 bits in hex from the compiler; any short token on the wire).
Key = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
#: A dataset fingerprint, a file name in the endpoint's store: 128 bits in hex.
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
_Name = Annotated[str, StringConstraints(max_length=256)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        """Msgpack form.

        Raises:
            UnsupportedPayloadError: It exceeds what a reader accepts.
        """
        return seal_model(self, MESSAGE_VERSION, max_bytes=MAX_MESSAGE_BYTES, max_depth=_MAX_DEPTH)

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """Parse the msgpack form.

        Raises:
            EnvelopeError: Another kind of message, or of another version.
            WireError: Malformed, too large or deep, or a field is out of its bounds.
        """
        return unseal_model(
            cls, data, (MESSAGE_VERSION,), max_bytes=MAX_MESSAGE_BYTES, max_depth=_MAX_DEPTH
        )


class BatchRequest(_Message):
    """A batch of pipelines to cross-validate on an endpoint."""

    plan_key: Key
    node_keys: list[Key] = Field(max_length=MAX_NODE_KEYS)
    pipelines: bytes = Field(max_length=specs.MAX_SPEC_BYTES)
    cv: StrictInt = Field(ge=2, le=MAX_FOLDS)
    scoring: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,100}$")] | None = None
    dataset: Fingerprint
    threads: StrictInt | None = Field(None, ge=1, le=4096)

    @classmethod
    def from_bytes(cls, data: bytes) -> BatchRequest:
        """Parse a request arriving at this endpoint.

        Raises:
            WireError: As :meth:`_Message.from_bytes`, or it asks for more
                threads than this node has cores.
        """
        request: BatchRequest = super().from_bytes(data)
        cores = os.cpu_count() or 1
        if request.threads is not None and request.threads > cores:
            raise WireError(
                f"a request asks for {request.threads} threads; this endpoint has {cores} cores"
            )
        return request


class PipelineScores(BaseModel):
    """Scores of one pipeline of a batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: StrictInt = Field(ge=0)
    fold_scores: list[float] = Field(max_length=MAX_FOLDS)
    error: Annotated[str, StringConstraints(max_length=MAX_ERROR_CHARS)] | None = None
    backends: dict[_Name, _Name] = Field(default_factory=dict, max_length=1000)

    @property
    def mean_score(self) -> float:
        """Mean fold score (NaN when the pipeline failed)."""
        if self.error is not None or not self.fold_scores:
            return math.nan
        return float(np.mean(self.fold_scores))


class BatchResult(_Message):
    """Scores of a batch and what computing them took."""

    plan_key: Key
    host: _Name
    pid: StrictInt
    results: list[PipelineScores] = Field(max_length=MAX_RESULTS)
    executed: StrictInt = Field(ge=0)
    cache_hits: StrictInt = Field(ge=0)
    seconds: float


def compile_request(
    pipelines: list[Any],
    table: pa.Table | tuple[Table, Target],
    *,
    cv: int,
    scoring: str | None,
    threads: int | None = None,
) -> tuple[BatchRequest, Plan]:
    """Compile ``pipelines`` on a dataset table and describe the task.

    Args:
        pipelines: Unfitted scikit-learn estimators or Pipelines.
        table: The dataset, as :func:`~academy_ml.compute.tasks.datasets.to_arrow` makes it,
            or its features and target as ``prepare_features`` and
            ``prepare_target`` made them (a caller compiling many batches
            prepares its dataset once).
        cv: Number of folds (``cross_val_score``'s choice of splitter).
        scoring: A scikit-learn scoring name, or None.
        threads: Runtime threads on the endpoint (default: all its cores).

    Raises:
        UnsupportedPayloadError: A pipeline cannot be described as a spec.
        ParameterError: ``cv``, ``threads`` or the batch's size is beyond what
            an endpoint accepts.
    """
    X, y = table if isinstance(table, tuple) else datasets.split(table)
    plan = compile_batch(pipelines, cv=cv, X=X, y=y, scoring=scoring)
    # Compiled with X and y, so the plan is bound to both.
    assert plan.table is not None
    assert plan.target is not None
    try:
        request = BatchRequest(
            plan_key=plan.key,
            node_keys=sorted(plan.node_keys),
            pipelines=specs.encode_pipelines(pipelines),
            cv=cv,
            scoring=scoring,
            dataset=datasets.prepared_fingerprint(plan.table, plan.target),
            threads=threads,
        )
    except ValidationError as exc:
        raise ParameterError(f"an endpoint would refuse this batch: {summarize(exc)}") from exc
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

    The dataset goes to :class:`~academy_ml.compute.tasks.datasets.DatasetStore`
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

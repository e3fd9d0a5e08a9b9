"""What a batch task carries to an endpoint and back, as msgpack.

A :class:`BatchRequest` holds the batch's pipelines as specs
(:mod:`~academy_ml.compute.tasks.specs`), its folds (a number, or any
splitter's splits as explicit row indices) and scoring, the dataset's
fingerprint, the plan key the client compiled (the task's idempotency key;
the endpoint checks that it compiles the same plan) and the plan's node keys
(what a placer routes on for cache affinity). A :class:`BatchResult` holds
the scores and what the run cost.

Both travel sealed in the one envelope of :mod:`academy_ml.core.envelope`
(their class name as the kind, :data:`MESSAGE_VERSION`) and arrive from
another machine, so they are decoded within size and depth limits and
every field is bounded: a
request cannot make an endpoint start more threads than it has cores, run
more than :data:`MAX_FOLDS` folds or hold more than a few tens of megabytes,
and explicit splits are checked against the dataset's rows before use.
"""

from __future__ import annotations

import hashlib
import math
import os
from numbers import Integral
from typing import Annotated, Any, Self

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from academy_ml.compute.tasks import datasets, specs
from academy_ml.core.envelope import seal_model, summarize, unseal_model
from academy_ml.engine import compile_batch
from academy_ml.engine.data import Table, Target, prepare_features, prepare_target
from academy_ml.engine.plan import Plan
from academy_ml.engine.splits import check_cv_argument, make_folds, split_with_groups
from academy_ml.exceptions import ParameterError, WireError

#: Layout version of requests and results (2: sealed in the core envelope).
MESSAGE_VERSION = 2
#: Most folds a request may ask for.
MAX_FOLDS = 100
#: Most row indices a request's explicit splits may hold, train and test of
#: every fold together (5 folds of 1.6 million rows).
MAX_SPLIT_INDICES = 2**23
#: How explicit splits travel: little-endian unsigned 32-bit row indices.
SPLIT_DTYPE = np.dtype("<u4")
#: Longest request or result accepted (the specs, a batch's node keys, its splits).
MAX_MESSAGE_BYTES = specs.MAX_SPEC_BYTES + 16 * 2**20 + MAX_SPLIT_INDICES * SPLIT_DTYPE.itemsize
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


class Split(BaseModel):
    """One fold's train and test rows, as :data:`SPLIT_DTYPE` bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: bytes
    test: bytes


class BatchRequest(_Message):
    """A batch of pipelines to cross-validate on an endpoint.

    ``cv`` is the number of folds: alone, the folds ``cross_validate`` makes
    of that number (compact); with ``splits``, how many splits there are.
    """

    plan_key: Key
    node_keys: list[Key] = Field(max_length=MAX_NODE_KEYS)
    pipelines: bytes = Field(max_length=specs.MAX_SPEC_BYTES)
    cv: StrictInt = Field(ge=1, le=MAX_FOLDS)
    splits: list[Split] | None = Field(None, min_length=1, max_length=MAX_FOLDS)
    scoring: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,100}$")] | None = None
    dataset: Fingerprint
    threads: StrictInt | None = Field(None, ge=1, le=4096)

    @field_validator("splits")
    @classmethod
    def _bounded_splits(cls, splits: list[Split] | None) -> list[Split] | None:
        if splits is None:
            return None
        width = SPLIT_DTYPE.itemsize
        total = 0
        for fold, split in enumerate(splits):
            for part, rows in (("train", split.train), ("test", split.test)):
                if not rows:
                    raise ValueError(f"fold {fold}: the {part} indices are empty")
                if len(rows) % width:
                    raise ValueError(
                        f"fold {fold}: the {part} indices are {len(rows)} bytes, "
                        f"not whole {width}-byte integers"
                    )
                total += len(rows) // width
        if total > MAX_SPLIT_INDICES:
            raise ValueError(f"{total:,} row indices exceed {MAX_SPLIT_INDICES:,}")
        return splits

    @model_validator(mode="after")
    def _folds_agree(self) -> Self:
        if self.splits is None and self.cv < 2:
            raise ValueError(f"cv must be at least 2 folds without explicit splits, got {self.cv}")
        if self.splits is not None and len(self.splits) != self.cv:
            raise ValueError(f"cv says {self.cv} folds but {len(self.splits)} splits came")
        return self

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

    def folds(self, n_rows: int) -> int | list[tuple[NDArray[Any], NDArray[Any]]]:
        """The ``cv`` to compile this batch with on a dataset of ``n_rows`` rows, checked.

        Raises:
            WireError: More folds than rows, or a split holds a row beyond the dataset.
        """
        if self.splits is None:
            if self.cv > n_rows:
                raise WireError(f"a request asks for {self.cv} folds of a dataset of {n_rows} rows")
            return self.cv
        pairs = []
        for fold, split in enumerate(self.splits):
            train = np.frombuffer(split.train, dtype=SPLIT_DTYPE)
            test = np.frombuffer(split.test, dtype=SPLIT_DTYPE)
            for part, rows in (("train", train), ("test", test)):
                if int(rows.max()) >= n_rows:
                    raise WireError(
                        f"a request's fold {fold}: the {part} indices hold {int(rows.max())}, "
                        f"outside the dataset's {n_rows} rows"
                    )
            pairs.append((train, test))
        return pairs

    def folds_key(self) -> tuple[int, bytes | None]:
        """What this batch's folds depend on, compact (a digest of the splits)."""
        if self.splits is None:
            return self.cv, None
        digest = hashlib.blake2b(digest_size=16)
        for split in self.splits:
            for rows in (split.train, split.test):
                digest.update(len(rows).to_bytes(8, "little"))
                digest.update(rows)
        return self.cv, digest.digest()


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
    cv: Any,
    scoring: str | None,
    threads: int | None = None,
    groups: Any = None,
) -> tuple[BatchRequest, Plan]:
    """Compile ``pipelines`` on a dataset table and describe the task.

    Args:
        pipelines: Unfitted scikit-learn estimators or Pipelines.
        table: The dataset, as :func:`~academy_ml.compute.tasks.datasets.to_arrow` makes it,
            or its features and target as ``prepare_features`` and
            ``prepare_target`` made them (a caller compiling many batches
            prepares its dataset once).
        cv: What ``cross_validate`` takes: a number of folds (sent as it is),
            a splitter or an iterable of (train, test) index arrays (split
            here and sent as explicit row indices).
        scoring: A scikit-learn scoring name, or None.
        threads: Runtime threads on the endpoint (default: all its cores).
        groups: Group labels, one per row, for group splitters.

    Raises:
        UnsupportedPayloadError: A pipeline cannot be described as a spec.
        ParameterError: ``cv``, ``threads`` or the batch's size is beyond what
            an endpoint accepts, or the splitter cannot split the dataset.
        DataError: ``groups`` has not one label per row.
        TypeError: ``cv`` is none of what ``cross_validate`` takes.
    """
    X, y = table if isinstance(table, tuple) else datasets.split(table)
    features = prepare_features(X)
    target = prepare_target(y, features.n_rows)
    folds = _explicit_folds(cv, target, groups)
    # The client compiles with the folds it sends, so both sides key the same plan.
    plan = compile_batch(pipelines, cv=folds, X=features, y=target, scoring=scoring)
    try:
        request = BatchRequest(
            plan_key=plan.key,
            node_keys=sorted(plan.node_keys),
            pipelines=specs.encode_pipelines(pipelines),
            cv=folds if isinstance(folds, int) else len(folds),
            splits=None if isinstance(folds, int) else [_split(*pair) for pair in folds],
            scoring=scoring,
            dataset=datasets.prepared_fingerprint(features, target),
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
    cv: Any = 5,
    scoring: str | None = None,
    threads: int | None = None,
    groups: Any = None,
    dataset_dir: str | None = None,
) -> BatchRequest:
    """Describe a batch task and keep its dataset in the client's store.

    ``cv`` and ``groups`` are what ``cross_validate`` takes (see
    :func:`compile_request`). The dataset goes to
    :class:`~academy_ml.compute.tasks.datasets.DatasetStore` (``dataset_dir``,
    default the node's), from where a placer pushes it to an endpoint once,
    or which endpoints on a shared filesystem read.

    Raises:
        DataError: ``X`` and ``y`` do not make a dataset, or ``groups`` has
            not one label per row.
        UnsupportedPayloadError: A pipeline cannot be described as a spec.
        ParameterError: As :func:`compile_request`.
    """
    table = datasets.to_arrow(X, y)
    request, _ = compile_request(
        pipelines, table, cv=cv, scoring=scoring, threads=threads, groups=groups
    )
    datasets.DatasetStore(dataset_dir).put(table, request.dataset)
    return request


def _explicit_folds(
    cv: Any, target: Target, groups: Any
) -> int | list[tuple[NDArray[Any], NDArray[Any]]]:
    """A number of folds as it is; any other ``cv`` split here into explicit row indices.

    A splitter splits the same way for every estimator kind (only a number
    of folds stratifies for classifiers), so its splits are made once.
    """
    cv = split_with_groups(check_cv_argument(cv), target.original, groups)
    if cv is None or isinstance(cv, Integral):
        return 5 if cv is None else int(cv)
    made = make_folds(cv, target.original, classifier=False, groups=groups)
    if len(target.original) > np.iinfo(SPLIT_DTYPE).max:
        raise ParameterError(
            f"explicit splits index at most {np.iinfo(SPLIT_DTYPE).max:,} rows; "
            f"this dataset has {len(target.original):,}"
        )
    return list(zip(made.train, made.test, strict=True))


def _split(train: NDArray[Any], test: NDArray[Any]) -> Split:
    return Split(train=train.astype(SPLIT_DTYPE).tobytes(), test=test.astype(SPLIT_DTYPE).tobytes())

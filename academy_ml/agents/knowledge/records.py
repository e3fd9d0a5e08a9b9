"""What the knowledge base stores: candidates, results, model versions, strategy firings.

Each record is a pydantic model that travels and rests as msgpack::

    [RECORD_VERSION, kind, fields]

``kind`` is the record's class name, so bytes of one kind are never read as
another, and :data:`RECORD_VERSION` is bumped whenever a field changes
meaning. Reading anything else (truncated or foreign bytes, another version
or kind, fields that do not validate) raises :class:`WireError`. Whoever can
write the knowledge base's Redis can hand a reader any bytes, so records are
decoded bounded (:data:`MAX_RECORD_BYTES`, :data:`MAX_RECORD_DEPTH`, no
msgpack extensions), and a record that would exceed those bounds is refused
when written rather than stored unreadable.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Self

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from academy_ml.core.bounded import bounded_unpackb
from academy_ml.exceptions import UnsupportedPayloadError, WireError

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_RECORD_DEPTH",
    "RECORD_VERSION",
    "CandidateRecord",
    "ModelVersion",
    "Record",
    "ResultRecord",
    "StrategyFiring",
]

#: Version of the stored layout of every record; bumped on any change.
RECORD_VERSION = 1
#: Largest encoded record read or written.
MAX_RECORD_BYTES = 16 * 2**20
#: Deepest nesting of an encoded record (the envelope takes 2 levels, a payload the rest).
MAX_RECORD_DEPTH = 32

#: A metric the knowledge base can rank by: a finite float.
Metric = Annotated[float, Field(allow_inf_nan=False)]


class Record(BaseModel):
    """Base of the stored records: frozen, strict about unknown fields, msgpack on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        """Encode the record as versioned msgpack.

        Raises:
            UnsupportedPayloadError: A value (in a payload, say) has no msgpack
                encoding, or the record exceeds the bounds readers accept.
        """
        kind = type(self).__name__
        try:
            packed: bytes = msgpack.packb(
                [RECORD_VERSION, kind, self.model_dump(mode="python")], use_bin_type=True
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise UnsupportedPayloadError(f"a {kind} cannot be stored as msgpack: {exc}") from exc
        try:
            _decode(packed)
        except WireError as exc:  # too large or too deep: readers would refuse it
            raise UnsupportedPayloadError(f"a {kind} cannot be stored: {exc}") from exc
        return packed

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode bytes written by :meth:`to_bytes` of the same class.

        Raises:
            PayloadTooLargeError: The bytes exceed :data:`MAX_RECORD_BYTES`.
            PayloadTooDeepError: They nest deeper than :data:`MAX_RECORD_DEPTH`.
            WireError: The bytes are not such a record (garbled, truncated,
                another version or kind, invalid fields).
        """
        expected = cls.__name__
        try:
            decoded = _decode(data)
        except WireError as exc:
            raise type(exc)(f"not a msgpack {expected} record: {exc}") from exc
        if not (isinstance(decoded, list) and len(decoded) == 3):
            raise WireError(f"not a {expected} record: expected [version, kind, fields]")
        version, kind, fields = decoded
        if version != RECORD_VERSION:
            raise WireError(
                f"{expected} record of version {version!r}; this reader knows {RECORD_VERSION}"
            )
        if kind != expected:
            raise WireError(f"expected a {expected} record, got {kind!r}")
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise WireError(f"invalid {expected} record: {exc}") from exc


def _decode(data: bytes) -> Any:
    return bounded_unpackb(data, max_depth=MAX_RECORD_DEPTH, max_size=MAX_RECORD_BYTES)


class CandidateRecord(Record):
    """Something a generator proposed, with the model version that produced it."""

    id: str
    model_version: int
    payload: dict[str, Any]
    created: float = Field(default_factory=time.time)


class ResultRecord(Record):
    """The evaluation of one candidate: metrics to rank by and boolean flags (``stable``...)."""

    candidate_id: str
    model_version: int
    metrics: dict[str, Metric]
    flags: dict[str, bool] = {}
    #: Why the evaluation failed (with ``flags["failed"]``), else None.
    error: str | None = None
    created: float = Field(default_factory=time.time)


class ModelVersion(Record):
    """One version of a named model in the registry, with its stage.

    Stages are free-form; ``candidate``, ``production`` and ``archived`` are
    the conventional ones.
    """

    name: str
    version: int
    metrics: dict[str, float] = {}
    stage: str = "candidate"
    created: float = Field(default_factory=time.time)


class StrategyFiring(Record):
    """One evaluation of a strategy: whether it fired, why, what it did and how that went."""

    agent: str
    strategy: str
    trigger: str
    fired: bool
    reason: str
    actions: list[str] = []
    outcome: str | None = None
    created: float = Field(default_factory=time.time)

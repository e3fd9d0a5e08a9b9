"""What the knowledge base stores: candidates, results, model versions, strategy firings.

Each record is a pydantic model that travels and rests as msgpack in the
one envelope of :mod:`academy_ml.core.envelope`::

    [RECORD_VERSION, kind, fields]

``kind`` is the record's class name, so bytes of one kind are never read as
another, and :data:`RECORD_VERSION` is bumped whenever a field changes
meaning. Reading anything else raises :class:`WireError`: an
:class:`EnvelopeError` naming both sides for another version or kind, a
plain :class:`WireError` for truncated or foreign bytes or fields that do
not validate. Whoever can write the knowledge base's Redis can hand a
reader any bytes, so records are decoded bounded (:data:`MAX_RECORD_BYTES`,
:data:`MAX_RECORD_DEPTH`, no msgpack extensions), and a record that would
exceed those bounds is refused when written rather than stored unreadable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from academy_ml.core.envelope import seal, seal_model, unseal, unseal_model
from academy_ml.exceptions import WireError

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_RECORD_DEPTH",
    "RECORD_VERSION",
    "STATE_VERSION",
    "CandidateRecord",
    "ModelVersion",
    "Record",
    "ResultRecord",
    "StrategyFiring",
    "decode_stored",
    "readable",
    "seal_state",
    "unseal_state",
]

#: Version of the stored layout of every record; bumped on any change.
RECORD_VERSION = 1
#: Largest encoded record read or written.
MAX_RECORD_BYTES = 16 * 2**20
#: Deepest nesting of an encoded record (the envelope and the fields map take 2 levels).
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
        return seal_model(
            self, RECORD_VERSION, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode bytes written by :meth:`to_bytes` of the same class.

        Raises:
            PayloadTooLargeError: The bytes exceed :data:`MAX_RECORD_BYTES`.
            PayloadTooDeepError: They nest deeper than :data:`MAX_RECORD_DEPTH`.
            EnvelopeError: They are a record of another kind or version.
            WireError: They are not a record (garbled, truncated, invalid fields).
        """
        return unseal_model(
            cls, data, (RECORD_VERSION,), max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH
        )


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


#: Layout version of a sealed state map (checkpoints, identities).
STATE_VERSION = 1


def seal_state(kind: str, state: dict[str, Any]) -> bytes:
    """A state map (an agent's checkpoint, say) sealed as ``kind``.

    Raises:
        UnsupportedPayloadError: A value has no msgpack encoding, or the map
            exceeds the bounds :func:`unseal_state` accepts.
    """
    return seal(kind, STATE_VERSION, state, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH)


def unseal_state(kind: str, data: bytes) -> dict[str, Any]:
    """The state map sealed as ``kind`` in ``data`` (untrusted bytes).

    Raises:
        WireError: ``data`` is not a state map of ``kind`` (an
            :class:`~academy_ml.exceptions.EnvelopeError` names the kind and
            version found), or exceeds the size or depth bounds.
    """
    body = unseal(
        data, kind, (STATE_VERSION,), max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH
    ).body
    if not (isinstance(body, dict) and all(isinstance(key, str) for key in body)):
        raise WireError(f"{kind}: expected a map of names to values")
    return body


R = TypeVar("R", bound=Record)

logger = logging.getLogger(__name__)


def decode_stored(cls: type[R], data: Any) -> R:
    """A stored value (bytes from Redis, any SQLite value) as a record of ``cls``.

    Raises:
        WireError: It is not a record of ``cls`` (see :meth:`Record.from_bytes`).
    """
    if not isinstance(data, bytes):
        raise WireError(f"not a msgpack {cls.__name__}: a stored {type(data).__name__}")
    return cls.from_bytes(data)


def readable(cls: type[R], rows: Iterable[tuple[Any, Any]], where: str, what: str) -> list[R]:
    """The records of ``rows`` (key, stored value) that decode as ``cls``.

    A listing shows what it can read: one record that does not decode is
    logged with its key and left out, so a single damaged entry never hides
    every other result from ``status`` or ``results``.

    Args:
        cls: The record class.
        rows: Key (for the log line) and stored value of each record.
        where: The store, for the log line (a path or a Redis key prefix).
        what: What a record is, for the log line ("result", "firing").
    """
    found = []
    for key, data in rows:
        try:
            found.append(decode_stored(cls, data))
        except WireError as error:
            logger.warning("%s: %s %r is unreadable; left out: %s", where, what, key, error)
    return found

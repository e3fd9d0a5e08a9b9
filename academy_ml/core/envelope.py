"""The one versioned envelope of every msgpack record academy_ml stores or sends.

Exchange frames have a layout of their own (:mod:`academy_ml.messaging.wire`);
everything else that is msgpack at rest or in flight (batch requests and
results, knowledge-base records) is sealed here as a msgpack array of three::

    [version, kind, body]

``kind`` names what the body is (a record's class name, say), so bytes of
one kind are never read as another; ``version`` is the kind's layout
version, bumped whenever a field of that kind changes meaning. A reader
names the kind it expects and the versions it knows, and gets
:class:`~academy_ml.exceptions.EnvelopeError` naming both sides for anything
else. The body is plain msgpack (no extension types): the records sealed
here are pydantic models dumped to dicts, lists, strings, numbers and bytes,
and :func:`seal_model` / :func:`unseal_model` seal and validate one such
model, its class name as the kind.

Whoever can write where records rest (a Redis, a task queue) can hand a
reader any bytes, so :func:`unseal` decodes with
:func:`~academy_ml.core.bounded.bounded_unpackb` within the caller's size and
depth bounds, and :func:`seal` refuses a body those bounds would refuse, so
nothing is stored that no reader can read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, NamedTuple, TypeVar

import msgpack
from pydantic import BaseModel, ValidationError

from academy_ml.core.bounded import bounded_unpackb
from academy_ml.exceptions import EnvelopeError, UnsupportedPayloadError, WireError

__all__ = [
    "ENVELOPE_DEPTH",
    "Opened",
    "seal",
    "seal_model",
    "summarize",
    "unseal",
    "unseal_model",
]

#: Levels of nesting the envelope itself takes (its array) before the body's.
ENVELOPE_DEPTH = 1
_CONTAINERS = (list, tuple, dict)
#: Longest kind or version echoed from hostile bytes into an error message.
_ECHO = 80

M = TypeVar("M", bound=BaseModel)


class Opened(NamedTuple):
    """What :func:`unseal` found: the body and which of the known versions it has."""

    version: int
    body: Any


def seal(kind: str, version: int, body: Any, *, max_bytes: int, max_depth: int) -> bytes:
    """Msgpack bytes of ``body`` in the envelope of ``kind`` at ``version``.

    Args:
        kind: What the body is (the name its reader asks for).
        version: Layout version of ``kind``.
        body: Plain data: None, bools, numbers, strings, bytes, lists, tuples, dicts.
        max_bytes: Largest encoding its readers accept.
        max_depth: Deepest nesting its readers accept, the envelope's level included.

    Raises:
        UnsupportedPayloadError: A value has no plain msgpack encoding, or the
            bytes would be larger or deeper than ``max_bytes`` or ``max_depth``.
    """
    depth = ENVELOPE_DEPTH + _nesting(body, kind, max_depth)
    if depth > max_depth:
        raise UnsupportedPayloadError(
            f"a {kind} cannot be sealed: it nests deeper than {max_depth} levels"
        )
    try:
        packed = bytes(msgpack.packb([version, kind, body], use_bin_type=True))
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnsupportedPayloadError(f"a {kind} cannot be sealed as msgpack: {exc}") from exc
    if len(packed) > max_bytes:
        raise UnsupportedPayloadError(
            f"a {kind} cannot be sealed: {len(packed):,} bytes exceeds {max_bytes:,}"
        )
    return packed


def unseal(
    data: bytes | bytearray | memoryview,
    kind: str,
    versions: Collection[int],
    *,
    max_bytes: int,
    max_depth: int,
) -> Opened:
    """The body of a ``kind`` sealed at one of ``versions``.

    Args:
        data: Untrusted bytes.
        kind: The kind expected.
        versions: The layout versions of ``kind`` this reader knows.
        max_bytes: Largest ``data`` accepted.
        max_depth: Deepest nesting accepted, the envelope's level included.

    Raises:
        PayloadTooLargeError: ``data`` exceeds ``max_bytes``.
        PayloadTooDeepError: It nests deeper than ``max_depth``.
        EnvelopeError: It is another kind, or a version not in ``versions``.
        WireError: It is not an envelope (garbled, truncated, extension types...).
    """
    try:
        decoded = bounded_unpackb(data, max_depth=max_depth, max_size=max_bytes)
    except WireError as exc:
        raise type(exc)(f"not a msgpack {kind}: {exc}") from exc
    if not (isinstance(decoded, list) and len(decoded) == 3):
        raise WireError(
            f"not a msgpack {kind}: expected [version, kind, body], got {_shape(decoded)}"
        )
    version, found, body = decoded
    found_kind = found if isinstance(found, str) else None
    found_version = version if type(version) is int else None
    if found_kind != kind:
        problem = f"expected a {kind}, got {_echo(found)} (version {_echo(version)})"
    elif found_version is None or found_version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        problem = f"a {kind} of version {_echo(version)}; this reader knows version {known}"
    else:
        return Opened(found_version, body)
    raise EnvelopeError(
        problem,
        kind=kind,
        versions=sorted(versions),
        found_kind=found_kind,
        found_version=found_version,
    )


def seal_model(model: BaseModel, version: int, *, max_bytes: int, max_depth: int) -> bytes:
    """:func:`seal` of a pydantic model's fields, its class name as the kind.

    Raises:
        UnsupportedPayloadError: As :func:`seal`.
    """
    kind = type(model).__name__
    return seal(kind, version, model.model_dump(), max_bytes=max_bytes, max_depth=max_depth)


def unseal_model(
    cls: type[M],
    data: bytes | bytearray | memoryview,
    versions: Collection[int],
    *,
    max_bytes: int,
    max_depth: int,
) -> M:
    """The ``cls`` of :func:`seal_model` bytes, validated.

    Raises:
        PayloadTooLargeError, PayloadTooDeepError, EnvelopeError: As :func:`unseal`.
        WireError: As :func:`unseal`, or the fields do not validate as ``cls``
            (the message names the fields, never their hostile values).
    """
    kind = cls.__name__
    body = unseal(data, kind, versions, max_bytes=max_bytes, max_depth=max_depth).body
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        raise WireError(f"not a valid {kind}: {summarize(exc)}") from exc


def summarize(exc: ValidationError, shown: int = 5) -> str:
    """The first errors of a validation, without the (attacker-sized) input values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    text = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'message'}: {e['msg']}"
        for e in errors[:shown]
    )
    return text if len(errors) <= shown else f"{text} (and {len(errors) - shown} more)"


def _nesting(value: Any, kind: str, limit: int) -> int:
    """Nesting of lists, tuples and dicts in ``value``, level by level, stopping past ``limit``.

    Raises:
        UnsupportedPayloadError: A map key is a list or tuple (msgpack writes
            it as an array, which no reader can hash back into a key).
    """
    frontier = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while frontier and depth <= limit:
        depth += 1
        below: list[Any] = []
        for node in frontier:
            items: Iterable[Any] = node
            if isinstance(node, dict):
                if _any_container(node):
                    raise UnsupportedPayloadError(
                        f"a {kind} cannot be sealed: a map key is a list or tuple"
                    )
                items = node.values()
            if _any_container(items):
                below.extend(item for item in items if isinstance(item, _CONTAINERS))
        frontier = below
    return depth


def _any_container(items: Iterable[Any]) -> bool:
    # The distinct types, collected in C: a long list of scalars costs no Python loop.
    return any(issubclass(t, _CONTAINERS) for t in set(map(type, items)))


def _shape(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def _echo(value: Any) -> str:
    """A hostile kind or version in an error message: short, never the whole value."""
    if isinstance(value, str):
        return repr(value[:_ECHO]) + ("..." if len(value) > _ECHO else "")
    if value is None or isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"

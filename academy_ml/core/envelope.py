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
here are pydantic models dumped to dicts, lists, strings, numbers and bytes.

Whoever can write where records rest (a Redis, a task queue) can hand a
reader any bytes, so :func:`unseal` decodes with
:func:`~academy_ml.core.bounded.bounded_unpackb` within the caller's size and
depth bounds, and :func:`seal` refuses a body those bounds would refuse, so
nothing is stored that no reader can read.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import msgpack

from academy_ml.core.bounded import bounded_unpackb
from academy_ml.exceptions import EnvelopeError, UnsupportedPayloadError, WireError

__all__ = ["ENVELOPE_DEPTH", "Opened", "seal", "unseal"]

#: Levels of nesting the envelope itself takes (its array) before the body's.
ENVELOPE_DEPTH = 1
_CONTAINERS = frozenset({list, tuple, dict})
#: Longest kind or version echoed from hostile bytes into an error message.
_ECHO = 80


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
    depth = ENVELOPE_DEPTH + _nesting(body, max_depth)
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
        raise EnvelopeError(
            f"expected a {kind}, got {_echo(found)} (version {_echo(version)})",
            kind=kind,
            versions=sorted(versions),
            found_kind=found_kind,
            found_version=found_version,
        )
    if found_version is None or found_version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        raise EnvelopeError(
            f"a {kind} of version {_echo(version)}; this reader knows version {known}",
            kind=kind,
            versions=sorted(versions),
            found_kind=found_kind,
            found_version=found_version,
        )
    return Opened(found_version, body)


def _nesting(value: Any, limit: int) -> int:
    """Nesting of lists, tuples and dicts in ``value``, level by level, stopping past ``limit``."""
    frontier = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while frontier and depth <= limit:
        depth += 1
        below: list[Any] = []
        for node in frontier:
            items = node.values() if type(node) is dict else node
            # set(map(type, ...)) runs in C: a long list of scalars costs no Python loop.
            if not _CONTAINERS.isdisjoint(set(map(type, items))):
                below.extend(item for item in items if type(item) in _CONTAINERS)
        frontier = below
    return depth


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

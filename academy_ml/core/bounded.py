"""Bounded msgpack decoding: the one way academy_ml reads untrusted msgpack.

msgpack's C unpacker nests containers without recursion (up to its own stack
of 1024), but an extension hook that decodes its payload as msgpack again
(a tuple holding a tuple ...) recurses once per level, and ``unpackb`` keeps
a ~40 KB context on the C stack each time: about 200 nested extensions, a
frame under 1 KB, overflowed the stack and killed the process. Here:

- depth counts containers and extensions together, across nested calls: a
  hook that calls :func:`bounded_unpackb` again spends the budget of the
  value around it (the calls are linked through a context variable, so
  threads and asyncio tasks each have their own chain);
- past the first few levels, nested calls decode with an ``Unpacker`` whose
  context lives on the heap, so each further extension level costs a few
  Python frames, not C stack;
- the size of the input is capped, and no length prefix may claim more
  bytes than the input holds (msgpack preallocates from those prefixes).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgpack

from academy_ml.exceptions import PayloadTooDeepError, PayloadTooLargeError, WireError

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE", "ExtHook", "bounded_unpackb"]

#: Deepest nesting of containers and extensions accepted unless a caller says otherwise.
DEFAULT_MAX_DEPTH = 64
#: Largest input accepted unless a caller says otherwise (the exchange's ceiling on a message).
DEFAULT_MAX_SIZE = 512 * 2**20

#: Decodes one extension: ``(code, payload) -> value``.
ExtHook = Callable[[int, bytes], Any]

_CONTAINERS = frozenset({list, dict})
#: Calls that may use ``unpackb`` (~40 KB of C stack each): cheaper than an
#: ``Unpacker`` for the usual shallow nesting, and at most ~160 KB in all.
_STACK_LEVELS = 4


class _Level:
    """One :func:`bounded_unpackb` call in progress."""

    __slots__ = ("deepest_nested", "index", "remaining")

    def __init__(self, remaining: int, index: int) -> None:
        self.remaining = remaining
        # How many calls enclose this one.
        self.index = index
        # Depth of the deepest value that a hook decoded during this call (-1: none).
        self.deepest_nested = -1


_CURRENT: ContextVar[_Level | None] = ContextVar("academy_ml_bounded_unpackb", default=None)


def bounded_unpackb(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
    ext_hook: ExtHook | None = None,
) -> Any:
    """Decode one untrusted msgpack value with its nesting and size bounded.

    Maps may have non-string keys; strings are decoded as UTF-8. Depth is 0
    for a scalar, 1 for a list of scalars, and an extension adds one level
    to what its hook decodes (when the hook calls this function again). A
    value nested inside the payload of an extension is checked against what
    remains of the enclosing call's budget.

    Args:
        data: Exactly one msgpack value.
        max_depth: Deepest nesting accepted.
        max_size: Largest ``data`` accepted, in bytes.
        ext_hook: Decodes extension types; without one, any extension is refused.

    Raises:
        PayloadTooLargeError: ``data`` is longer than ``max_size``.
        PayloadTooDeepError: The value nests deeper than ``max_depth``.
        WireError: ``data`` is not one valid msgpack value (truncated,
            trailing bytes, a length prefix beyond the data, an unhashable
            map key, an extension the hook refuses...).
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_size:
        raise PayloadTooLargeError(f"msgpack value of {size:,} bytes exceeds {max_size:,}")
    parent = _CURRENT.get()
    remaining = max_depth if parent is None else min(max_depth, parent.remaining - 1)
    if remaining < 0:
        raise PayloadTooDeepError(f"msgpack value nests deeper than {max_depth} levels")
    level = _Level(remaining, 0 if parent is None else parent.index + 1)
    token = _CURRENT.set(level)
    try:
        value = _unpack(
            data, size, ext_hook or _refuse_extension, on_heap=level.index >= _STACK_LEVELS
        )
    except WireError:
        raise
    except msgpack.StackError as exc:
        raise PayloadTooDeepError("msgpack containers nest deeper than msgpack's stack") from exc
    except RecursionError as exc:
        raise PayloadTooDeepError("msgpack value nests deeper than the Python stack") from exc
    except msgpack.ExtraData as exc:
        raise WireError(f"trailing bytes after a msgpack value: {exc}") from exc
    except msgpack.OutOfData as exc:
        raise WireError("truncated msgpack value") from exc
    except msgpack.UnpackException as exc:
        raise WireError(f"malformed msgpack value: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # msgpack's own errors (FormatError, a length beyond the data) are ValueErrors;
        # unhashable map keys are TypeErrors.
        raise WireError(f"malformed msgpack value: {exc}") from exc
    finally:
        _CURRENT.reset(token)
    nested = 0 if level.deepest_nested < 0 else 1 + level.deepest_nested
    depth = nested + _container_depth(value, remaining - nested, max_depth)
    if parent is not None:
        parent.deepest_nested = max(parent.deepest_nested, depth)
    return value


def _unpack(
    data: bytes | bytearray | memoryview, size: int, ext_hook: ExtHook, *, on_heap: bool
) -> Any:
    if not on_heap:
        # unpackb is fastest and caps every length prefix at len(data) by itself.
        return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False)
    # An Unpacker keeps its context on the heap, not the C stack; max_buffer_size
    # also caps its length prefixes.
    unpacker = msgpack.Unpacker(
        ext_hook=ext_hook, raw=False, strict_map_key=False, max_buffer_size=max(size, 1)
    )
    unpacker.feed(data)
    value = unpacker.unpack()
    if unpacker.tell() != size:
        raise WireError(f"trailing bytes after a msgpack value ({size - unpacker.tell()} bytes)")
    return value


def _container_depth(value: Any, limit: int, max_depth: int) -> int:
    """Nesting of lists and maps in ``value``, walked level by level (no recursion)."""
    if type(value) not in _CONTAINERS:
        return 0
    frontier = [value]
    depth = 0
    while frontier:
        depth += 1
        if depth > limit:
            raise PayloadTooDeepError(f"msgpack value nests deeper than {max_depth} levels")
        below: list[Any] = []
        for node in frontier:
            items = node.values() if type(node) is dict else node
            below.extend([item for item in items if type(item) in _CONTAINERS])
        frontier = below
    return depth


def _refuse_extension(code: int, data: bytes) -> Any:
    raise WireError(f"unexpected msgpack extension type {code} ({len(data)} bytes)")

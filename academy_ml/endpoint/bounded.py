"""Msgpack decoding with limits, for the bytes an endpoint and its clients exchange.

msgpack's C decoder bounds the nesting of one stream (1,024 levels, on a
heap stack) but not the nesting of extension types: each extension's hook
decodes its payload with a fresh decoder whose state sits on the C stack,
so a few hundred nested extensions (a tuple in a tuple ..., under 1 KB)
overflow it and kill the process. :func:`unpack` refuses a message over a
size, extensions nested deeper than :data:`MAX_EXT_DEPTH` before decoding
them, and a decoded value nested deeper than ``max_depth`` (checked without
recursion, so that the code walking the value afterwards cannot overflow
either), and turns every failure into a :class:`WireError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from academy_ml.exceptions import WireError

#: Extensions nested deeper than this are refused (each level costs a
#: decoder's state, ~40 KB, on the C stack).
MAX_EXT_DEPTH = 16

#: Decodes one extension payload; the second argument decodes nested msgpack.
ExtDecoder = Callable[[bytes, Callable[[bytes], Any]], Any]

# What msgpack and the extension decoders raise for bad bytes: ExtraData,
# FormatError, StackError and UnicodeDecodeError are ValueErrors; an
# unhashable map key is a TypeError.
_DECODE_ERRORS = (ValueError, TypeError, OverflowError)


def unpack(
    data: Any,
    *,
    max_bytes: int,
    max_depth: int,
    ext: Mapping[int, ExtDecoder] | None = None,
    what: str = "message",
) -> Any:
    """Decode msgpack ``data`` within limits.

    Args:
        data: The bytes.
        max_bytes: Longest accepted ``data``.
        max_depth: Deepest accepted nesting of lists, tuples and maps in the value.
        ext: Decoders of the accepted extension codes (any other is refused).
        what: What the bytes are, for error messages.

    Raises:
        WireError: ``data`` is not bytes, too long, malformed or nested too deep,
            or holds an extension not in ``ext``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"a {what} must be bytes, not {type(data).__name__}")
    size = memoryview(data).nbytes
    if size > max_bytes:
        raise WireError(f"a {what} of {size} bytes exceeds the limit of {max_bytes}")
    value = _Unpacking(ext or {}, what).unpack(data)
    check_depth(value, max_depth, what)
    return value


def check_depth(value: Any, max_depth: int, what: str = "value") -> None:
    """Raise :class:`WireError` when lists, tuples or maps in ``value`` nest past ``max_depth``."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            raise WireError(f"a {what} nests deeper than {max_depth} levels")
        pending.extend((child, depth + 1) for child in children)


class _Unpacking:
    """One decoding: counts how deep extensions nest."""

    def __init__(self, ext: Mapping[int, ExtDecoder], what: str) -> None:
        self.ext = ext
        self.what = what
        self.depth = 0

    def unpack(self, data: bytes | bytearray | memoryview) -> Any:
        try:
            return msgpack.unpackb(data, ext_hook=self._hook, raw=False, strict_map_key=False)
        except WireError:
            raise
        except _DECODE_ERRORS as exc:
            raise WireError(f"malformed {self.what}: {type(exc).__name__}: {exc}") from exc

    def _hook(self, code: int, payload: bytes) -> Any:
        decoder = self.ext.get(code)
        if decoder is None:
            raise WireError(f"a {self.what} may not hold msgpack extension type {code}")
        if self.depth >= MAX_EXT_DEPTH:
            raise WireError(f"a {self.what} nests extensions deeper than {MAX_EXT_DEPTH} levels")
        self.depth += 1
        try:
            return decoder(payload, self.unpack)
        finally:
            self.depth -= 1

"""Plain values as msgpack: extension codes for what msgpack lacks, out-of-band buffers.

msgpack has nil, bools, ints up to 64 bits, floats, strings, bytes, arrays
and maps. Other plain values get an extension code, listed in :class:`Ext`
(the codes are part of the exchange's wire format, and of every pipeline
spec, so they never change meaning):

- tuples, sets and frozensets wrap the msgpack list of their items;
- ints beyond 64 bits are their hex digits (decimal conversion is capped at
  4300 digits, hex is not); complex numbers are ``[real, imag]``;
- datetimes are ISO 8601 text, UUIDs their 16 bytes;
- numpy arrays (and numpy scalars, as 0-d arrays) are ``[dtype, shape,
  buffer index]``: the data is not copied into the msgpack stream but
  appended to :attr:`ValueEncoder.buffers`, which the container format
  (an exchange frame) carries after it.

This module is the codec of those plain values, for whatever needs them
below the exchange (pipeline specs on an endpoint). The exchange's codec
(:mod:`academy_ml.messaging.codec`) builds on it with Academy's objects:
handles, agent and user IDs, exceptions and, when a deployment allows it,
pickle, whose codes are reserved here. Decoding never executes code and is
bounded in depth (containers and extensions together) and size by
:func:`~academy_ml.core.bounded.bounded_unpackb`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, ClassVar

import msgpack
import numpy as np

from academy_ml.core.bounded import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, bounded_unpackb
from academy_ml.exceptions import UnsupportedPayloadError, WireError

__all__ = ["ARRAY_KINDS", "Ext", "ValueDecoder", "ValueEncoder", "type_name"]


class Ext(IntEnum):
    """msgpack extension codes (part of the exchange's wire format and of pipeline specs).

    HANDLE, ENTITY, EXCEPTION and PICKLE are Academy's objects, encoded by
    :mod:`academy_ml.messaging.codec`; the others are plain values, encoded here.
    """

    TUPLE = 1
    ARRAY = 2
    HANDLE = 3
    ENTITY = 4
    UUID = 5
    SET = 6
    FROZENSET = 7
    EXCEPTION = 8
    BIGINT = 9
    COMPLEX = 10
    DATETIME = 11
    NUMPY_SCALAR = 12
    PICKLE = 13


#: numpy kinds with a fixed-size raw representation: bool, ints, floats,
#: complex, fixed-width bytes and unicode, datetimes and timedeltas.
ARRAY_KINDS = frozenset("biufcSUmM")


def type_name(cls: type) -> str:
    """``module.qualname`` of a class, as errors and the exception extension name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


class ValueEncoder:
    """Encodes one message's plain values; collects its out-of-band buffers.

    Subclasses add extensions by overriding :meth:`_extension` and say what
    else to send by overriding :meth:`_refusal`.
    """

    def __init__(self) -> None:
        self.buffers: list[memoryview] = []
        self._packer = msgpack.Packer(default=self._default, strict_types=True)

    def pack(self, value: Any) -> bytes:
        """Msgpack bytes of ``value``; array data goes to :attr:`buffers`.

        Raises:
            UnsupportedPayloadError: A value has no encoding, or nests too deep
                (a self-referencing list, say).
        """
        try:
            packed: bytes = self._packer.pack(value)
        except UnsupportedPayloadError:
            self._packer.reset()
            raise
        except (ValueError, OverflowError, RecursionError) as exc:
            self._packer.reset()
            raise UnsupportedPayloadError(f"value cannot be encoded: {exc}") from exc
        return packed

    def _nested(self, value: Any) -> bytes:
        # Extensions wrap msgpack of their parts; one Packer is not re-entrant.
        return msgpack.Packer(default=self._default, strict_types=True).pack(value)  # type: ignore[no-any-return]

    def _default(self, obj: Any) -> msgpack.ExtType:
        ext = self._extension(obj)
        if ext is None:
            raise UnsupportedPayloadError(self._refusal(obj))
        return ext

    def _extension(self, obj: Any) -> msgpack.ExtType | None:
        """The extension encoding ``obj``, or None when it has none."""
        if isinstance(obj, tuple):
            return msgpack.ExtType(Ext.TUPLE, self._nested(list(obj)))
        if isinstance(obj, np.ndarray):
            return msgpack.ExtType(Ext.ARRAY, self._nested(self._array(obj)))
        if isinstance(obj, uuid.UUID):
            return msgpack.ExtType(Ext.UUID, obj.bytes)
        if isinstance(obj, frozenset):
            return msgpack.ExtType(Ext.FROZENSET, self._nested(list(obj)))
        if isinstance(obj, set):
            return msgpack.ExtType(Ext.SET, self._nested(list(obj)))
        if type(obj) is int:
            return msgpack.ExtType(Ext.BIGINT, format(obj, "x").encode())
        if type(obj) is complex:
            return msgpack.ExtType(Ext.COMPLEX, self._nested([obj.real, obj.imag]))
        if isinstance(obj, dt.datetime):
            return msgpack.ExtType(Ext.DATETIME, obj.isoformat().encode())
        if isinstance(obj, np.generic) and obj.dtype.kind in ARRAY_KINDS:
            return msgpack.ExtType(Ext.NUMPY_SCALAR, self._nested(self._array(np.asarray(obj))))
        return None

    def _refusal(self, obj: Any) -> str:
        """Why ``obj`` cannot be encoded."""
        return (
            f"{type_name(type(obj))} has no msgpack encoding: plain values are numbers, "
            "strings, bytes, numpy arrays, lists, tuples, dicts, sets, UUIDs and datetimes"
        )

    def _array(self, array: np.ndarray[Any, Any]) -> list[Any]:
        if array.dtype.kind not in ARRAY_KINDS or array.dtype.fields is not None:
            raise UnsupportedPayloadError(
                f"numpy arrays of dtype {array.dtype} have no msgpack encoding "
                "(object and structured dtypes need pickle)"
            )
        contiguous = np.asarray(array, order="C")  # ascontiguousarray makes 0-d arrays 1-d
        # A byte view of the data (datetime dtypes refuse the buffer protocol).
        self.buffers.append(memoryview(contiguous.reshape(-1).view(np.uint8).data))
        return [contiguous.dtype.str, list(contiguous.shape), len(self.buffers) - 1]


#: ``dtype.str`` of the kinds in :data:`ARRAY_KINDS`: byte order, kind, item
#: size, and a unit for datetimes and timedeltas (``<M8[10us]``).
_DTYPE = re.compile(r"[<>|=][biufcSUmM][0-9]{1,9}(?:\[[0-9]{0,9}[A-Za-zμ]{1,2}\])?")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."


#: Decodes one extension's payload: ``(decoder, payload) -> value``.
Hook = Callable[[Any, bytes], Any]


class ValueDecoder:
    """Decodes one message's plain values, resolving references to its buffers.

    Subclasses add extensions by extending :attr:`HOOKS`, or narrow them by
    overriding :meth:`_hook`.

    Args:
        buffers: The message's out-of-band buffers, in order.
        max_depth: Deepest nesting of containers and extensions accepted.
        max_size: Largest msgpack value accepted, in bytes.
    """

    #: Extension code -> how its payload is decoded.
    HOOKS: ClassVar[dict[int, Hook]]

    def __init__(
        self,
        buffers: Sequence[memoryview] = (),
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.buffers = buffers
        self.max_depth = max_depth
        self.max_size = max_size

    def unpack(self, data: bytes | memoryview) -> Any:
        """Decode msgpack bytes (an extension's payload, too, within the depth left).

        Raises:
            PayloadTooLargeError: The bytes exceed ``max_size``.
            PayloadTooDeepError: The value nests deeper than ``max_depth``.
            WireError: The bytes are not a valid encoding of a value.
        """
        return bounded_unpackb(
            data, max_depth=self.max_depth, max_size=self.max_size, ext_hook=self._hook
        )

    def _hook(self, code: int, data: bytes) -> Any:
        hook = self.HOOKS.get(code)
        if hook is None:
            raise WireError(f"unknown extension type {code}")
        return hook(self, data)

    def _list(self, data: bytes) -> list[Any]:
        items = self.unpack(data)
        if not isinstance(items, list):
            raise WireError("a tuple or set extension does not hold a list")
        return items

    def _tuple(self, data: bytes) -> tuple[Any, ...]:
        return tuple(self._list(data))

    def _set(self, data: bytes) -> set[Any]:
        return set(self._list(data))

    def _frozenset(self, data: bytes) -> frozenset[Any]:
        return frozenset(self._list(data))

    def _array_ext(self, data: bytes) -> np.ndarray[Any, Any]:
        return self._array(self.unpack(data))

    def _numpy_scalar(self, data: bytes) -> Any:
        return self._array(self.unpack(data))[()]

    def _bigint(self, data: bytes) -> int:
        return int(data.decode("ascii"), 16)

    def _datetime(self, data: bytes) -> dt.datetime:
        return dt.datetime.fromisoformat(data.decode("ascii"))

    def _uuid(self, data: bytes) -> uuid.UUID:
        if len(data) != 16:
            raise WireError("a uuid extension is not 16 bytes")
        return uuid.UUID(bytes=data)

    def _complex(self, data: bytes) -> complex:
        parts = self.unpack(data)
        if not (isinstance(parts, list) and len(parts) == 2):
            raise WireError("a complex extension is not [real, imag]")
        if not all(type(p) in (int, float) for p in parts):
            raise WireError("a complex extension holds non-numbers")
        return complex(*parts)

    def _buffer(self, index: Any) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise WireError(f"reference to buffer {index!r} of {len(self.buffers)}")
        return self.buffers[index]

    def _array(self, parts: Any) -> np.ndarray[Any, Any]:
        if not (isinstance(parts, list) and len(parts) == 3):
            raise WireError("an array extension is not [dtype, shape, buffer]")
        descr, shape, index = parts
        # Only the forms dtype.str writes reach np.dtype, whose parser of other
        # strings (comma lists, shapes) goes as far as ast.literal_eval.
        if not (isinstance(descr, str) and _DTYPE.fullmatch(descr)):
            raise WireError(f"array dtype {_short(descr)} is not allowed on the wire")
        try:
            dtype = np.dtype(descr)
        except (TypeError, ValueError) as exc:
            raise WireError(f"array dtype {descr!r} is not valid") from exc
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise WireError("array shape is not a list of non-negative ints")
        buffer = self._buffer(index)
        count = math.prod(shape)  # Python ints: a hostile shape cannot overflow to 0
        if count * dtype.itemsize != buffer.nbytes:
            raise WireError(
                f"array of shape {tuple(shape)} and dtype {dtype} needs "
                f"{count * dtype.itemsize} bytes, its buffer has {buffer.nbytes}"
            )
        # A copy: the receiver owns a writable array, as with pickle.
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape).copy()


ValueDecoder.HOOKS = {
    Ext.TUPLE: ValueDecoder._tuple,
    Ext.ARRAY: ValueDecoder._array_ext,
    Ext.UUID: ValueDecoder._uuid,
    Ext.SET: ValueDecoder._set,
    Ext.FROZENSET: ValueDecoder._frozenset,
    Ext.BIGINT: ValueDecoder._bigint,
    Ext.COMPLEX: ValueDecoder._complex,
    Ext.DATETIME: ValueDecoder._datetime,
    Ext.NUMPY_SCALAR: ValueDecoder._numpy_scalar,
}

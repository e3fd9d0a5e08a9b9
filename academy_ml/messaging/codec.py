"""Values on the wire: msgpack with typed extensions and out-of-band buffers.

Action arguments, results and exceptions travel as msgpack. Types msgpack
lacks get an extension code. Byte strings are msgpack's own binary type;
numpy arrays are not copied into the msgpack stream but referenced by index into a list of raw
buffers that the frame carries after it (see :mod:`academy_ml.messaging.wire`).

Decoding never executes code and is bounded in depth and size
(:func:`~academy_ml.core.bounded.bounded_unpackb`, re-exported here).
Exceptions are rebuilt only for built-in types and the exception classes of
Academy and academy_ml; anything else arrives as
:class:`academy.exception.AcademyRemoteError` carrying the remote type name
and traceback. Pickle is an extension of its own that is produced and
accepted only when the deployment turns ``allow_pickle`` on.
"""

from __future__ import annotations

import builtins
import datetime as dt
import math
import pickle
import traceback
import uuid
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import academy.exception
import msgpack
import numpy as np
from academy.handle import Handle
from academy.identifier import AgentId, EntityId, UserId
from academy.serialize import SerializationStrategy

from academy_ml import exceptions as aml_exceptions
from academy_ml.core.bounded import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, bounded_unpackb
from academy_ml.exceptions import UnsupportedPayloadError, WireError

__all__ = [
    "Decoder",
    "Encoder",
    "Ext",
    "bounded_unpackb",
    "decode_entity",
    "encode_entity",
    "parse_strategy",
    "strategy_name",
]


class Ext(IntEnum):
    """msgpack extension codes of the wire format (part of its version)."""

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


def _rebuildable_exceptions() -> dict[str, type[Exception]]:
    """Exception classes the decoder may instantiate, by qualified name."""
    found: dict[str, type[Exception]] = {}
    for module in (builtins, academy.exception, aml_exceptions):
        for value in vars(module).values():
            # Exception, not BaseException: a peer must not raise SystemExit
            # or KeyboardInterrupt in its caller.
            if isinstance(value, type) and issubclass(value, Exception):
                found[_type_name(value)] = value
    return found


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_EXCEPTIONS = _rebuildable_exceptions()


def encode_entity(uid: EntityId) -> list[Any]:
    """An Academy agent or user ID as ``[is_agent, uid bytes, name]``."""
    return [isinstance(uid, AgentId), uid.uid.bytes, uid.name]


def decode_entity(raw: Any) -> EntityId:
    """Inverse of :func:`encode_entity`.

    Raises:
        WireError: ``raw`` is not an encoded entity.
    """
    if not (isinstance(raw, list) and len(raw) == 3):
        raise WireError(f"expected an entity [is_agent, uid, name], got {type(raw).__name__}")
    is_agent, uid, name = raw
    if not (isinstance(uid, bytes) and len(uid) == 16) or not (
        name is None or isinstance(name, str)
    ):
        raise WireError("entity ID has a malformed uid or name")
    if is_agent is True:
        return AgentId(uid=uuid.UUID(bytes=uid), name=name)
    if is_agent is False:
        return UserId(uid=uuid.UUID(bytes=uid), name=name)
    raise WireError("entity ID kind is not a boolean")


class Encoder:
    """Encodes one message's values; collects its out-of-band buffers.

    Args:
        allow_pickle: Pickle values no extension covers instead of refusing.
    """

    def __init__(self, *, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle
        self.buffers: list[memoryview] = []
        self._packer = msgpack.Packer(default=self._default, strict_types=True)

    def pack(self, value: Any) -> bytes:
        """Msgpack bytes of ``value``; large buffers go to :attr:`buffers`.

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

    def _buffer(self, data: memoryview) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def _nested(self, value: Any) -> bytes:
        # Extensions wrap msgpack of their parts; one Packer is not re-entrant.
        return msgpack.Packer(default=self._default, strict_types=True).pack(value)  # type: ignore[no-any-return]

    def _default(self, obj: Any) -> msgpack.ExtType:
        if isinstance(obj, tuple):
            return msgpack.ExtType(Ext.TUPLE, self._nested(list(obj)))
        if isinstance(obj, np.ndarray):
            return msgpack.ExtType(Ext.ARRAY, self._nested(self._array(obj)))
        if isinstance(obj, Handle):
            return msgpack.ExtType(Ext.HANDLE, self._nested(_handle_state(obj)))
        if isinstance(obj, AgentId | UserId):
            return msgpack.ExtType(Ext.ENTITY, self._nested(encode_entity(obj)))
        if isinstance(obj, uuid.UUID):
            return msgpack.ExtType(Ext.UUID, obj.bytes)
        if isinstance(obj, frozenset):
            return msgpack.ExtType(Ext.FROZENSET, self._nested(list(obj)))
        if isinstance(obj, set):
            return msgpack.ExtType(Ext.SET, self._nested(list(obj)))
        if isinstance(obj, BaseException):
            return msgpack.ExtType(Ext.EXCEPTION, self._exception(obj))
        if type(obj) is int:
            # Hex: decimal conversion is capped at 4300 digits, hex is not.
            return msgpack.ExtType(Ext.BIGINT, format(obj, "x").encode())
        if type(obj) is complex:
            return msgpack.ExtType(Ext.COMPLEX, self._nested([obj.real, obj.imag]))
        if isinstance(obj, dt.datetime):
            return msgpack.ExtType(Ext.DATETIME, obj.isoformat().encode())
        if isinstance(obj, np.generic) and obj.dtype.kind in _ARRAY_KINDS:
            return msgpack.ExtType(Ext.NUMPY_SCALAR, self._nested(self._array(np.asarray(obj))))
        if self.allow_pickle:
            return msgpack.ExtType(Ext.PICKLE, pickle.dumps(obj, protocol=5))
        raise UnsupportedPayloadError(
            f"{_type_name(type(obj))} cannot travel through the exchange: send numbers, "
            "strings, bytes, numpy arrays, lists, tuples, dicts, sets, handles or exceptions, "
            "or create the exchange factory with allow_pickle=True"
        )

    def _array(self, array: np.ndarray[Any, Any]) -> list[Any]:
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise UnsupportedPayloadError(
                f"numpy arrays of dtype {array.dtype} cannot travel through the exchange "
                "(object and structured dtypes need pickle)"
            )
        contiguous = np.asarray(array, order="C")  # ascontiguousarray makes 0-d arrays 1-d
        # A byte view of the data (datetime dtypes refuse the buffer protocol).
        index = self._buffer(memoryview(contiguous.reshape(-1).view(np.uint8).data))
        return [contiguous.dtype.str, list(contiguous.shape), index]

    def _exception(self, exc: BaseException) -> bytes:
        # __reduce__ gives the constructor's arguments (Academy's exceptions
        # take IDs, not their message); plain exceptions give their args.
        reduced = exc.__reduce__()
        raw_args = (
            reduced[1] if isinstance(reduced, tuple) and reduced[0] is type(exc) else exc.args
        )
        # The arguments are packed once and spliced in: packing them to probe and
        # again inside the list doubled the work per level of exceptions nested in
        # arguments (each level of nesting made encoding 4 times slower).
        mark = len(self.buffers)
        try:
            args = self._nested(list(raw_args))
        except (UnsupportedPayloadError, ValueError, TypeError, OverflowError):
            del self.buffers[mark:]  # no buffers of a failed attempt travel
            args = self._nested([self._arg_or_repr(arg) for arg in raw_args])
        remote = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # A msgpack array of 4: [type name, args, message, remote traceback].
        head = self._nested(_type_name(type(exc)))
        return b"".join([b"\x94", head, args, self._nested(str(exc)), self._nested(remote)])

    def _arg_or_repr(self, arg: Any) -> Any:
        mark = len(self.buffers)
        try:
            self._nested(arg)
        except (UnsupportedPayloadError, ValueError, TypeError, OverflowError):
            return repr(arg)
        finally:
            del self.buffers[mark:]  # a probe: the arg is packed again with the others
        return arg


#: numpy kinds with a fixed-size raw representation: bool, ints, floats,
#: complex, fixed-width bytes and unicode, datetimes and timedeltas.
_ARRAY_KINDS = frozenset("biufcSUmM")


def _handle_state(handle: Handle[Any]) -> list[Any]:
    if handle.ignore_context:
        raise UnsupportedPayloadError("a Handle with ignore_context=True cannot be sent")
    return [
        encode_entity(handle.agent_id),
        strategy_name(handle.request_serializer),
        strategy_name(handle.result_serializer),
        strategy_name(handle.exception_serializer),
        float(handle.polling_interval),
        bool(handle.reject_on_inactive),
    ]


def strategy_name(strategy: SerializationStrategy | str | None) -> str | None:
    """The wire form of an Academy serialization strategy (its value, or None)."""
    return None if strategy is None else SerializationStrategy(strategy).value


class Decoder:
    """Decodes one message's values, resolving references to its buffers.

    Args:
        buffers: The frame's out-of-band buffers, in order.
        allow_pickle: Accept the pickle extension (otherwise a :class:`WireError`).
        max_depth: Deepest nesting of containers and extensions accepted.
        max_size: Largest msgpack value accepted, in bytes.
    """

    def __init__(
        self,
        buffers: list[memoryview],
        *,
        allow_pickle: bool,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.buffers = buffers
        self.allow_pickle = allow_pickle
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
        hook = _DECODE_HOOKS.get(code)
        if hook is None:
            raise WireError(f"unknown extension type {code}")
        return hook(self, data)

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

    def _entity(self, data: bytes) -> EntityId:
        return decode_entity(self.unpack(data))

    def _bigint(self, data: bytes) -> int:
        return int(data.decode("ascii"), 16)

    def _datetime(self, data: bytes) -> dt.datetime:
        return dt.datetime.fromisoformat(data.decode("ascii"))

    def _list(self, data: bytes) -> list[Any]:
        items = self.unpack(data)
        if not isinstance(items, list):
            raise WireError("a tuple or set extension does not hold a list")
        return items

    def _buffer(self, index: Any) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise WireError(f"reference to buffer {index!r} of {len(self.buffers)}")
        return self.buffers[index]

    def _array(self, parts: Any) -> np.ndarray[Any, Any]:
        if not (isinstance(parts, list) and len(parts) == 3):
            raise WireError("an array extension is not [dtype, shape, buffer]")
        descr, shape, index = parts
        try:
            dtype = np.dtype(descr) if isinstance(descr, str) else None
        except TypeError as exc:
            raise WireError(f"array dtype {descr!r} is not valid") from exc
        if dtype is None or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
            raise WireError(f"array dtype {descr!r} is not allowed on the wire")
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

    def _handle(self, data: bytes) -> Handle[Any]:
        parts = self.unpack(data)
        if not (isinstance(parts, list) and len(parts) == 6):
            raise WireError("a handle extension has the wrong number of fields")
        entity, request_s, result_s, exception_s, polling, reject = parts
        agent_id = decode_entity(entity)
        if not isinstance(agent_id, AgentId):
            raise WireError("a handle refers to a user, not an agent")
        try:
            return Handle(
                agent_id,
                request_serializer=parse_strategy(request_s),
                result_serializer=parse_strategy(result_s),
                exception_serializer=parse_strategy(exception_s),
                polling_interval=float(polling),
                reject_on_inactive=bool(reject),
            )
        except (TypeError, ValueError) as exc:
            raise WireError(f"a handle extension is malformed: {exc}") from exc

    def _uuid(self, data: bytes) -> uuid.UUID:
        if len(data) != 16:
            raise WireError("a uuid extension is not 16 bytes")
        return uuid.UUID(bytes=data)

    def _complex(self, data: bytes) -> complex:
        parts = self.unpack(data)
        if not (isinstance(parts, list) and len(parts) == 2):
            raise WireError("a complex extension is not [real, imag]")
        return complex(*parts)

    def _exception(self, data: bytes) -> BaseException:
        parts = self.unpack(data)
        if not (isinstance(parts, list) and len(parts) == 4):
            raise WireError("an exception extension has the wrong number of fields")
        name, args, message, remote = parts
        if not (isinstance(name, str) and isinstance(args, list) and isinstance(remote, str)):
            raise WireError("an exception extension is malformed")
        cls = _EXCEPTIONS.get(name)
        exc: BaseException
        try:
            exc = cls(*args) if cls is not None else _remote_error(name, message)
        except Exception:  # its constructor takes other arguments than the peer sent
            exc = _remote_error(name, message)
        exc.add_note(f"Raised remotely:\n{remote}")
        return exc

    def _pickle(self, data: bytes) -> Any:
        if not self.allow_pickle:
            raise WireError(
                "received a pickled value, but this exchange does not unpickle (allow_pickle=False)"
            )
        return pickle.loads(data)  # the deployment turned pickle on


_DECODE_HOOKS: dict[int, Callable[[Decoder, bytes], Any]] = {
    Ext.TUPLE: Decoder._tuple,
    Ext.ARRAY: Decoder._array_ext,
    Ext.HANDLE: Decoder._handle,
    Ext.ENTITY: Decoder._entity,
    Ext.UUID: Decoder._uuid,
    Ext.SET: Decoder._set,
    Ext.FROZENSET: Decoder._frozenset,
    Ext.EXCEPTION: Decoder._exception,
    Ext.BIGINT: Decoder._bigint,
    Ext.COMPLEX: Decoder._complex,
    Ext.DATETIME: Decoder._datetime,
    Ext.NUMPY_SCALAR: Decoder._numpy_scalar,
    Ext.PICKLE: Decoder._pickle,
}


def parse_strategy(raw: Any) -> SerializationStrategy | None:
    """Inverse of :func:`strategy_name` (ValueError for an unknown name)."""
    return None if raw is None else SerializationStrategy(raw)


def _remote_error(name: str, message: Any) -> BaseException:
    return academy.exception.AcademyRemoteError(f"{name}: {message}")

"""Academy's objects on the wire: handles, agent and user IDs, exceptions, pickle.

Action arguments, results and exceptions travel as msgpack. Plain values
that msgpack lacks (tuples, sets, big ints, datetimes, numpy arrays in
out-of-band buffers...) are encoded by :mod:`academy_ml.core.values`; this
module adds the extensions that are Academy's: handles, entity IDs and
exceptions, and pickle, which is produced and accepted only when the
deployment turns ``allow_pickle`` on. The extension codes of both are
:class:`~academy_ml.core.values.Ext` (re-exported here).

Decoding never executes code and is bounded in depth and size
(:func:`~academy_ml.core.bounded.bounded_unpackb`, re-exported here).
Exceptions are rebuilt only for built-in types and the exception classes of
Academy and academy_ml; anything else arrives as
:class:`academy.exception.AcademyRemoteError` carrying the remote type name
and traceback.
"""

from __future__ import annotations

import builtins
import pickle
import traceback
import uuid
from typing import Any

import academy.exception
import msgpack
from academy.handle import Handle
from academy.identifier import AgentId, EntityId, UserId
from academy.serialize import SerializationStrategy

from academy_ml import exceptions as aml_exceptions
from academy_ml.core.bounded import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, bounded_unpackb
from academy_ml.core.values import Ext, ValueDecoder, ValueEncoder, type_name
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


def _rebuildable_exceptions() -> dict[str, type[Exception]]:
    """Exception classes the decoder may instantiate, by qualified name."""
    found: dict[str, type[Exception]] = {}
    for module in (builtins, academy.exception, aml_exceptions):
        for value in vars(module).values():
            # Exception, not BaseException: a peer must not raise SystemExit
            # or KeyboardInterrupt in its caller.
            if isinstance(value, type) and issubclass(value, Exception):
                found[type_name(value)] = value
    return found


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


class Encoder(ValueEncoder):
    """Encodes one message's values; collects its out-of-band buffers.

    Args:
        allow_pickle: Pickle values no extension covers instead of refusing.
    """

    def __init__(self, *, allow_pickle: bool) -> None:
        super().__init__()
        self.allow_pickle = allow_pickle

    def _extension(self, obj: Any) -> msgpack.ExtType | None:
        if isinstance(obj, Handle):
            return msgpack.ExtType(Ext.HANDLE, self._nested(_handle_state(obj)))
        if isinstance(obj, AgentId | UserId):
            return msgpack.ExtType(Ext.ENTITY, self._nested(encode_entity(obj)))
        if isinstance(obj, BaseException):
            return msgpack.ExtType(Ext.EXCEPTION, self._exception(obj))
        plain = super()._extension(obj)
        if plain is None and self.allow_pickle:
            return msgpack.ExtType(Ext.PICKLE, pickle.dumps(obj, protocol=5))
        return plain

    def _refusal(self, obj: Any) -> str:
        return (
            f"{type_name(type(obj))} cannot travel through the exchange: send numbers, "
            "strings, bytes, numpy arrays, lists, tuples, dicts, sets, handles or exceptions, "
            "or create the exchange factory with allow_pickle=True"
        )

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
        head = self._nested(type_name(type(exc)))
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


class Decoder(ValueDecoder):
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
        super().__init__(buffers, max_depth=max_depth, max_size=max_size)
        self.allow_pickle = allow_pickle

    def _entity(self, data: bytes) -> EntityId:
        return decode_entity(self.unpack(data))

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


Decoder.HOOKS = {
    **ValueDecoder.HOOKS,
    Ext.HANDLE: Decoder._handle,
    Ext.ENTITY: Decoder._entity,
    Ext.EXCEPTION: Decoder._exception,
    Ext.PICKLE: Decoder._pickle,
}


def parse_strategy(raw: Any) -> SerializationStrategy | None:
    """Inverse of :func:`strategy_name` (ValueError for an unknown name)."""
    return None if raw is None else SerializationStrategy(raw)


def _remote_error(name: str, message: Any) -> BaseException:
    return academy.exception.AcademyRemoteError(f"{name}: {message}")

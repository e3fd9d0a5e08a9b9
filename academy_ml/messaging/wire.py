"""Academy messages as frames: a versioned msgpack envelope plus raw buffers.

Frame layout (all lengths little-endian)::

    b"AMX" version:u8 | header_len:u32 | header | body | buffer 0 | buffer 1 ...

``header`` is a msgpack list (routing fields, Academy's protocol version, the
body kind, the body's length and the buffers' lengths), so a receiver can
read who sent a message and what it answers before it touches the body, and
reply with a clear error when only the body is bad. ``body`` holds the
request or response fields encoded by :mod:`academy_ml.messaging.codec`,
with the serialization strategy the sender chose for its values: it travels
as a label (values are msgpack whatever it says; pickle is allowed only
under the ``pickle`` label of an ``allow_pickle`` deployment) and the
receiver checks it against Academy's allow-list (:mod:`.bodies`).

A message of another Academy protocol version whose body this version cannot
read (a ``foreign`` body) is carried as it is, so the receiver's Academy
client answers it with its incompatible-protocol error.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any

from academy.message import (
    AcademyErrorResponse,
    ActionRequest,
    ActionResponse,
    Body,
    CancelRequest,
    ErrorCode,
    Header,
    Message,
    PingRequest,
    ShutdownRequest,
    SuccessResponse,
    UserErrorResponse,
    check_version,
)
from academy.serialize import SerializationStrategy
from packaging.version import InvalidVersion, Version

from academy_ml.exceptions import MessageTooLargeError, UnsupportedPayloadError, WireError
from academy_ml.messaging.bodies import (
    ReceivedActionRequest,
    ReceivedActionResponse,
    ReceivedUserErrorResponse,
)
from academy_ml.messaging.codec import (
    Decoder,
    Encoder,
    Ext,
    decode_entity,
    encode_entity,
    parse_strategy,
    strategy_name,
)

MAGIC = b"AMX"
#: Version of the frame layout and extension codes; bumped on any change.
WIRE_VERSION = 2
_PREFIX = struct.Struct("<3sBI")
_HEADER_FIELDS = 10
#: Body kind of a message of another protocol version whose body is not one of ours.
FOREIGN = "foreign"
_PICKLE = SerializationStrategy.PICKLE.value
# The header holds no extension that refers to buffers.
_HEADER_DECODER = Decoder([], allow_pickle=False)


class _Placeholder:
    """Stands for a pickled value until the body's values are read."""


class _ScanDecoder(Decoder):
    """Decodes everything but pickles, and notes whether the body holds any."""

    def __init__(self, buffers: list[memoryview]) -> None:
        super().__init__(buffers, allow_pickle=False)
        self.pickled = False

    def _hook(self, code: int, data: bytes) -> Any:
        if code == Ext.PICKLE:
            self.pickled = True
            return _Placeholder()
        return super()._hook(code, data)


def encode(message: Message[Any], *, allow_pickle: bool, limit: int) -> list[bytes | memoryview]:
    """Frame ``message`` as a list of chunks to be written back to back.

    Raises:
        UnsupportedPayloadError: A value has no wire encoding (and pickle is off).
        MessageTooLargeError: The frame would exceed ``limit`` bytes.
    """
    header = message.header
    encoder = Encoder(allow_pickle=False)
    if isinstance(message.body, Body) or check_version(header.protocol_version):
        body = message.get_body()
        label = getattr(body, "serialization", None)
        # Pickle only where the sender asked for it: a JSON label promises none.
        encoder.allow_pickle = allow_pickle and label == _PICKLE
        body_kind = body.kind
        body_bytes = encoder.pack(_body_fields(body))
    else:
        body_kind, body_bytes = FOREIGN, _foreign_body(encoder, message.body)
    header_bytes = encoder.pack(
        [
            encode_entity(header.src),
            encode_entity(header.dest),
            header.tag.bytes,
            None if header.label is None else header.label.bytes,
            header.kind,
            header.protocol_version,
            header.academy_version,
            body_kind,
            len(body_bytes),
            [buffer.nbytes for buffer in encoder.buffers],
        ]
    )
    size = _PREFIX.size + len(header_bytes) + len(body_bytes)
    size += sum(buffer.nbytes for buffer in encoder.buffers)
    if size > limit:
        raise MessageTooLargeError(
            f"a {body_kind} of {size:,} bytes exceeds the exchange's limit of "
            f"{limit:,} bytes (max_message_bytes)"
        )
    prefix = _PREFIX.pack(MAGIC, WIRE_VERSION, len(header_bytes))
    return [prefix, header_bytes, body_bytes, *encoder.buffers]


def _foreign_body(encoder: Encoder, body: Any) -> bytes:
    """The body of another protocol version as it is, or None if it cannot travel."""
    try:
        return encoder.pack([body])
    except UnsupportedPayloadError:
        return encoder.pack([None])


def _result_of(body: ActionResponse) -> Any:
    # Academy's get_result compares result[0] with a string, which raises for
    # a result such as [np.array([]), x]; only its own serialized form needs it.
    result = body.result
    if isinstance(result, list) and len(result) == 2 and isinstance(result[0], str):
        return body.get_result()
    return result


def _body_fields(body: Any) -> list[Any]:
    match body:
        case ActionRequest():
            return [
                body.action,
                list(body.get_args()),
                body.get_kwargs(),
                strategy_name(body.serialization),
                strategy_name(body.result_serialization),
                strategy_name(body.exception_serialization),
            ]
        case ActionResponse():
            return [_result_of(body), strategy_name(body.serialization)]
        case UserErrorResponse():
            return [body.get_exception(), strategy_name(body.serialization)]
        case AcademyErrorResponse():
            mailbox = None if body.mailbox_id is None else encode_entity(body.mailbox_id)
            return [int(body.error_code), mailbox]
        case CancelRequest():
            return [body.target_tag.bytes]
        case ShutdownRequest():
            return [body.terminate]
        case PingRequest() | SuccessResponse():
            return []
    raise TypeError(f"not an Academy message body: {type(body).__name__}")


class Frame:
    """A received frame whose header is decoded and whose body is not yet.

    Args:
        data: The frame's bytes as read from Redis.

    Raises:
        WireError: The prefix or header is malformed or of another version.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < _PREFIX.size:
            raise WireError(f"a frame of {len(data)} bytes is shorter than its prefix")
        magic, version, header_len = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise WireError("not an academy_ml exchange frame (bad magic)")
        if version != WIRE_VERSION:
            raise WireError(f"frame version {version}; this exchange speaks {WIRE_VERSION}")
        view = memoryview(data)
        start = _PREFIX.size
        fields = _HEADER_DECODER.unpack(view[start : start + header_len])
        if not (isinstance(fields, list) and len(fields) == _HEADER_FIELDS):
            raise WireError("frame header is not a list of the expected fields")
        src, dest, tag, label, kind, protocol, academy_version, body_kind, body_len, lengths = (
            fields
        )
        if kind not in ("request", "response") or not isinstance(body_kind, str):
            raise WireError(f"frame header has an unknown message kind {kind!r}")
        if not (isinstance(tag, bytes) and len(tag) == 16):
            raise WireError("frame header tag is not 16 bytes")
        if not (label is None or (isinstance(label, bytes) and len(label) == 16)):
            raise WireError("frame header label is not 16 bytes")
        if not (protocol is None or isinstance(protocol, str)) or not isinstance(
            academy_version, str
        ):
            raise WireError("frame header versions are not strings")
        if protocol is not None:
            # Academy's clients parse it before anything else: garbage would stop them.
            try:
                Version(protocol)
            except InvalidVersion as exc:
                raise WireError(
                    f"frame header protocol version {protocol!r:.40} is invalid"
                ) from exc
        if not (
            type(body_len) is int
            and isinstance(lengths, list)
            and all(type(n) is int and n >= 0 for n in lengths)
        ):
            raise WireError("frame header lengths are malformed")
        body_start = start + header_len
        if body_len < 0 or body_start + body_len + sum(lengths) != len(data):
            raise WireError("frame length does not match the lengths in its header")
        self.header = Header(
            src=decode_entity(src),
            dest=decode_entity(dest),
            tag=uuid.UUID(bytes=tag),
            label=None if label is None else uuid.UUID(bytes=label),
            kind=kind,
            protocol_version=protocol,
            academy_version=academy_version,
        )
        self.body_kind = body_kind
        self._body = view[body_start : body_start + body_len]
        self._buffers: list[memoryview] = []
        offset = body_start + body_len
        for length in lengths:
            self._buffers.append(view[offset : offset + length])
            offset += length

    def message(self, *, allow_pickle: bool) -> Message[Any]:
        """Decode the body and return the Academy message.

        Values are decoded now, except pickled ones: those wait until the
        body's accessor is called where Academy's allow-list permits pickle.

        Raises:
            WireError: The body is malformed or hostile, pickled without
                ``allow_pickle`` or under a label other than ``pickle``, or a
                foreign body comes with a protocol version this Academy speaks.
        """
        decoder = _ScanDecoder(self._buffers)
        fields = decoder.unpack(self._body)
        if not isinstance(fields, list):
            raise WireError("message body is not a list")
        if self.body_kind == FOREIGN:
            if check_version(self.header.protocol_version) or len(fields) != 1:
                raise WireError("a foreign body under this Academy's own protocol version")
            return Message(header=self.header, body=fields[0])
        try:
            body = _body(self.body_kind, fields)
        except (TypeError, ValueError) as exc:
            raise WireError(f"{self.body_kind} body is malformed: {exc}") from exc
        if decoder.pickled:
            if not allow_pickle:
                raise WireError(
                    "received a pickled value, but this exchange does not unpickle "
                    "(allow_pickle=False)"
                )
            if getattr(body, "serialization", None) != _PICKLE:
                raise WireError(f"a {self.body_kind} not labelled pickle carries pickled values")
            body.defer(self._loader(self.body_kind))
        return Message(header=self.header, body=body)

    def _loader(self, kind: str) -> Callable[[], Any]:
        def load() -> Any:
            fields = Decoder(self._buffers, allow_pickle=True).unpack(self._body)
            if kind == "action-request":
                return tuple(fields[1]), fields[2]
            return fields[0]

        return load


def _body(kind: str, fields: list[Any]) -> Any:
    match kind, fields:
        case "action-request", [str(action), list(args), dict(kwargs), label, result_s, exc_s]:
            return ReceivedActionRequest(
                action=action,
                pargs=tuple(args),
                kargs=kwargs,
                serialization=_label(label),
                result_serialization=parse_strategy(result_s),
                exception_serialization=parse_strategy(exc_s),
            )
        case "action-response", [result, label]:
            return ReceivedActionResponse(result=result, serialization=_label(label))
        case "user-error-response", [exception, label] if isinstance(
            exception, BaseException | _Placeholder
        ):
            return ReceivedUserErrorResponse(exception=exception, serialization=_label(label))
        case "academy-error-response", [int(code), mailbox]:
            mailbox_id = None if mailbox is None else decode_entity(mailbox)
            return AcademyErrorResponse(error_code=ErrorCode(code), mailbox_id=mailbox_id)
        case "cancel-request", [bytes(tag)] if len(tag) == 16:
            return CancelRequest(target_tag=uuid.UUID(bytes=tag))
        case "shutdown-request", [terminate] if terminate is None or isinstance(terminate, bool):
            return ShutdownRequest(terminate=terminate)
        case "ping-request", []:
            return PingRequest()
        case "success-response", []:
            return SuccessResponse()
    raise WireError(f"unknown or malformed {kind!r} body")


def _label(raw: Any) -> SerializationStrategy:
    """The serialization strategy a body's values were sent under (never absent)."""
    strategy = parse_strategy(raw)
    if strategy is None:
        raise WireError("a body without its serialization strategy")
    return strategy

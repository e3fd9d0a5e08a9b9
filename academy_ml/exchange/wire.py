"""Academy messages as frames: a versioned msgpack envelope plus raw buffers.

Frame layout (all lengths little-endian)::

    b"AMX" version:u8 | header_len:u32 | header | body | buffer 0 | buffer 1 ...

``header`` is a msgpack list (routing fields, Academy's protocol version, the
body kind, the body's length and the buffers' lengths), so a receiver can
read who sent a message and what it answers before it touches the body, and
reply with a clear error when only the body is bad. ``body`` holds the
request or response fields encoded by :mod:`academy_ml.exchange.codec`.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from academy.message import (
    AcademyErrorResponse,
    ActionRequest,
    ActionResponse,
    CancelRequest,
    ErrorCode,
    Header,
    Message,
    PingRequest,
    ShutdownRequest,
    SuccessResponse,
    UserErrorResponse,
)
from academy.serialize import SerializationStrategy

from academy_ml.exceptions import MessageTooLargeError, WireError
from academy_ml.exchange.codec import (
    Decoder,
    Encoder,
    decode_entity,
    encode_entity,
    parse_strategy,
    strategy_name,
)

MAGIC = b"AMX"
#: Version of the frame layout and extension codes; bumped on any change.
WIRE_VERSION = 1
_PREFIX = struct.Struct("<3sBI")
_HEADER_FIELDS = 10
# Decoded bodies are plain values already: tell Academy's lazy decoders that
# they are JSON, so no path in Academy ever reaches its pickle deserializer.
_DECODED = SerializationStrategy.JSON.value
# The header holds no extension that refers to buffers.
_HEADER_DECODER = Decoder([], allow_pickle=False)


def encode(message: Message[Any], *, allow_pickle: bool, limit: int) -> list[bytes | memoryview]:
    """Frame ``message`` as a list of chunks to be written back to back.

    Raises:
        UnsupportedPayloadError: A value has no wire encoding (and pickle is off).
        MessageTooLargeError: The frame would exceed ``limit`` bytes.
    """
    body = message.get_body()
    encoder = Encoder(allow_pickle=allow_pickle)
    body_bytes = encoder.pack(_body_fields(body))
    header = message.header
    header_bytes = encoder.pack(
        [
            encode_entity(header.src),
            encode_entity(header.dest),
            header.tag.bytes,
            None if header.label is None else header.label.bytes,
            header.kind,
            header.protocol_version,
            header.academy_version,
            body.kind,
            len(body_bytes),
            [buffer.nbytes for buffer in encoder.buffers],
        ]
    )
    size = _PREFIX.size + len(header_bytes) + len(body_bytes)
    size += sum(buffer.nbytes for buffer in encoder.buffers)
    if size > limit:
        raise MessageTooLargeError(
            f"a {body.kind} of {size:,} bytes exceeds the exchange's limit of "
            f"{limit:,} bytes (max_message_bytes)"
        )
    prefix = _PREFIX.pack(MAGIC, WIRE_VERSION, len(header_bytes))
    return [prefix, header_bytes, body_bytes, *encoder.buffers]


def _body_fields(body: Any) -> list[Any]:
    match body:
        case ActionRequest():
            return [
                body.action,
                list(body.get_args()),
                body.get_kwargs(),
                strategy_name(body.result_serialization),
                strategy_name(body.exception_serialization),
            ]
        case ActionResponse():
            return [body.get_result()]
        case UserErrorResponse():
            return [body.get_exception()]
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

        Raises:
            WireError: The body is malformed, hostile or (without
                ``allow_pickle``) pickled.
        """
        decoder = Decoder(self._buffers, allow_pickle=allow_pickle)
        fields = decoder.unpack(self._body)
        if not isinstance(fields, list):
            raise WireError("message body is not a list")
        try:
            body = _body(self.body_kind, fields)
        except (TypeError, ValueError) as exc:
            raise WireError(f"{self.body_kind} body is malformed: {exc}") from exc
        return Message(header=self.header, body=body)


def _body(kind: str, fields: list[Any]) -> Any:
    match kind, fields:
        case "action-request", [str(action), list(args), dict(kwargs), result_s, exception_s]:
            return ActionRequest(
                action=action,
                pargs=tuple(args),
                kargs=kwargs,
                serialization=_DECODED,
                result_serialization=parse_strategy(result_s),
                exception_serialization=parse_strategy(exception_s),
            )
        case "action-response", [result]:
            return ActionResponse(result=result, serialization=_DECODED)
        case "user-error-response", [BaseException() as exception]:
            return UserErrorResponse(exception=exception, serialization=_DECODED)
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

from __future__ import annotations

import struct
import uuid
from typing import Any

import msgpack
import numpy as np
import pytest
from academy.identifier import AgentId, UserId
from academy.message import (
    AcademyErrorResponse,
    ActionRequest,
    ActionResponse,
    CancelRequest,
    ErrorCode,
    Message,
    PingRequest,
    ShutdownRequest,
    SuccessResponse,
    UserErrorResponse,
)

from academy_ml.exceptions import MessageTooLargeError, UnsupportedPayloadError, WireError
from academy_ml.exchange import wire

LIMIT = 64 * 2**20
USER = UserId.new(name="me")
AGENT: AgentId[Any] = AgentId.new(name="worker")


def frame_of(message: Message[Any], *, limit: int = LIMIT, allow_pickle: bool = False) -> bytes:
    return b"".join(wire.encode(message, allow_pickle=allow_pickle, limit=limit))


def request(*args: Any, **kwargs: Any) -> Message[Any]:
    body = ActionRequest(action="act", pargs=args, kargs=kwargs, serialization="pickle")
    return Message.create(src=USER, dest=AGENT, body=body, label=uuid.uuid4())


def test_action_request_round_trips_with_its_header() -> None:
    array = np.random.default_rng(0).normal(size=(100, 3))
    sent = request(1, b"raw", array, scale=2.5, tags=("a", "b"))
    received = wire.Frame(frame_of(sent)).message(allow_pickle=False)
    assert received.header == sent.header
    assert received.header.src.name == "me"
    body = received.get_body()
    assert isinstance(body, ActionRequest)
    assert body.action == "act"
    args = body.get_args()
    assert args[:2] == (1, b"raw")
    np.testing.assert_array_equal(args[2], array)
    assert body.get_kwargs() == {"scale": 2.5, "tags": ("a", "b")}


def test_decoded_bodies_never_point_academy_at_pickle() -> None:
    received = wire.Frame(frame_of(request(1))).message(allow_pickle=False)
    body = received.get_body()
    assert body.serialization == "json"
    response = received.create_response(ActionResponse(result=["x"], serialization="pickle"))
    back = wire.Frame(frame_of(response)).message(allow_pickle=False).get_body()
    assert back.serialization == "json"
    assert back.get_result() == ["x"]


@pytest.mark.parametrize(
    "body",
    [
        ActionResponse(result={"a": 1}, serialization="pickle"),
        UserErrorResponse(exception=KeyError("k"), serialization="pickle"),
        AcademyErrorResponse(error_code=ErrorCode.MAILBOX_TERMINATED, mailbox_id=AGENT),
        AcademyErrorResponse(error_code=ErrorCode.PING_CANCELLED),
        SuccessResponse(),
    ],
)
def test_responses_round_trip(body: Any) -> None:
    sent = request().create_response(body)
    received = wire.Frame(frame_of(sent)).message(allow_pickle=False)
    assert received.header == sent.header
    assert received.is_response()
    got = received.get_body()
    assert type(got) is type(body)
    if isinstance(body, UserErrorResponse):
        assert type(got.get_exception()) is KeyError
    elif isinstance(body, ActionResponse):
        assert got.get_result() == {"a": 1}
    else:
        assert got == body


@pytest.mark.parametrize(
    "body", [PingRequest(), CancelRequest(target_tag=uuid.uuid4()), ShutdownRequest(terminate=True)]
)
def test_control_requests_round_trip(body: Any) -> None:
    sent = Message.create(src=USER, dest=AGENT, body=body)
    assert wire.Frame(frame_of(sent)).message(allow_pickle=False).get_body() == body


def test_oversized_and_unencodable_messages_are_refused_when_sent() -> None:
    with pytest.raises(MessageTooLargeError, match="exceeds the exchange's limit of 2,048"):
        frame_of(request(b"x" * 4096), limit=2048)
    with pytest.raises(UnsupportedPayloadError, match="object"):
        frame_of(request(object()))


def test_header_is_readable_when_the_body_is_not() -> None:
    good = frame_of(request(1))
    _, _, header_len = struct.unpack_from("<3sBI", good)
    start = 8 + header_len
    broken = good[:start] + b"\xc1" * (len(good) - start)
    frame = wire.Frame(broken)
    assert frame.header.src == USER
    assert frame.header.kind == "request"
    with pytest.raises(WireError):
        frame.message(allow_pickle=False)


def prefix(header: bytes) -> bytes:
    return struct.pack("<3sBI", b"AMX", 1, len(header)) + header


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"AMX",
        b"JSON{...}",
        struct.pack("<3sBI", b"AMX", 2, 0),  # another version
        prefix(msgpack.packb([1, 2, 3])),
        prefix(msgpack.packb(["a"] * 10)),
        struct.pack("<3sBI", b"AMX", 1, 2**31),  # header length beyond the frame
    ],
)
def test_malformed_frames_are_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        wire.Frame(data)


def test_frame_lengths_must_add_up() -> None:
    good = frame_of(request(np.zeros(4)))
    with pytest.raises(WireError, match="length"):
        wire.Frame(good + b"extra")
    with pytest.raises(WireError, match="length"):
        wire.Frame(good[:-1])

from __future__ import annotations

import base64
import pickle
import struct
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from academy.exception import DeserializationMethodProhibitedError, IncompatibleNetworkProtocolError
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
from academy.serialize import SerializationStrategy, allowed_deserializers

from academy_ml.exceptions import MessageTooLargeError, UnsupportedPayloadError, WireError
from academy_ml.messaging import wire
from academy_ml.messaging.bodies import ReceivedActionResponse

LIMIT = 64 * 2**20
#: Indices of header fields (see academy_ml.messaging.wire).
PROTOCOL, BODY_LENGTH = 5, 8
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


def test_serialization_settings_travel_with_the_body() -> None:
    body = ActionRequest(
        action="act",
        pargs=(1,),
        serialization="json",
        result_serialization="pickle",
        exception_serialization="json",
    )
    sent = Message.create(src=USER, dest=AGENT, body=body)
    got = wire.Frame(frame_of(sent)).message(allow_pickle=False).get_body()
    assert (got.serialization, got.result_serialization, got.exception_serialization) == (
        "json",
        "pickle",
        "json",
    )
    for strategy in ("json", "pickle"):
        response = sent.create_response(ActionResponse(result=2, serialization=strategy))
        back = wire.Frame(frame_of(response)).message(allow_pickle=False).get_body()
        assert back.serialization == strategy
        error = sent.create_response(
            UserErrorResponse(exception=KeyError("k"), serialization=strategy)
        )
        back = wire.Frame(frame_of(error)).message(allow_pickle=False).get_body()
        assert back.serialization == strategy


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_values_of_a_strategy_the_context_refuses_are_refused(allow_pickle: bool) -> None:
    received = wire.Frame(frame_of(request(1), allow_pickle=allow_pickle)).message(
        allow_pickle=allow_pickle
    )
    body = received.get_body()
    response = received.create_response(ActionResponse(result=["x"], serialization="pickle"))
    back = wire.Frame(frame_of(response)).message(allow_pickle=allow_pickle).get_body()
    error = received.create_response(
        UserErrorResponse(exception=KeyError("k"), serialization="pickle")
    )
    failed = wire.Frame(frame_of(error)).message(allow_pickle=allow_pickle).get_body()
    token = allowed_deserializers.set({SerializationStrategy.JSON})
    try:
        for read in (body.get_args, body.get_kwargs, back.get_result, failed.get_exception):
            with pytest.raises(DeserializationMethodProhibitedError):
                read()
    finally:
        allowed_deserializers.reset(token)
    assert body.get_args() == (1,)  # Academy's default context allows both
    assert back.get_result() == ["x"]


class Tripwire:
    """Unpickling it creates a file: proof that a receiver unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_pickled_values_are_unpickled_only_where_the_allow_list_permits(tmp_path: Path) -> None:
    trip = tmp_path / "unpickled"
    sent = request(1, Tripwire(trip), key=Tripwire(trip))
    received = wire.Frame(frame_of(sent, allow_pickle=True)).message(allow_pickle=True)
    body = received.get_body()
    token = allowed_deserializers.set({SerializationStrategy.JSON})
    try:
        with pytest.raises(DeserializationMethodProhibitedError):
            body.get_args()
    finally:
        allowed_deserializers.reset(token)
    assert not trip.exists()
    args = body.get_args()
    assert args[0] == 1
    assert trip.exists()
    with pytest.raises(WireError, match="allow_pickle=False"):
        wire.Frame(frame_of(sent, allow_pickle=True)).message(allow_pickle=False)


def test_a_json_label_never_carries_pickle(tmp_path: Path) -> None:
    body = ActionRequest(action="act", pargs=(Tripwire(tmp_path / "x"),), serialization="json")
    sent = Message.create(src=USER, dest=AGENT, body=body)
    with pytest.raises(UnsupportedPayloadError):
        frame_of(sent, allow_pickle=True)
    # a peer that labels pickled values JSON anyway is refused on arrival
    smuggled = frame_of(request(Tripwire(tmp_path / "x")), allow_pickle=True)
    relabelled = smuggled.replace(b"\xa6pickle", b"\xa4json", 1)
    delta = len(relabelled) - len(smuggled)
    relabelled = _with_header(relabelled, BODY_LENGTH, lambda n: n + delta)
    with pytest.raises(WireError, match="not labelled pickle"):
        wire.Frame(relabelled).message(allow_pickle=True)
    assert not (tmp_path / "x").exists()


def _with_header(frame: bytes, index: int, change: Callable[[Any], Any]) -> bytes:
    """``frame`` with header field ``index`` replaced by ``change(field)``."""
    _, version, header_len = struct.unpack_from("<3sBI", frame)
    fields = msgpack.unpackb(frame[8 : 8 + header_len], strict_map_key=False)
    fields[index] = change(fields[index])
    header: bytes = msgpack.packb(fields)
    return struct.pack("<3sBI", b"AMX", version, len(header)) + header + frame[8 + header_len :]


def test_a_serialized_looking_result_is_never_deserialized(tmp_path: Path) -> None:
    # Academy's own ActionResponse unpickles a result shaped like this one.
    trip = tmp_path / "unpickled"
    data = base64.b64encode(pickle.dumps(Tripwire(trip))).decode()
    marker = ["__serialized__", data]
    body = ReceivedActionResponse(result=marker, serialization="pickle")
    response = request().create_response(body)
    got = wire.Frame(frame_of(response)).message(allow_pickle=True).get_body()
    assert got.get_result() == marker
    assert not trip.exists()


def test_a_message_of_another_protocol_version_travels_as_it_is() -> None:
    foreign: Message[Any] = Message.model_validate(
        {
            "header": {
                "src": USER,
                "dest": AGENT,
                "kind": "request",
                "tag": uuid.uuid4(),
                "protocol_version": "1000.0.0",
            },
            "body": {"type": "brand-new-type-of-request", "with_arbitrary_info": "..."},
        }
    )
    received = wire.Frame(frame_of(foreign)).message(allow_pickle=False)
    assert received.header == foreign.header
    assert received.body == {"type": "brand-new-type-of-request", "with_arbitrary_info": "..."}
    with pytest.raises(IncompatibleNetworkProtocolError):
        received.get_body()
    # a foreign body under this version's own protocol is not accepted
    with pytest.raises(WireError, match="foreign"):
        wire.Frame(_with_header(frame_of(foreign), PROTOCOL, lambda _: "1.1")).message(
            allow_pickle=False
        )
    # nor is a protocol version that is not a version
    with pytest.raises(WireError, match="version"):
        wire.Frame(_with_header(frame_of(foreign), PROTOCOL, lambda _: "1.1\x00 nope"))


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
    assert isinstance(got, type(body))
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
    return struct.pack("<3sBI", b"AMX", wire.WIRE_VERSION, len(header)) + header


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"AMX",
        b"JSON{...}",
        struct.pack("<3sBI", b"AMX", wire.WIRE_VERSION + 1, 0),  # another version
        prefix(msgpack.packb([1, 2, 3])),
        prefix(msgpack.packb(["a"] * 10)),
        struct.pack("<3sBI", b"AMX", wire.WIRE_VERSION, 2**31),  # header length beyond the frame
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


def test_a_result_led_by_an_array_is_sent_as_it_is() -> None:
    # Academy's get_result compares result[0] with a string: an array there raised.
    sent = request().create_response(ActionResponse(result=[np.array([]), 1], serialization="json"))
    got = wire.Frame(frame_of(sent)).message(allow_pickle=False).get_body().get_result()
    assert got[0].shape == (0,)
    assert got[1] == 1

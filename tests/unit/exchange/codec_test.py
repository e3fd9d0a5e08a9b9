from __future__ import annotations

import datetime as dt
import pickle
import uuid
from typing import Any

import msgpack
import numpy as np
import pytest
from academy.exception import AcademyRemoteError, AgentTerminatedError
from academy.handle import Handle
from academy.identifier import AgentId, UserId

from academy_ml.exceptions import PlanError, UnsupportedPayloadError, WireError
from academy_ml.exchange.codec import Decoder, Encoder, Ext


def roundtrip(value: Any, *, allow_pickle: bool = False) -> Any:
    encoder = Encoder(allow_pickle=allow_pickle)
    packed = encoder.pack(value)
    buffers = [memoryview(bytes(b)) for b in encoder.buffers]
    return Decoder(buffers, allow_pickle=allow_pickle).unpack(packed)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(2**63),
        2**64 + 1,
        1.5,
        "ünïcode",
        b"\x00\xff",
        [1, [2, (3, 4)]],
        (1, "a", None),
        {"a": {"b": [1.0, 2.0]}, 3: "int key", (1, 2): "tuple key"},
        {1, 2, 3},
        frozenset({"x"}),
        uuid.UUID(int=7),
        dt.datetime(2026, 11, 22, 12, 30, tzinfo=dt.UTC),
        3 + 4j,
    ],
)
def test_values_round_trip_with_their_types(value: Any) -> None:
    result = roundtrip(value)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("dtype", ["f8", "f4", "i8", "u1", "?", "c16", "<U5", "S3", ">i4", "M8[s]"])
def test_arrays_keep_dtype_shape_and_values_and_are_writable(dtype: str) -> None:
    array = np.arange(24).reshape(2, 3, 4).astype(dtype)
    result = roundtrip({"x": array})["x"]
    assert result.dtype == array.dtype
    assert result.shape == array.shape
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = result[1, 1, 1]  # writable, like pickle's arrays


def test_arrays_travel_out_of_band_and_non_contiguous_ones_are_copied() -> None:
    array = np.arange(1_000_000, dtype=np.float64)
    encoder = Encoder(allow_pickle=False)
    packed = encoder.pack([array[::2], array])
    assert len(packed) < 200  # the data is in the buffers, not in msgpack
    assert [b.nbytes for b in encoder.buffers] == [4_000_000, 8_000_000]
    decoded = Decoder(encoder.buffers, allow_pickle=False).unpack(packed)
    np.testing.assert_array_equal(decoded[0], array[::2])


def test_bytes_travel_as_msgpack_binary_not_base64() -> None:
    data = bytes(range(256)) * 64
    packed = Encoder(allow_pickle=False).pack(bytearray(data))
    assert len(packed) == len(data) + 3  # bin 16 header, then the raw bytes
    assert Decoder([], allow_pickle=False).unpack(packed) == data


def test_zero_dimensional_arrays_stay_zero_dimensional() -> None:
    result = roundtrip(np.array(2.5))
    assert result.shape == ()
    assert result == 2.5


def test_numpy_scalars_round_trip() -> None:
    for scalar in (np.float32(1.5), np.int64(-3), np.bool_(True)):
        result = roundtrip(scalar)
        assert result == scalar
        assert type(result) is type(scalar)


def test_handles_and_ids_round_trip() -> None:
    agent: AgentId[Any] = AgentId.new(name="planner")
    handle: Handle[Any] = Handle(agent, polling_interval=5)
    result = roundtrip({"h": handle, "user": UserId.new(name="me"), "agent": agent})
    assert isinstance(result["h"], Handle)
    assert result["h"].agent_id == agent
    assert result["h"].polling_interval == 5
    assert result["agent"] == agent
    assert result["agent"].name == "planner"
    assert isinstance(result["user"], UserId)


def test_known_exceptions_are_rebuilt_with_the_remote_traceback() -> None:
    try:
        raise ValueError("bad value", 3)
    except ValueError as exc:
        error = exc
    result = roundtrip(error)
    assert type(result) is ValueError
    assert result.args == ("bad value", 3)
    assert "Raised remotely" in result.__notes__[0]
    assert "raise ValueError" in result.__notes__[0]
    ours = roundtrip(PlanError("no"))
    assert type(ours) is PlanError
    agent: AgentId[Any] = AgentId.new()
    academy = roundtrip(AgentTerminatedError(agent))
    assert type(academy) is AgentTerminatedError
    assert academy.uid == agent


def test_unknown_exceptions_arrive_as_remote_errors_with_their_type_name() -> None:
    class Custom(Exception):
        pass

    result = roundtrip(Custom("boom"))
    assert isinstance(result, AcademyRemoteError)
    assert "Custom: boom" in str(result)


class Opaque:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque)

    def __hash__(self) -> int:
        return 0


def test_unsupported_values_are_refused_by_name_unless_pickle_is_on() -> None:
    with pytest.raises(UnsupportedPayloadError, match=r"Opaque.*allow_pickle=True"):
        Encoder(allow_pickle=False).pack({"x": Opaque()})
    with pytest.raises(UnsupportedPayloadError, match="dtype object"):
        Encoder(allow_pickle=False).pack(np.array([object()]))
    assert roundtrip(Opaque(), allow_pickle=True) == Opaque()


def test_values_nested_without_end_are_refused_not_crashed_on() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UnsupportedPayloadError, match="cannot be encoded"):
        Encoder(allow_pickle=False).pack({"x": loop})


def test_huge_ints_beyond_the_decimal_digit_limit_round_trip() -> None:
    value = -(1 << 100_000) + 12345
    assert roundtrip(value) == value


def test_base_exceptions_are_not_raised_in_the_caller() -> None:
    result = roundtrip(SystemExit(3))
    assert isinstance(result, AcademyRemoteError)
    assert "SystemExit" in str(result)


def test_pickle_is_never_loaded_unless_allowed() -> None:
    class Boom:
        def __reduce__(self) -> Any:
            return (pytest.fail, ("unpickled a hostile value",))

    packed = msgpack.packb(msgpack.ExtType(Ext.PICKLE, pickle.dumps(Boom())))
    with pytest.raises(WireError, match="allow_pickle=False"):
        Decoder([], allow_pickle=False).unpack(packed)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xc1",  # never-used msgpack byte
        b"\x92\x01",  # truncated array
        msgpack.packb(msgpack.ExtType(99, b"")),
        msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f8", [10], 0]))),  # no buffer
        msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb(["O", [1], 0]))),
        msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f8", [-1], 0]))),
        msgpack.packb(msgpack.ExtType(Ext.UUID, b"short")),
        msgpack.packb(msgpack.ExtType(Ext.HANDLE, msgpack.packb([1, 2]))),
        msgpack.packb(msgpack.ExtType(Ext.ENTITY, msgpack.packb([True, b"x", None]))),
        msgpack.packb(msgpack.ExtType(Ext.EXCEPTION, msgpack.packb("x"))),
        msgpack.packb(msgpack.ExtType(Ext.TUPLE, b"\xc1")),
        b"\xa2\xff\xfe",  # invalid utf-8 string
    ],
)
def test_garbage_is_a_wire_error(raw: bytes) -> None:
    with pytest.raises(WireError):
        Decoder([memoryview(b"\x00" * 8)], allow_pickle=False).unpack(raw)


def test_array_buffer_size_must_match_its_shape() -> None:
    packed = msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f8", [3], 0])))
    with pytest.raises(WireError, match="needs 24 bytes"):
        Decoder([memoryview(b"\x00" * 16)], allow_pickle=False).unpack(packed)

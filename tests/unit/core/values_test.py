"""The plain-value codec under the exchange's: what it encodes, what it refuses."""

from __future__ import annotations

import datetime as dt
import pickle
import uuid
from typing import Any

import msgpack
import numpy as np
import pytest

from academy_ml.core.values import Ext, ValueDecoder, ValueEncoder
from academy_ml.exceptions import PayloadTooDeepError, UnsupportedPayloadError, WireError
from academy_ml.messaging.codec import Encoder

PLAIN = [
    None,
    -(2**63),
    2**64 + 1,
    -(1 << 5000),
    "ünïcode",
    b"\x00",
    (1, (2.5, "a")),
    {1, 2},
    frozenset({"x"}),
    uuid.UUID(int=7),
    dt.datetime(2026, 12, 3, 12, 30, tzinfo=dt.UTC),
    3 - 4j,
    {"k": [(1,), {"n": None}]},
    np.float32(1.5),
    np.int8(-3),
]


def roundtrip(value: Any) -> Any:
    encoder = ValueEncoder()
    packed = encoder.pack(value)
    return ValueDecoder([memoryview(bytes(b)) for b in encoder.buffers]).unpack(packed)


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_round_trip_with_their_types(value: Any) -> None:
    result = roundtrip(value)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("dtype", ["<f8", "<i4", "|u1", "|b1", "<c16", "<U3", "|S2", "<M8[s]"])
def test_arrays_travel_out_of_band(dtype: str) -> None:
    array = np.arange(6).astype(dtype).reshape(2, 3)
    encoder = ValueEncoder()
    packed = encoder.pack({"a": array})
    assert len(packed) < 40  # the data is in the buffer, not the msgpack stream
    assert [b.nbytes for b in encoder.buffers] == [array.nbytes]
    decoded = roundtrip({"a": array})["a"]
    np.testing.assert_array_equal(decoded, array)
    assert decoded.dtype == array.dtype
    assert decoded.flags.writeable


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_the_exchange_writes_plain_values_with_the_same_bytes(value: Any) -> None:
    # One codec: the exchange's adds Academy's objects and nothing else.
    plain, exchange = ValueEncoder(), Encoder(allow_pickle=False)
    assert plain.pack(value) == exchange.pack(value)
    assert [bytes(b) for b in plain.buffers] == [bytes(b) for b in exchange.buffers]


class Opaque:
    pass


@pytest.mark.parametrize("value", [ValueError("x"), Opaque(), np.array([object()])])
def test_what_is_not_plain_data_is_refused_when_encoding(value: Any) -> None:
    with pytest.raises(UnsupportedPayloadError, match="no msgpack encoding"):
        ValueEncoder().pack([value])


@pytest.mark.parametrize("code", [Ext.HANDLE, Ext.ENTITY, Ext.EXCEPTION, Ext.PICKLE, 99])
def test_academys_extensions_and_unknown_ones_are_refused_when_decoding(code: int) -> None:
    payload = pickle.dumps(Opaque()) if code == Ext.PICKLE else msgpack.packb([])
    with pytest.raises(WireError, match=f"unknown extension type {code}"):
        ValueDecoder().unpack(msgpack.packb([msgpack.ExtType(code, payload)]))


@pytest.mark.parametrize(
    "ext",
    [
        msgpack.ExtType(Ext.COMPLEX, msgpack.packb(["1", 2])),
        msgpack.ExtType(Ext.COMPLEX, msgpack.packb([True, 2])),
        msgpack.ExtType(Ext.COMPLEX, msgpack.packb([1.0])),
        msgpack.ExtType(Ext.BIGINT, b"\xff"),
        msgpack.ExtType(Ext.DATETIME, b"yesterday"),
        msgpack.ExtType(Ext.UUID, b"short"),
        msgpack.ExtType(Ext.SET, msgpack.packb({"a": 1})),
        msgpack.ExtType(Ext.SET, msgpack.packb([[1]])),  # an unhashable member
        msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f8", [1], 0])),  # no such buffer
        msgpack.ExtType(Ext.NUMPY_SCALAR, msgpack.packb(["O", [], 0])),
        msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f3", [0], 0])),
    ],
)
def test_malformed_extensions_are_wire_errors(ext: msgpack.ExtType) -> None:
    with pytest.raises(WireError):
        ValueDecoder().unpack(msgpack.packb(ext))


def test_depth_spans_nested_extensions() -> None:
    packed = ValueEncoder().pack(((((1,),),),))
    assert ValueDecoder(max_depth=8).unpack(packed) == ((((1,),),),)
    with pytest.raises(PayloadTooDeepError, match="deeper than 7"):
        ValueDecoder(max_depth=7).unpack(packed)


@pytest.mark.parametrize(
    "descr", [",f8", "f8,(", "(2,)f8", "<f8,<i4", "|V8", "<f8\n", "x" * 10_000]
)
def test_dtypes_other_than_what_the_encoder_writes_never_reach_numpys_parser(descr: str) -> None:
    # np.dtype parses comma lists with ast.literal_eval: ",f8" in a mutated frame
    # raised SyntaxError out of the exchange's decoder (found by the frame fuzzer).
    packed = msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb([descr, [1], 0])))
    with pytest.raises(WireError, match="is not allowed on the wire") as raised:
        ValueDecoder([memoryview(b"\x00" * 8)]).unpack(packed)
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize(
    "dtype", ["?", "i1", ">u2", "f2", "g", "G", "S0", "U5", "M8", "M8[10us]", "m8[W]"]
)
def test_every_dtype_the_encoder_writes_is_read(dtype: str) -> None:
    array = np.zeros(2, dtype=dtype)
    np.testing.assert_array_equal(roundtrip(array), array)

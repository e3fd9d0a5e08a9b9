from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import numpy as np
import pytest
from academy.exception import AcademyRemoteError, AgentTerminatedError
from academy.handle import Handle
from academy.identifier import AgentId, UserId

from academy_ml.core.bounded import DEFAULT_MAX_DEPTH
from academy_ml.exceptions import (
    PayloadTooDeepError,
    PayloadTooLargeError,
    PlanError,
    UnsupportedPayloadError,
    WireError,
)
from academy_ml.messaging.codec import Decoder, Encoder, Ext, bounded_unpackb


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


def nested_tuples(depth: int) -> Any:
    value: Any = ()
    for _ in range(depth):
        value = (value,)
    return value


def test_depth_counts_containers_and_extensions_together() -> None:
    # [[(1,)]]: two lists, a tuple extension, the list inside it: depth 4.
    packed = Encoder(allow_pickle=False).pack([[(1,)]])
    assert Decoder([], allow_pickle=False, max_depth=4).unpack(packed) == [[(1,)]]
    with pytest.raises(PayloadTooDeepError, match="deeper than 3"):
        Decoder([], allow_pickle=False, max_depth=3).unpack(packed)
    lists = msgpack.packb([[[[1]]]])
    assert Decoder([], allow_pickle=False, max_depth=4).unpack(lists) == [[[[1]]]]
    with pytest.raises(PayloadTooDeepError):
        Decoder([], allow_pickle=False, max_depth=3).unpack(lists)


def test_extensions_nested_past_the_limit_are_refused_at_any_depth() -> None:
    for depth in (DEFAULT_MAX_DEPTH // 2 - 1, 200, 5000):
        packed = Encoder(allow_pickle=False).pack(nested_tuples(depth)) if depth < 300 else None
        if packed is None:  # beyond what the encoder nests: build it by hand
            packed = msgpack.packb([])
            for _ in range(depth):
                packed = msgpack.packb([msgpack.ExtType(Ext.TUPLE, packed)])
        decoder = Decoder([], allow_pickle=False)
        if 2 * depth + 1 <= DEFAULT_MAX_DEPTH:
            assert decoder.unpack(packed) == nested_tuples(depth)
        else:
            with pytest.raises(PayloadTooDeepError):
                decoder.unpack(packed)


def test_containers_past_msgpack_stack_are_too_deep() -> None:
    with pytest.raises(PayloadTooDeepError):
        Decoder([], allow_pickle=False).unpack(b"\x91" * 5000 + b"\xc0")


def test_size_limit_and_length_prefixes_beyond_the_data() -> None:
    packed = msgpack.packb(b"x" * 100)
    with pytest.raises(PayloadTooLargeError, match="102 bytes exceeds 64"):
        Decoder([], allow_pickle=False, max_size=64).unpack(packed)
    # A 4 GiB array/str/bin/map claimed by a 5-byte message is refused, not allocated.
    for prefix in (b"\xdd", b"\xdb", b"\xc6", b"\xdf"):
        with pytest.raises(WireError):
            Decoder([], allow_pickle=False).unpack(prefix + b"\xff\xff\xff\xff")


def test_trailing_bytes_inside_an_extension_are_refused() -> None:
    packed = msgpack.packb(msgpack.ExtType(Ext.TUPLE, msgpack.packb([1]) + b"\x01"))
    with pytest.raises(WireError, match="trailing bytes"):
        Decoder([], allow_pickle=False).unpack(packed)


def test_array_shapes_cannot_overflow_to_match_a_buffer() -> None:
    # 2**32 * 2**32 elements is 0 in int64 arithmetic: must not match an empty buffer.
    packed = msgpack.packb(msgpack.ExtType(Ext.ARRAY, msgpack.packb(["<f8", [2**32, 2**32], 0])))
    with pytest.raises(WireError, match="needs"):
        Decoder([memoryview(b"")], allow_pickle=False).unpack(packed)


def test_bounded_unpackb_refuses_extensions_without_a_hook() -> None:
    assert bounded_unpackb(msgpack.packb({"a": [1, 2]}), max_depth=2, max_size=100) == {"a": [1, 2]}
    with pytest.raises(WireError, match="extension type 5"):
        bounded_unpackb(msgpack.packb(msgpack.ExtType(5, b"")), max_depth=2, max_size=100)


def test_depth_budgets_of_concurrent_decodes_stay_apart() -> None:
    # The budget travels in a context variable: threads decoding at once never share it.
    fits = Encoder(allow_pickle=False).pack(nested_tuples(DEFAULT_MAX_DEPTH // 2 - 1))
    too_deep = Encoder(allow_pickle=False).pack(nested_tuples(DEFAULT_MAX_DEPTH))
    barrier = threading.Barrier(8)

    def work(index: int) -> list[str]:
        barrier.wait()
        outcomes = []
        for round_ in range(200):
            data = too_deep if (index + round_) % 3 == 0 else fits
            try:
                Decoder([], allow_pickle=False).unpack(data)
                outcomes.append("ok" if data is fits else "missed")
            except PayloadTooDeepError:
                outcomes.append("refused" if data is too_deep else "wrongly refused")
            if round_ % 50 == 0:
                time.sleep(0.001)  # let the threads interleave
        return outcomes

    with ThreadPoolExecutor(8) as pool:
        results = [o for outcomes in pool.map(work, range(8)) for o in outcomes]
    assert set(results) == {"ok", "refused"}


def test_nested_extensions_use_heap_not_c_stack() -> None:
    # On a 512 KB thread stack: the old decoder needed ~40 KB of C stack per level.
    code = (
        "import threading, msgpack\n"
        "from academy_ml.messaging.codec import Decoder, Encoder\n"
        "from academy_ml.exceptions import PayloadTooDeepError\n"
        "value = ()\n"
        "for _ in range(31):\n"
        "    value = (value,)\n"
        "packed = Encoder(allow_pickle=False).pack(value)\n"
        "deep = msgpack.packb([])\n"
        "for _ in range(500):\n"
        "    deep = msgpack.packb([msgpack.ExtType(1, deep)])\n"
        "out = []\n"
        "def run():\n"
        "    out.append(Decoder([], allow_pickle=False).unpack(packed) == value)\n"
        "    try:\n"
        "        Decoder([], allow_pickle=False, max_depth=10**6).unpack(deep)\n"
        "    except PayloadTooDeepError:\n"
        "        out.append('refused')\n"
        "threading.stack_size(512 * 1024)\n"
        "thread = threading.Thread(target=run)\n"
        "thread.start()\n"
        "thread.join()\n"
        "print(out)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("[True]", "[True, 'refused']")


def test_exceptions_nested_in_arguments_encode_in_linear_time() -> None:
    # Each level used to pack its arguments twice (a probe, then for real): 4x per level.
    value: Any = "root"
    for _ in range(25):
        value = ValueError(value)
    encoder = Encoder(allow_pickle=False)
    packed = encoder.pack(value)
    assert encoder.buffers == []
    result = Decoder([], allow_pickle=False, max_depth=200).unpack(packed)
    for _ in range(25):
        assert type(result) is ValueError
        (result,) = result.args
    assert result == "root"


def test_an_exception_with_an_unencodable_argument_keeps_the_rest() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    encoder = Encoder(allow_pickle=False)
    packed = encoder.pack(ValueError(np.arange(3), Opaque()))
    assert len(encoder.buffers) == 1  # none left over from the attempts
    result = Decoder(encoder.buffers, allow_pickle=False).unpack(packed)
    np.testing.assert_array_equal(result.args[0], np.arange(3))
    assert result.args[1] == "<opaque>"

"""Fuzzing the exchange's decoders (values and whole frames) in a child process.

Structured inputs are real encodings of random values (every extension type,
arrays with their buffers, exceptions) and hostile shapes: extensions nested
hundreds deep, containers nested past msgpack's stack, huge length prefixes.
:mod:`fuzz_support` mutates each and fails on a crash or an untyped error.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import msgpack
import numpy as np
import pytest
from academy.identifier import AgentId, UserId
from academy.message import ActionRequest, ActionResponse, Message
from fuzz_support import (
    SOAK_TIMEOUT,
    FuzzTarget,
    assert_input_clean,
    run_campaign,
)
from hypothesis import strategies as st

from academy_ml.exceptions import PayloadTooDeepError, WireError
from academy_ml.messaging import wire
from academy_ml.messaging.codec import Decoder, Encoder, Ext

USER = UserId.new(name="fuzzer")
AGENT: AgentId[Any] = AgentId.new(name="target")
#: Extensions whose payload is msgpack again: the ones that recurse.
NESTING_EXTS = (
    Ext.TUPLE,
    Ext.SET,
    Ext.FROZENSET,
    Ext.ARRAY,
    Ext.HANDLE,
    Ext.ENTITY,
    Ext.EXCEPTION,
    Ext.COMPLEX,
    Ext.NUMPY_SCALAR,
)


def nested_extensions(depth: int, code: int = Ext.TUPLE) -> bytes:
    """``depth`` extensions inside each other, each a one-element list: (((...),),)."""
    data = msgpack.packb([])
    for _ in range(depth):
        data = msgpack.packb([msgpack.ExtType(code, data)])
    return bytes(data)


def hostile_chain(codes: list[Ext]) -> bytes:
    data = msgpack.packb(None)
    for code in codes:
        data = msgpack.packb(msgpack.ExtType(code, data))
    return bytes(data)


_hashable = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits: the BIGINT extension
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.uuids(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.complex_numbers(allow_nan=False),
)
_arrays = st.builds(
    lambda dtype, shape: np.arange(int(np.prod(shape))).astype(dtype).reshape(shape),
    st.sampled_from(["f8", "i4", "u1", "?", "c16", "<U3", "S2", "M8[s]"]),
    st.lists(st.integers(0, 3), max_size=3),
)
_exceptions = st.builds(
    lambda cls, arg: cls(arg), st.sampled_from([ValueError, KeyError, WireError]), _hashable
)
values = st.recursive(
    st.one_of(_hashable, _arrays, _exceptions, st.just(USER), st.just(AGENT)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.frozensets(_hashable, max_size=4),
        st.sets(_hashable, max_size=4),
    ),
    max_leaves=12,
)
_wrappers = (
    lambda v: (v,),
    lambda v: [v],
    lambda v: {"k": v},
    lambda v: ValueError(v),
    lambda v: frozenset([(v,)]) if _is_hashable(v) else (v,),
)


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """Values the encoder accepts but the decoder must refuse past its depth limit."""
    value = draw(_hashable)
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 120))):
        value = rng.choice(_wrappers)(value)
    return value


def _packed(value: Any) -> bytes:
    return Encoder(allow_pickle=False).pack(value)


raw_inputs = st.one_of(
    values.map(_packed),
    deep_values().map(_packed),
    st.integers(0, 400).map(nested_extensions),
    st.lists(st.sampled_from(NESTING_EXTS), max_size=300).map(hostile_chain),
    st.integers(0, 2000).map(lambda n: b"\x91" * n + b"\xc0"),  # plain nesting
    st.binary(max_size=256),
)


def decode_value(data: bytes) -> None:
    Decoder([memoryview(b"\x00" * 24)], allow_pickle=False).unpack(data)


VALUE = FuzzTarget(decode=decode_value, inputs=raw_inputs, expected=(WireError,))


def _frame(args: Any, response: bool) -> bytes:
    body: Any = (
        ActionResponse(action="act", result=args, serialization="pickle")
        if response
        else ActionRequest(action="act", pargs=(args,), kargs={"k": args}, serialization="pickle")
    )
    message = Message.create(src=USER, dest=AGENT, body=body, label=uuid.uuid4())
    return b"".join(wire.encode(message, allow_pickle=False, limit=2**26))


def decode_frame(data: bytes) -> None:
    wire.Frame(data).message(allow_pickle=False)


FRAME = FuzzTarget(
    decode=decode_frame,
    inputs=st.builds(_frame, st.one_of(values, deep_values()), st.booleans()),
    expected=(WireError,),
    tokens=(*VALUE.tokens, wire.MAGIC),
)


@pytest.mark.parametrize("target", ["VALUE", "FRAME"])
def test_exchange_decoders_survive_fuzzing(target: str) -> None:
    # Both halves are exercised: values that decode and each kind of refusal.
    run_campaign(__file__, target, seen=("accepted", "WireError", "PayloadTooDeepError"))


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT)
@pytest.mark.parametrize("target", ["VALUE", "FRAME"])
def test_exchange_decoders_soak(target: str) -> None:
    run_campaign(__file__, target, soak=True)


def test_a_one_kilobyte_frame_of_200_nested_extensions_is_refused_not_a_crash() -> None:
    # Issue 14: one XADD of this frame killed the agent with SIGSEGV, again after
    # each restart (~40 KB of C stack per level). A child decodes it: a regression
    # fails this test instead of killing pytest.
    nested: Any = ()
    for _ in range(200):
        nested = (nested,)
    frame = _frame(nested, True)  # a response carrying the value once
    assert len(frame) < 1200
    assert assert_input_clean(__file__, "FRAME", frame) == PayloadTooDeepError.__name__

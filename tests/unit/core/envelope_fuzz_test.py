"""Fuzzing the envelope's reader in a child process; what is sealed is what reads back.

Structured inputs are sealed bodies of random plain data, forged envelopes
(hostile versions and kinds: huge ints, floats, lists, long strings; fields
nested past the bound; extension types) and random bytes. :mod:`fuzz_support`
mutates each and fails on a crash or on any exception but :class:`WireError`.
"""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest
from fuzz_support import SOAK_TIMEOUT, FuzzTarget, assert_input_clean, run_campaign
from hypothesis import given, settings
from hypothesis import strategies as st

from academy_ml.core.envelope import seal, unseal
from academy_ml.exceptions import PayloadTooDeepError, UnsupportedPayloadError, WireError

KIND = "Thing"
VERSIONS = (1, 2)
LIMITS = {"max_bytes": 64 * 2**10, "max_depth": 16}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
bodies = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=4),
    ),
    max_leaves=16,
)
_versions = st.one_of(
    st.sampled_from([*VERSIONS, 0, 3, -1, 2**64 - 1, True, 1.0, None, "1"]),
    st.lists(st.integers(0, 3), max_size=2),
)
_kinds = st.one_of(
    st.sampled_from([KIND, "Other", "", "thing"]),
    st.text(max_size=2000),
    st.integers(-(2**63), 2**64 - 1),
    st.lists(st.just(KIND), max_size=2),
)


def _sealed(version: int, body: Any) -> bytes:
    try:
        return seal(KIND, version, body, **LIMITS)
    except UnsupportedPayloadError:
        return bytes(msgpack.packb([version, KIND, None]))


@st.composite
def forged(draw: st.DrawFn) -> bytes:
    """The envelope's shape with hostile parts: version, kind, a deep or foreign body."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    body: Any = draw(bodies)
    for _ in range(draw(st.integers(0, 40))):
        body = rng.choice((lambda v: [v], lambda v: {"f": v}))(body)
    if draw(st.booleans()):
        body = msgpack.ExtType(draw(st.integers(0, 127)), draw(st.binary(max_size=8)))
    parts = [draw(_versions), draw(_kinds), body]
    return bytes(msgpack.packb(parts[: draw(st.integers(0, 3))] if draw(st.booleans()) else parts))


def open_thing(data: bytes) -> None:
    unseal(data, KIND, VERSIONS, **LIMITS)


ENVELOPE = FuzzTarget(
    decode=open_thing,
    inputs=st.one_of(
        st.builds(_sealed, st.sampled_from(VERSIONS), bodies),
        forged(),
        st.integers(0, 3000).map(lambda n: b"\x93\x01\xa5Thing" + b"\x91" * n + b"\xc0"),
        st.binary(max_size=128),
    ),
    expected=(WireError,),
)


def test_the_envelope_reader_survives_fuzzing() -> None:
    run_campaign(
        __file__,
        "ENVELOPE",
        seen=("accepted", "WireError", "EnvelopeError", "PayloadTooDeepError"),
    )


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_the_envelope_reader_soak() -> None:
    run_campaign(__file__, "ENVELOPE", soak=True)


def test_an_envelope_of_5000_nested_lists_is_refused_in_a_child() -> None:
    deep = b"\x93\x01\xa5Thing" + b"\x91" * 5000 + b"\xc0"
    assert assert_input_clean(__file__, "ENVELOPE", deep) == PayloadTooDeepError.__name__


def _lists(value: Any) -> Any:
    """``value`` as msgpack gives it back: tuples become lists."""
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(VERSIONS), bodies, st.integers(2, 6))
def test_what_seal_accepts_unseal_reads_back(version: int, body: Any, depth: int) -> None:
    limits = {"max_bytes": 256, "max_depth": depth}
    try:
        data = seal(KIND, version, body, **limits)
    except UnsupportedPayloadError:
        # Refused on write only when a reader would refuse it.
        with pytest.raises(WireError):
            unseal(msgpack.packb([version, KIND, body]), KIND, VERSIONS, **limits)
        return
    opened = unseal(data, KIND, VERSIONS, **limits)
    assert opened.version == version
    # Compared as bytes: NaN is not equal to itself.
    assert msgpack.packb(opened.body) == msgpack.packb(_lists(body))

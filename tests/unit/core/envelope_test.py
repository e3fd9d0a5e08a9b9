"""The one versioned envelope: round trips, typed refusals, bounds on write and read."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from academy_ml.core.envelope import Opened, seal, unseal
from academy_ml.exceptions import (
    EnvelopeError,
    PayloadTooDeepError,
    PayloadTooLargeError,
    UnsupportedPayloadError,
    WireError,
)

LIMITS = {"max_bytes": 4096, "max_depth": 8}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "body",
    [None, 1, -(2**63), 2**64 - 1, 1.5, "text", b"\x00\xff", [1, [2]], {"a": {"b": [b"x"]}}],
)
def test_bodies_round_trip(body: Any) -> None:
    data = seal("Thing", 3, body, **LIMITS)
    assert unseal(data, "Thing", {2, 3}, **LIMITS) == Opened(3, body)


def test_tuples_are_sealed_as_lists() -> None:
    assert unseal(seal("Thing", 1, (1, (2,)), **LIMITS), "Thing", {1}, **LIMITS).body == [1, [2]]


def test_the_layout_is_version_kind_body() -> None:
    # Knowledge-base records had this layout before the envelope: they stay readable.
    assert msgpack.unpackb(seal("Thing", 7, {"a": 1}, **LIMITS)) == [7, "Thing", {"a": 1}]


def test_another_kind_is_an_envelope_error_naming_both() -> None:
    data = seal("Other", 1, {}, **LIMITS)
    with pytest.raises(EnvelopeError, match=r"expected a Thing, got 'Other' \(version 1\)") as err:
        unseal(data, "Thing", {1}, **LIMITS)
    assert (err.value.kind, err.value.versions) == ("Thing", (1,))
    assert (err.value.found_kind, err.value.found_version) == ("Other", 1)


@pytest.mark.parametrize("version", [0, 4, -1, 2**64 - 1, True, "1", 1.0, None])
def test_an_unknown_version_is_an_envelope_error_naming_both(version: Any) -> None:
    data = msgpack.packb([version, "Thing", {}])
    with pytest.raises(EnvelopeError, match=r"a Thing of version .*knows version 1, 2") as err:
        unseal(data, "Thing", {2, 1}, **LIMITS)
    assert err.value.versions == (1, 2)
    assert err.value.found_version == (version if type(version) is int else None)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"", WireError, "not a msgpack Thing: .*incomplete"),
        (b"\xc1", WireError, "not a msgpack Thing"),
        (msgpack.packb({"version": 1}), WireError, r"expected \[version, kind, body\], got dict"),
        (msgpack.packb([1, "Thing"]), WireError, "got a list of 2"),
        (msgpack.packb([1, "Thing", {}, 0]), WireError, "got a list of 4"),
        (msgpack.packb([1, "Thing", {}]) + b"\x00", WireError, "trailing bytes"),
        (msgpack.packb([1, "Thing", msgpack.ExtType(1, b"")]), WireError, "extension type 1"),
        (msgpack.packb([1, "Thing", nested(8)]), PayloadTooDeepError, "not a msgpack Thing"),
        (msgpack.packb([1, "Thing", "x" * 5000]), PayloadTooLargeError, "exceeds 4,096"),
    ],
)
def test_malformed_bytes_are_typed_errors(data: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as raised:
        unseal(data, "Thing", {1}, **LIMITS)
    assert type(raised.value) is error


def test_a_hostile_kind_is_not_echoed_at_length() -> None:
    data = msgpack.packb([1, "k" * 3000, {}])
    with pytest.raises(EnvelopeError) as raised:
        unseal(data, "Thing", {1}, max_bytes=2**20, max_depth=8)
    assert len(str(raised.value)) < 200
    with pytest.raises(EnvelopeError, match="got a list"):
        unseal(msgpack.packb([1, ["Thing"], {}]), "Thing", {1}, **LIMITS)


def test_what_readers_would_refuse_is_refused_when_sealed() -> None:
    # The envelope's array is one level: the body may nest max_depth - 1.
    assert unseal(seal("Thing", 1, nested(7), **LIMITS), "Thing", {1}, **LIMITS).body == nested(7)
    with pytest.raises(UnsupportedPayloadError, match="deeper than 8"):
        seal("Thing", 1, nested(8), **LIMITS)
    with pytest.raises(UnsupportedPayloadError, match="deeper than 8"):
        seal("Thing", 1, {"a": (1, {"b": nested(6)})}, **LIMITS)
    with pytest.raises(UnsupportedPayloadError, match="exceeds 4,096"):
        seal("Thing", 1, "x" * 5000, **LIMITS)
    with pytest.raises(UnsupportedPayloadError, match="Thing cannot be sealed as msgpack"):
        seal("Thing", 1, {"a": object()}, **LIMITS)


def test_a_wide_flat_body_is_not_mistaken_for_a_deep_one() -> None:
    body = {"keys": [f"{i:032x}" for i in range(50_000)], "nested": [[1]] * 1000}
    data = seal("Thing", 1, body, max_bytes=2**24, max_depth=4)
    assert unseal(data, "Thing", {1}, max_bytes=2**24, max_depth=4).body == body


def test_map_keys_no_reader_could_hash_are_refused_when_sealed() -> None:
    with pytest.raises(UnsupportedPayloadError, match="map key is a list or tuple"):
        seal("Thing", 1, {"a": {(1, 2): "x"}}, **LIMITS)
    # What seal refuses is what unseal would: msgpack writes the tuple key as an array.
    forged = msgpack.packb([1, "Thing", {"a": {(1, 2): "x"}}])
    with pytest.raises(WireError, match="unhashable"):
        unseal(forged, "Thing", {1}, **LIMITS)


def test_subclasses_of_containers_count_towards_the_depth() -> None:
    class Dict(dict[str, Any]):
        pass

    with pytest.raises(UnsupportedPayloadError, match="deeper than 8"):
        seal("Thing", 1, Dict(a=nested(7)), **LIMITS)

"""Knowledge-base records: bounded decoding, and a fuzz campaign in a child process.

Whoever can write the knowledge base's Redis hands every reader bytes; a
record is opened from the core envelope (:mod:`academy_ml.core.envelope`,
bounded) and validated by pydantic, and anything else is a :class:`WireError`.
"""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest
from fuzz_support import (
    SOAK_TIMEOUT,
    FuzzTarget,
    assert_input_clean,
    run_campaign,
)
from hypothesis import strategies as st

from academy_ml.agents.knowledge import CandidateRecord, ModelVersion, ResultRecord, StrategyFiring
from academy_ml.agents.knowledge.records import MAX_RECORD_BYTES, MAX_RECORD_DEPTH, RECORD_VERSION
from academy_ml.exceptions import (
    PayloadTooDeepError,
    PayloadTooLargeError,
    UnsupportedPayloadError,
    WireError,
)

KINDS = (CandidateRecord, ResultRecord, ModelVersion, StrategyFiring)


def nested_payload(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"x": value}


def test_payloads_nested_past_the_limit_are_refused_on_write_and_on_read() -> None:
    # Envelope list + fields map + payload map + "x" lists: 3 levels besides the lists.
    fits = CandidateRecord(id="c", model_version=0, payload=nested_payload(MAX_RECORD_DEPTH - 3))
    assert CandidateRecord.from_bytes(fits.to_bytes()) == fits
    deep = CandidateRecord(id="c", model_version=0, payload=nested_payload(MAX_RECORD_DEPTH - 2))
    with pytest.raises(UnsupportedPayloadError, match="deeper than 32"):
        deep.to_bytes()
    forged = msgpack.packb([RECORD_VERSION, "CandidateRecord", deep.model_dump()])
    with pytest.raises(PayloadTooDeepError, match="not a msgpack CandidateRecord"):
        CandidateRecord.from_bytes(forged)


def test_oversized_records_are_refused_on_write_and_on_read() -> None:
    big = CandidateRecord(id="c", model_version=0, payload={"blob": b"x" * MAX_RECORD_BYTES})
    with pytest.raises(UnsupportedPayloadError, match="exceeds"):
        big.to_bytes()
    forged = msgpack.packb([RECORD_VERSION, "CandidateRecord", big.model_dump()])
    with pytest.raises(PayloadTooLargeError):
        CandidateRecord.from_bytes(forged)


def test_extension_types_are_refused() -> None:
    forged = msgpack.packb([RECORD_VERSION, "CandidateRecord", {"id": msgpack.ExtType(1, b"\x90")}])
    with pytest.raises(WireError, match="extension type 1"):
        CandidateRecord.from_bytes(forged)


def decode_record(data: bytes) -> None:
    """The same bytes through every reader; the last refusal when none accepts them."""
    refusal: WireError | None = None
    for kind in KINDS:
        try:
            kind.from_bytes(data)
        except WireError as exc:
            refusal = exc
        else:
            return
    assert refusal is not None
    raise refusal


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
_metrics = st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False))
_records = st.one_of(
    st.builds(CandidateRecord, id=st.text(max_size=8), model_version=st.integers(0, 99),
              payload=st.dictionaries(st.text(max_size=4), _json, max_size=4)),
    st.builds(ResultRecord, candidate_id=st.text(max_size=8), model_version=st.integers(0, 99),
              metrics=_metrics, flags=st.dictionaries(st.text(max_size=4), st.booleans()),
              error=st.none() | st.text(max_size=8)),
    st.builds(ModelVersion, name=st.text(max_size=8), version=st.integers(0, 99),
              metrics=_metrics, stage=st.sampled_from(["candidate", "production"])),
    st.builds(StrategyFiring, agent=st.text(max_size=8), strategy=st.text(max_size=8),
              trigger=st.text(max_size=8), fired=st.booleans(), reason=st.text(max_size=8),
              actions=st.lists(st.text(max_size=4), max_size=3)),
)  # fmt: skip


@st.composite
def forged_records(draw: st.DrawFn) -> bytes:
    """Right envelope, hostile fields: deep, foreign kinds, wrong types."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    fields: Any = draw(_json)
    for _ in range(draw(st.integers(0, 200))):
        fields = rng.choice((lambda v: [v], lambda v: {"payload": v}))(fields)
    kind = draw(st.sampled_from([k.__name__ for k in KINDS] + ["Record", "object"]))
    return bytes(msgpack.packb([RECORD_VERSION, kind, fields]))


RECORDS = FuzzTarget(
    decode=decode_record,
    inputs=st.one_of(
        _records.map(lambda record: record.to_bytes()), forged_records(), st.binary(max_size=128)
    ),
    expected=(WireError,),
)


def test_records_survive_fuzzing() -> None:
    run_campaign(
        __file__,
        "RECORDS",
        seen=("accepted", "WireError", "EnvelopeError", "PayloadTooDeepError"),
    )


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_records_soak() -> None:
    run_campaign(__file__, "RECORDS", soak=True)


def test_a_record_of_deeply_nested_lists_is_refused_in_a_child() -> None:
    forged = b"\x93\x01\xafCandidateRecord" + b"\x91" * 5000 + b"\xc0"
    assert assert_input_clean(__file__, "RECORDS", forged) == PayloadTooDeepError.__name__

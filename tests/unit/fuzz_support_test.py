"""The fuzz harness itself: a crash or an untyped error in a decoder fails, naming the input."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from fuzz_support import FuzzTarget, assert_fuzz_clean, assert_input_clean
from hypothesis import strategies as st


class Refused(ValueError):
    pass


def segfaults_on_long_inputs(data: bytes) -> None:
    if len(data) > 40:
        ctypes.string_at(0)  # a read of address 0: SIGSEGV, as a C decoder bug would
    raise Refused


def untyped_error_on_0xc1(data: bytes) -> None:
    if b"\xc1" in data:
        raise KeyError("an untyped error")
    raise Refused


SEGFAULTS = FuzzTarget(
    decode=segfaults_on_long_inputs, inputs=st.binary(max_size=64), expected=(Refused,)
)
UNTYPED = FuzzTarget(
    decode=untyped_error_on_0xc1, inputs=st.binary(max_size=8), expected=(Refused,)
)


def test_a_segfault_fails_with_the_input_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_ML_FUZZ_CRASH_DIR", str(tmp_path))
    with pytest.raises(AssertionError, match="died of signal 11") as failure:
        assert_fuzz_clean(__file__, "SEGFAULTS", cases=2000)
    (saved,) = tmp_path.iterdir()
    assert len(saved.read_bytes()) > 40
    assert saved.read_bytes()[:2048].hex() in str(failure.value)


def test_an_untyped_error_fails_with_the_failing_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_ML_FUZZ_CRASH_DIR", str(tmp_path))
    with pytest.raises(AssertionError, match=r"failed \(exit 3\)(.|\n)*KeyError"):
        assert_fuzz_clean(__file__, "UNTYPED", cases=2000)
    (saved,) = tmp_path.iterdir()
    # The input hypothesis replayed last (after shrinking), not merely the last one tried.
    assert b"\xc1" in saved.read_bytes()


def test_one_input_is_replayed_in_a_child() -> None:
    assert assert_input_clean(__file__, "SEGFAULTS", b"short") == "Refused"
    with pytest.raises(AssertionError, match="died of signal 11"):
        assert_input_clean(__file__, "SEGFAULTS", b"x" * 41)

"""Feature tables and targets as the runtime reads them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from academy_ml.engine.data import digest, prepare_features, prepare_target

NAN = math.nan


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, NAN, -2.0, 4.0],
            "colour": ["red", None, "blue", "red"],
            "size": pd.Categorical(["S", "L", None, "M"]),
            "rank": pd.Categorical([3, 1, 2, 1]),  # numeric categories: a number
            "flag": [True, False, True, True],
        }
    )


# --- features ---------------------------------------------------------------------------


def test_numeric_array_is_copied_as_fortran_float64() -> None:
    X = np.arange(12, dtype=np.int32).reshape(4, 3)

    table = prepare_features(X)

    assert table.matrix.dtype == np.float64
    assert table.matrix.flags["F_CONTIGUOUS"]
    np.testing.assert_array_equal(table.matrix, X.astype(np.float64))
    assert table.columns == ("0", "1", "2")
    assert table.categorical == (False, False, False)
    assert table.vocabulary == ()
    assert table.named is False
    assert table.n_rows == 4
    assert table.original is X
    assert table.probe.shape == (0, 3)


def test_strings_become_order_preserving_codes_into_one_vocabulary() -> None:
    table = prepare_features(frame())

    assert table.columns == ("x", "colour", "size", "rank", "flag")
    assert table.categorical == (False, True, True, False, False)
    # One sorted vocabulary over every categorical column.
    assert table.vocabulary == ("L", "M", "S", "blue", "red")
    expected = np.array(
        [
            [1.5, 4.0, 2.0, 3.0, 1.0],
            [NAN, NAN, 0.0, 1.0, 0.0],
            [-2.0, 3.0, NAN, 2.0, 1.0],
            [4.0, 4.0, 1.0, 1.0, 1.0],
        ]
    )
    np.testing.assert_array_equal(table.matrix, expected)
    assert table.named is True
    assert list(table.probe.columns) == list(frame().columns)
    assert len(table.probe) == 0


def test_code_order_matches_string_order() -> None:
    words = ["pear", "Apple", "apple", "banana", "Zebra", "éclair", "10", "9"]
    table = prepare_features(pd.DataFrame({"w": words}))

    codes = table.matrix[:, 0]
    assert [words[i] for i in np.argsort(codes)] == sorted(words)


def test_code_of_known_and_unseen_values() -> None:
    table = prepare_features(frame())

    assert table.code_of("blue") == 3.0
    assert table.code_of("L") == 0.0
    # Unseen values fall between their neighbours, keeping sort order.
    assert table.code_of("A") == -0.5
    assert table.code_of("N") == 1.5
    assert table.code_of("missing_value") == 3.5  # between "blue" and "red"
    assert table.code_of("zzz") == 4.5


def test_numpy_object_array_with_strings_is_categorical() -> None:
    X = np.array([["a", 1.0], ["b", 2.0], [None, 3.0]], dtype=object)

    table = prepare_features(X)

    assert table.categorical == (True, False)
    assert table.vocabulary == ("a", "b")
    np.testing.assert_array_equal(table.matrix, [[0.0, 1.0], [1.0, 2.0], [NAN, 3.0]])


def test_arrow_table_reads_like_the_equivalent_frame() -> None:
    df = frame()
    arrow = pa.Table.from_pandas(df, preserve_index=False)

    from_arrow = prepare_features(arrow)
    from_pandas = prepare_features(df)

    np.testing.assert_array_equal(from_arrow.matrix, from_pandas.matrix)
    assert from_arrow.columns == from_pandas.columns
    assert from_arrow.categorical == from_pandas.categorical
    assert from_arrow.vocabulary == from_pandas.vocabulary
    assert from_arrow.fingerprint == from_pandas.fingerprint
    assert from_arrow.original is arrow
    assert from_arrow.named is True


def test_pandas_nullable_dtypes_are_numbers_with_nan() -> None:
    df = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": pd.array([0.5, 1.5, None], dtype="Float64"),
            "b": pd.array([True, None, False], dtype="boolean"),
        }
    )

    table = prepare_features(df)

    assert table.categorical == (False, False, False)
    np.testing.assert_array_equal(table.matrix, [[1.0, 0.5, 1.0], [NAN, 1.5, NAN], [3.0, NAN, 0.0]])


def test_fingerprint_is_by_content() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    base = prepare_features(X).fingerprint

    assert prepare_features(X.copy()).fingerprint == base
    assert prepare_features(np.asfortranarray(X)).fingerprint == base
    changed = X.copy()
    changed[7, 2] = np.nextafter(changed[7, 2], np.inf)
    assert prepare_features(changed).fingerprint != base
    assert prepare_features(X[:, [1, 0, 2]]).fingerprint != base
    assert prepare_features(pd.DataFrame(X, columns=["0", "1", "2"])).fingerprint == base
    assert prepare_features(pd.DataFrame(X, columns=["a", "b", "c"])).fingerprint != base
    # Same codes, different meaning: the vocabulary is part of the fingerprint.
    assert (
        prepare_features(pd.DataFrame({"c": ["a", "b"]})).fingerprint
        != prepare_features(pd.DataFrame({"c": ["x", "y"]})).fingerprint
    )


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.arange(5.0), "must be 2-dimensional"),
        (np.zeros((2, 2, 2)), "must be 2-dimensional"),
        (np.empty((0, 4)), "X is empty: 0 rows and 4 columns"),
        (np.empty((3, 0)), "X is empty: 3 rows and 0 columns"),
        (pd.DataFrame(), "X is empty"),
        (pd.DataFrame({"a": pd.Series([], dtype=float)}), "X is empty: 0 rows"),
        (pd.DataFrame({"a": [1, "x", 2.5]}), "mix numbers and strings"),
        (np.array([[{"k": 1}], [{"k": 2}]], dtype=object), "column '0' cannot be read as numbers"),
        (
            pd.DataFrame({"a": [1.0, 2.0], "meta": [{"k": 1}, {"k": 2}]}),
            r"column 'meta' holds values that are neither numbers nor categories "
            r"\(unhashable type: 'dict'\)",
        ),
        (
            pd.DataFrame({"s": ["x", "y"], "tags": ["u", ["v"]]}),
            r"column 'tags' .*unhashable type: 'list'",
        ),
    ],
    ids=[
        "1d",
        "3d",
        "no-rows",
        "no-columns",
        "empty-frame",
        "frame-no-rows",
        "mixed",
        "dicts",
        "frame-dicts",
        "frame-lists",
    ],
)
def test_invalid_features_are_refused(X: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_features(X)


# --- target ------------------------------------------------------------------------------


def test_numeric_target_has_raw_values_and_class_codes() -> None:
    target = prepare_target([3, 1, 2, 3], 4)

    np.testing.assert_array_equal(target.raw, [3.0, 1.0, 2.0, 3.0])
    assert target.raw is not None
    assert target.raw.dtype == np.float64
    np.testing.assert_array_equal(target.classes, [1, 2, 3])
    np.testing.assert_array_equal(target.codes, [2.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(target.original, [3, 1, 2, 3])


def test_string_target_has_codes_only() -> None:
    target = prepare_target(pd.Series(["no", "yes", "no"]), 3)

    assert target.raw is None
    np.testing.assert_array_equal(target.classes, ["no", "yes"])
    np.testing.assert_array_equal(target.codes, [0.0, 1.0, 0.0])
    with pytest.raises(AssertionError):
        target.fingerprint("raw")


def test_column_vector_and_arrow_targets() -> None:
    np.testing.assert_array_equal(prepare_target(np.array([[1.0], [2.0]]), 2).raw, [1.0, 2.0])
    arrow = prepare_target(pa.chunked_array([[1.0, 2.0], [5.0]]), 3)
    np.testing.assert_array_equal(arrow.raw, [1.0, 2.0, 5.0])
    np.testing.assert_array_equal(prepare_target(pa.array(["b", "a"]), 2).codes, [1.0, 0.0])


def test_target_fingerprints_by_kind_and_content() -> None:
    a = prepare_target([0, 1, 1, 0], 4)
    b = prepare_target([10, 11, 11, 10], 4)

    assert a.fingerprint("codes") == b.fingerprint("codes")  # same classes pattern
    assert a.fingerprint("raw") != b.fingerprint("raw")
    assert a.fingerprint("raw") != a.fingerprint("codes")


@pytest.mark.parametrize(
    ("y", "n_rows", "message"),
    [
        (np.zeros((3, 2)), 3, "y must be 1-dimensional"),
        (np.float64(1.0), 1, "y must be 1-dimensional"),
        (np.zeros(4), 5, "X has 5 rows but y has 4 values"),
    ],
    ids=["2d", "scalar", "length"],
)
def test_invalid_targets_are_refused(y: Any, n_rows: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_target(y, n_rows)


# --- digest -------------------------------------------------------------------------------


def test_digest_is_stable_and_length_prefixed() -> None:
    assert digest("a", "bc") == digest("a", b"bc")
    assert digest("a", "bc") != digest("ab", "c")
    assert digest("") != digest()
    assert len(digest("x")) == 32
    assert digest("x") == digest("x")

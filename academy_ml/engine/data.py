"""Feature tables and targets as the runtime reads them.

``X`` (numpy, pandas or pyarrow) becomes one Fortran-ordered float64 matrix:
NaN marks a missing value, and string/categorical columns hold
order-preserving codes into one sorted vocabulary, so one-hot categories come
out in the order scikit-learn sorts them. Everything is fingerprinted by
content, which is what plan node keys are built from.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.utils.multiclass import type_of_target

__all__ = ["Table", "Target", "digest", "prepare_features", "prepare_target"]

FloatArray = NDArray[np.float64]


def digest(*parts: bytes | str) -> str:
    """A stable content hash (SHA-256, 128 bits in hex) of the given parts.

    Each part is length-prefixed, so ("a", "bc") and ("ab", "c") differ.
    """
    # One update of the joined parts: every plan node is keyed through here.
    chunks: list[bytes] = []
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        chunks += (len(data).to_bytes(8, "little"), data)
    return hashlib.sha256(b"".join(chunks)).hexdigest()[:32]


@dataclass(frozen=True)
class Table:
    """Features ready for the runtime.

    Attributes:
        matrix: ``n x p`` float64 in Fortran order.
        columns: Column names (``"0"``, ``"1"``... for arrays).
        categorical: Per column, whether it holds category codes.
        vocabulary: Sorted category values; code ``i`` means ``vocabulary[i]``.
        fingerprint: Content hash of all of the above.
        original: The user's ``X`` (what the Python backend fits on when a
            pipeline's first step is foreign).
        frame: ``X`` in a form scikit-learn indexes (a pyarrow Table read
            into pandas once).
        named: Whether ``X`` had column names (a DataFrame or Table).
        probe: A zero-row frame (or array) with X's columns and dtypes, on
            which ColumnTransformer selectors are resolved.
    """

    matrix: FloatArray
    columns: tuple[str, ...]
    categorical: tuple[bool, ...]
    vocabulary: tuple[Any, ...]
    fingerprint: str
    original: Any
    frame: Any
    named: bool
    probe: Any

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.matrix.shape[0])

    def code_of(self, value: Any) -> float:
        """The code of a category value; unseen values get an order-preserving code."""
        pos = bisect.bisect_left(self.vocabulary, value)
        if pos < len(self.vocabulary) and self.vocabulary[pos] == value:
            return float(pos)
        return pos - 0.5


@dataclass(frozen=True)
class Target:
    """The target as regressors (raw) and classifiers (codes) read it.

    Attributes:
        raw: ``y`` as float64, or None when ``y`` is not numeric.
        codes: Class codes (index into ``classes``) as float64.
        classes: Sorted distinct labels.
        original: ``y`` as a 1-D numpy array (for the Python backend).
    """

    raw: FloatArray | None
    codes: FloatArray
    classes: NDArray[Any]
    original: NDArray[Any]

    @functools.cached_property
    def discrete(self) -> bool:
        """Whether ``y`` holds class labels (binary or multiclass), as scikit-learn judges."""
        return type_of_target(self.original) in ("binary", "multiclass")

    @functools.cached_property
    def memo(self) -> dict[Any, Any]:
        """What is derived from ``y`` alone, computed once per target.

        An endpoint worker keeps the targets of its datasets across requests,
        so their fingerprints and folds are not hashed again per request.
        """
        return {}

    def fingerprint(self, kind: str) -> str:
        """Content hash of the raw values or of the codes."""
        found = self.memo.get(("fingerprint", kind))
        if found is None:
            values = self.codes if kind == "codes" else self.raw
            assert values is not None
            found = self.memo[("fingerprint", kind)] = digest(kind, values.tobytes())
        return str(found)

    @property
    def content_key(self) -> str:
        """Content hash of ``y`` itself: its codes, labels and raw values."""
        raw = self.fingerprint("raw") if self.raw is not None else "-"
        return digest(self.fingerprint("codes"), repr(self.classes.tolist()), raw)


def prepare_features(X: Any) -> Table:
    """Converts ``X`` to a :class:`Table` (a Table is returned as it is).

    Raises:
        ValueError: If ``X`` is empty, not 2-D, or a column mixes numbers and
            strings.
    """
    if isinstance(X, Table):
        # Endpoints keep the prepared table of a dataset across batches.
        return X
    original = X
    if _is_arrow(X):
        X = X.to_pandas()
    named = isinstance(X, pd.DataFrame)
    if named:
        columns = tuple(str(c) for c in X.columns)
        series = [X.iloc[:, j] for j in range(X.shape[1])]
        raw_columns: list[Any] = [s.to_numpy() for s in series]
        cat_flags = [_is_categorical_series(s) for s in series]
        probe: Any = X.iloc[:0]
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got an array of shape {arr.shape}")
        columns = tuple(str(j) for j in range(arr.shape[1]))
        raw_columns = [arr[:, j] for j in range(arr.shape[1])]
        cat_flags = [arr.dtype == object and _has_strings(c) for c in raw_columns]
        probe = arr[:0]
    n_rows = len(raw_columns[0]) if raw_columns else (len(X) if hasattr(X, "__len__") else 0)
    if n_rows == 0 or not raw_columns:
        raise ValueError(f"X is empty: {n_rows} rows and {len(raw_columns)} columns")
    vocabulary = _vocabulary(
        [(n, c) for n, c, cat in zip(columns, raw_columns, cat_flags, strict=True) if cat]
    )
    matrix = np.empty((n_rows, len(columns)), dtype=np.float64, order="F")
    for j, (col, cat) in enumerate(zip(raw_columns, cat_flags, strict=True)):
        matrix[:, j] = _encode(col, vocabulary) if cat else _numeric(col, columns[j])
    fingerprint = digest(
        "table",
        matrix.tobytes(order="F"),
        repr(matrix.shape),
        repr(columns),
        repr(cat_flags),
        repr(vocabulary),
    )
    return Table(
        matrix,
        columns,
        tuple(cat_flags),
        tuple(vocabulary),
        fingerprint,
        original,
        X,
        named,
        probe,
    )


def prepare_target(y: Any, n_rows: int) -> Target:
    """Converts ``y`` to a :class:`Target` (a Target is returned as it is).

    Raises:
        ValueError: If ``y`` is not 1-D, is empty, or its length differs from X's.
    """
    if isinstance(y, Target):
        if len(y.codes) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(y.codes)} values")
        return y
    # zero_copy_only=False: string arrays and arrays with nulls need a copy.
    arr = y.to_numpy(zero_copy_only=False) if _is_arrow(y) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got an array of shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {arr.shape[0]} values")
    raw: FloatArray | None = None
    if arr.dtype.kind in "biuf":
        raw = np.ascontiguousarray(arr, dtype=np.float64)
    classes, inverse = np.unique(arr, return_inverse=True)
    codes = np.ascontiguousarray(inverse, dtype=np.float64)
    return Target(raw=raw, codes=codes, classes=classes, original=arr)


def _is_arrow(obj: Any) -> bool:
    return type(obj).__module__.startswith("pyarrow") and hasattr(obj, "to_pandas")


def _is_categorical_series(s: pd.Series[Any]) -> bool:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return not pd.api.types.is_numeric_dtype(s.dtype.categories.dtype)
    return not (pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype))


def _has_strings(col: NDArray[Any]) -> bool:
    return any(isinstance(v, str) for v in col)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _vocabulary(columns: Sequence[tuple[str, NDArray[Any]]]) -> list[Any]:
    values: set[Any] = set()
    for name, col in columns:
        try:
            uniques = pd.unique(col)
        except TypeError as exc:
            # pandas says "unhashable type: 'dict'": a column of dicts, lists...
            raise ValueError(
                f"column {name!r} holds values that are neither numbers nor categories "
                f"({exc}); encode them as numbers or strings"
            ) from exc
        values.update(v for v in uniques if not _is_missing(v))
    try:
        return sorted(values)
    except TypeError as exc:
        names = ", ".join(repr(name) for name, _ in columns)
        raise ValueError(
            "categorical columns mix numbers and strings; encode them as one type "
            f"(columns: {names}): {exc}"
        ) from exc


def _encode(col: NDArray[Any], vocabulary: Sequence[Any]) -> FloatArray:
    codes = pd.Categorical(col, categories=list(vocabulary)).codes.astype(np.float64)
    codes[codes < 0] = math.nan
    return codes


def _numeric(col: NDArray[Any], name: str) -> FloatArray:
    if col.dtype == object:
        # pandas nullable dtypes (e.g. "boolean") hold pd.NA, which float() refuses.
        col = np.where(pd.isna(col), math.nan, col)
    try:
        return np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r} cannot be read as numbers: {exc}") from exc

"""Datasets by reference: Arrow IPC files named by their content fingerprint.

A batch request names its dataset by fingerprint instead of carrying it. An
endpoint keeps datasets in a directory (node-local next to its cache, or on
a shared filesystem that every node sees): the client pushes one once per
endpoint, or writes it to the shared directory itself, and every later task
reads it from there, memory-mapped.

The fingerprint is the one the compiler gives the data (features and
target), computed on the Arrow form both sides read, so the plan the client
compiles and the plan the endpoint compiles have the same key.

Pushed bytes and files in a (possibly shared) directory are untrusted: Arrow
reads offsets and lengths from them as they are, so a single corrupted byte
made fingerprinting read out of bounds and crash the endpoint. Every read
checks the size first, then validates the whole table (every offset, index
and UTF-8 string) before anything touches its values.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from academy_ml.engine.cache import default_cache_dir
from academy_ml.engine.data import Table, Target, digest, prepare_features, prepare_target
from academy_ml.exceptions import DataError, DatasetError

#: Environment variable naming an endpoint's dataset directory.
ENV_VAR = "ACADEMY_ML_DATASET_DIR"
#: Schema metadata key naming the target column.
_TARGET = b"academy_ml.target"
#: Largest dataset file a store accepts, pushed or read, unless told otherwise.
MAX_DATASET_BYTES = 4 * 2**30


def to_arrow(X: Any, y: Any) -> pa.Table:
    """One Arrow table of the features and the target (named in its metadata).

    Raises:
        DataError: ``X`` and ``y`` differ in length, or a column is named like
            the target column.
    """
    if isinstance(X, pa.Table):
        table = X
    elif isinstance(X, pd.DataFrame):
        table = pa.Table.from_pandas(X, preserve_index=False)
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise DataError(f"X must be 2-D, got shape {array.shape}")
        table = pa.table({f"x{i}": array[:, i] for i in range(array.shape[1])})
    target = np.asarray(y)
    if target.ndim != 1 or len(target) != table.num_rows:
        raise DataError(f"y must be 1-D with {table.num_rows} rows, got shape {target.shape}")
    name = "__target__"
    if name in table.column_names:
        raise DataError(f"X has a column named {name!r}, which the dataset store reserves")
    table = table.append_column(name, pa.array(target))
    return table.replace_schema_metadata({_TARGET: name.encode()})


def split(table: pa.Table) -> tuple[pa.Table, np.ndarray[Any, Any]]:
    """The features and the target of a table made by :func:`to_arrow`.

    Raises:
        DataError: The table has no target column.
    """
    metadata = table.schema.metadata or {}
    raw = metadata.get(_TARGET)
    if raw is None:
        raise DataError("not an academy_ml dataset: its schema names no target column")
    name = raw.decode("utf-8", errors="replace")
    if table.schema.get_field_index(name) < 0:
        raise DataError(
            f"not an academy_ml dataset: target column {name!r} is not unique or absent"
        )
    target = table.column(name).to_numpy(zero_copy_only=False)
    return table.drop_columns([name]), target


def fingerprint(table: pa.Table) -> str:
    """Content fingerprint of a dataset table (features and target).

    Raises:
        DataError: The table is not a dataset the compiler can prepare (no
            target column, no rows, unsupported column types...).
    """
    X, y = split(table)
    try:
        features = prepare_features(X)
        target = prepare_target(y, features.n_rows)
    except DataError:
        raise
    except (ValueError, TypeError) as exc:  # the compiler's own checks (an empty X, say)
        raise DatasetError(f"not a dataset the compiler can prepare: {exc}") from exc
    return prepared_fingerprint(features, target)


def prepared_fingerprint(features: Table, target: Target) -> str:
    """The same fingerprint from data the compiler has prepared already."""
    return digest(features.fingerprint, target.content_key)


def read_table(source: bytes | pa.Buffer | pa.NativeFile) -> pa.Table:
    """An Arrow IPC file read and validated in full, before any use.

    Raises:
        DatasetError: The bytes are not a valid Arrow IPC file (corrupt,
            truncated, offsets or indices out of range, invalid UTF-8...).
    """
    if isinstance(source, bytes):
        source = pa.py_buffer(source)
    try:
        table = pa.ipc.open_file(source).read_all()
        # Reading checks little beyond buffer bounds; full validation checks every
        # offset, dictionary index and string, which fingerprinting trusts.
        table.validate(full=True)
    except (pa.ArrowException, ValueError, TypeError, OSError) as exc:
        raise DatasetError(f"not a valid Arrow IPC file: {exc}") from exc
    return table


def to_bytes(table: pa.Table) -> bytes:
    """The Arrow IPC file form of ``table``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class DatasetStore:
    """A directory of datasets named by fingerprint.

    Args:
        root: The directory (default ``$ACADEMY_ML_DATASET_DIR``, else
            ``datasets/`` in the node cache's directory).
        max_bytes: Largest dataset file pushed or read.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, max_bytes: int = MAX_DATASET_BYTES
    ) -> None:
        configured = os.environ.get(ENV_VAR)
        default = Path(configured) if configured else default_cache_dir() / "datasets"
        self.root = Path(root) if root is not None else default
        self.max_bytes = max_bytes

    def path(self, fp: str) -> Path:
        """Where the dataset ``fp`` lives."""
        if not (len(fp) == 32 and all(c in "0123456789abcdef" for c in fp)):
            raise DataError(f"not a dataset fingerprint: {fp!r}")
        return self.root / f"{fp}.arrow"

    def __contains__(self, fp: str) -> bool:
        return self.path(fp).exists()

    def put(self, table: pa.Table, fp: str | None = None) -> str:
        """Store ``table`` (from :func:`to_arrow`); its fingerprint.

        Args:
            table: The dataset.
            fp: Its fingerprint when the caller has it (preparing a large
                table again to compute it costs seconds).
        """
        fp = fingerprint(table) if fp is None else fp
        if fp not in self:
            self._write(fp, to_bytes(table))
        return fp

    def put_bytes(self, data: bytes) -> str:
        """Store a dataset sent as Arrow IPC bytes, after validating it in full.

        Raises:
            DatasetError: The bytes are too large or not a valid Arrow IPC file.
            DataError: They are not an academy_ml dataset.
        """
        self._check_size(len(data), "pushed dataset")
        fp = fingerprint(read_table(data))
        if fp not in self:
            self._write(fp, data)
        return fp

    def get(self, fp: str) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        """Features and target of dataset ``fp``, memory-mapped.

        Raises:
            DataError: The dataset is not in this store.
            DatasetError: Its file is too large or not a valid Arrow IPC file.
        """
        path = self.path(fp)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DataError(
                f"dataset {fp} is not in {self.root}: push it to this endpoint first"
            ) from None
        self._check_size(size, f"dataset file {path}")
        with pa.memory_map(str(path)) as source:
            table = read_table(source)
        return split(table)

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise DatasetError(f"{what} of {size:,} bytes exceeds the limit of {self.max_bytes:,}")

    def _write(self, fp: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Readers on other nodes see a complete file or none.
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, self.path(fp))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

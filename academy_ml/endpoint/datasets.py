"""Datasets by reference: Arrow IPC files named by their content fingerprint.

A batch request names its dataset by fingerprint instead of carrying it. An
endpoint keeps datasets in a directory (node-local next to its cache, or on
a shared filesystem that every node sees): the client pushes one once per
endpoint, or writes it to the shared directory itself, and every later task
reads it from there, memory-mapped.

The fingerprint is the one the compiler gives the data (features and
target), computed on the Arrow form both sides read, so the plan the client
compiles and the plan the endpoint compiles have the same key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from academy_ml.cache import default_cache_dir
from academy_ml.exceptions import DataError
from academy_ml.pipeline.data import Table, Target, digest, prepare_features, prepare_target

#: Environment variable naming an endpoint's dataset directory.
ENV_VAR = "ACADEMY_ML_DATASET_DIR"
#: Schema metadata key naming the target column.
_TARGET = b"academy_ml.target"


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
    name = metadata.get(_TARGET)
    if name is None:
        raise DataError("not an academy_ml dataset: its schema names no target column")
    target = table.column(name.decode()).to_numpy(zero_copy_only=False)
    return table.drop_columns([name.decode()]), target


def fingerprint(table: pa.Table) -> str:
    """Content fingerprint of a dataset table (features and target)."""
    X, y = split(table)
    features = prepare_features(X)
    return prepared_fingerprint(features, prepare_target(y, features.n_rows))


def prepared_fingerprint(features: Table, target: Target) -> str:
    """The same fingerprint from data the compiler has prepared already."""
    return digest(features.fingerprint, target.content_key)


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
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        configured = os.environ.get(ENV_VAR)
        default = Path(configured) if configured else default_cache_dir() / "datasets"
        self.root = Path(root) if root is not None else default

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
        """Store a dataset sent as Arrow IPC bytes, after checking it reads.

        Raises:
            DataError: The bytes are not an academy_ml dataset.
        """
        try:
            table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
        except pa.ArrowInvalid as exc:
            raise DataError(f"not an Arrow IPC file: {exc}") from exc
        fp = fingerprint(table)
        if fp not in self:
            self._write(fp, data)
        return fp

    def get(self, fp: str) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        """Features and target of dataset ``fp``, memory-mapped.

        Raises:
            DataError: The dataset is not in this store.
        """
        path = self.path(fp)
        if not path.exists():
            raise DataError(f"dataset {fp} is not in {self.root}: push it to this endpoint first")
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        return split(table)

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

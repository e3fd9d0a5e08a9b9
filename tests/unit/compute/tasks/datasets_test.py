from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from academy_ml.compute.tasks import datasets
from academy_ml.compute.tasks.datasets import DatasetStore
from academy_ml.exceptions import DataError, DatasetError


def frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "color": rng.choice(["red", "blue"], size=50)})
    X.loc[3, "a"] = np.nan
    return X, rng.normal(size=50)


def test_store_and_read_back_by_fingerprint(tmp_path: Path) -> None:
    X, y = frame()
    table = datasets.to_arrow(X, y)
    store = DatasetStore(tmp_path)
    fp = store.put(table)
    assert fp in store
    X2, y2 = store.get(fp)
    assert X2.column_names == ["a", "color"]
    np.testing.assert_array_equal(y2, y)
    assert datasets.fingerprint(datasets.to_arrow(X2, y2)) == fp
    assert [p.name for p in tmp_path.iterdir()] == [f"{fp}.arrow"]  # no temp files left


def test_fingerprint_follows_content() -> None:
    X, y = frame()
    fp = datasets.fingerprint(datasets.to_arrow(X, y))
    assert datasets.fingerprint(datasets.to_arrow(X, y + 1)) != fp
    X2 = X.copy()
    X2.loc[0, "color"] = "green"
    assert datasets.fingerprint(datasets.to_arrow(X2, y)) != fp
    assert datasets.fingerprint(datasets.to_arrow(X.copy(), y.copy())) == fp


def test_pushed_bytes_are_checked(tmp_path: Path) -> None:
    X, y = frame()
    data = datasets.to_bytes(datasets.to_arrow(X, y))
    store = DatasetStore(tmp_path)
    assert store.put_bytes(data) == datasets.fingerprint(datasets.to_arrow(X, y))
    with pytest.raises(DatasetError, match="not a valid Arrow IPC file"):
        store.put_bytes(b"garbage")
    plain = datasets.to_bytes(pa.table({"a": [1, 2]}))
    with pytest.raises(DataError, match="names no target column"):
        store.put_bytes(plain)


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="50 rows"):
        datasets.to_arrow(np.zeros((50, 2)), np.zeros(49))
    with pytest.raises(DataError, match="reserves"):
        datasets.to_arrow(pd.DataFrame({"__target__": [1.0]}), [1.0])
    with pytest.raises(DataError, match="not a dataset fingerprint"):
        DatasetStore(tmp_path).get("../../etc/passwd")
    with pytest.raises(DataError, match="push it to this endpoint first"):
        DatasetStore(tmp_path).get("0" * 32)


def test_numpy_features_get_column_names() -> None:
    table = datasets.to_arrow(np.arange(6.0).reshape(3, 2), [1, 2, 3])
    X, _ = datasets.split(table)
    assert X.column_names == ["x0", "x1"]

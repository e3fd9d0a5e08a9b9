"""Arrow datasets: validated in full before use, and a fuzz campaign in a child process.

Pushed bytes and files in a shared dataset directory are untrusted. The
campaign mutates valid IPC files (numbers, strings, dictionaries, nulls,
several record batches) and pushes each one, and reads each one back from a
store directory as a corrupted shared file would be read.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fuzz_support import (
    SOAK_TIMEOUT,
    FuzzTarget,
    assert_input_clean,
    run_campaign,
)
from hypothesis import strategies as st

from academy_ml.compute.tasks import datasets
from academy_ml.compute.tasks.datasets import DatasetStore
from academy_ml.exceptions import DataError, DatasetError

#: A 20-row dataset with one byte zeroed (a string column's offsets buffer length):
#: pushing it segfaulted the endpoint while fingerprinting (pyarrow 26, issue 14).
CORRUPT = Path(__file__).with_name("corrupt_dataset.arrow")
#: Where the child stores what it reads (in memory where possible: a file per case is
#: ~6 ms on a loaded disk); the fingerprint a shared file is read under.
_STORE = DatasetStore(
    tempfile.mkdtemp(
        prefix="academy-ml-fuzz-datasets-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    )
)
atexit.register(shutil.rmtree, _STORE.root, ignore_errors=True)
_SHARED_FP = "0" * 32


def push_and_read(data: bytes) -> None:
    """Read ``data`` as a shared store's file, then push it (which also fingerprints it)."""
    _STORE.path(_SHARED_FP).write_bytes(data)
    _STORE.get(_SHARED_FP)
    _STORE.put_bytes(data)


@st.composite
def dataset_files(draw: st.DrawFn) -> bytes:
    rows = draw(st.integers(0, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    columns: dict[str, object] = {}
    for index, kind in enumerate(draw(st.lists(st.sampled_from("fisbcn"), min_size=1, max_size=4))):
        if kind == "f":
            values = rng.normal(size=rows)
            values[rng.random(rows) < 0.2] = np.nan
            columns[f"f{index}"] = values
        elif kind == "i":
            columns[f"i{index}"] = rng.integers(-5, 5, size=rows)
        elif kind == "s":
            columns[f"s{index}"] = pd.Series(rng.choice(np.array(["red", "blue", None]), size=rows))
        elif kind == "b":
            columns[f"b{index}"] = rng.random(rows) < 0.5
        elif kind == "c":
            columns[f"c{index}"] = pd.Categorical(rng.choice(["x", "y", "z"], size=rows))
        else:
            columns[f"n{index}"] = pd.array(rng.integers(0, 3, size=rows), dtype="Int64")
    table = datasets.to_arrow(pd.DataFrame(columns), rng.normal(size=rows))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        # Several record batches: the reader walks the footer's block list.
        writer.write_table(table, max_chunksize=draw(st.integers(1, 32)))
    return bytes(sink.getvalue().to_pybytes())


DATASETS = FuzzTarget(
    decode=push_and_read,
    inputs=st.one_of(dataset_files(), st.binary(max_size=64)),
    expected=(DataError,),
    tokens=(b"\xff\xff\xff\xff", b"ARROW1\x00\x00", b"\x00" * 8, b"\xff" * 8),
)


def test_arrow_datasets_survive_fuzzing() -> None:
    run_campaign(__file__, "DATASETS", seen=("accepted", "DatasetError"))


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_arrow_datasets_soak() -> None:
    run_campaign(__file__, "DATASETS", soak=True)


def test_the_one_byte_corrupted_file_is_refused_not_a_crash() -> None:
    # Pushed and read from a store, in a child: a regression fails instead of killing pytest.
    assert assert_input_clean(__file__, "DATASETS", CORRUPT.read_bytes()) == "DatasetError"


def test_the_corrupted_file_is_refused_naming_the_problem(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    with pytest.raises(DatasetError, match="Buffer #1 too small"):
        store.put_bytes(CORRUPT.read_bytes())
    assert list(tmp_path.iterdir()) == []  # nothing stored


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = datasets.to_bytes(datasets.to_arrow(rng.normal(size=(30, 2)), rng.normal(size=30)))
    store = DatasetStore(tmp_path, max_bytes=len(data) - 1)
    with pytest.raises(DatasetError, match="exceeds the limit"):
        store.put_bytes(data)
    fp = DatasetStore(tmp_path).put_bytes(data)
    with pytest.raises(DatasetError, match="exceeds the limit"):
        store.get(fp)


def test_a_shared_file_corrupted_after_it_was_stored_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = DatasetStore(tmp_path)
    fp = store.put(datasets.to_arrow(rng.normal(size=(40, 3)), rng.normal(size=40)))
    store.path(fp).write_bytes(CORRUPT.read_bytes())
    with pytest.raises(DatasetError, match="not a valid Arrow IPC file"):
        store.get(fp)

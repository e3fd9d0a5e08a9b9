"""``academy-ml results``: every result record of a deployment as CSV, JSON or Parquet.

One row per result, oldest first: ``candidate_id``, ``model_version``,
``created`` (Unix seconds), ``error``, then one ``metric.NAME`` column per
metric and one ``flag.NAME`` column per flag seen in any result (empty where
a result lacks it). JSON is a list of the records as stored (nested
``metrics`` and ``flags``); CSV and Parquet have the flat columns.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from academy_ml.agents.knowledge import ResultRecord
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.lifecycle import open_knowledge
from academy_ml.exceptions import ConfigError

__all__ = ["FORMATS", "check_format", "read_results", "render_results", "rows"]

#: The formats ``results`` writes.
FORMATS = ("csv", "json", "parquet")

_FIXED = ("candidate_id", "model_version", "created", "error")


async def read_results(deployment: Deployment) -> list[ResultRecord]:
    """Every result record of the deployment's knowledge base, oldest first.

    Raises:
        ConfigError: As :func:`~academy_ml.deploy.launch.lifecycle.open_knowledge`.
        KnowledgeStoreError: The SQLite file is not a usable knowledge base.
    """
    kb = open_knowledge(deployment)
    try:
        return await kb.results()
    finally:
        await kb.close()


def rows(records: list[ResultRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """The flat columns and one row per record (None where a record lacks a column)."""
    metrics = sorted({name for record in records for name in record.metrics})
    flags = sorted({name for record in records for name in record.flags})
    columns = [*_FIXED, *(f"metric.{m}" for m in metrics), *(f"flag.{f}" for f in flags)]
    table = []
    for record in records:
        row: dict[str, Any] = {name: getattr(record, name) for name in _FIXED}
        row.update({f"metric.{m}": record.metrics.get(m) for m in metrics})
        row.update({f"flag.{f}": record.flags.get(f) for f in flags})
        table.append(row)
    return columns, table


def check_format(fmt: str, output: Path | None) -> None:
    """Refuse an unknown format, or Parquet without a file to write.

    Raises:
        ConfigError: Naming the option and what is expected.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet writes a binary file: name it with --output FILE")


def render_results(records: list[ResultRecord], fmt: str, output: Path | None) -> str | None:
    """Write ``records`` in ``fmt`` to ``output``, or return the text (CSV, JSON) for stdout.

    Raises:
        ConfigError: As :func:`check_format`.
        OSError: ``output`` cannot be written.
    """
    check_format(fmt, output)
    if fmt == "parquet":
        assert output is not None  # checked
        columns, table = rows(records)
        pq.write_table(pa.Table.from_pylist(table, schema=_schema(columns)), output)
        return None
    if fmt == "json":
        text = json.dumps([record.model_dump(mode="json") for record in records], indent=1) + "\n"
    else:
        columns, table = rows(records)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        text = buffer.getvalue()
    if output is None:
        return text
    output.write_text(text, encoding="utf-8")
    return None


def _schema(columns: list[str]) -> pa.Schema:
    """Typed columns, so that an empty or sparse table still has them."""
    types = {
        "candidate_id": pa.string(),
        "model_version": pa.int64(),
        "created": pa.float64(),
        "error": pa.string(),
    }
    return pa.schema(
        [
            (
                name,
                types.get(name, pa.float64() if name.startswith("metric.") else pa.bool_()),
            )
            for name in columns
        ]
    )

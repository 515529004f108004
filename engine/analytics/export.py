"""Export run and node-run records from the store to Parquet datasets partitioned by day.

Layout under the export directory (Hive partitioning, readable by DuckDB, pandas, Spark):

    node_runs/day=2026-11-27/part-0.parquet   one row per node attempt (day of the attempt's start)
    runs/day=2026-11-27/part-0.parquet        one row per run (day of its creation)

Re-exporting rewrites only the day partitions it covers, so a periodic `export(since=yesterday)` keeps the files
current without rewriting history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from engine.store import Store

TS = pa.timestamp("us", tz="UTC")

NODE_RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("workflow_id", pa.string()),
        ("workflow_version", pa.int64()),
        ("node_id", pa.string()),
        ("node_type", pa.string()),
        ("attempt", pa.int64()),
        ("status", pa.string()),
        ("cache_hit", pa.bool_()),
        ("started_at", TS),
        ("finished_at", TS),
        ("duration_s", pa.float64()),
        ("day", pa.string()),
    ]
)

RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("workflow_id", pa.string()),
        ("workflow_version", pa.int64()),
        ("owner", pa.string()),
        ("status", pa.string()),
        ("created_at", TS),
        ("started_at", TS),
        ("finished_at", TS),
        ("duration_s", pa.float64()),
        ("day", pa.string()),
    ]
)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the directory and how many node-run and run rows."""

    directory: Path
    node_runs: int
    runs: int


def export_history(store: Store, directory: str | Path, *, since: datetime | None = None) -> ExportResult:
    """Write node runs and runs to Parquet under `directory`; with `since`, only the days from `since`'s day on
    (those day partitions are replaced, earlier ones kept)."""
    out = Path(directory)
    start = datetime.combine(since.astimezone(UTC).date(), time(), tzinfo=UTC) if since else None
    node_rows = _write(out / "node_runs", NODE_RUN_SCHEMA, _node_run_batches(store, start))
    run_rows = _write(out / "runs", RUN_SCHEMA, _run_batches(store, start))
    return ExportResult(out, node_rows, run_rows)


def _write(path: Path, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> int:
    counted = 0

    def counting() -> Iterator[pa.RecordBatch]:
        nonlocal counted
        for batch in batches:
            counted += batch.num_rows
            yield batch

    path.mkdir(parents=True, exist_ok=True)
    ds.write_dataset(
        counting(),
        path,
        schema=schema,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        basename_template="part-{i}.parquet",
    )
    return counted


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _day(*candidates: datetime | None) -> str:
    for value in candidates:
        if value is not None:
            return value.astimezone(UTC).date().isoformat()
    return "unknown"


def _node_run_batches(store: Store, start: datetime | None) -> Iterator[pa.RecordBatch]:
    for rows in store.reports.node_run_history(since=start):
        records = [
            {
                **{k: row[k] for k in NODE_RUN_SCHEMA.names if k not in ("duration_s", "day")},  # type: ignore[literal-required]
                "duration_s": _duration(row["started_at"], row["finished_at"]),
                "day": _day(row["started_at"], row["finished_at"], row["created_at"]),
            }
            for row in rows
        ]
        yield pa.RecordBatch.from_pylist(records, schema=NODE_RUN_SCHEMA)


def _run_batches(store: Store, start: datetime | None) -> Iterator[pa.RecordBatch]:
    for rows in store.reports.run_history(since=start):
        records = [
            {
                **row,
                "duration_s": _duration(row["started_at"] or row["created_at"], row["finished_at"]),
                "day": _day(row["created_at"]),
            }
            for row in rows
        ]
        yield pa.RecordBatch.from_pylist(records, schema=RUN_SCHEMA)

"""Export run and node-run records from the store to Parquet datasets partitioned by day.

Layout under the export directory (Hive partitioning, readable by DuckDB, pandas, Spark):

    node_runs/day=2026-11-27/part-0.parquet   one row per node attempt (day of the attempt's start)
    runs/day=2026-11-27/part-0.parquet        one row per run (day of its creation)

Re-exporting rewrites only the day partitions it covers, so a periodic `export(since=yesterday)` keeps the files
current without rewriting history.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from engine.analytics.executions import (
    _day,
    _duration,
    _empty_rollup,
    _executions,
    _finished_node_batches,
    _run_rollups,
)
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
    if is_incremental(out):
        raise ValueError(
            f"{out} holds an incremental export (sync_export); write a full export to another directory"
        )
    start = datetime.combine(since.astimezone(UTC).date(), time(), tzinfo=UTC) if since else None
    node_rows = _write(out / "node_runs", NODE_RUN_SCHEMA, _node_run_batches(store, start))
    run_rows = _write(out / "runs", RUN_SCHEMA, _run_batches(store, start))
    return ExportResult(out, node_rows, run_rows)


def _write(
    path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, token: str | None = None
) -> int:
    """Write `batches` under `path` in day partitions; the rows written. Without `token` (a full export) the
    day partitions written are replaced; with it (incremental) new files `part-{token}-N` go next to the old
    ones, and a retried export after a crash rewrites the same names."""
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
        existing_data_behavior="delete_matching" if token is None else "overwrite_or_ignore",
        basename_template="part-{i}.parquet" if token is None else f"part-{token}-{{i}}.parquet",
    )
    return counted


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


# -- incremental export (what `rayweave stats|report` and /v1/analytics use) ---------------------------------

#: Node attempts of finished runs, with what the breakdowns need beyond `NODE_RUN_SCHEMA`.
FINISHED_NODE_RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("workflow_id", pa.string()),
        ("workflow_version", pa.int64()),
        ("owner", pa.string()),
        ("node_id", pa.string()),
        ("node_type", pa.string()),
        ("attempt", pa.int64()),
        ("status", pa.string()),
        ("cache_hit", pa.bool_()),
        ("cache_level", pa.string()),
        ("error_type", pa.string()),
        ("output_bytes", pa.int64()),
        ("started_at", TS),
        ("finished_at", TS),
        ("duration_s", pa.float64()),
        # Measured per attempt (engine.execution.usage), from its final or retrying event; None before issue 20.
        ("cpu_s", pa.float64()),
        ("memory_bytes", pa.int64()),
        ("run_created_at", TS),
        ("day", pa.string()),
    ]
)

#: The sums of a run's executions' figures, written with the run (`executions._run_rollups`): a breakdown by
#: run-level dimensions reads them from the runs instead of scanning the executions again. `output_bytes`,
#: `cpu_s` and `memory_max_bytes` (the highest of one execution) are None where nothing was measured;
#: `output_sized` counts the executions with a known output size. Files written before them lack them.
RUN_ROLLUP_FIELDS: list[tuple[str, pa.DataType]] = [
    ("executions", pa.int32()),
    ("retries", pa.int32()),
    ("retried_executions", pa.int32()),
    ("cache_hits", pa.int32()),
    ("hits_memory", pa.int32()),
    ("hits_object_store", pa.int32()),
    ("hits_disk", pa.int32()),
    ("output_bytes", pa.int64()),
    ("output_sized", pa.int32()),
    ("cpu_s", pa.float64()),
    ("memory_max_bytes", pa.int64()),
]

#: Finished runs, with their queue wait (creation to start) and the sums of their executions.
FINISHED_RUN_SCHEMA = pa.schema(
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
        ("queue_wait_s", pa.float64()),
        *RUN_ROLLUP_FIELDS,
        ("day", pa.string()),
    ]
)

#: One row per execution (one node in one run, all its attempts; skipped nodes did not execute), derived when a
#: run is exported so that no question has to group attempts again: `span_s` runs from the first start to the
#: last finish (retries and backoff included), `last_duration_s` is the last attempt's, `output_bytes` and
#: `error_type` are the last attempt's, `cache_level` the level that answered a cache hit, `cpu_s` the CPU-seconds
#: of all its attempts and `memory_bytes` the highest peak-memory rise of one attempt (`engine.execution.usage`).
EXECUTION_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("node_id", pa.string()),
        ("workflow_id", pa.string()),
        ("workflow_version", pa.int64()),
        ("owner", pa.string()),
        ("node_type", pa.string()),
        ("attempts", pa.int64()),
        ("cache_hit", pa.bool_()),
        ("cache_level", pa.string()),
        ("final_status", pa.string()),
        ("error_type", pa.string()),
        ("output_bytes", pa.int64()),
        ("started_at", TS),
        ("finished_at", TS),
        ("span_s", pa.float64()),
        ("last_duration_s", pa.float64()),
        ("cpu_s", pa.float64()),
        ("memory_bytes", pa.int64()),
        ("run_created_at", TS),
        ("day", pa.string()),
    ]
)

WATERMARK = "_watermark.json"
#: Each export reads again the runs that finished this long before the previous watermark and skips the ones it
#: already wrote (their ids are kept with the watermark): a transaction that commits late, with a finish time
#: just before the watermark, is still exported, and a run finished a moment ago is visible at once.
OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True)
class SyncResult:
    """What an incremental export added: runs and node attempts, and the new watermark (runs finished up to
    it are in the files)."""

    directory: Path
    runs: int
    node_runs: int
    watermark: datetime | None
    previous: datetime | None


def is_incremental(directory: str | Path) -> bool:
    """True when `directory` holds an incremental export (`sync_export`), with its watermark."""
    return (Path(directory) / WATERMARK).exists()


def read_watermark(directory: str | Path) -> datetime | None:
    """The finish time up to which runs are exported under `directory` (None: nothing exported yet)."""
    return _read_mark(Path(directory))[0]


def sync_export(
    store: Store,
    directory: str | Path,
    *,
    now: datetime | None = None,
    overlap: timedelta = OVERLAP,
    output_sizes: bool = True,
) -> SyncResult:
    """Append the runs that finished since the last watermark (and their node attempts) to the Parquet files
    under `directory`, then move the watermark. Only finished runs are exported: a run and its attempts no
    longer change once it has finished, so every record is written once.

    Concurrent callers are serialized by a lock file in the directory. `output_sizes`: measure each stored
    node result's size (the data a node passes downstream) from its result location on a local disk.
    `overlap`: how far before the watermark to look again for runs committed late (see `OVERLAP`)."""
    out = Path(directory)
    if not is_incremental(out) and any((out / "runs").glob("day=*/*.parquet")):
        raise ValueError(
            f"{out} holds a full export (export_history), not an incremental one; "
            "use another directory for incremental exports, or delete this one"
        )
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out / ".lock"):
        previous, seen = _read_mark(out)
        until = now or datetime.now(UTC)
        after = previous - overlap if previous is not None else None
        token = previous.strftime("%Y%m%dT%H%M%S%f") if previous else "initial"
        finished: dict[str, datetime] = {}
        run_rows = node_rows = 0
        # Batch by batch of runs: their row, then their attempts and cache levels read by run id.
        for index, batch in enumerate(store.reports.finished_runs(after=after, until=until)):
            fresh = [row for row in batch if row["run_id"] not in seen]
            if not fresh:
                continue
            ids = [row["run_id"] for row in fresh]
            levels, usage = store.reports.attempt_events_of(ids)
            attempts = [
                r
                for rows in _finished_node_batches(
                    store.reports.node_runs_of(ids), levels, output_sizes, usage
                )
                for r in rows
            ]
            executions = _executions(attempts)
            run_rows += _write(
                out / "runs",
                FINISHED_RUN_SCHEMA,
                _finished_run_batches([fresh], finished, _run_rollups(executions)),
                token=f"{token}-{index}",
            )
            node_rows += _write(
                out / "node_runs",
                FINISHED_NODE_RUN_SCHEMA,
                [pa.RecordBatch.from_pylist(attempts, schema=FINISHED_NODE_RUN_SCHEMA)],
                token=f"{token}-{index}",
            )
            _write(
                out / "executions",
                EXECUTION_SCHEMA,
                [pa.RecordBatch.from_pylist(executions, schema=EXECUTION_SCHEMA)],
                token=f"{token}-{index}",
            )
        mark = max([*finished.values(), *([previous] if previous else [])], default=None)
        # Remember the runs inside the next export's overlap, so that it does not write them twice.
        recent = {run for run, at in {**seen, **finished}.items() if mark is not None and at > mark - overlap}
        times = {**seen, **finished}
        tmp = out / (WATERMARK + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "finished_until": mark.isoformat() if mark else None,
                    "recent": {run: times[run].isoformat() for run in sorted(recent)},
                }
            )
        )
        os.replace(tmp, out / WATERMARK)
        return SyncResult(out, run_rows, node_rows, mark, previous)


def _read_mark(directory: Path) -> tuple[datetime | None, dict[str, datetime]]:
    path = directory / WATERMARK
    if not path.exists():
        return None, {}
    data = json.loads(path.read_text())
    mark = data.get("finished_until")
    recent = {run: datetime.fromisoformat(at) for run, at in dict(data.get("recent") or {}).items()}
    return (datetime.fromisoformat(mark) if mark else None), recent


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _finished_run_batches(
    batches: Iterable[list[Any]], finished: dict[str, datetime], rollups: Mapping[str, Mapping[str, Any]]
) -> Iterator[pa.RecordBatch]:
    for rows in batches:
        records = []
        for row in rows:
            start = row["started_at"] or row["created_at"]
            records.append(
                {
                    **row,
                    **(rollups.get(row["run_id"]) or _empty_rollup()),
                    "duration_s": _duration(start, row["finished_at"]),
                    "queue_wait_s": _duration(row["created_at"], row["started_at"]),
                    "day": _day(row["created_at"]),
                }
            )
            finished[row["run_id"]] = row["finished_at"]
        yield pa.RecordBatch.from_pylist(records, schema=FINISHED_RUN_SCHEMA)

"""Node executions derived from node attempts, in plain Python (no pyarrow, no DuckDB): what the incremental
export writes to `executions/` and what `engine.analytics.live` judges when a run finishes (imported from the
durable run's store sink, so it must stay cheap to import)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nodes.states import NodeStatus


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _day(*candidates: datetime | None) -> str:
    for value in candidates:
        if value is not None:
            return value.astimezone(UTC).date().isoformat()
    return "unknown"


def _finished_node_batches(
    batches: Iterable[list[Any]],
    levels: dict[tuple[str, str], str],
    output_sizes: bool,
    usage: Mapping[tuple[str, str, int], tuple[float | None, int | None, int | None]] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Attempt records of the export's `node_runs` from the store's rows; `usage` (run, node, attempt) ->
    (CPU-seconds, memory bytes, output bytes) as `store.reports.usage_of` reads them from the attempts' events.
    `output_bytes` is the stored result's size on a local disk when known, else the in-memory size the worker
    measured (`engine.execution.usage.outputs_bytes`)."""
    for rows in batches:
        records = []
        for row in rows:
            error = row["error"] if isinstance(row["error"], dict) else None
            hit = bool(row["cache_hit"])
            cpu_s, memory, size = (usage or {}).get(
                (row["run_id"], row["node_id"], row["attempt"]), (None, None, None)
            )
            stored = _stored_bytes(row["result_location"]) if output_sizes else None
            records.append(
                {
                    "run_id": row["run_id"],
                    "workflow_id": row["workflow_id"],
                    "workflow_version": row["workflow_version"],
                    "owner": row["owner"],
                    "node_id": row["node_id"],
                    "node_type": row["node_type"],
                    "attempt": row["attempt"],
                    "status": row["status"],
                    "cache_hit": hit,
                    "cache_level": levels.get((row["run_id"], row["node_id"])) if hit else None,
                    "error_type": str(error.get("type") or "") if error else None,
                    "output_bytes": stored if stored is not None else size,
                    "cpu_s": cpu_s,
                    "memory_bytes": memory,
                    "started_at": row["started_at"],
                    "finished_at": row["finished_at"],
                    "duration_s": _duration(row["started_at"], row["finished_at"]),
                    "run_created_at": row["created_at"],
                    "day": _day(row["created_at"]),
                }
            )
        yield records


def _executions(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (run, node) from its attempts (see `EXECUTION_SCHEMA`); skipped nodes did not execute."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in attempts:
        if row["status"] != NodeStatus.SKIPPED:
            grouped.setdefault((row["run_id"], row["node_id"]), []).append(row)
    rows = []
    for (run_id, node_id), mine in grouped.items():
        mine.sort(key=lambda r: r["attempt"])
        last = mine[-1]
        starts = [r["started_at"] for r in mine if r["started_at"] is not None]
        ends = [r["finished_at"] for r in mine if r["finished_at"] is not None]
        hit = any(r["cache_hit"] or r["status"] == NodeStatus.CACHED for r in mine)
        cpus = [r["cpu_s"] for r in mine if r.get("cpu_s") is not None]
        memories = [r["memory_bytes"] for r in mine if r.get("memory_bytes") is not None]
        rows.append(
            {
                "run_id": run_id,
                "node_id": node_id,
                "workflow_id": last["workflow_id"],
                "workflow_version": last["workflow_version"],
                "owner": last["owner"],
                "node_type": last["node_type"],
                "attempts": len(mine),
                "cache_hit": hit,
                "cache_level": next((r["cache_level"] for r in mine if r["cache_level"]), None)
                if hit
                else None,
                "final_status": last["status"],
                "error_type": last["error_type"],
                "output_bytes": last["output_bytes"],
                # CPU of every attempt (a retried node used it all); memory at the highest attempt.
                "cpu_s": sum(cpus) if cpus else None,
                "memory_bytes": max(memories) if memories else None,
                "started_at": min(starts) if starts else None,
                "finished_at": max(ends) if ends else None,
                "span_s": _duration(min(starts), max(ends)) if starts and ends else None,
                "last_duration_s": last["duration_s"],
                "run_created_at": last["run_created_at"],
                "day": last["day"],
            }
        )
    return rows


#: The cache levels counted per run (`engine.cache.result_cache`; the same as `breakdown.CACHE_LEVELS`).
_LEVELS = ("memory", "object_store", "disk")


def _run_rollups(executions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per run, the sums of its executions' figures (see `export.RUN_ROLLUP_FIELDS`): what a breakdown by
    run-level dimensions adds up, read with the run's row instead of from the executions."""
    rollups: dict[str, dict[str, Any]] = {}
    for e in executions:
        r = rollups.setdefault(e["run_id"], _empty_rollup())
        r["executions"] += 1
        r["retries"] += e["attempts"] - 1
        r["retried_executions"] += e["attempts"] > 1
        if e["cache_hit"]:
            r["cache_hits"] += 1
            if e["cache_level"] in _LEVELS:
                r[f"hits_{e['cache_level']}"] += 1
        if e["output_bytes"] is not None:
            r["output_bytes"] = (r["output_bytes"] or 0) + e["output_bytes"]
            r["output_sized"] += 1
        if e["cpu_s"] is not None:
            r["cpu_s"] = (r["cpu_s"] or 0.0) + e["cpu_s"]
        if e["memory_bytes"] is not None:
            r["memory_max_bytes"] = max(r["memory_max_bytes"] or 0, e["memory_bytes"])
    return rollups


def _empty_rollup() -> dict[str, Any]:
    """The figures of a run without executions."""
    return {
        "executions": 0,
        "retries": 0,
        "retried_executions": 0,
        "cache_hits": 0,
        **{f"hits_{level}": 0 for level in _LEVELS},
        "output_bytes": None,
        "output_sized": 0,
        "cpu_s": None,
        "memory_max_bytes": None,
    }


def _stored_bytes(location: str | None) -> int | None:
    """Total size of the data files of a stored node result on a local disk (None when unknown)."""
    if not location or "://" in location:
        return None
    folder = Path(location)
    try:
        return sum(
            f.stat().st_size for f in folder.iterdir() if f.is_file() and not f.name.startswith(("meta", "."))
        )
    except OSError:
        return None

"""Analytics answers on generated history, checked against the same numbers computed in plain Python."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.analytics import RunAnalytics, export_history, stats
from engine.store import Store, open_store

DAY0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TYPES = {"load": "builtin/read_csv@1", "mean": "builtin/column_mean@1", "plot": "plot/line@1"}
#: (median seconds, probability an attempt fails, probability of a cache hit)
PROFILE = {"load": (2.0, 0.2, 0.0), "mean": (0.3, 0.05, 0.5), "plot": (5.0, 0.3, 0.1)}


@dataclass
class History:
    """What was generated, for computing the expected answers."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def generate(store: Store, seed: int = 7, runs_per_day: int = 12, days: int = 3) -> History:
    """Record runs of two workflows over several days, with failures, retries and cache hits."""
    rng = random.Random(seed)
    history = History()
    wfs = [store.workflows.create({"name": n, "nodes": {}}).workflow_id for n in ("etl", "report")]
    for day in range(days):
        for i in range(runs_per_day):
            wf = wfs[i % 2]
            created = DAY0 + timedelta(days=day, minutes=10 * i)
            run = store.runs.create(workflow_id=wf, at=created).run
            clock = created + timedelta(seconds=1)
            store.runs.update_status(run.id, "running", at=clock)
            failed = False
            rows = []
            for node, (median, p_fail, p_hit) in PROFILE.items():
                if failed:
                    break
                if rng.random() < p_hit:
                    rows.append(_attempt(history, run.id, wf, node, 1, "succeeded", clock, 0.001, True))
                    continue
                for attempt in (1, 2, 3):
                    duration = round(median * rng.uniform(0.5, 2.0), 3)
                    status = "failed" if rng.random() < p_fail else "succeeded"
                    rows.append(_attempt(history, run.id, wf, node, attempt, status, clock, duration, False))
                    clock += timedelta(seconds=duration)
                    if status == "succeeded":
                        break
                else:
                    failed = True
            store.node_runs.record_many(rows)
            final = "failed" if failed else "succeeded"
            store.runs.update_status(run.id, final, at=clock)
            history.runs.append(
                {
                    "id": run.id,
                    "wf": wf,
                    "status": final,
                    "created": created,
                    "duration": (clock - created).total_seconds() - 1,
                }
            )
    return history


def _attempt(
    history: History,
    run: str,
    wf: str,
    node: str,
    attempt: int,
    status: str,
    start: datetime,
    dur: float,
    hit: bool,
) -> dict[str, Any]:
    row = {
        "run_id": run,
        "node_id": node,
        "node_type": TYPES[node],
        "attempt": attempt,
        "status": status,
        "cache_hit": hit,
        "started_at": start,
        "finished_at": start + timedelta(seconds=dur),
    }
    history.attempts.append({**row, "wf": wf, "duration": dur})
    return row


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, History, Path]:
    root = tmp_path_factory.mktemp("analytics")
    store = open_store(f"sqlite:///{root / 'rayweave.db'}")
    history = generate(store)
    export_history(store, root / "export")
    return store, history, root / "export"


def executions(history: History, wf: str | None = None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in history.attempts:
        if wf is None or a["wf"] == wf:
            grouped[(a["run_id"], a["node_id"])].append(a)
    return grouped


def test_export_is_partitioned_by_day_and_complete(generated: tuple[Store, History, Path]) -> None:
    _, history, out = generated
    days = sorted(p.name for p in (out / "node_runs").iterdir())
    assert days == ["day=2026-11-20", "day=2026-11-21", "day=2026-11-22"]
    total = sum(pq.read_table(f).num_rows for f in (out / "node_runs").glob("day=*/*.parquet"))
    assert total == len(history.attempts)
    assert sum(pq.read_table(f).num_rows for f in (out / "runs").glob("day=*/*.parquet")) == len(history.runs)


def test_slowest_node_types_p50_p95(generated: tuple[Store, History, Path]) -> None:
    _, history, out = generated
    with RunAnalytics(out) as analytics:
        got = analytics.slowest_node_types()
    assert [g.node_type for g in got] == ["plot/line@1", "builtin/read_csv@1", "builtin/column_mean@1"]
    for g in got:
        durations = [
            a["duration"]
            for a in history.attempts
            if a["node_type"] == g.node_type and a["status"] == "succeeded" and not a["cache_hit"]
        ]
        assert g.attempts == len(durations)
        assert g.p50_s == pytest.approx(np.percentile(durations, 50), abs=1e-6)
        assert g.p95_s == pytest.approx(np.percentile(durations, 95), abs=1e-6)
        assert g.max_s == pytest.approx(max(durations), abs=1e-6)


def test_failure_rates_and_retry_counts(generated: tuple[Store, History, Path]) -> None:
    _, history, out = generated
    with RunAnalytics(out) as analytics:
        failures = {f.node_type: f for f in analytics.failure_rates()}
        retries = {r.node_type: r for r in analytics.retry_counts()}
    execs = executions(history)
    for node, node_type in TYPES.items():
        mine = [v for (_, n), v in execs.items() if n == node]
        attempts = [a for v in mine for a in v]
        f = failures[node_type]
        assert f.attempts == len(attempts)
        assert f.failed_attempts == sum(a["status"] == "failed" for a in attempts)
        assert f.executions == len(mine)
        assert f.failed_executions == sum(v[-1]["status"] == "failed" for v in mine)
        r = retries[node_type]
        assert r.retried_executions == sum(len(v) > 1 for v in mine)
        assert r.retries == sum(len(v) - 1 for v in mine)
        assert r.max_attempts == max(len(v) for v in mine)
    assert failures["plot/line@1"].failed_executions > 0  # the generated history does exercise failures
    assert retries["builtin/read_csv@1"].retries > 0


def test_cache_hit_rate_overall_and_per_type(generated: tuple[Store, History, Path]) -> None:
    _, history, out = generated
    execs = executions(history)
    hits = sum(any(a["cache_hit"] for a in v) for v in execs.values())
    with RunAnalytics(out) as analytics:
        (overall,) = analytics.cache_hit_rate()
        per_type = {c.node_type: c for c in analytics.cache_hit_rate(by_node_type=True)}
    assert (overall.executions, overall.hits) == (len(execs), hits)
    assert overall.hit_rate == pytest.approx(hits / len(execs))
    assert per_type["builtin/read_csv@1"].hits == 0
    assert per_type["builtin/column_mean@1"].hit_rate > 0.2


def test_run_durations_over_time_and_per_workflow(generated: tuple[Store, History, Path]) -> None:
    store, history, out = generated
    etl = store.workflows.list(name="etl")[0].id
    with RunAnalytics(out) as analytics:
        buckets = analytics.run_durations()
        etl_buckets = analytics.run_durations(workflow_id=etl)
        summaries = {s.workflow_id: s for s in analytics.per_workflow()}
    assert [b.bucket.date().isoformat() for b in buckets] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    for b in buckets:
        mine = [r for r in history.runs if r["created"].date() == b.bucket.date()]
        assert (b.runs, b.succeeded, b.failed) == (
            len(mine),
            sum(r["status"] == "succeeded" for r in mine),
            sum(r["status"] == "failed" for r in mine),
        )
        assert b.p95_s == pytest.approx(np.percentile([r["duration"] for r in mine], 95), abs=1e-3)
    assert sum(b.runs for b in etl_buckets) == sum(r["wf"] == etl for r in history.runs)
    etl_summary = summaries[etl]
    etl_runs = [r for r in history.runs if r["wf"] == etl]
    assert etl_summary.runs == len(etl_runs)
    assert etl_summary.failed == sum(r["status"] == "failed" for r in etl_runs)
    assert etl_summary.node_executions == len(executions(history, etl))
    assert etl_summary.retries == sum(len(v) - 1 for v in executions(history, etl).values())


def test_incremental_export_rewrites_only_recent_days(
    tmp_path: Path, generated: tuple[Store, History, Path]
) -> None:
    store, history, _ = generated
    out = tmp_path / "export"
    export_history(store, out)
    first_day = sorted((out / "node_runs" / "day=2026-11-20").glob("*.parquet"))
    stamp = first_day[0].stat().st_mtime_ns
    result = export_history(store, out, since=DAY0 + timedelta(days=2, hours=5))
    assert result.node_runs == sum(
        a["started_at"].date().isoformat() == "2026-11-22" for a in history.attempts
    )
    assert first_day[0].stat().st_mtime_ns == stamp
    with RunAnalytics(out) as analytics:
        assert sum(f.attempts for f in analytics.failure_rates()) == len(history.attempts)


def test_empty_history_gives_empty_answers(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    report = stats(store, tmp_path / "export")
    assert report.slowest_node_types == [] and report.workflows == []
    assert report.cache_hit_rate.hit_rate == 0.0
    assert report.to_json()["export"]["node_runs"] == 0
    store.close()


def test_stats_report_for_one_workflow(tmp_path: Path, generated: tuple[Store, History, Path]) -> None:
    store, history, _ = generated
    report_wf = store.workflows.list(name="report")[0].id
    report = stats(store, tmp_path / "export", workflow_id=report_wf)
    assert [w.workflow_id for w in report.workflows] == [report_wf]
    assert report.cache_hit_rate.executions == len(executions(history, report_wf))
    as_json = report.to_json()
    assert as_json["workflows"][0]["runs"] == sum(r["wf"] == report_wf for r in history.runs)
    assert "failure_rate" in as_json["failure_rates"][0]


def test_skipped_nodes_are_not_counted_as_executions(tmp_path: Path) -> None:
    from cluster.settings import Settings
    from engine.durable import DurableRunner
    from tests.engine.execution.test_skipped_outputs import BRANCHES

    settings = Settings(home=tmp_path / "home")
    store = open_store(settings.resolved_database_url)
    try:
        runner = DurableRunner(settings, store=store, executor="local", cache=False, heartbeat_s=0.1)
        result = runner.run(BRANCHES, {"flag": True})
        statuses = {r.node_id: r.status for r in store.node_runs.list(result.run_id)}
        assert statuses == {"b": "succeeded", "p": "succeeded", "n": "skipped"}
        report = stats(store, tmp_path / "export", group_by=("workflow", "node"))
    finally:
        store.close()
    assert report.cache_hit_rate.executions == 2
    assert report.breakdown is not None
    assert sorted(g.key["node"] for g in report.breakdown.groups) == ["b", "p"]
    assert sum(g.executions for g in report.breakdown.groups) == 2
    # The data each node handed downstream: the size of its stored result.
    assert all((g.output_bytes or 0) > 0 for g in report.breakdown.groups)
    [workflow] = report.workflows
    assert workflow.node_executions == 2 and workflow.retries == 0
    negate = [f for f in report.failure_rates if f.node_type == "builtin/negate@1"]
    assert [(f.attempts, f.executions) for f in negate] == [(1, 1)]
    assert sum(r.executions for r in report.retry_counts) == 2

"""Incremental export and breakdowns by workflow, version, owner and node type, checked against plain Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.analytics import (
    AnalyticsError,
    Filters,
    RunAnalytics,
    Window,
    breakdown,
    read_watermark,
    sync_export,
)
from engine.store import NewEvent, Store, open_store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def record_runs(
    store: Store, wf: str, n: int, *, owner: str, start: datetime, seed: int
) -> list[dict[str, Any]]:
    """`n` runs of a two-node workflow (`a` then `b`); `b` fails one attempt in three and is cached (disk) one
    run in four. Returns what each run was, for the expected answers."""
    rng = random.Random(seed)
    made = []
    for i in range(n):
        created = start + timedelta(minutes=i)
        run = store.runs.create(workflow_id=wf, owner=owner, at=created).run
        begun = created + timedelta(seconds=rng.choice([1, 2, 3]))
        store.runs.update_status(run.id, "running", at=begun)
        a = rng.uniform(1, 3)
        rows = [_row(run.id, "a", "t/a@1", 1, "succeeded", begun, a)]
        clock = begun + timedelta(seconds=a)
        cached = i % 4 == 0
        retried = not cached and rng.random() < 1 / 3
        if cached:
            rows.append(_row(run.id, "b", "t/b@1", 1, "cached", clock, 0.0, hit=True))
            store.events.append(run.id, [NewEvent("node.cached", "b", {"type": "t/b@1", "level": "disk"})])
        else:
            if retried:
                rows.append(_row(run.id, "b", "t/b@1", 1, "failed", clock, 0.5))
                clock += timedelta(seconds=0.5)
            b = rng.uniform(0.2, 0.4)
            rows.append(_row(run.id, "b", "t/b@1", 2 if retried else 1, "succeeded", clock, b))
            clock += timedelta(seconds=b)
        store.node_runs.record_many(rows)
        store.runs.update_status(run.id, "succeeded", at=clock)
        made.append(
            {
                "created": created,
                "duration": (clock - begun).total_seconds(),
                "wait": (begun - created).total_seconds(),
                "retried": retried,
                "cached": cached,
            }
        )
    return made


def _row(
    run: str,
    node: str,
    type_: str,
    attempt: int,
    status: str,
    at: datetime,
    seconds: float,
    hit: bool = False,
) -> dict[str, Any]:
    return {
        "run_id": run,
        "node_id": node,
        "node_type": type_,
        "attempt": attempt,
        "status": status,
        "cache_hit": hit,
        "started_at": at,
        "finished_at": at + timedelta(seconds=seconds),
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str, dict[str, list[dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("breakdown")
    store = open_store(f"sqlite:///{root / 'rayweave.db'}")
    wf = store.workflows.create({"name": "two", "nodes": {}}).workflow_id
    runs = {
        "ada": record_runs(store, wf, 40, owner="ada", start=T0, seed=1),
        "bob": record_runs(store, wf, 20, owner="bob", start=T0 + timedelta(days=1), seed=2),
    }
    return store, wf, runs


def test_breakdown_by_owner_matches_plain_python(
    history: tuple[Store, str, dict[str, list[dict[str, Any]]]], tmp_path: Path
) -> None:
    store, _, runs = history
    sync_export(store, tmp_path / "x")
    with RunAnalytics(tmp_path / "x") as analytics:
        report = breakdown(analytics, ["owner"])
    assert report.unit == "run" and any("cpu_seconds" in n for n in report.notes)
    groups = {g.key["owner"]: g for g in report.groups}
    for owner, made in runs.items():
        g = groups[owner]
        durations = [r["duration"] for r in made]
        assert (g.runs, g.succeeded, g.failed, g.success_rate) == (len(made), len(made), 0, 1.0)
        assert g.p50_s == pytest.approx(np.percentile(durations, 50), abs=1e-3)
        assert g.p95_s == pytest.approx(np.percentile(durations, 95), abs=1e-3)
        assert g.p99_s == pytest.approx(np.percentile(durations, 99), abs=1e-3)
        assert g.queue_wait_p50_s == pytest.approx(np.percentile([r["wait"] for r in made], 50), abs=1e-3)
        assert g.retries == sum(r["retried"] for r in made)
        assert g.cache_hits_by_level == {"disk": sum(r["cached"] for r in made)}
        assert g.executions == 2 * len(made) and g.cpu_seconds is None


def test_breakdown_by_node_type_counts_executions(
    history: tuple[Store, str, dict[str, list[dict[str, Any]]]], tmp_path: Path
) -> None:
    store, wf, runs = history
    sync_export(store, tmp_path / "x")
    with RunAnalytics(tmp_path / "x") as analytics:
        report = breakdown(analytics, ["workflow", "node_type"], filters=Filters(owner="bob"))
    assert report.unit == "execution"
    groups = {g.key["node_type"]: g for g in report.groups}
    assert groups["t/b@1"].key["workflow"] == wf
    made = runs["bob"]
    assert groups["t/b@1"].runs == len(made)
    assert groups["t/b@1"].cache_hit_rate == pytest.approx(sum(r["cached"] for r in made) / len(made))
    assert groups["t/a@1"].retries == 0 and groups["t/a@1"].queue_wait_p50_s is None


def test_window_filters_runs_by_creation(
    history: tuple[Store, str, dict[str, list[dict[str, Any]]]], tmp_path: Path
) -> None:
    store, _, _ = history
    sync_export(store, tmp_path / "x")
    with RunAnalytics(tmp_path / "x") as analytics:
        first_day = breakdown(analytics, [], window=Window(T0, T0 + timedelta(minutes=10)))
        future = breakdown(analytics, ["workflow"], window=Window(T0 + timedelta(days=400), None))
    assert first_day.groups[0].runs == 10
    assert future.groups == [] and "no finished runs" in future.notes[-1]


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("soon", None, "since 'soon' is not a date"),
        ("2026-12-01", "2026-11-01", "must be before until"),
        ("0200-01-01", None, "outside the years"),
        ("99999999w", None, "before year 1"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(since: str, until: str | None, message: str) -> None:
    with pytest.raises(AnalyticsError, match=message):
        Window.parse(since, until)


def test_unknown_dimension_is_refused(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'e.db'}")
    sync_export(store, tmp_path / "x")
    store.close()
    with RunAnalytics(tmp_path / "x") as analytics, pytest.raises(AnalyticsError, match="node_type"):
        breakdown(analytics, ["colour"])


def test_incremental_export_adds_only_new_runs_and_late_commits_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'i.db'}")
    wf = store.workflows.create({"name": "inc", "nodes": {}}).workflow_id
    now = datetime.now(UTC)
    record_runs(store, wf, 5, owner="ada", start=now - timedelta(hours=1), seed=3)
    first = sync_export(store, tmp_path / "x")
    assert (first.runs, first.node_runs) == (5, 10)
    again = sync_export(store, tmp_path / "x")
    assert (again.runs, again.node_runs) == (0, 0)
    # A run committed after the export, finishing a moment before its watermark (another coordinator's clock).
    mark = read_watermark(tmp_path / "x")
    assert mark is not None
    late = store.runs.create(workflow_id=wf, owner="ada", at=mark - timedelta(seconds=10)).run
    store.runs.update_status(late.id, "running", at=mark - timedelta(seconds=9))
    store.runs.update_status(late.id, "succeeded", at=mark - timedelta(seconds=1))
    third = sync_export(store, tmp_path / "x")
    assert third.runs == 1
    with RunAnalytics(tmp_path / "x") as analytics:
        assert breakdown(analytics, []).groups[0].runs == 6
    store.close()


def test_measured_cpu_and_memory_add_up_per_node_type_and_workflow(tmp_path: Path) -> None:
    # The final and retrying events carry each attempt's cpu_s and memory_bytes (engine.execution.usage): a
    # retried node's CPU is the sum of its attempts, its memory the highest attempt's.
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        wf = store.workflows.create(
            {"format": "rayweave.workflow/1", "name": "m", "nodes": {}, "outputs": {}}
        ).workflow_id
        for i in range(3):
            created = T0 + timedelta(minutes=i)
            run = store.runs.create(workflow_id=wf, owner="ada", at=created).run
            store.runs.update_status(run.id, "running", at=created)
            store.node_runs.record_many(
                [
                    _row(run.id, "a", "t/a@1", 1, "failed", created, 0.5),
                    _row(run.id, "a", "t/a@1", 2, "succeeded", created, 1.0),
                ]
            )
            store.events.append(
                run.id,
                [
                    NewEvent(
                        "node.retrying",
                        "a",
                        {"attempt": 2, "failed_attempt": 1, "cpu_s": 0.25, "memory_bytes": 10 * 2**20},
                    ),
                    NewEvent(
                        "node.succeeded",
                        "a",
                        {"attempt": 2, "type": "t/a@1", "cpu_s": 0.5, "memory_bytes": (i + 1) * 2**20},
                    ),
                ],
            )
            store.runs.update_status(run.id, "succeeded", at=created + timedelta(seconds=2))
        sync_export(store, tmp_path / "x")
        with RunAnalytics(tmp_path / "x") as analytics:
            by_type = breakdown(analytics, ["node_type"]).groups[0]
            by_workflow = breakdown(analytics, ["workflow"]).groups[0]
    finally:
        store.close()
    assert by_type.cpu_seconds == pytest.approx(3 * 0.75)
    assert by_type.memory_max_bytes == by_type.memory_p50_bytes == 10 * 2**20
    assert by_workflow.cpu_seconds == pytest.approx(3 * 0.75)
    assert by_workflow.to_json()["memory_max_bytes"] == 10 * 2**20


def test_run_level_breakdowns_read_from_the_runs_sums_answer_as_the_executions_do(
    history: tuple[Store, str, dict[str, list[dict[str, Any]]]], tmp_path: Path
) -> None:
    # Without the memory median, a breakdown by run-level dimensions reads the sums each run row carries
    # instead of scanning the executions; the figures are the same (the median aside).
    store, _, _ = history
    sync_export(store, tmp_path / "x")
    with RunAnalytics(tmp_path / "x") as analytics:
        assert analytics.run_rollups
        for dims in (["owner"], ["workflow", "version"], []):
            scanned = breakdown(analytics, dims).groups
            rolled = breakdown(analytics, dims, memory_median=False).groups
            assert [{**g.to_json(), "memory_p50_bytes": None} for g in scanned] == [
                g.to_json() for g in rolled
            ]
    # Runs exported before the sums existed lack them: the executions are scanned as before.
    for f in (tmp_path / "x" / "runs").glob("day=*/*.parquet"):
        pq.write_table(pq.read_table(f).drop(["executions", "retries", "cache_hits"]), f)
    with RunAnalytics(tmp_path / "x") as analytics:
        assert not analytics.run_rollups
        assert breakdown(analytics, ["owner"], memory_median=False).groups == rolled_owner(store, tmp_path)


def rolled_owner(store: Store, tmp_path: Path) -> list[Any]:
    """The by-owner breakdown of a fresh export (with the runs' sums)."""
    sync_export(store, tmp_path / "fresh")
    with RunAnalytics(tmp_path / "fresh") as analytics:
        return breakdown(analytics, ["owner"], memory_median=False).groups

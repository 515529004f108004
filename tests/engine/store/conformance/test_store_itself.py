"""The store as a whole and what callers used to ask the database for directly: reachability, the URL another
process opens, batched heartbeats, the metrics snapshot and the history reads of the analytics export."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from engine.store import Store, open_store
from tests.engine.store.conformance import utcnow

DOC = {"format": "rayweave.workflow/1", "name": "seam", "nodes": {}}


def _run(store: Store, status: str = "queued") -> str:
    run = store.runs.create(document=DOC).run
    if status != "queued":
        store.runs.update_status(run.id, status)
    return run.id


def test_a_reachable_store_answers_a_ping_and_names_its_backend(store: Store) -> None:
    assert store.ping() is None
    assert store.backend and store.backend in store.connect_url
    assert isinstance(store.url, str) and store.url


def test_the_connect_url_opens_the_same_store_in_another_process(store: Store) -> None:
    saved = store.workflows.create(DOC)
    with open_store(store.connect_url) as other:
        assert other.workflows.latest(saved.workflow_id).document == DOC
        other.runs.create(workflow_id=saved.workflow_id, run_id="made-elsewhere")
    assert store.runs.get("made-elsewhere").workflow_id == saved.workflow_id


def test_heartbeat_many_beats_every_run_and_reports_the_cancelled_ones(store: Store) -> None:
    queued, running, cancelled, other = (
        _run(store),
        _run(store, "running"),
        _run(store, "cancelled"),
        _run(store, "running"),
    )
    before = utcnow()
    found = store.runs.heartbeat_many([queued, running, cancelled, "no-such-run"], "coordinator-7")
    assert found == [cancelled]
    for run_id in (queued, running, cancelled):
        run = store.runs.get(run_id)
        assert run.coordinator == "coordinator-7"
        assert run.heartbeat_at is not None and run.heartbeat_at >= before - timedelta(seconds=1)
    untouched = store.runs.get(other)
    assert untouched.heartbeat_at is None and untouched.coordinator is None
    assert store.runs.heartbeat_many([], "coordinator-7") == []


def test_the_metrics_snapshot_counts_runs_and_node_attempts(store: Store) -> None:
    t0 = utcnow() - timedelta(minutes=5)
    first, second = _run(store, "succeeded"), _run(store, "failed")
    _run(store, "running")
    store.node_runs.record(
        first,
        "a",
        attempt=1,
        status="succeeded",
        node_type="t/a@1",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=2),
    )
    store.node_runs.record(first, "b", attempt=1, status="cached", node_type="t/a@1", cache_hit=True)
    store.node_runs.record(
        second,
        "a",
        attempt=1,
        status="succeeded",
        node_type="t/a@1",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=3),
    )
    store.node_runs.start(second, "c", node_type="t/c@1", at=t0)

    snapshot = store.reports.metrics_snapshot()

    assert snapshot.runs_by_status == {"succeeded": 1, "failed": 1, "running": 1}
    figures = {(f.node_type, f.status): f for f in snapshot.node_runs}
    assert set(figures) == {("t/a@1", "succeeded"), ("t/a@1", "cached"), ("t/c@1", "running")}
    done = figures[("t/a@1", "succeeded")]
    assert (done.count, done.finished, done.cache_hits) == (2, 2, 0)
    assert done.finished_seconds == pytest.approx(5.0, abs=0.01)
    hit = figures[("t/a@1", "cached")]
    assert (hit.count, hit.finished, hit.cache_hits, hit.finished_seconds) == (1, 0, 1, 0.0)
    started = figures[("t/c@1", "running")]
    assert (started.count, started.finished, started.finished_seconds) == (1, 0, 0.0)


def test_an_empty_store_has_an_empty_snapshot(store: Store) -> None:
    snapshot = store.reports.metrics_snapshot()
    assert snapshot.runs_by_status == {} and snapshot.node_runs == []


def test_history_reads_every_row_in_batches_and_from_a_day_on(store: Store) -> None:
    old, new = utcnow() - timedelta(days=3), utcnow()
    saved = store.workflows.create(DOC)
    early = store.runs.create(workflow_id=saved.workflow_id, at=old).run.id
    late = store.runs.create(document=DOC, at=new).run.id
    store.runs.update_status(late, "succeeded", at=new + timedelta(seconds=4))
    store.node_runs.record(early, "a", attempt=1, status="failed", node_type="t/a@1", started_at=old)
    store.node_runs.record(early, "a", attempt=2, status="succeeded", node_type="t/a@1", started_at=old)
    store.node_runs.record(late, "b", attempt=1, status="succeeded", started_at=new, finished_at=new)

    batches = list(store.reports.node_run_history(batch_rows=2))
    assert [len(batch) for batch in batches] == [2, 1]
    rows = {(row["run_id"], row["node_id"], row["attempt"]): row for batch in batches for row in batch}
    assert set(rows) == {(early, "a", 1), (early, "a", 2), (late, "b", 1)}
    first = rows[(early, "a", 1)]
    assert (first["workflow_id"], first["workflow_version"], first["node_type"]) == (
        saved.workflow_id,
        1,
        "t/a@1",
    )
    assert (first["status"], first["cache_hit"], first["finished_at"]) == ("failed", False, None)
    assert first["started_at"] == old and first["created_at"] == old
    recent = [
        row for batch in store.reports.node_run_history(since=new - timedelta(hours=1)) for row in batch
    ]
    assert [(row["run_id"], row["node_id"]) for row in recent] == [(late, "b")]

    runs = {row["run_id"]: row for batch in store.reports.run_history() for row in batch}
    assert set(runs) == {early, late}
    assert (runs[late]["status"], runs[late]["owner"], runs[late]["workflow_id"]) == (
        "succeeded",
        "local",
        None,
    )
    assert runs[late]["finished_at"] == new + timedelta(seconds=4)
    assert runs[early]["created_at"] == old and runs[early]["started_at"] is None
    assert [row["run_id"] for batch in store.reports.run_history(since=new) for row in batch] == [late]


# Not a store test: the guard that keeps this suite a contract any backend can be held to.
BACKEND_LIBRARIES = {"sqlalchemy", "sqlmodel", "alembic", "psycopg", "sqlite3"}
BACKEND_MODULES = {"engine.store.models", "engine.store.columns", "engine.store.base", "engine.store.store"}


def test_suite_is_backend_agnostic() -> None:
    problems = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in BACKEND_LIBRARIES or name in BACKEND_MODULES:
                    problems.append(f"{path.name} imports {name}")
            if isinstance(node, ast.Attribute) and node.attr == "engine":
                problems.append(f"{path.name}:{node.lineno} uses .engine")
    assert not problems, "the conformance suite must talk to the Store protocol only:\n" + "\n".join(problems)

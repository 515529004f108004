"""A small but complete installation (every table populated) for copy and export tests."""

from __future__ import annotations

from datetime import timedelta

from engine.store import NewEvent, Store
from tests.engine.store.conformance import utcnow


def populate(store: Store, runs: int = 5) -> None:
    """Fill every table of `store` with related rows."""
    v1 = store.workflows.create(
        {"format": "rayweave.workflow/1", "name": "etl", "nodes": {"a": {"type": "t/a@1"}}},
        author="ada",
        message="first",
    )
    store.workflows.save(
        v1.workflow_id,
        {
            "format": "rayweave.workflow/1",
            "name": "etl",
            "nodes": {"a": {"type": "t/a@1", "params": {"k": 1}}},
        },
        expected_version=1,
        message="k=1",
    )
    gone = store.workflows.create({"format": "rayweave.workflow/1", "name": "old", "nodes": {}})
    store.workflows.delete(gone.workflow_id)
    for i in range(runs):
        run = store.runs.create(workflow_id=v1.workflow_id, inputs={"i": i}, idempotency_key=f"k{i}").run
        store.runs.update_status(run.id, "running")
        store.node_runs.start(run.id, "a", node_type="t/a@1")
        store.node_runs.finish(run.id, "a", 1, status="failed", error={"message": "flaky"})
        store.node_runs.start(run.id, "a", node_type="t/a@1")
        store.node_runs.finish(run.id, "a", 2, status="succeeded", result_location=f"file:///r/{i}")
        store.events.append(run.id, [NewEvent("run.started"), NewEvent("node.started", "a", {"attempt": 1})])
        store.runs.update_status(run.id, "succeeded", outputs={"x": i})
    store.runs.create(document={"format": "rayweave.workflow/1", "name": "inline", "nodes": {}})
    store.plugins.add("geo", "1.0.0", {"nodes": ["geo/buffer@1"]})
    ada = store.users.create("ada", is_admin=True)
    store.users.grant(ada.id, "read", "workflow", v1.workflow_id)
    store.api_keys.create(ada.id, scopes=["runs:read"], expires_at=utcnow() + timedelta(days=1))
    store.audit.append("ada", "workflow.save", resource_type="workflow", resource_id=v1.workflow_id)

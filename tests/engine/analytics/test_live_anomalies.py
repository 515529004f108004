"""Anomalies as runs finish: a real durable run (in-process executor) whose node is much slower than in the
runs before it gets an `anomaly.detected` event after its final event; the API lists it and /metrics counts it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.analytics.anomalies import WARMUP
from engine.durable import DurableRunner
from engine.store import Store, open_store
from nodes import Catalog, node
from nodes.states import EventType
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.server import serving


@node(plugin="pace", version="1.0.0")
def nap(x: int, seconds: float) -> int:
    """Return `x` after sleeping `seconds`."""
    time.sleep(seconds)
    return x


DOC = {
    "format": "rayweave.workflow/1",
    "name": "naps",
    "inputs": {"x": {"type": "Int"}, "s": {"type": "Float"}},
    "nodes": {"n": {"type": "pace/nap@1", "in": {"x": "$inputs.x", "seconds": "$inputs.s"}}},
    "outputs": {"y": "n.out"},
}


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[tuple[Settings, Store, DurableRunner]]:
    settings = Settings(home=tmp_path / "home")
    store = open_store(settings.resolved_database_url)
    catalog = Catalog.builtin()
    catalog.add(nap)
    runner = DurableRunner(settings, store=store, executor="local", catalog=catalog, cache=False)
    try:
        yield settings, store, runner
    finally:
        store.close()


def test_a_slow_run_records_an_anomaly_event(installation: tuple[Settings, Store, DurableRunner]) -> None:
    settings, store, runner = installation
    wf = str(store.workflows.create(DOC, owner="admin").workflow_id)
    for x in range(WARMUP):
        run_id = runner.run(None, {"x": x, "s": 0.03}, workflow_id=wf).run_id
        assert not [e for e in store.events.read(run_id) if e.type == EventType.ANOMALY_DETECTED]
    slow = runner.run(None, {"x": 99, "s": 0.5}, workflow_id=wf).run_id

    events = store.events.read(slow)
    assert events[-2].type.is_run_final and events[-1].type == EventType.ANOMALY_DETECTED
    anomaly = events[-1].payload
    assert (anomaly["kind"], anomaly["node_id"], anomaly["run_id"]) == ("duration", "n", slow)
    assert anomaly["value"] >= 0.5 > anomaly["threshold"] >= 2 * anomaly["expected"]

    app = create_app(settings, store=store, options=ServeOptions(executor="local", print_admin_key=False))
    import httpx

    with serving(app) as url:
        key = (settings.home / "admin.key").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            items = c.get("/v1/analytics/anomalies", params={"workflow_id": wf}).json()["items"]
            assert [(a["kind"], a["run_id"]) for a in items] == [("duration", slow)]
            metrics = c.get("/metrics").text
            assert 'rayweave_anomalies_total{kind="duration"} 1.0' in metrics
            # v1's run event stream is frozen: it ends with the final event, even resumed past it.
            final = events[-2].seq
            for after in (0, final):
                stream = c.get(f"/v1/runs/{slow}/events", params={"after": after}).text
                assert EventType.ANOMALY_DETECTED not in stream
                assert (f"id: {final}\n" in stream) == (after == 0)

"""`/metrics` exposes node-run counts, durations and cache hits per node type, computed from the store."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.serve.api.conftest import Api, sleep_chain_doc


def _wait_status(c: httpx.Client, run_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = c.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def _sample(text: str, name: str, labels: str) -> float:
    """The value of the sample `name{labels}` in a Prometheus text exposition (fails the test if missing)."""
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    assert match, f"no sample {name}{{{labels}}} in:\n{text}"
    return float(match.group(1))


def test_metrics_show_node_counts_and_durations_by_node_type(api: Api) -> None:
    doc = sleep_chain_doc(2, 0.1)
    with api.client() as c:
        before = c.get("/metrics").text
        run_id = c.post("/v1/runs", json={"workflow": doc, "inputs": {"x": 7}}).json()["id"]
        assert _wait_status(c, run_id)["status"] == "succeeded"
        after = c.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text
    labels = 'node_type="builtin/sleep@1",status="succeeded"'
    had = 0.0 if "builtin/sleep@1" not in before else _sample(before, "rayweave_node_runs_total", labels)
    assert _sample(text, "rayweave_node_runs_total", labels) == had + 2
    count = _sample(text, "rayweave_node_run_duration_seconds_count", 'node_type="builtin/sleep@1"')
    total = _sample(text, "rayweave_node_run_duration_seconds_sum", 'node_type="builtin/sleep@1"')
    assert count >= 2
    assert total >= 0.2 * 0.9  # two sleeps of 0.1 s each, allowing for timestamp rounding
    assert total < 60
    assert 'rayweave_node_cache_hits_total{node_type="builtin/sleep@1"}' in text
    assert 'rayweave_runs{status="succeeded"}' in text


def test_metrics_aggregate_attempts_durations_and_cache_hits(api: Api) -> None:
    doc = {**sleep_chain_doc(1, 0.0), "name": "recorded"}
    run_id = api.store.runs.create(document=doc, inputs={"x": 1}, status="succeeded").run.id
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    api.store.node_runs.record_many(
        [
            # a node that failed once and then succeeded after 2.5 s, and one answered from the cache
            {
                "run_id": run_id,
                "node_id": "a",
                "attempt": 1,
                "status": "failed",
                "node_type": "test/flaky@1",
                "started_at": t0,
                "finished_at": t0 + timedelta(seconds=1.5),
            },
            {
                "run_id": run_id,
                "node_id": "a",
                "attempt": 2,
                "status": "succeeded",
                "node_type": "test/flaky@1",
                "started_at": t0,
                "finished_at": t0 + timedelta(seconds=2.5),
            },
            {
                "run_id": run_id,
                "node_id": "b",
                "attempt": 1,
                "status": "cached",
                "node_type": "test/flaky@1",
                "cache_hit": True,
            },
        ]
    )
    with api.client() as c:
        text = c.get("/metrics").text
    flaky = 'node_type="test/flaky@1"'
    assert _sample(text, "rayweave_node_runs_total", flaky + ',status="failed"') == 1
    assert _sample(text, "rayweave_node_runs_total", flaky + ',status="succeeded"') == 1
    assert _sample(text, "rayweave_node_runs_total", flaky + ',status="cached"') == 1
    assert _sample(text, "rayweave_node_run_duration_seconds_count", flaky) == 2  # untimed cache hit left out
    assert abs(_sample(text, "rayweave_node_run_duration_seconds_sum", flaky) - 4.0) < 0.01
    assert _sample(text, "rayweave_node_cache_hits_total", flaky) == 1

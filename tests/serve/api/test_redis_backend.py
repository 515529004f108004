"""The API, the CLI and a durable run on Ray with the store on Redis (issue 21: the same API and CLI run on each
backend; the store conformance suite covers the store itself in tests/engine/store). The installation has a key
prefix of its own on the test server (tests/engine/store/redis_support.py), deleted afterwards; its URL relaxes
the durability check, since the test server may run without an append-only file (ADR 024)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.ray_runtime import RayConnection
from engine.store import open_store
from serve.cli import build_app
from serve.config import ServeOptions
from tests.engine.store.redis_support import REDIS_SERVER, RELAXED, delete_keys, redis_store
from tests.serve.api.conftest import Api, add_doc, start_api, wait_for_status


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    """A served API running nodes on Ray, its store on Redis under a key prefix of its own; and its URL."""
    with redis_store() as reachable:  # skips (or fails in CI) without a server
        url = f"{REDIS_SERVER}?prefix={reachable.prefix}-api&{RELAXED}"
        options = ServeOptions(executor="ray", rate_per_s=10_000, burst=10_000, print_admin_key=False)
        try:
            for api in start_api(tmp_path_factory.mktemp("redis-api"), options, database_url=url):
                yield api, url
        finally:
            delete_keys(reachable.client, f"{reachable.prefix}-api")


def test_a_durable_run_on_ray_is_recorded_once_with_its_events_in_order(
    ray_session: RayConnection, served: tuple[Api, str]
) -> None:
    api, _ = served
    assert api.store.backend == "redis"
    body = {"workflow": add_doc(), "inputs": {"a": 2, "b": 3}}
    with api.client() as c:
        first = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "redis-1"})
        again = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "redis-1"})
        assert first.status_code == 202, first.text
        assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
        run_id = first.json()["id"]
        wait_for_status(c, run_id, "succeeded", timeout=60)
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"total": 5}
        assert [r["id"] for r in c.get("/v1/runs").json()["items"]] == [run_id]
        ready = c.get("/v1/ready").json()
        assert ready["status"] == "ready" and ready["database"] is True, ready
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and "rayweave_runs" in metrics.text
    seqs = [e.seq for e in api.store.events.read(run_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 4
    assert [e.type for e in api.store.events.read(run_id)][-1] == "run.succeeded"
    assert [(r.node_id, r.status) for r in api.store.node_runs.list(run_id)] == [("sum", "succeeded")]
    assert api.store.audit.verify().ok


def test_the_cli_exports_the_installation_and_copies_it_to_sqlite_and_back(
    served: tuple[Api, str], tmp_path: Path
) -> None:
    api, url = served
    with api.client() as c:
        assert c.post("/v1/workflows", json={"workflow": add_doc("exported")}).status_code == 201
    cli = CliRunner()
    result = cli.invoke(build_app(), ["export", "--format", "ndjson", "--url", url, "--out", "-"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert "exported" in {r["name"] for r in records if r["kind"] == "workflow"}
    assert records[-1]["kind"] == "end"
    result = cli.invoke(build_app(), ["db", "upgrade", "--url", url])
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output
    result = cli.invoke(build_app(), ["export", "--all", "--url", url, "--out", str(tmp_path / "a.json")])
    assert result.exit_code == 2 and "--format ndjson" in result.output, (
        result.output
    )  # the JSON archive is SQL's

    sqlite = f"sqlite:///{tmp_path / 'copy.db'}"
    back = f"{REDIS_SERVER}?prefix=rwtest-{uuid.uuid4().hex[:12]}-back&{RELAXED}"
    try:
        for source, target in ((url, sqlite), (sqlite, back)):
            result = cli.invoke(build_app(), ["db", "migrate", "--url", source, "--to", target, "--json"])
            assert result.exit_code == 0, result.output
            report = json.loads(result.output)
            assert report["tables"]["runs"]["copied"] >= 1 and report["tables"]["workflows"]["copied"] >= 1
        with open_store(back) as copy:
            assert {w.name for w in copy.workflows.list()} >= {"exported"}
            assert [r.id for r in copy.runs.list().items] == [r.id for r in api.store.runs.list().items]
            assert copy.audit.verify().ok
    finally:
        with redis_store() as cleaner:
            delete_keys(cleaner.client, back.split("prefix=", 1)[1].split("&", 1)[0])

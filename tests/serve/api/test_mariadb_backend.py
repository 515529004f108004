"""The API, the CLI and a durable run on Ray with the store on MariaDB (issue 21: the same API and CLI run on
each backend; the store conformance suite covers the store itself in tests/engine/store)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cluster.ray_runtime import RayConnection
from serve.cli import build_app
from serve.config import ServeOptions
from tests.engine.store.sql_support import mariadb_database
from tests.serve.api.conftest import Api, add_doc, start_api, wait_for_status

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    """A served API running nodes on Ray, its store on a MariaDB database of its own; and that database's URL."""
    options = ServeOptions(executor="ray", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    with mariadb_database("rayweave_test_api") as url:
        for api in start_api(tmp_path_factory.mktemp("mariadb-api"), options, database_url=url):
            yield api, url


def test_a_durable_run_on_ray_is_recorded_once_with_its_events_in_order(
    ray_session: RayConnection, served: tuple[Api, str]
) -> None:
    api, _ = served
    body = {"workflow": add_doc(), "inputs": {"a": 2, "b": 3}}
    with api.client() as c:
        first = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "maria-1"})
        again = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "maria-1"})
        assert first.status_code == 202, first.text
        assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
        run_id = first.json()["id"]
        wait_for_status(c, run_id, "succeeded", timeout=60)
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"total": 5}
        assert [r["id"] for r in c.get("/v1/runs").json()["items"]] == [run_id]
    seqs = [e.seq for e in api.store.events.read(run_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 4
    assert [e.type for e in api.store.events.read(run_id)][-1] == "run.succeeded"
    assert [(r.node_id, r.status) for r in api.store.node_runs.list(run_id)] == [("sum", "succeeded")]
    assert api.store.audit.verify().ok


def test_the_cli_exports_the_installation_from_mariadb(served: tuple[Api, str]) -> None:
    api, url = served
    with api.client() as c:
        assert c.post("/v1/workflows", json={"workflow": add_doc("exported")}).status_code == 201
    result = CliRunner().invoke(build_app(), ["export", "--format", "ndjson", "--url", url, "--out", "-"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert "exported" in {r["name"] for r in records if r["kind"] == "workflow"}
    assert records[-1]["kind"] == "end"
    result = CliRunner().invoke(build_app(), ["db", "upgrade", "--url", url])
    assert result.exit_code == 0 and "nothing to do" in result.output

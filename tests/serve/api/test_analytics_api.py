"""/v1/analytics and POST /v1/workflows/{id}/optimize on a served API, over history recorded in its store, and
`rayweave stats|report|optimize --server URL` through it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.store import NewEvent
from serve.cli import build_app
from tests.engine.analytics.test_breakdown import T0, record_runs
from tests.serve.api.conftest import Api

DOC = {
    "format": "rayweave.workflow/1",
    "name": "analytics-api",
    "inputs": {"x": {"type": "Int"}},
    "nodes": {
        "a": {"type": "builtin/add@1", "in": {"a": "$inputs.x", "b": {"value": 1}}},
        "b": {"type": "builtin/add@1", "in": {"a": "a.out", "b": {"value": 2}}},
    },
    "outputs": {"y": "b.out"},
}


def _workflow(api: Api) -> str:
    with api.client() as c:
        created = c.post("/v1/workflows", json={"workflow": DOC})
        assert created.status_code == 201, created.text
        wf: str = created.json()["workflow_id"]
    record_runs(api.store, wf, 12, owner="ada", start=T0, seed=9)
    record_runs(api.store, wf, 6, owner="someone-else", start=T0 + timedelta(days=1), seed=10)
    # Node a's attempts were measured (engine.execution.usage): 0.5 CPU-seconds and 8 MiB each.
    for run in api.store.runs.list(workflow_id=wf, limit=100).items:
        measured = {"attempt": 1, "type": "t/a@1", "cpu_s": 0.5, "memory_bytes": 8 * 2**20}
        api.store.events.append(run.id, [NewEvent("node.succeeded", "a", measured)])
    return wf


def test_summary_report_and_insights(api: Api) -> None:
    wf = _workflow(api)
    with api.client() as c:
        summary = c.get("/v1/analytics/summary", params={"by": "workflow,owner", "workflow_id": wf})
        assert summary.status_code == 200, summary.text
        groups = summary.json()["groups"]
        assert sum(g["runs"] for g in groups) == 18 and {g["key"]["workflow"] for g in groups} == {wf}
        assert {g["key"]["owner"]: g["cpu_seconds"] for g in groups} == {"ada": 6.0, "someone-else": 3.0}
        by_node = c.get("/v1/analytics/summary", params={"by": "node_type", "workflow_id": wf}).json()
        assert by_node["unit"] == "execution"
        measured = {
            g["key"]["node_type"]: (g["cpu_seconds"], g["memory_max_bytes"]) for g in by_node["groups"]
        }
        assert measured == {"t/a@1": (9.0, 8 * 2**20), "t/b@1": (None, None)}
        data = c.get(f"/v1/analytics/workflows/{wf}").json()
        assert data["summary"]["runs"] == 18 and len(data["trend"]) == 18
        page = c.get(f"/v1/analytics/workflows/{wf}/report")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text.count("<figure id=") == 4
        insights = c.get(f"/v1/analytics/workflows/{wf}/insights").json()
        assert insights["version"] == 1 and insights["insights"][0]["kind"] == "critical_path"
        listed = c.get("/v1/analytics/anomalies", params={"workflow_id": wf})
        assert listed.status_code == 200, listed.text
        # Only b's retried executions stand out: a failed 0.5 s attempt first makes them ~3x as long.
        assert {(a["kind"], a["node_id"]) for a in listed.json()["items"]} <= {("duration", "b")}
        nothing = c.post(f"/v1/workflows/{wf}/optimize", json={"apply": True})
        assert nothing.status_code == 200 and nothing.json()["new_version"] is None
        unknown = c.post(f"/v1/workflows/{wf}/optimize", json={"insights": ["critical_path"]})
        assert unknown.status_code == 400 and "no applicable insight" in unknown.json()["detail"]


def test_bad_input_is_answered_clearly(api: Api) -> None:
    def problem(response: Any, status: int, text: str) -> None:
        assert response.status_code == status, response.text
        assert text in response.json()["detail"]

    with api.client() as c:
        problem(c.get("/v1/analytics/summary", params={"since": "yesterday"}), 400, "since 'yesterday'")
        problem(
            c.get("/v1/analytics/summary", params={"since": "2027-01-02", "until": "2026-01-01"}),
            400,
            "before",
        )
        problem(c.get("/v1/analytics/summary", params={"since": "0001-01-01"}), 400, "outside the years")
        problem(c.get("/v1/analytics/summary", params={"by": "colour"}), 400, "cannot group by")
        problem(c.get("/v1/analytics/workflows/nope"), 404, "does not exist")
        problem(c.post("/v1/workflows/nope/optimize", json={}), 404, "does not exist")
        empty = c.get("/v1/analytics/summary", params={"workflow_id": "nope"}).json()
        assert empty["groups"] == [] and "no finished runs" in empty["notes"][-1]
    with api.client(api.key(["runs:read"], username="carol")) as c:
        # carol has no runs and sees no workflow: no one else's show, even when she names an owner.
        assert c.get("/v1/analytics/summary", params={"owner": "ada"}).json()["groups"] == []
        mine = c.get("/v1/analytics/summary", params={"by": "owner"}).json()
        assert mine["groups"] == []


def test_analytics_follow_tenants_and_shares(api: Api) -> None:
    """A tenant's admin sees its tenant's runs, a viewer share shows that workflow's runs, another tenant none:
    the runs `GET /v1/runs` lists for each."""
    store = api.store
    one, two = store.tenants.create("analytics-one"), store.tenants.create("analytics-two")
    member = store.users.create("an-member", tenant_id=one.id, role="member")
    users = {
        "tenant_admin": store.users.create("an-admin", tenant_id=one.id, role="admin"),
        "viewer": store.users.create("an-viewer"),  # the default tenant; a viewer share of `shared`
        "other_tenant": store.users.create("an-other", tenant_id=two.id, role="owner"),
    }
    keys = {
        name: store.api_keys.create(u.id, scopes=["runs:read", "workflows:read"])[1]
        for name, u in users.items()
    }
    shared = store.workflows.create(DOC, name="an-shared", owner=member.id).workflow_id
    private = store.workflows.create(DOC, name="an-private", owner=member.id).workflow_id
    record_runs(store, shared, 12, owner=member.id, start=T0 + timedelta(days=3), seed=4)
    record_runs(store, private, 5, owner=member.id, start=T0 + timedelta(days=3), seed=5)
    store.shares.set(shared, "user", users["viewer"].id, "viewer")

    def seen(name: str) -> dict[str, int]:
        with api.client(keys[name]) as c:
            body = c.get("/v1/analytics/summary", params={"by": "workflow"})
            assert body.status_code == 200, body.text
            runs = c.get("/v1/runs", params={"limit": 500}).json()["items"]
            by_workflow = {g["key"]["workflow"]: g["runs"] for g in body.json()["groups"]}
            assert sum(by_workflow.values()) == len(runs)  # the same runs as the runs list
            return by_workflow

    assert seen("tenant_admin") == {shared: 12, private: 5}
    assert seen("viewer") == {shared: 12}
    assert seen("other_tenant") == {}
    with api.client(keys["viewer"]) as c:
        assert c.get(f"/v1/analytics/workflows/{shared}").json()["summary"]["runs"] == 12
        assert c.get(f"/v1/analytics/workflows/{private}").status_code == 404
    with api.client(keys["tenant_admin"]) as c:
        assert c.get(f"/v1/analytics/workflows/{private}").json()["summary"]["runs"] == 5
        anomalies = c.get("/v1/analytics/anomalies", params={"source": "history"}).json()["items"]
        assert {a["workflow_id"] for a in anomalies} <= {shared, private}
    with api.client(keys["other_tenant"]) as c:
        assert c.get(f"/v1/analytics/workflows/{shared}").status_code == 404
        assert c.get("/v1/analytics/anomalies", params={"source": "history"}).json()["items"] == []


@pytest.fixture
def cli(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose commands talk to `api` (RAYWEAVE_SERVER) with its admin key (RAYWEAVE_API_KEY)."""
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAYWEAVE_SERVER", api.url)
    monkeypatch.setenv("RAYWEAVE_API_KEY", api.admin_key)
    return CliRunner()


def test_stats_report_and_optimize_through_the_server(cli: CliRunner, api: Api, tmp_path: Path) -> None:
    wf = str(api.store.workflows.create(DOC, name="remote-analytics", owner="admin").workflow_id)
    record_runs(api.store, wf, 12, owner="ada", start=T0 + timedelta(days=9), seed=21)
    app = build_app()

    stats = cli.invoke(app, ["stats", "--workflow", wf, "--by", "workflow", "--json"])
    assert stats.exit_code == 0, stats.output
    assert [(g["key"]["workflow"], g["runs"]) for g in json.loads(stats.output)["groups"]] == [(wf, 12)]
    table = cli.invoke(app, ["stats", "--workflow", wf, "--by", "node"])
    assert table.exit_code == 0 and "by node (executions)" in table.output

    out = tmp_path / "report.html"
    report = cli.invoke(app, ["report", wf, "--out", str(out)])
    assert report.exit_code == 0, report.output
    assert out.read_text().count("<figure id=") == 4
    png = cli.invoke(app, ["report", wf, "--out", str(tmp_path / "r.png")])
    assert png.exit_code == 2 and "use a .html file name" in png.output

    insights = cli.invoke(app, ["optimize", wf])
    assert insights.exit_code == 0, insights.output
    assert (
        f"workflow {wf} version 1: 12 finished runs" in insights.output
        and "[critical_path]" in insights.output
    )
    applied = cli.invoke(app, ["optimize", wf, "--apply", "--json"])
    assert applied.exit_code == 0 and json.loads(applied.output)["new_version"] is None

    stranger = api.key(["runs:read", "workflows:read"], username="remote-stranger")
    hidden = cli.invoke(app, ["stats", "--workflow", wf, "--json", "--api-key", stranger])
    assert hidden.exit_code == 0 and json.loads(hidden.output)["groups"] == []
    refused = cli.invoke(app, ["report", wf, "--out", str(out), "--api-key", stranger])
    assert refused.exit_code == 1 and "HTTP 404" in refused.output and "does not exist" in refused.output


def test_breakdowns_by_tenant(api: Api, tmp_path: Path) -> None:
    """Grouped by tenant: every tenant for an admin key, the caller's own tenant only for others (runs shared
    from another tenant stay out, so no other tenant's id shows); another tenant by name is refused. (Its runs
    finish after the module's other histories and before now: the export is incremental.)"""
    store = api.store
    north, south = store.tenants.create("by-tenant-north"), store.tenants.create("by-tenant-south")
    ann = store.users.create("bt-ann", tenant_id=north.id, role="owner")
    bob = store.users.create("bt-bob", tenant_id=south.id, role="owner")
    north_wf = store.workflows.create(DOC, name="bt-north", owner=ann.id).workflow_id
    south_wf = store.workflows.create(DOC, name="bt-south", owner=bob.id).workflow_id
    record_runs(store, north_wf, 7, owner=ann.id, start=T0 + timedelta(days=12), seed=31)
    record_runs(store, south_wf, 4, owner=bob.id, start=T0 + timedelta(days=12), seed=32)
    store.shares.set(south_wf, "user", ann.id, "viewer")  # ann may see bob's workflow and its runs
    mine = {north.id, south.id}

    with api.client() as admin:
        body = admin.get("/v1/analytics/summary", params={"by": "tenant"}).json()
        assert {g["key"]["tenant"]: g["runs"] for g in body["groups"] if g["key"]["tenant"] in mine} == {
            north.id: 7,
            south.id: 4,
        }
        assert any("tenant of the run's owner" in n for n in body["notes"])
        nodes = admin.get("/v1/analytics/summary", params={"by": "tenant,node", "tenant": south.id}).json()
        assert {(g["key"]["tenant"], g["key"]["node"]): g["runs"] for g in nodes["groups"]} == {
            (south.id, "a"): 4,
            (south.id, "b"): 4,
        }
    ann_key = store.api_keys.create(ann.id, scopes=["runs:read", "workflows:read"])[1]
    with api.client(ann_key) as c:
        everything = c.get("/v1/analytics/summary", params={"by": "workflow"}).json()["groups"]
        assert {g["key"]["workflow"]: g["runs"] for g in everything} == {north_wf: 7, south_wf: 4}
        by_tenant = c.get("/v1/analytics/summary", params={"by": "tenant"}).json()["groups"]
        assert [(g["key"]["tenant"], g["runs"]) for g in by_tenant] == [(north.id, 7)]
        refused = c.get("/v1/analytics/summary", params={"tenant": south.id})
        assert refused.status_code == 403 and "only admin keys see the runs of other tenants" in refused.text

    cli = CliRunner()
    env = {"RAYWEAVE_HOME": str(tmp_path)}
    remote = cli.invoke(
        build_app(),
        ["stats", "--by", "tenant", "--json", "--server", api.url, "--api-key", ann_key],
        env=env,
    )
    assert remote.exit_code == 0, remote.output
    assert [g["key"]["tenant"] for g in json.loads(remote.output)["groups"]] == [north.id]
    database = f"sqlite:///{api.home / 'rayweave.db'}"
    local = cli.invoke(
        build_app(),
        [
            "stats",
            "--url",
            database,
            "--out",
            str(tmp_path / "export"),
            "--by",
            "tenant",
            "--tenant",
            north.id,
            "--json",
        ],
        env=env,
    )
    assert local.exit_code == 0, local.output
    breakdown = json.loads(local.output)["breakdown"]
    assert [(g["key"]["tenant"], g["runs"]) for g in breakdown["groups"]] == [(north.id, 7)]

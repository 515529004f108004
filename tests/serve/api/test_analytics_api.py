"""/v1/analytics and POST /v1/workflows/{id}/optimize on a served API, over history recorded in its store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
    return wf


def test_summary_report_and_insights(api: Api) -> None:
    wf = _workflow(api)
    with api.client() as c:
        summary = c.get("/v1/analytics/summary", params={"by": "workflow,owner", "workflow_id": wf})
        assert summary.status_code == 200, summary.text
        groups = summary.json()["groups"]
        assert sum(g["runs"] for g in groups) == 18 and {g["key"]["workflow"] for g in groups} == {wf}
        assert all(g["cpu_seconds"] is None for g in groups)
        by_node = c.get("/v1/analytics/summary", params={"by": "node_type", "workflow_id": wf}).json()
        assert by_node["unit"] == "execution"
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
        problem(c.get("/v1/analytics/summary", params={"owner": "admin"}), 403, "only admin keys")
        mine = c.get("/v1/analytics/summary", params={"by": "owner"}).json()
        assert mine["groups"] == []  # carol has no runs: no one else's show

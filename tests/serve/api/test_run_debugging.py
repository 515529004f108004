"""Visual debugging over HTTP: run to a node, re-run a node with its recorded inputs, page through a table
output, and the Ray task a node ran as (issue 23)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cluster.settings import Settings
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.conftest import ALL_USER_SCOPES, Api
from tests.serve.api.server import serving

ROWS = [{"n": i, "s": f"r{i}"} for i in range(7)]


def debug_doc() -> dict[str, Any]:
    """sum = a + 1, neg = -sum, and a table of seven rows."""
    return {
        "format": "rayweave.workflow/1",
        "name": "debug-me",
        "inputs": {"a": {"type": "Int"}},
        "nodes": {
            "sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": {"value": 1}}},
            "neg": {"type": "builtin/negate@1", "in": {"x": "sum.out"}},
            "table": {"type": "builtin/records_to_table@1", "in": {"value": {"value": ROWS}}},
        },
        "outputs": {"neg": "neg.out", "t": "table.out"},
    }


def _finished(c: httpx.Client, run_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = c.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def debugged(api: Api) -> Iterator[dict[str, Any]]:
    """A stored workflow, a client of its owner and one finished run of it."""
    with api.client(api.key(ALL_USER_SCOPES, username="debugger")) as c:
        wf = c.post("/v1/workflows", json={"workflow": debug_doc()}).json()["workflow_id"]
        run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 2}}).json()["id"]
        assert _finished(c, run)["status"] == "succeeded"
        yield {"client": c, "workflow": wf, "run": run}


def test_run_to_a_node_runs_it_and_its_ancestors_only(debugged: dict[str, Any]) -> None:
    c, wf = debugged["client"], debugged["workflow"]
    started = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 2}, "targets": ["sum"]})
    assert started.status_code == 202, started.text
    run = _finished(c, started.json()["id"])
    assert run["status"] == "succeeded" and run["targets"] == ["sum"] and run["rerun_of"] is None
    assert run["workflow_id"] == wf
    states = {n["node"]: (n["status"], n["attempts"]) for n in run["nodes"]}
    assert states["neg"] == ("pending", 0) and states["table"] == ("pending", 0)
    assert c.get(f"/v1/runs/{run['id']}/outputs").json()["outputs"] == {"sum__out": 3}

    unknown = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 2}, "targets": ["nope"]})
    assert unknown.status_code == 422
    diagnostic = unknown.json()["diagnostics"][0]
    assert diagnostic["code"] == "RW107" and "'nope'" in diagnostic["message"]
    assert c.post("/v1/runs", json={"workflow_id": wf, "targets": []}).status_code == 422


def test_a_node_reruns_with_the_inputs_recorded_in_its_run(api: Api, debugged: dict[str, Any]) -> None:
    c, first = debugged["client"], debugged["run"]
    started = c.post(f"/v1/runs/{first}/nodes/neg/rerun")
    assert started.status_code == 202, started.text
    run = _finished(c, started.json()["id"])
    assert run["status"] == "succeeded" and run["rerun_of"] == {"run": first, "node": "neg"}
    # Only neg ran: sum's output came from the first run.
    assert {n["node"]: n["attempts"] for n in run["nodes"]} == {"neg": 1, "sum": 0, "table": 0}
    assert c.get(f"/v1/runs/{run['id']}/outputs").json()["outputs"] == {"neg__out": -3}

    missing = c.post(f"/v1/runs/{first}/nodes/nope/rerun")
    assert missing.status_code == 404 and "no node 'nope'" in missing.json()["detail"]
    with api.client(api.key(["runs:read"], username="debugger")) as viewer:
        assert viewer.post(f"/v1/runs/{first}/nodes/neg/rerun").status_code == 403


def test_a_table_output_is_paged_with_its_columns_and_types(debugged: dict[str, Any]) -> None:
    c, run = debugged["client"], debugged["run"]
    page = c.get(f"/v1/runs/{run}/nodes/table/outputs/out", params={"offset": 2, "limit": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["columns"] == [{"name": "n", "type": "int64"}, {"name": "s", "type": "string"}]
    assert body["rows"] == [[2, "r2"], [3, "r3"]]
    assert (body["total_rows"], body["next_offset"]) == (7, 4)
    last = c.get(f"/v1/runs/{run}/nodes/table/outputs/out", params={"offset": 6, "limit": 50}).json()
    assert last["rows"] == [[6, "r6"]] and last["next_offset"] is None

    not_table = c.get(f"/v1/runs/{run}/nodes/sum/outputs/out")
    assert not_table.status_code == 400 and "holds a int, not a table" in not_table.json()["detail"]
    assert c.get(f"/v1/runs/{run}/nodes/table/outputs/nope").status_code == 404
    assert c.get(f"/v1/runs/{run}/nodes/table/outputs/out", params={"limit": 5000}).status_code == 422

    detail = c.get(f"/v1/runs/{run}/nodes/table").json()
    assert detail["status"] == "succeeded" and detail["executor"] == "local" and detail["ray_task"] is None
    assert detail["outputs"] == [
        {
            "port": "out",
            "type": "Table",
            "table": True,
            "preview": f"/v1/runs/{run}/nodes/table/outputs/out",
            "value": None,
        }
    ]


def test_the_inspector_reads_each_value_a_node_gave_and_received(api: Api, debugged: dict[str, Any]) -> None:
    c, run = debugged["client"], debugged["run"]
    neg = c.get(f"/v1/runs/{run}/nodes/neg").json()
    base = f"/v1/runs/{run}/nodes"
    assert neg["outputs"] == [
        {
            "port": "out",
            "type": "Number",
            "table": False,
            "preview": None,
            "value": f"{base}/neg/outputs/out/value",
        }
    ]
    assert neg["inputs"] == [
        {
            "port": "x",
            "type": "Number",
            "source": "sum.out",
            "from_nodes": ["sum"],
            "table": False,
            "preview": None,
            "value": f"{base}/neg/inputs/x/value",
        }
    ]
    out = c.get(neg["outputs"][0]["value"]).json()
    assert (out["value"], out["text"], out["kind"], out["direction"], out["truncated"]) == (
        -3,
        "-3",
        "int",
        "output",
        False,
    )
    # neg's input is sum's output, read through sum's port.
    received = c.get(neg["inputs"][0]["value"]).json()
    assert (received["value"], received["direction"], received["port"]) == (3, "input", "x")

    # sum's inputs: the run's input and a constant.
    inputs = {i["port"]: i for i in c.get(f"{base}/sum").json()["inputs"]}
    assert (inputs["a"]["source"], inputs["a"]["from_nodes"]) == ("$inputs.a", [])
    assert c.get(inputs["a"]["value"]).json()["value"] == 2
    assert inputs["b"]["source"] == "constant" and c.get(inputs["b"]["value"]).json()["value"] == 1

    # A big value is cut at the limit (never half a character) and says how big it is whole.
    rows = c.get(f"{base}/table/inputs/value/value").json()
    assert rows["value"] == ROWS and rows["truncated"] is False
    cut = c.get(f"{base}/table/inputs/value/value", params={"limit": 20}).json()
    assert cut["truncated"] is True and cut["value"] is None and cut["bytes"] == rows["bytes"] > 20
    assert len(cut["text"].encode()) <= 20 and cut["text"] == '[{"n":0,"s":"r0"},{"'[:20]

    # Tables are paged, not sent whole; unknown ports and nodes name what there is.
    table = c.get(f"{base}/table/outputs/out/value")
    assert (
        table.status_code == 400 and f"GET /v1/runs/{run}/nodes/table/outputs/out" in table.json()["detail"]
    )
    unknown = c.get(f"{base}/neg/inputs/nope/value")
    assert unknown.status_code == 404 and "its inputs: x" in unknown.json()["detail"]
    assert c.get(f"{base}/neg/outputs/nope/value").status_code == 404
    assert c.get(f"{base}/nope/outputs/out/value").status_code == 404
    assert c.get(f"{base}/neg/outputs/out/value", params={"limit": 0}).status_code == 422
    with api.client(api.key(["runs:read"], username="debugger")) as viewer:
        assert viewer.get(f"{base}/neg/inputs/x/value").json()["value"] == 3


def test_a_ray_server_names_the_task_and_links_the_dashboard(api: Api, debugged: dict[str, Any]) -> None:
    # A second server over the same installation that runs nodes on Ray (no run is started: no Ray needed).
    settings = Settings(home=api.home, ray_dashboard_url="http://ray-head:8265/")
    options = ServeOptions(executor="ray", recovery=False, create_admin_key=False, print_admin_key=False)
    with serving(create_app(settings, store=api.store, options=options)) as url:
        secret = api.key(["runs:read"], username="debugger")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as c:
            detail = c.get(f"/v1/runs/{debugged['run']}/nodes/table").json()
            fused = c.get(f"/v1/runs/{debugged['run']}/nodes/neg").json()
    assert detail["executor"] == "ray"
    assert detail["ray_task"]["name"] == "debug-me/table:builtin/records_to_table@1"
    assert detail["ray_task"]["dashboard_url"] == (
        "http://ray-head:8265/api/v0/tasks?filter_keys=name&filter_predicates=%3D"
        "&filter_values=debug-me%2Ftable%3Abuiltin%2Frecords_to_table%401&detail=true"
    )
    # sum and neg ran as one fused task: both name it.
    assert fused["ray_task"]["name"] == "debug-me/fused:sum:rayweave/fused@1"


def test_the_python_client_runs_to_a_node_and_reruns_one(api: Api, debugged: dict[str, Any]) -> None:
    from serve.client import Client

    with Client(api.url, api.key(ALL_USER_SCOPES, username="debugger")) as client:
        to_sum = client.submit(debugged["workflow"], {"a": 5}, targets=["sum"])
        assert to_sum.wait(20)["status"] == "succeeded" and to_sum.outputs() == {"sum__out": 6}
        again = client.rerun_node(debugged["run"], "neg")
        assert again.wait(20)["rerun_of"] == {"run": debugged["run"], "node": "neg"}
        assert again.outputs() == {"neg__out": -3}


def test_a_node_merged_into_its_twin_answers_with_the_twin_s_state_and_outputs(
    debugged: dict[str, Any],
) -> None:
    # The compiler runs `twin` (identical to `table`) once, as `table`: `twin` has no node runs of its own,
    # and was shown as never run.
    c = debugged["client"]
    doc = debug_doc()
    doc["name"] = "twins"
    doc["nodes"]["twin"] = dict(doc["nodes"]["table"])
    doc["outputs"]["t2"] = "twin.out"
    wf = c.post("/v1/workflows", json={"workflow": doc}).json()["workflow_id"]
    run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 2}}).json()["id"]
    assert _finished(c, run)["status"] == "succeeded"
    twin = c.get(f"/v1/runs/{run}/nodes/twin")
    assert twin.status_code == 200, twin.text
    table = c.get(f"/v1/runs/{run}/nodes/table").json()
    body = twin.json()
    assert body["merged_into"] == "table" and table["merged_into"] is None
    # (`table` may be answered by the cache: the module's first run computed the same table.)
    assert body["status"] in ("succeeded", "cached")
    assert (body["status"], body["attempts"]) == (table["status"], table["attempts"])
    assert body["outputs"] == [
        {
            "port": "out",
            "type": "Table",
            "table": True,
            "preview": f"/v1/runs/{run}/nodes/twin/outputs/out",
            "value": None,
        }
    ]
    page = c.get(f"/v1/runs/{run}/nodes/twin/outputs/out", params={"limit": 2}).json()
    assert page["rows"] == [[0, "r0"], [1, "r1"]] and page["total_rows"] == 7

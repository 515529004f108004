"""The SDK client (`serve.client`) against a served app: sync and async, over HTTP and the WebSocket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.workflow import Workflow
from serve.client import AsyncClient, Client, resolve_api_key
from serve.errors import ClientConfigError, ClientError
from tests.serve.api.conftest import ALL_USER_SCOPES, Api, add_doc, sleep_chain_doc


def test_submit_wait_events_outputs(api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        run = client.submit(sleep_chain_doc(3, 0.02), {"x": 7}, idempotency_key="client-1")
        events = list(run.events())
        final = run.wait(timeout=20)
        again = client.submit(sleep_chain_doc(3, 0.02), {"x": 7}, idempotency_key="client-1")
        outputs = run.outputs()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "run.succeeded" and final["status"] == "succeeded"
    assert outputs == {"x": 7}
    assert again.id == run.id and again.created is False


def test_runs_use_the_result_cache_unless_told_not_to(api: Api) -> None:
    statuses = []
    with Client(api.url, api.admin_key) as client:
        for cache in (True, True, False):
            final = client.submit(add_doc(), {"a": 9137, "b": -12}, cache=cache).wait(timeout=20)
            assert final["status"] == "succeeded", final
            statuses.append({n["node"]: n["status"] for n in final["nodes"]}["sum"])
    assert statuses == ["succeeded", "cached", "succeeded"]


def test_builder_workflows_and_stored_ids(api: Api) -> None:
    wf = Workflow("built")
    a = wf.input("a", "Int")
    total = wf.add("total", "builtin/add@1", a=a, b=a)
    wf.output("total", total)
    with Client(api.url, api.admin_key) as client:
        assert client.submit(wf, {"a": 21}).wait(timeout=20)["status"] == "succeeded"
        stored = client.create_workflow(add_doc("sdk-stored"))
        workflow_id = stored["workflow_id"]
        run = client.submit(workflow_id, {"a": 2, "b": 3})
        run.wait(timeout=20)
        assert run.outputs() == {"total": 5}
        changed = add_doc("sdk-stored")
        changed["nodes"]["sum"]["type"] = "builtin/multiply@1"
        assert client.update_workflow(workflow_id, changed, expected_version=1)["version"] == 2
        with pytest.raises(ClientError) as conflict:
            client.update_workflow(workflow_id, changed, expected_version=1)
        assert conflict.value.status == 412
        assert [v["version"] for v in client.versions(workflow_id)] == [2, 1]
        assert client.get_workflow(workflow_id, 1)["workflow"]["nodes"]["sum"]["type"] == "builtin/add@1"
        assert (
            client.submit(workflow_id, {"a": 2, "b": 3}, version=1).wait(timeout=20)["workflow_version"] == 1
        )
        assert any(w["id"] == workflow_id for w in client.list_workflows())
        client.delete_workflow(workflow_id)
        with pytest.raises(ClientError) as gone:
            client.get_workflow(workflow_id)
        assert gone.value.status == 404 and gone.value.problem["title"] == "Not found"


def test_catalogs_and_validation(api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        assert any(n["id"] == "builtin/add@1" for n in client.nodes())
        assert client.node("builtin/add@1")["name"] == "add"
        assert client.types()["primitives"]
        assert client.check_type("Int", "Float")["assignable"] is True
        bad = add_doc()
        bad["nodes"]["sum"]["type"] = "builtin/nope@1"
        assert client.validate(bad)["valid"] is False


def test_cancel_through_the_client(api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        run = client.submit(sleep_chain_doc(30, 0.05), {"x": 1})
        run.cancel()
        assert run.wait(timeout=20)["status"] == "cancelled"


def test_events_of_a_foreign_run_raise_404(api: Api) -> None:
    with Client(api.url, api.admin_key) as admin:
        run_id = admin.submit(add_doc(), {"a": 1, "b": 1}).id
    with Client(api.url, api.key(ALL_USER_SCOPES, username="sdk-stranger")) as client:
        with pytest.raises(ClientError) as info:
            list(client.run(run_id).events())
        assert info.value.status == 404


def test_api_key_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAYWEAVE_API_KEY", raising=False)
    with pytest.raises(ClientConfigError):
        resolve_api_key(None, tmp_path)
    (tmp_path / "admin.key").write_text("rw_file_key\n")
    assert resolve_api_key(None, tmp_path) == "rw_file_key"
    monkeypatch.setenv("RAYWEAVE_API_KEY", "rw_env_key")
    assert resolve_api_key(None, tmp_path) == "rw_env_key"
    assert resolve_api_key("rw_arg", tmp_path) == "rw_arg"


def test_async_client(api: Api) -> None:
    async def scenario() -> tuple[list[int], dict[str, object], dict[str, object]]:
        async with AsyncClient(api.url, api.admin_key) as client:
            run = await client.submit(sleep_chain_doc(3, 0.02), {"x": 11})
            seqs = [e.seq async for e in run.events()]
            final = await run.wait(timeout=20)
            return seqs, final, await run.outputs()

    seqs, final, outputs = asyncio.run(scenario())
    assert seqs == list(range(1, len(seqs) + 1)) and final["status"] == "succeeded"
    assert outputs == {"x": 11}


def test_skipped_outputs_are_absent_and_listed_over_http(api: Api) -> None:
    from tests.engine.execution.test_skipped_outputs import BRANCHES

    with Client(api.url, api.admin_key) as client:
        run = client.submit(BRANCHES, {"flag": True})
        assert run.wait(timeout=30)["status"] == "succeeded"
        outputs, skipped = run.outputs(), run.skipped_outputs()
        with api.client() as http:
            body = http.get(f"/v1/runs/{run.id}/outputs").json()

    async def from_async() -> tuple[dict[str, object], list[str]]:
        async with AsyncClient(api.url, api.admin_key) as aclient:
            handle = aclient.run(run.id)
            return await handle.outputs(), await handle.skipped_outputs()

    assert outputs == {"pos": -5, "t": 5} and skipped == ["f", "neg"]
    assert body == {
        "id": run.id,
        "status": "succeeded",
        "outputs": outputs,
        "skipped_outputs": skipped,
        "omitted_outputs": [],
    }
    assert asyncio.run(from_async()) == (outputs, skipped)

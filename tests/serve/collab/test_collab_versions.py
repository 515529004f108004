"""The shared document and the stored versions: it survives a restart, takes in a version saved through the
REST API (merged with the edits made meanwhile), is saved as a version only when it validates, and its clients
are told when the workflow is deleted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from pycrdt import Map

from serve.collab.client import CollabClient
from serve.collab.document import to_workflow
from tests.serve.api.conftest import add_doc
from tests.serve.collab.conftest import Served, new_workflow, run, start_served
from tests.serve.collab.test_collab_socket import _synced, _until


def test_edits_are_stored_as_made_and_survive_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = start_served(tmp_path)
    api = next(first)
    uvicorn_log = logging.getLogger("uvicorn")  # it does not propagate to the root logger caplog listens on
    uvicorn_log.addHandler(caplog.handler)
    wid = new_workflow(api)

    async def edit() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as a:
            await _synced(a)
            a.nodes["sum"]["params"]["note"] = "kept"
            a.nodes["sum"]["position"] = Map({"x": 1.5, "y": -2})
            # Stored while the client is still connected, not only when the room closes.
            await _until(lambda: len(api.store.collab.read(wid)) >= 2, what="the edit in the store")
            # The server stops with a client connected: the client is told to go (uvicorn's 1012 "service
            # restart", or the rooms' own 1001 "going away"), and nothing is lost.
            first.close()
            assert await a.wait_closed() in (1001, 1012)

    run(edit())
    uvicorn_log.removeHandler(caplog.handler)
    noise = [
        r for r in caplog.records if r.levelno >= logging.ERROR or "Cancelled" in r.getMessage() or r.exc_info
    ]
    assert not noise, [r.getMessage() for r in noise]
    second = start_served(tmp_path)
    api = next(second)

    async def late() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as b:
            await _synced(b)
            assert to_workflow(b.doc)["nodes"]["sum"]["params"] == {"note": "kept"}
            assert b.nodes["sum"]["position"].to_py() == {"x": 1.5, "y": -2.0}

    try:
        run(late())
    finally:
        second.close()


def test_clients_of_two_replicas_converge_through_the_store(api: Served) -> None:
    wid = new_workflow(api)
    replica = start_served(api.home)  # a second API server on the same database
    other = next(replica)

    async def edit() -> None:
        async with (
            CollabClient.connect(api.url, wid, api.admin_key) as a,
            CollabClient.connect(other.url, wid, api.admin_key) as b,
        ):
            await _synced(a, b)
            a.nodes["sum"]["params"]["from_a"] = 1
            b.nodes["sum"]["params"]["from_b"] = 2
            for client in (a, b):
                await client.until(lambda c=client: len(c.nodes["sum"]["params"]) == 2, timeout=5)
            assert to_workflow(a.doc) == to_workflow(b.doc)

    try:
        run(edit())
    finally:
        replica.close()


def test_a_version_saved_through_the_api_is_merged_into_the_room(api: Served) -> None:
    wid = new_workflow(api)

    async def edit() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as a:
            await _synced(a)
            a.nodes["sum"]["params"]["mine"] = 1  # an edit of the room the new version does not touch
            await _until(lambda: len(api.store.collab.read(wid)) >= 2, what="the edit in the store")
            changed = add_doc("renamed")
            changed["nodes"]["more"] = {"type": "builtin/add@1", "in": {"a": "sum", "b": {"value": 1}}}
            with api.client() as c:
                r = c.put(f"/v1/workflows/{wid}", json={"workflow": changed}, headers={"If-Match": '"1"'})
                assert r.status_code == 200, r.text
            await _until(lambda: a.meta.get("version") == 2, what="version 2 in the room")
            document = to_workflow(a.doc)
            assert document["name"] == "renamed"
            assert document["nodes"]["more"] == changed["nodes"]["more"]
            assert document["nodes"]["sum"]["params"] == {"mine": 1}

    run(edit())


def test_save_as_version_validates_and_every_client_sees_the_new_version(api: Served) -> None:
    wid = new_workflow(api)

    def save() -> tuple[int, dict]:  # type: ignore[type-arg]
        with api.client() as c:
            r = c.post(f"/v1/workflows/{wid}/collab/save", json={"message": "from the editor"})
            return r.status_code, r.json()

    async def edit() -> None:
        async with (
            CollabClient.connect(api.url, wid, api.admin_key) as a,
            CollabClient.connect(api.url, wid, api.admin_key) as b,
        ):
            await _synced(a, b)
            a.nodes["sum"]["params"]["nonsense"] = 3  # `builtin/add@1` has no such param
            await _until(lambda: "nonsense" in b.nodes["sum"]["params"], what="the bad edit at b")
            status, problem = save()
            assert status == 422, problem
            assert "nothing was saved" in problem["detail"]
            assert any(d["node"] == "sum" for d in problem["diagnostics"]), problem["diagnostics"]
            assert api.store.workflows.get(wid).latest_version == 1
            assert "nonsense" in a.nodes["sum"]["params"]  # the shared document is left as it was

            del b.nodes["sum"]["params"]["nonsense"]
            b.nodes["sum"]["in"]["b"] = {"value": 5}
            b.nodes["sum"]["position"] = Map({"x": 3, "y": 4})
            await _until(lambda: "nonsense" not in a.nodes["sum"]["params"], what="the fix at a")
            status, version = save()
            assert status == 201, version
            assert version["version"] == 2 and version["message"] == "from the editor"
            await _until(
                lambda: a.meta.get("version") == 2 and b.meta.get("version") == 2, what="meta.version 2"
            )

    run(edit())
    stored = api.store.workflows.latest(wid)
    assert stored.version == 2
    assert stored.document["nodes"]["sum"] == {
        "type": "builtin/add@1",
        "in": {"a": "$inputs.a", "b": {"value": 5}},
    }


def test_save_needs_write_scope_and_the_workflow(api: Served) -> None:
    owner = api.key(["workflows:read", "workflows:write"], username="gina")
    wid = new_workflow(api, owner)
    with api.client(api.key(["workflows:read"], username="gina")) as c:
        assert c.post(f"/v1/workflows/{wid}/collab/save", json={}).status_code == 403
    with api.client(api.key(["workflows:read", "workflows:write"], username="hank")) as c:
        assert c.post(f"/v1/workflows/{wid}/collab/save", json={}).status_code == 404
    with api.client(owner) as c:
        r = c.post(f"/v1/workflows/{wid}/collab/save", json={})
        assert r.status_code == 201 and r.headers["ETag"] == '"2"'


def test_clients_are_told_when_the_workflow_is_deleted(api: Served) -> None:
    wid = new_workflow(api)

    async def edit() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as a:
            await _synced(a)
            with api.client() as c:
                assert c.delete(f"/v1/workflows/{wid}").status_code == 204
            assert await a.wait_closed() == 4404
            assert "deleted" in a.close_reason

    run(edit())


def test_save_after_an_unseen_api_version_merges_it_and_asks_to_save_again(api: Served) -> None:
    wid = new_workflow(api)

    async def edit() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as a:
            await _synced(a)
            room = api.rooms.room(wid)
            assert room is not None
            room.poll_s = 3600.0  # the room will not look by itself: the save must notice the new version
            await asyncio.sleep(0.7)
            a.nodes["sum"]["in"]["b"] = {"value": 3}
            with api.client() as c:
                put = c.put(
                    f"/v1/workflows/{wid}", json={"workflow": add_doc("by-api")}, headers={"If-Match": '"1"'}
                )
                assert put.status_code == 200, put.text
                first = c.post(f"/v1/workflows/{wid}/collab/save", json={})
                assert first.status_code == 409, first.text
                assert "saved as version 2 meanwhile" in first.json()["detail"]
                await a.until(lambda: a.meta.get("name") == "by-api")
                assert a.nodes["sum"]["in"]["b"] == {"value": 3}  # merged, not overwritten
                second = c.post(f"/v1/workflows/{wid}/collab/save", json={})
                assert second.status_code == 201, second.text
                saved = second.json()["workflow"]
                assert (second.json()["version"], saved["name"]) == (3, "by-api")
                assert saved["nodes"]["sum"]["in"]["b"] == {"value": 3}

    run(edit())

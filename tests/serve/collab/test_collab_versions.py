"""The shared document and the stored versions: it survives a restart, takes in a version saved through the
REST API (merged with the edits made meanwhile), is saved as a version only when it validates, and its clients
are told when the workflow is deleted."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from pycrdt import Map

from nodes.ids import WorkflowId
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


def test_a_save_and_a_delete_on_one_replica_reach_a_room_on_another_over_the_bus(api: Served) -> None:
    # Two API replicas of one installation in this process, joined by the in-process bus. The other replica
    # reads the store for saved versions by itself no more (its room polls only for edits, once an hour here;
    # its workflow watch's catch-up reads are stopped): what reaches its room came by the saving replica's notice.
    wid = new_workflow(api)
    replica = start_served(api.home)
    other = next(replica)
    other.app.state.workflow_watch.close()
    took: dict[str, float] = {}

    async def edit() -> None:
        async with CollabClient.connect(other.url, wid, api.admin_key) as b:
            await _synced(b)
            room = other.rooms.room(wid)
            assert room is not None and room.watch is other.app.state.workflow_watch
            room.poll_s = 3600.0
            await asyncio.sleep(0.7)  # its poll's current wait (0.5 s) is over: the next is in an hour
            with api.client() as c:
                put = c.put(
                    f"/v1/workflows/{wid}", json={"workflow": add_doc("by-a")}, headers={"If-Match": '"1"'}
                )
                assert put.status_code == 200, put.text
                started = time.monotonic()
                await b.until(lambda: b.meta.get("version") == 2, timeout=2)
                took["saved"] = time.monotonic() - started
                assert to_workflow(b.doc)["name"] == "by-a"
                # The co-editing save on the first replica (its own room of the document) is announced too.
                saved = c.post(f"/v1/workflows/{wid}/collab/save", json={"message": "on a"})
                assert saved.status_code == 201, saved.text
                await b.until(lambda: b.meta.get("version") == 3, timeout=2)
                assert c.delete(f"/v1/workflows/{wid}").status_code == 204
                started = time.monotonic()
                assert await b.wait_closed(timeout=2) == 4404
                took["deleted"] = time.monotonic() - started
            assert "deleted" in b.close_reason

    try:
        run(edit())
    finally:
        replica.close()
    print(f"\nsaved/deleted on one replica, in the room of the other after {took}")


def test_a_save_and_a_delete_no_notice_told_of_reach_the_room_by_the_watchs_catch_up(api: Served) -> None:
    # Stored by a process the in-process bus does not reach (here: straight into the store, no notice): the
    # server's workflow watch reads its watched workflows every 0.5 s (no broker), and the room follows that.
    wid = new_workflow(api)
    assert api.app.state.workflow_watch.poll_s == 0.5

    async def edit() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as a:
            await _synced(a)
            api.store.workflows.save(WorkflowId(wid), add_doc("unannounced"), expected_version=1)
            await a.until(lambda: a.meta.get("version") == 2, timeout=3)
            assert to_workflow(a.doc)["name"] == "unannounced"
            api.store.workflows.delete(WorkflowId(wid))
            assert await a.wait_closed(timeout=3) == 4404

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
            # The room will not look by itself (no poll, no bus): the save must notice the new version.
            room.poll_s = 3600.0
            api.app.state.workflow_watch.unwatch(wid)
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


def test_presence_crosses_replicas_over_the_event_bus(api: Served) -> None:
    # Two API replicas of one installation (each room's presence lives in its replica's memory): a client of
    # each sees the other's presence, a late joiner is told at once, and a client that drops is removed at the
    # other. Both are in this process, so the in-process bus joins them (on several hosts, NATS does: the same
    # relay, tried by hand with a NATS bus on both replicas; the bus itself is tested in tests/engine/bus).
    from pycrdt import Awareness

    from serve.collab.protocol import awareness_states

    wid = new_workflow(api)
    replica = start_served(api.home)
    other = next(replica)

    def presence_of(client: CollabClient) -> dict[int, str | None]:
        seen: dict[int, str | None] = {}
        for message in client.awareness:
            seen.update({cid: state for cid, (_, state) in awareness_states(message).items()})
        return seen

    async def presence() -> None:
        async with CollabClient.connect(other.url, wid, api.admin_key) as b:
            await _synced(b)
            async with CollabClient.connect(api.url, wid, api.admin_key) as a:
                await _synced(a)
                awareness = Awareness(a.doc)
                awareness.set_local_state({"user": {"name": "ada"}, "cursor": "sum"})
                me = awareness.client_id
                await a.send_presence(awareness.encode_awareness_update([me]))
                await _until(
                    lambda: presence_of(b).get(me) is not None, what="A's presence at the other replica"
                )
                assert "ada" in str(presence_of(b)[me])
                async with CollabClient.connect(other.url, wid, api.admin_key) as c:
                    await _until(
                        lambda: presence_of(c).get(me) is not None, what="A's presence at a late joiner"
                    )
                    a.websocket.transport.abort()  # gone without saying goodbye
                    for client in (b, c):
                        await _until(lambda o=client: presence_of(o).get(me, "") is None, what="A's removal")

    try:
        run(presence())
    finally:
        replica.close()

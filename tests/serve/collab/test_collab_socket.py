"""`WS /v1/workflows/{id}/collab` with real clients on a real server: convergence, read-only viewers,
authentication and tenancy, the room-open race, malformed and oversized messages, clients that drop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pycrdt import Map

from serve.collab.client import CollabClient
from serve.collab.document import to_workflow
from tests.serve.api.conftest import Api, add_doc
from tests.serve.collab.conftest import Served, new_workflow, run


async def _synced(*clients: CollabClient) -> None:
    await asyncio.gather(*(asyncio.wait_for(c.synced.wait(), 5) for c in clients))


async def _converged(*clients: CollabClient, timeout: float = 5.0) -> dict[str, Any]:
    """Wait until every client holds the same workflow document; returns it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        documents = [to_workflow(c.doc) for c in clients]
        if all(d == documents[0] for d in documents):
            return documents[0]
        assert asyncio.get_running_loop().time() < deadline, f"clients did not converge: {documents}"
        await asyncio.sleep(0.01)


async def _until(condition: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_two_editors_converge_and_concurrent_edits_of_one_node_merge(api: Api) -> None:
    wid = new_workflow(api)

    async def edit() -> dict[str, Any]:
        async with (
            CollabClient.connect(api.url, wid, api.admin_key) as a,
            CollabClient.connect(api.url, wid, api.admin_key) as b,
        ):
            await _synced(a, b)
            assert to_workflow(a.doc) == add_doc()  # the room opened on the stored version
            # At the same time: A sets a param of `sum`, B rewires one of its ports and adds a node.
            a.nodes["sum"]["params"]["note"] = "from a"
            b.nodes["sum"]["in"]["b"] = {"value": 2}
            b.nodes["twice"] = Map({"type": "builtin/add@1", "in": Map({"a": "sum", "b": "sum"})})
            a.nodes["sum"]["position"] = Map({"x": 10, "y": 20})
            return await _converged(a, b)

    document = run(edit())
    assert document["nodes"]["sum"] == {
        "type": "builtin/add@1",
        "in": {"a": "$inputs.a", "b": {"value": 2}},
        "params": {"note": "from a"},
    }
    assert document["nodes"]["twice"] == {"type": "builtin/add@1", "in": {"a": "sum", "b": "sum"}}


def test_a_viewer_syncs_read_only_and_its_edits_are_refused(api: Api) -> None:
    editor = api.key(["workflows:read", "workflows:write"], username="carol")
    viewer = api.key(["workflows:read"], username="carol")
    wid = new_workflow(api, editor)

    async def edit() -> None:
        async with (
            CollabClient.connect(api.url, wid, editor) as a,
            CollabClient.connect(api.url, wid, viewer) as v,
        ):
            await _synced(a, v)
            v.nodes["sum"]["params"]["evil"] = 1
            await _until(lambda: v.denied, what="the viewer's refusal")
            assert "may view workflow" in v.denied[0] and "workflows:write" in v.denied[0]
            # The editor's later edit reaches the viewer (read-only sync works), the viewer's never reached anyone.
            a.nodes["sum"]["params"]["ok"] = 1
            await _until(lambda: "ok" in v.nodes["sum"]["params"], what="the editor's edit at the viewer")
            assert "evil" not in a.nodes["sum"]["params"]
        async with CollabClient.connect(api.url, wid, editor) as late:
            await _synced(late)
            assert to_workflow(late.doc)["nodes"]["sum"]["params"] == {"ok": 1}

    run(edit())


def _close_code(
    api: Api, wid: str, key: str | None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async def connect() -> tuple[int, str]:
        async with CollabClient.connect(api.url, wid, key, headers=headers) as client:
            code = await client.wait_closed()
            assert not client.synced.is_set()
            return int(code or 0), client.close_reason

    return run(connect())


def test_unauthenticated_unauthorised_and_cross_tenant_sockets_are_refused(api: Api) -> None:
    owner = api.key(["workflows:read", "workflows:write"], username="dave")
    wid = new_workflow(api, owner)
    assert _close_code(api, wid, None)[0] == 4401
    assert _close_code(api, wid, "rw_0123456789ab_" + "A" * 43)[0] == 4401
    code, reason = _close_code(api, wid, api.key(["runs:read"], username="dave"))
    assert code == 4403 and "workflows:read" in reason
    # Another owner's workflow is not found, exactly as GET /v1/workflows/{id} answers.
    code, reason = _close_code(api, wid, api.key(["workflows:read", "workflows:write"], username="erin"))
    assert code == 4404 and wid in reason
    assert _close_code(api, "no-such-workflow", owner)[0] == 4404


def test_the_browser_session_cookie_works_from_this_origin_only(api: Api) -> None:
    owner = api.key(["workflows:read", "workflows:write"], username="frank")
    wid = new_workflow(api, owner)
    cookie = {"Cookie": f"rw_session={owner}"}
    code, reason = _close_code(api, wid, None, {**cookie, "Origin": "http://evil.example"})
    assert code == 4403 and "origin" in reason.lower()

    async def same_origin() -> None:
        async with CollabClient.connect(api.url, wid, headers={**cookie, "Origin": api.url}) as client:
            await _synced(client)

    run(same_origin())


def test_two_clients_opening_a_new_room_at_once_both_sync(api: Served) -> None:
    async def race(wid: str) -> None:
        async with contextlib.AsyncExitStack() as stack:
            a, b = await asyncio.gather(
                stack.enter_async_context(CollabClient.connect(api.url, wid, api.admin_key)),
                stack.enter_async_context(CollabClient.connect(api.url, wid, api.admin_key)),
            )
            await _synced(a, b)
            room = api.rooms.room(wid)  # one room holds both: neither waits for the other server's log
            assert room is not None and len(room.yroom.clients) == 2
            a.nodes["sum"]["params"]["k"] = "v"
            await _until(lambda: "k" in b.nodes["sum"]["params"], what="an edit across the raced room")

    for _ in range(20):
        run(race(new_workflow(api)))


def test_bad_messages_are_refused_and_the_room_goes_on(api: Api) -> None:
    wid = new_workflow(api)

    async def abuse() -> None:
        async with (
            CollabClient.connect(api.url, wid, api.admin_key) as a,
            CollabClient.connect(api.url, wid, api.admin_key) as b,
        ):
            await _synced(a, b)
            await a.send_raw(b"\xff\xff\xff")  # not y-websocket protocol
            await a.send_raw(b"\x00\x02\x05junk!")  # an update that is not Yjs
            await _until(lambda: len(a.denied) == 2, what="two refusals")
            assert "not y-websocket protocol" in a.denied[0]
            assert "could not be applied" in a.denied[1]
            a.nodes["sum"]["params"]["after"] = True
            await _until(lambda: "after" in b.nodes["sum"]["params"], what="an edit after the bad messages")
            # A huge paste closes the sender's socket (1009) and nobody else's.
            await a.send_raw(b"\x00\x02" + b"x" * (5 * 1024 * 1024))
            assert await a.wait_closed() == 1009
            b.nodes["sum"]["params"]["still"] = True
            await asyncio.sleep(0.1)
            assert b.close_code is None

    run(abuse())

    async def check() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as late:
            await _synced(late)
            assert to_workflow(late.doc)["nodes"]["sum"]["params"] == {"after": True, "still": True}

    run(check())


def test_clients_that_drop_abruptly_do_not_disturb_the_others(api: Api) -> None:
    wid = new_workflow(api)

    async def drops() -> None:
        async with (
            CollabClient.connect(api.url, wid, api.admin_key) as a,
            CollabClient.connect(api.url, wid, api.admin_key) as b,
        ):
            await _synced(a, b)
            for i in range(10):
                async with CollabClient.connect(api.url, wid, api.admin_key) as dropper:
                    await _synced(dropper)
                    dropper.websocket.transport.abort()  # no close frame: the TCP connection just goes
                    for j in range(5):
                        a.nodes["sum"]["params"][f"p{i}_{j}"] = j
                        await asyncio.sleep(0)
                await _until(lambda i=i: f"p{i}_4" in b.nodes["sum"]["params"], what=f"edits after drop {i}")
            assert a.close_code is None and b.close_code is None
            assert len(b.nodes["sum"]["params"]) == 50

    run(drops())


def test_a_workflow_shared_as_viewer_syncs_read_only_and_as_editor_edits(api: Served) -> None:
    scopes = ["workflows:read", "workflows:write"]
    owner, colleague = api.key(scopes, username="ivy"), api.key(scopes, username="jack")
    wid = new_workflow(api, owner)
    assert _close_code(api, wid, colleague)[0] == 4404  # not shared: not there

    def share(role: str) -> None:
        with api.client(owner) as c:
            r = c.put(f"/v1/workflows/{wid}/shares", json={"items": [{"user": "jack", "role": role}]})
            assert r.status_code == 200, r.text

    async def edit(expect_refusal: bool) -> None:
        async with (
            CollabClient.connect(api.url, wid, owner) as a,
            CollabClient.connect(api.url, wid, colleague) as j,
        ):
            await _synced(a, j)
            j.nodes["sum"]["params"]["by_jack"] = 1
            if expect_refusal:
                await _until(lambda: j.denied, what="the refusal of a viewer's edit")
                assert "editor access" in j.denied[0]
                assert "by_jack" not in a.nodes["sum"]["params"]
            else:
                await _until(lambda: "by_jack" in a.nodes["sum"]["params"], what="the editor's edit")
                assert not j.denied

    share("viewer")
    run(edit(expect_refusal=True))
    with api.client(colleague) as c:
        assert c.post(f"/v1/workflows/{wid}/collab/save", json={}).status_code == 403
    share("editor")
    run(edit(expect_refusal=False))
    with api.client(colleague) as c:
        assert c.post(f"/v1/workflows/{wid}/collab/save", json={}).status_code == 422  # `by_jack` is no param


def test_presence_is_relayed_and_removed_when_a_client_drops(api: Served) -> None:
    from pycrdt import Awareness

    from serve.collab.protocol import awareness_states

    wid = new_workflow(api)

    def presence_of(client: CollabClient) -> dict[int, str | None]:
        seen: dict[int, str | None] = {}
        for message in client.awareness:
            seen.update({cid: state for cid, (_, state) in awareness_states(message).items()})
        return seen

    async def presence() -> None:
        async with CollabClient.connect(api.url, wid, api.admin_key) as b:
            await _synced(b)
            async with CollabClient.connect(api.url, wid, api.admin_key) as a:
                await _synced(a)
                awareness = Awareness(a.doc)
                awareness.set_local_state({"user": {"name": "ada"}, "cursor": "sum"})
                await a.send_presence(awareness.encode_awareness_update([awareness.client_id]))
                me = awareness.client_id
                await _until(lambda: presence_of(b).get(me) is not None, what="A's presence at B")
                assert "ada" in str(presence_of(b)[me])
                # A late joiner is told at once who is here (A says nothing more), and nothing else.
                async with CollabClient.connect(api.url, wid, api.admin_key) as c:
                    await _until(lambda: presence_of(c).get(me) is not None, what="A's presence at C")
                    assert set(presence_of(c)) == {me}
                    a.websocket.transport.abort()  # gone without saying goodbye
                    for other in (b, c):
                        await _until(lambda o=other: presence_of(o).get(me, "") is None, what="A's removal")

    run(presence())


def test_open_sockets_follow_a_revoked_key_and_a_lowered_share(api: Served) -> None:
    from dataclasses import replace

    scopes = ["workflows:read", "workflows:write"]
    owner, colleague = api.key(scopes, username="lena"), api.key(scopes, username="mike")
    wid = new_workflow(api, owner)

    def share(role: str) -> None:
        with api.client(owner) as c:
            r = c.put(f"/v1/workflows/{wid}/shares", json={"items": [{"user": "mike", "role": role}]})
            assert r.status_code == 200, r.text

    async def follow() -> None:
        async with (
            CollabClient.connect(api.url, wid, owner) as a,
            CollabClient.connect(api.url, wid, colleague) as m,
        ):
            await _synced(a, m)
            share("viewer")  # mike may still read, no longer edit
            await asyncio.sleep(0.6)
            m.nodes["sum"]["params"]["late"] = 1
            await _until(lambda: m.denied, what="the refusal after the share was lowered")
            assert "late" not in a.nodes["sum"]["params"]
            key_id = next(k.id for k in api.store.api_keys.list() if owner.startswith(f"rw_{k.prefix}_"))
            api.store.api_keys.revoke(key_id)
            assert await a.wait_closed() == 4401
            assert m.close_code is None

    share("editor")
    original = api.rooms.options
    api.rooms.options = replace(original, recheck_s=0.2)
    try:
        run(follow())
    finally:
        api.rooms.options = original

"""Presence across API replicas when one dies without a goodbye: its clients disappear from the others' screens
within a few seconds (`serve.collab.presence`: beats on the bus), not after the awareness timeout (30 s)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pycrdt import Awareness, Doc

from engine.bus import InProcessBus
from serve.collab.client import CollabClient
from serve.collab.presence import BEAT_S, SILENT_BEATS, PresenceRelay
from serve.collab.protocol import awareness_states
from tests.serve.collab.conftest import Served, new_workflow, run, start_served
from tests.serve.collab.test_collab_socket import _synced, _until


def _state_of(update: bytes, awareness: Awareness) -> None:
    awareness.apply_awareness_update(update, "client")


@asynccontextmanager
async def _relay(bus: InProcessBus, server: str) -> AsyncIterator[tuple[PresenceRelay, list[bytes]]]:
    """A room's relay on `bus` as replica `server` (beats too slow to matter: the test says when it is);
    yields it and the messages it sent to its clients."""
    sent: list[bytes] = []

    async def send(message: bytes) -> None:
        sent.append(message)

    relay = PresenceRelay(bus, "wf-1", server, Awareness(Doc()), send, beat_s=60)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.05)  # subscribed
    try:
        yield relay, sent
    finally:
        task.cancel()


def _client(name: str) -> Awareness:
    person = Awareness(Doc())
    person.set_local_state({"user": {"name": name}})
    return person


def test_a_silent_replicas_clients_are_removed_and_only_theirs() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        async with _relay(bus, "a") as (a, _), _relay(bus, "b") as (b, to_b_clients):
            ada, bob = _client("ada"), _client("bob")
            # Ada and Bob are clients of replica a; b draws them.
            for person in (ada, bob):
                _state_of(person.encode_awareness_update([person.client_id]), a.awareness)
            await _until(
                lambda: {ada.client_id, bob.client_id} <= set(b.awareness.states), what="a's clients at b"
            )
            # Bob's tab reconnects to replica b (his own state, renewed: a higher clock).
            bob.set_local_state({"user": {"name": "bob"}, "cursor": "sum"})
            _state_of(bob.encode_awareness_update([bob.client_id]), b.awareness)
            # A room opening on a third replica asks who is there: a answers with Bob's old state too, which b
            # does not apply (its clock is behind), so a is not taken to speak for Bob again.
            bus.publish(b.topic, {"server": "c", "kind": "query"})
            await asyncio.sleep(0.2)
            # Heard a moment ago: nobody is removed.
            assert await b.forget_silent() == []
            # Then a falls silent (no beat, no change) for more than SILENT_BEATS beats.
            removed = await b.forget_silent(now=time.monotonic() + (SILENT_BEATS + 1) * b.beat_s)
            assert removed == [ada.client_id]
            assert ada.client_id not in b.awareness.states and b.awareness.states[bob.client_id] is not None
            # b's clients were told: Ada's state is null now.
            told = awareness_states(to_b_clients[-1])
            assert set(told) == {ada.client_id} and told[ada.client_id][1] is None
            # a speaks again (its next change of Ada): she is drawn again.
            ada.set_local_state({"user": {"name": "ada"}, "cursor": "x"})
            _state_of(ada.encode_awareness_update([ada.client_id]), a.awareness)
            await _until(lambda: b.awareness.states.get(ada.client_id) is not None, what="Ada back at b")
            assert json.loads(json.dumps(b.awareness.states[ada.client_id]))["cursor"] == "x"

    run(scenario())


@pytest.mark.slow  # about 6 s: a second replica, then the beats of the default timing (3.6 s at load 5)
def test_a_dead_replicas_clients_disappear_from_the_others_within_seconds(api: Served) -> None:
    # Two API replicas of one installation, joined by the in-process bus. The second one dies: from then on it
    # says nothing on the bus (no goodbye for its clients, no beat), as a killed process or a lost host.
    wid = new_workflow(api)
    replica = start_served(api.home)
    other = next(replica)

    def presence_of(client: CollabClient) -> dict[int, str | None]:
        seen: dict[int, str | None] = {}
        for message in client.awareness:
            seen.update({cid: state for cid, (_, state) in awareness_states(message).items()})
        return seen

    class Dead:
        def publish(self, topic: str, message: Any) -> None:
            raise ConnectionError("this replica is dead")

    async def presence() -> float:
        async with CollabClient.connect(api.url, wid, api.admin_key) as b:
            await _synced(b)
            async with CollabClient.connect(other.url, wid, api.admin_key) as a:
                await _synced(a)
                awareness = Awareness(a.doc)
                awareness.set_local_state({"user": {"name": "ada"}})
                me = awareness.client_id
                await a.send_presence(awareness.encode_awareness_update([me]))
                await _until(lambda: presence_of(b).get(me) is not None, what="A's presence at B")
                room = other.rooms.room(wid)  # type: ignore[arg-type]
                assert room is not None and room.presence is not None
                room.presence.bus = Dead()  # type: ignore[assignment]
                died = time.monotonic()
                await _until(lambda: presence_of(b).get(me, "") is None, timeout=15, what="A's removal at B")
                return time.monotonic() - died

    try:
        took = run(presence(), timeout=30)
    finally:
        replica.close()
    print(f"\na dead replica's client removed at the other after {took:.2f} s")
    # Its last beat at most a beat before it died, then SILENT_BEATS beats, then the next check: about 3-4 s.
    assert took < (SILENT_BEATS + 3) * BEAT_S

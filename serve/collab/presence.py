"""`PresenceRelay`: who is in a room, shared with the same room on the other API replicas through the event bus.

A room's presence (the y-websocket awareness: each client's name, pointer and selection) lives in the memory of
the replica its clients are connected to; edits cross replicas through the store, presence is not stored (it is
worth nothing a few seconds later). So each room relays it over the event bus (`RAYWEAVE_EVENT_BUS`; the
in-process bus joins the replicas of one process, NATS those of several hosts), on the topic
`collab.presence.<workflow id>`:

- every awareness change of this replica's clients (a state set or renewed, a client gone) is published as the
  encoded awareness update of those clients;
- every update another replica published is applied to the room's awareness (clocks decide, so a late or
  repeated message changes nothing) and sent to this replica's clients, so they draw the others at once; a
  client joining here later is sent them with everyone else's (`Room._send_presence`);
- a room opening asks the others who is there (`query`), and each answers with the states of its own clients.

Messages name the replica that sent them, which ignores its own. A replica that dies without saying goodbye
(its process killed, its host gone, cut off from the bus) would leave its clients drawn at the others until
their awareness timed out (30 s). So each room also sends a `beat` every `BEAT_S`, and a room that has heard
nothing from a replica for `SILENT_BEATS` beats removes the clients that replica spoke for, from its awareness
and from its clients' screens: about 3 to 4 s after the replica's last word. The clients of a replica that was
only cut off for a while are drawn again at their next change or renewal (every 15 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from engine.bus import EventBus, Message, run_topic

log = logging.getLogger("rayweave.collab")

#: The topic prefix of the rooms' presence messages (`collab.presence.<workflow id>`).
TOPIC = "collab.presence"
#: Seconds between a room's beats (a small message on the bus per open room and replica).
BEAT_S = 1.0
#: A replica not heard for this many beats is taken for dead: its clients' presence is removed.
SILENT_BEATS = 3


def presence_topic(workflow_id: str) -> str:
    """The bus topic of the presence of `workflow_id`'s room (an id that is not one topic token goes by its
    hash, as run topics do)."""
    token = run_topic(workflow_id).removeprefix("runs.")
    return f"{TOPIC}.{token}"


class PresenceRelay:
    """Relays the presence of one room's clients to and from the other replicas (see the module docstring).

    `awareness`: the room's pycrdt `Awareness`; `send_to_clients(message)`: sends a y-websocket message to every
    client of the room on this replica; `server`: this replica's id (a random one per server); `beat_s`: seconds
    between beats (a replica silent for `SILENT_BEATS` of them is taken for dead).
    """

    def __init__(
        self,
        bus: EventBus,
        workflow_id: str,
        server: str,
        awareness: Any,
        send_to_clients: Callable[[bytes], Awaitable[None]],
        *,
        beat_s: float = BEAT_S,
    ) -> None:
        self.bus = bus
        self.topic = presence_topic(workflow_id)
        self.server = server
        self.awareness = awareness
        self.send_to_clients = send_to_clients
        self.beat_s = beat_s
        self._observer: str | None = None
        self._subscription: Any = None
        self._thread: threading.Thread | None = None
        #: When each other replica was last heard (monotonic seconds), and the clients it speaks for.
        self._heard: dict[str, float] = {}
        self._speaks_for: dict[str, set[int]] = {}

    async def run(self) -> None:
        """Relay until cancelled (or `close`): publish local changes, apply and forward the others'."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._subscription = self.bus.subscribe(self.topic)
        self._thread = threading.Thread(
            target=self._receive, args=(loop, inbox), name=f"rayweave-{self.topic}", daemon=True
        )
        self._thread.start()
        self._observer = self.awareness.observe(self._local_change)
        self._publish({"kind": "query"})
        beats = asyncio.create_task(self._beat())
        try:
            while True:
                message = await inbox.get()
                try:
                    await self._handle(message)
                except Exception as exc:  # one odd message must not end the relay
                    log.debug("%s: ignored a presence message: %r", self.topic, exc)
        finally:
            beats.cancel()
            self.close()

    async def _beat(self) -> None:
        """Say this replica is alive every `beat_s`, and remove the clients of replicas that fell silent."""
        while True:
            self._publish({"kind": "beat"})
            try:
                await self.forget_silent()
            except Exception as exc:  # a client that cannot be told now is told at the next beat
                log.debug("%s: could not remove a silent replica's presence: %r", self.topic, exc)
            await asyncio.sleep(self.beat_s)

    async def forget_silent(self, now: float | None = None) -> list[int]:
        """Remove the presence of the clients of every replica not heard for `SILENT_BEATS` beats (at the
        monotonic time `now`): from the room's awareness and, by a removal message, from its clients here.
        Returns the client ids removed."""
        from pycrdt import read_message

        from serve.collab.protocol import awareness_removal

        now = time.monotonic() if now is None else now
        silent = [srv for srv, at in self._heard.items() if now - at > SILENT_BEATS * self.beat_s]
        gone: set[int] = set()
        for server in silent:
            del self._heard[server]
            gone |= self._speaks_for.pop(server, set())
        states = self.awareness.states
        gone = {cid for cid in gone if states.get(cid) is not None and cid != self.awareness.client_id}
        if not gone:
            return []
        meta = self.awareness.meta
        # At the clock each state has (a removal at an equal clock applies): the replica's next word about a
        # client, should it speak again, has a greater one and draws the client again.
        message = awareness_removal({cid: int(meta.get(cid, {}).get("clock", 0)) for cid in sorted(gone)})
        # Applied as our own (`origin` self): not published, each replica removes them by itself.
        self.awareness.apply_awareness_update(read_message(message[1:]), self)
        log.info(
            "%s: removed the presence of %d client(s) of silent replica(s) %s", self.topic, len(gone), silent
        )
        await self.send_to_clients(message)
        return sorted(gone)

    def close(self) -> None:
        """Stop publishing and receiving (idempotent)."""
        if self._observer is not None:
            with contextlib.suppress(KeyError):
                self.awareness.unobserve(self._observer)
            self._observer = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def _receive(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Message]) -> None:
        subscription = self._subscription
        if subscription is None:
            return
        for message in subscription:
            if message.data.get("server") == self.server:
                continue  # our own, back from the bus
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(inbox.put_nowait, message)

    async def _handle(self, message: Message) -> None:
        from pycrdt import create_awareness_message

        from serve.collab.protocol import awareness_states

        server = str(message.data.get("server", ""))
        self._heard[server] = time.monotonic()
        kind = message.data.get("kind")
        if kind == "query":
            # Each replica answers for its own clients (every replica with clients answers).
            states = self.awareness.states
            self._publish_states(
                cid for cid in self._speaks_for.get(self.server, ()) if states.get(cid) is not None
            )
        elif kind == "update":
            update = base64.b64decode(str(message.data.get("update", "")), validate=True)
            said = awareness_states(create_awareness_message(update))
            meta = self.awareness.meta
            before = {cid: meta.get(cid, {}).get("clock", -1) for cid in said}
            self.awareness.apply_awareness_update(update, self)
            # What was news (a newer clock; not a late message about a client that has moved on, nor an echo):
            # the clients `server` speaks for now, and those it says are gone.
            news = {cid: state for cid, (clock, state) in said.items() if clock > before[cid]}
            self._claim(server, [cid for cid, state in news.items() if state is not None])
            self._speaks_for.get(server, set()).difference_update(
                cid for cid, state in news.items() if state is None
            )
            await self.send_to_clients(create_awareness_message(update))

    def _claim(self, server: str, client_ids: Iterable[int]) -> None:
        """`server` now speaks for `client_ids` (a client that reconnected elsewhere is no longer another's)."""
        ids = set(client_ids)
        if not ids:
            return
        for other, owned in self._speaks_for.items():
            if other != server:
                owned -= ids
        self._speaks_for.setdefault(server, set()).update(ids)

    def _local_change(self, topic: str, event: tuple[dict[str, Any], Any]) -> None:
        changes, origin = event
        if topic != "update" or origin is self:
            return  # `update` also reports renewals (the others' timeouts need them); ours came from the bus
        self._claim(self.server, [*changes["added"], *changes["updated"]])  # this replica's clients now
        self._speaks_for.get(self.server, set()).difference_update(changes["removed"])
        self._publish_states([*changes["added"], *changes["updated"], *changes["removed"]])

    def _publish_states(self, client_ids: Iterable[int]) -> None:
        ids = [cid for cid in client_ids if cid != self.awareness.client_id]
        if ids:
            update = self.awareness.encode_awareness_update(ids)
            self._publish({"kind": "update", "update": base64.b64encode(update).decode("ascii")})

    def _publish(self, data: dict[str, Any]) -> None:
        try:
            self.bus.publish(self.topic, {"server": self.server, **data})
        except Exception as exc:  # a bus that is away costs the others our presence, never the room
            log.debug("%s: could not publish presence: %r", self.topic, exc)

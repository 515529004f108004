"""`CollabRooms`: the rooms of this server, opened on the first client of a workflow and closed after its last.

Opening a room is guarded by a lock per workflow: pycrdt-websocket's own `WebsocketServer.get_room` checks and
then starts, so two clients opening a new room at the same moment could get two rooms or one never synced
(`../shared/FACTS.md`: 85 of 160 trials). Here the first connection loads and starts the room while the second
waits on the lock and then joins it; the room counts its connections under the same lock, so it is never closed
between a joiner getting it and starting to use it.

The rooms run in a task group of their own, started with the app and stopped with it: clients get a close
frame (1001), pending changes are stored, and nothing is cancelled mid-write.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio import Event, Lock, create_task_group
from anyio.abc import TaskGroup
from starlette.websockets import WebSocket

from engine.bus import EventBus
from engine.store import NotFoundError, Store, backend_errors
from nodes.ids import WorkflowId
from serve.collab.channel import CLOSE_GOING_AWAY, SocketChannel
from serve.collab.room import Room

if TYPE_CHECKING:
    from serve.bus import WorkflowWatch

log = logging.getLogger("rayweave.collab")

#: Close codes: the workflow vanished (4000 + 404, as refusals), the database is away (1011, try again later).
CLOSE_NOT_FOUND = 4404
CLOSE_UNAVAILABLE = 1011


@dataclass(frozen=True)
class CollabOptions:
    """Tuning of the collaboration rooms."""

    #: How often a room looks for updates other servers stored (and, without a `WorkflowWatch`, for versions
    #: saved through the REST API).
    poll_s: float = 0.5
    #: Larger client messages close the socket (1009): a paste of this size is not an edit.
    max_message_bytes: int = 4 * 1024 * 1024
    #: Stored updates after which the log is merged into one row (also done when a room closes).
    compact_after: int = 500
    #: How long the writer lets changes gather before storing them as one row (each edit is stored within it).
    store_delay_s: float = 0.02
    #: How often an open socket's credentials and access are checked again (a revoked key, a share removed or
    #: lowered to viewer take effect within this time).
    recheck_s: float = 10.0


class CollabRooms:
    """The live rooms of this server over `store`. `start` it in the app's lifespan, `stop` it on shutdown."""

    def __init__(self, store: Store, options: CollabOptions | None = None) -> None:
        self.store = store
        self.options = options or CollabOptions()
        #: The event bus rooms share their presence over with the other servers (`PresenceRelay`); None: not
        #: shared. Set by the app once its bus is open; rooms opened from then on use it.
        self.presence_bus: EventBus | None = None
        #: This server's id in presence messages (it ignores its own).
        self.server_id = uuid.uuid4().hex
        #: Tells rooms of versions saved and workflows deleted on any server (`serve.bus.WorkflowWatch`); None:
        #: each room looks for them at every poll. Set by the app; rooms opened from then on use it.
        self.watch: WorkflowWatch | None = None
        self._rooms: dict[WorkflowId, Room] = {}
        self._locks: dict[WorkflowId, Lock] = {}
        self._task_group: TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = Event()
        self._ready = Event()

    async def start(self) -> None:
        """Start the task group the rooms run in (in a task of its own, so the server's shutdown never
        cancels a room from inside a request)."""
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="rayweave-collab")
        await self._ready.wait()

    async def _run(self) -> None:
        async with create_task_group() as tg:
            self._task_group = tg
            self._ready.set()
            await self._stop.wait()
            tg.cancel_scope.cancel()
        self._task_group = None

    async def stop(self) -> None:
        """Close every client (1001), store what is pending, stop every room."""
        for workflow_id in list(self._rooms):
            room = self._rooms.get(workflow_id)
            if room is not None:
                await room.close_clients(CLOSE_GOING_AWAY, "the server is shutting down; reconnect")
        with anyio.move_on_after(10):
            while self._rooms:  # each client's handler closes its room as it leaves
                await anyio.sleep(0.01)
        for workflow_id in list(self._rooms):
            room = self._rooms.pop(workflow_id)
            await room.close()
        self._stop.set()
        if self._runner is not None:
            await self._runner

    @property
    def open_rooms(self) -> int:
        """How many rooms are open now."""
        return len(self._rooms)

    def room(self, workflow_id: WorkflowId) -> Room | None:
        """The open room of a workflow, if any."""
        return self._rooms.get(workflow_id)

    @asynccontextmanager
    async def joined(self, workflow_id: WorkflowId) -> AsyncIterator[Room]:
        """The room of `workflow_id`, opened if needed, held open for the block."""
        room = await self._join(workflow_id)
        try:
            yield room
        finally:
            await self._leave(room)

    async def serve(
        self,
        websocket: WebSocket,
        workflow_id: WorkflowId,
        *,
        writable: bool,
        who: str,
        recheck: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Serve an accepted WebSocket in the room of `workflow_id` until the client leaves. `recheck`, called
        every `recheck_s`, says whether the client may still edit, or raises an `ApiError` that closes the socket
        (4000 + its status) when it may no longer even read."""
        channel = SocketChannel(
            websocket,
            workflow_id,
            writable=writable,
            who=who,
            max_message_bytes=self.options.max_message_bytes,
        )
        try:
            room = await self._join(workflow_id)
        except NotFoundError:  # deleted between the handshake's check and now
            await channel.close(CLOSE_NOT_FOUND, f"workflow {workflow_id} does not exist (or was deleted)")
            return
        except backend_errors() as exc:
            log.warning("workflow %s: cannot open its shared document: %s", workflow_id, exc)
            await channel.close(
                CLOSE_UNAVAILABLE,
                "the shared document cannot be loaded now (database unavailable); reconnect",
            )
            return
        try:
            async with create_task_group() as tg:
                if recheck is not None:
                    tg.start_soon(self._recheck, channel, recheck)
                await room.serve(channel)
                tg.cancel_scope.cancel()
        finally:
            await self._leave(room)
        await channel.close(1000, "")

    async def _recheck(self, channel: SocketChannel, recheck: Callable[[], Awaitable[bool]]) -> None:
        from serve.errors import ApiError
        from serve.problems import ws_refusal_code

        while not channel.closed:
            await anyio.sleep(self.options.recheck_s)
            try:
                channel.writable = await recheck()
            except ApiError as exc:
                await channel.close(ws_refusal_code(exc.status), exc.detail)
                return
            except Exception as exc:  # the database is away: keep the client, look again later
                log.warning("workflow %s: cannot check a client's access again: %s", channel.path, exc)

    async def _join(self, workflow_id: WorkflowId) -> Room:
        if self._task_group is None:
            raise RuntimeError("the collaboration rooms are not running (CollabRooms.start in the lifespan)")
        lock = self._locks.setdefault(workflow_id, Lock())
        async with lock:
            room = self._rooms.get(workflow_id)
            if room is None:
                room = Room(
                    workflow_id,
                    self.store,
                    poll_s=self.options.poll_s,
                    compact_after=self.options.compact_after,
                    store_delay_s=self.options.store_delay_s,
                    bus=self.presence_bus,
                    server=self.server_id,
                    watch=self.watch,
                )
                await room.open()
                await self._task_group.start(room.run)
                self._rooms[workflow_id] = room
            room.users += 1
            return room

    async def _leave(self, room: Room) -> None:
        lock = self._locks.setdefault(room.workflow_id, Lock())
        with anyio.CancelScope(shield=True):  # a cancelled handler still stores its room's changes
            async with lock:
                room.users -= 1
                if room.users > 0 or self._rooms.get(room.workflow_id) is not room:
                    return
                del self._rooms[room.workflow_id]
                await room.close()
                if lock.statistics().tasks_waiting == 0:  # nobody is about to reopen it: forget the lock too
                    self._locks.pop(room.workflow_id, None)

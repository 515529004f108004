"""`Room`: the live shared document of one workflow on this server, kept in step with the store.

A room wraps pycrdt-websocket's `YRoom` (the y-websocket protocol: sync, updates broadcast to every client,
awareness) and adds what makes it durable and shared between servers:

- **Loading**: the document is rebuilt from the workflow's update log (`store.collab`); a workflow without one
  starts it from its latest stored version (`serve.collab.document.load_workflow`).
- **Persisting**: every change a client makes is appended to the log by one writer task (changes that arrive
  together are merged into one row), so a restart loses no edit and a late joiner gets everything.
- **Following**: every `poll_s` the room applies updates other servers appended. A version saved through the
  REST API (on any server) reaches the room through the server's `WorkflowWatch` (`serve.bus`): a notice on the
  event bus, or the watch's own periodic read of the store for a notice that was lost. The room then takes it
  in, merged field by field (`document.apply_change`), recorded atomically with the new base version so that
  exactly one server makes that change; a deleted workflow's clients are told (close code 4404). A room
  without a watch looks for saved versions at every poll.
- **Presence** (who is here, their pointers and selections) is not stored: with an event bus, the room shares it
  with the same room on the other servers (`serve.collab.presence.PresenceRelay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio import TASK_STATUS_IGNORED, Event, Lock, create_memory_object_stream, create_task_group
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pycrdt import Doc, TransactionEvent, merge_updates
from pycrdt.websocket import YRoom

from engine.bus import EventBus
from engine.store import NotFoundError, Store
from nodes.ids import WorkflowId
from serve.collab.channel import SocketChannel
from serve.collab.document import apply_change, load_workflow

if TYPE_CHECKING:
    from serve.bus import WorkflowWatch

log = logging.getLogger("rayweave.collab")

#: Close code for the clients of a workflow that was deleted while they edited it (4000 + 404, as refusals).
CLOSE_GONE = 4404


class Room:
    """The shared document of `workflow_id` on this server. Open with `open`, run with `run` in a task group,
    close with `close` (which waits until every change is stored)."""

    def __init__(
        self,
        workflow_id: WorkflowId,
        store: Store,
        *,
        poll_s: float,
        compact_after: int,
        store_delay_s: float = 0.0,
        bus: EventBus | None = None,
        server: str = "",
        watch: WorkflowWatch | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        #: Tells the room of versions saved (or the workflow deleted) on any server; None: the poll looks.
        self.watch = watch
        self.store = store
        self.poll_s = poll_s
        self.compact_after = compact_after
        self.store_delay_s = store_delay_s
        self.doc: Doc[Any] = Doc()
        self.yroom = YRoom(ready=True, ydoc=self.doc, exception_handler=_log_exception, log=log)
        self.yroom.on_message_error = self._message_error
        #: Connections counted by `CollabRooms` (under its per-room lock).
        self.users = 0
        self.base_version = 0
        self.last_seq = 0
        self._own: set[int] = set()
        self._rows_since_compaction = 0
        self._quiet = False  # True while applying what the store already holds (not written back)
        self._sync = Lock()
        self._stopped = Event()
        self._writer_done = Event()
        self._send: MemoryObjectSendStream[bytes]
        self._receive: MemoryObjectReceiveStream[bytes]
        self._send, self._receive = create_memory_object_stream[bytes](max_buffer_size=100_000)
        self._subscription: Any = None
        # The watch's calls (from its threads) wake `_follower` on the room's loop; one pending wake is enough,
        # the follower reads the store. `_versions_due`: a wake whose look failed, which the poll makes again.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_send, self._wake_receive = create_memory_object_stream[None](max_buffer_size=1)
        self._versions_due = False
        self.presence = None
        if bus is not None:
            from serve.collab.presence import PresenceRelay

            self.presence = PresenceRelay(
                bus, str(workflow_id), server, self.yroom.awareness, self._send_to_clients
            )

    # -- life cycle -----------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the document from the store (starting the log from the latest version when there is none)."""
        state = await anyio.to_thread.run_sync(self.store.collab.get, self.workflow_id)
        if state is None:
            latest = await anyio.to_thread.run_sync(self.store.workflows.latest, self.workflow_id)
            first: Doc[Any] = Doc()
            load_workflow(first, latest.document, version=latest.version)
            state = await anyio.to_thread.run_sync(
                lambda: self.store.collab.start(
                    self.workflow_id, base_version=latest.version, update=first.get_update()
                )
            )
        rows = await anyio.to_thread.run_sync(lambda: self.store.collab.read(self.workflow_id))
        self._apply_stored([update for _, update in rows])
        self.last_seq = max((seq for seq, _ in rows), default=0)
        self._rows_since_compaction = len(rows)
        self.base_version = state.base_version
        self._subscription = self.doc.observe(self._changed)
        self._loop = asyncio.get_running_loop()
        if self.watch is not None:  # before the look below: a version saved from now on is reported
            await anyio.to_thread.run_sync(self.watch.watch, str(self.workflow_id), self._saved_elsewhere)
        try:
            await self.follow()  # a version saved while the room was closed
        except BaseException:
            self._unwatch()
            raise

    async def run(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Serve the room until `close`: the YRoom, the writer and the poller."""
        async with create_task_group() as tg:
            await tg.start(self.yroom.start)
            tg.start_soon(self._writer)
            tg.start_soon(self._poller)
            tg.start_soon(self._follower)
            if self.presence is not None:
                tg.start_soon(self.presence.run)
            task_status.started()
            await self._stopped.wait()
            tg.cancel_scope.cancel()

    async def close(self) -> None:
        """Store every pending change, compact the log, and stop the room."""
        self._unwatch()
        self._wake_send.close()
        self._send.close()
        with anyio.move_on_after(30):
            await self._writer_done.wait()
        try:
            await self._compact()
        except Exception as exc:
            log.warning("could not compact the shared document of workflow %s: %s", self.workflow_id, exc)
        if self.presence is not None:
            self.presence.close()
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
        if self.yroom._task_group is not None:
            await self.yroom.stop()
        self._stopped.set()

    async def serve(self, channel: SocketChannel) -> None:
        """Serve one client until it leaves (y-websocket protocol, through the YRoom), first telling it who is
        here; then tell the others its presence is gone (the YRoom does neither)."""
        try:
            await self._send_presence(channel)
            await self.yroom.serve(channel)
        finally:
            with anyio.CancelScope(shield=True):
                await self._forget_presence(channel)

    async def _send_presence(self, channel: SocketChannel) -> None:
        """Send a joining client the presence of everyone here (the awareness states the room holds), as the
        JavaScript reference server does: else it would see the others only at their next change or renewal
        (y-protocols renews every 15 s)."""
        from pycrdt import create_awareness_message

        awareness = self.yroom.awareness
        # Every client with a state, an empty one included (y-websocket's until a field is set), as JS does.
        here = [
            cid for cid, state in awareness.states.items() if cid != awareness.client_id and state is not None
        ]
        if here:
            await channel.send(create_awareness_message(awareness.encode_awareness_update(here)))

    async def _forget_presence(self, channel: SocketChannel) -> None:
        if not channel.presence_ids:
            return
        from pycrdt import read_message

        from serve.collab.protocol import awareness_removal

        meta = self.yroom.awareness.meta
        clocks = {cid: int(meta.get(cid, {}).get("clock", 0)) + 1 for cid in sorted(channel.presence_ids)}
        message = awareness_removal(clocks)
        try:
            self.yroom.awareness.apply_awareness_update(read_message(message[1:]), self)
        except Exception as exc:
            log.debug("workflow %s: removing presence %s: %r", self.workflow_id, sorted(clocks), exc)
        for client in list(self.yroom.clients):
            await client.send(message)

    async def _send_to_clients(self, message: bytes) -> None:
        """Send `message` to every client of the room here (one that is gone is skipped)."""
        for client in list(self.yroom.clients):
            try:
                await client.send(message)
            except Exception as exc:
                log.debug("workflow %s: a client left before a message: %r", self.workflow_id, exc)

    async def close_clients(self, code: int, reason: str) -> None:
        """Close every client's socket (server shutdown, workflow deleted)."""
        for client in list(self.yroom.clients):
            if isinstance(client, SocketChannel):
                await client.close(code, reason)

    # -- following the store --------------------------------------------------------------------------------

    async def follow(self, *, versions: bool = True) -> None:
        """Apply what other servers stored since the last look, then (`versions`) take in a newer stored version
        (raises the store's `NotFoundError` when the workflow was deleted)."""
        async with self._sync:
            state = await anyio.to_thread.run_sync(self.store.collab.get, self.workflow_id)
            rows = await anyio.to_thread.run_sync(
                lambda: self.store.collab.read(self.workflow_id, after=self.last_seq)
            )
            self._apply_stored([update for seq, update in rows if seq not in self._own])
            for seq, _ in rows:
                self._own.discard(seq)
                self.last_seq = max(self.last_seq, seq)
            self._rows_since_compaction += len(rows)
            if state is not None:
                self.base_version = state.base_version
            if not versions:
                return
            workflow = await anyio.to_thread.run_sync(self.store.workflows.get, self.workflow_id)
            if workflow.latest_version != self.base_version:
                await self._take_in(workflow.latest_version)

    async def _take_in(self, version: int) -> None:
        """Merge stored `version` into the document: what changed from the base version to it."""
        base = self.base_version
        old = await anyio.to_thread.run_sync(self.store.workflows.get_version, self.workflow_id, base)
        new = await anyio.to_thread.run_sync(self.store.workflows.get_version, self.workflow_id, version)
        update = self._change_update(
            lambda doc: apply_change(doc, old.document, new.document, version=version)
        )
        seq = await anyio.to_thread.run_sync(
            lambda: self.store.collab.rebase(
                self.workflow_id, expected_base=base, new_base=version, update=update
            )
        )
        if seq is None:  # another server took it in first: its update comes with the next look
            return
        self.base_version = version
        if update is not None:
            self._apply_stored([update])
            self._own.add(seq)
        log.info("workflow %s: stored version %s merged into the shared document", self.workflow_id, version)

    async def mark_saved(self, version: int) -> None:
        """Record that the document was saved as `version` (its new base; `meta.version` says so)."""
        async with self._sync:
            base = self.base_version
            update = self._change_update(lambda doc: apply_change(doc, {}, {}, version=version))
            seq = await anyio.to_thread.run_sync(
                lambda: self.store.collab.rebase(
                    self.workflow_id, expected_base=base, new_base=version, update=update
                )
            )
            if seq is None:
                return
            self.base_version = version
            if update is not None:
                self._apply_stored([update])
                self._own.add(seq)

    def _change_update(self, change: Callable[[Doc[Any]], None]) -> bytes | None:
        """The update `change` makes, computed on a copy of the document (so it can be stored first)."""
        scratch: Doc[Any] = Doc()
        scratch.apply_update(self.doc.get_update())
        captured: list[bytes] = []
        scratch.observe(lambda event: captured.append(event.update))
        change(scratch)
        return merge_updates(*captured) if captured else None

    def _saved_elsewhere(self, workflow_id: str, version: int | None) -> None:
        """The watch's callback (from one of its threads): the latest stored version changed; wake `_follower`."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the room is gone
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._wake_send.send_nowait(None)  # WouldBlock: a wake is pending already

    def _unwatch(self) -> None:
        if self.watch is not None:
            self.watch.unwatch(str(self.workflow_id), self._saved_elsewhere)

    async def _follower(self) -> None:
        """Take in each version the watch reports (its notices and its catch-up reads of the store)."""
        async with self._wake_receive:
            async for _ in self._wake_receive:
                try:
                    await self.follow()
                    self._versions_due = False
                except NotFoundError:
                    await self.close_clients(CLOSE_GONE, f"workflow {self.workflow_id} was deleted")
                    return
                except Exception as exc:  # the database is away: the poll looks again (the watch will not)
                    self._versions_due = True
                    log.warning("workflow %s: cannot take in a saved version: %s", self.workflow_id, exc)

    async def _poller(self) -> None:
        failures = 0
        while True:
            await anyio.sleep(self.poll_s)
            try:
                # With a watch, saved versions come from it (`_follower`); the poll reads other servers' edits.
                versions = self.watch is None or self._versions_due
                await self.follow(versions=versions)
                if versions:
                    self._versions_due = False
                failures = 0
            except NotFoundError:
                await self.close_clients(CLOSE_GONE, f"workflow {self.workflow_id} was deleted")
                return
            except Exception as exc:  # the database is away: keep serving from memory, say so once
                failures += 1
                if failures == 1:
                    log.warning("workflow %s: cannot follow the store: %s", self.workflow_id, exc)

    # -- persisting -----------------------------------------------------------------------------------------

    def _apply_stored(self, updates: list[bytes]) -> None:
        if not updates:
            return
        self._quiet = True
        try:
            with self.doc.transaction():
                for update in updates:
                    self.doc.apply_update(update)
        finally:
            self._quiet = False

    def _changed(self, event: TransactionEvent) -> None:
        if self._quiet:
            return
        try:
            self._send.send_nowait(event.update)
        except (anyio.ClosedResourceError, anyio.WouldBlock) as exc:
            log.error("workflow %s: a change could not be queued for storing: %r", self.workflow_id, exc)

    async def _writer(self) -> None:
        try:
            async with self._receive:
                async for update in self._receive:
                    if self.store_delay_s > 0:  # let a burst of typing gather into one row
                        with anyio.CancelScope(shield=True):
                            await anyio.sleep(self.store_delay_s)
                    batch = [update]
                    while True:
                        try:
                            batch.append(self._receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    await self._store(merge_updates(*batch) if len(batch) > 1 else update)
        finally:
            self._writer_done.set()

    async def _store(self, update: bytes) -> None:
        delay = 0.2
        while True:
            try:
                async with self._sync:
                    seq = await anyio.to_thread.run_sync(self.store.collab.append, self.workflow_id, update)
                    self._own.add(seq)
                    self._rows_since_compaction += 1
                break
            except Exception as exc:
                log.warning("workflow %s: storing a change failed, retrying: %s", self.workflow_id, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self._rows_since_compaction >= self.compact_after:
            await self._compact()

    async def _compact(self) -> None:
        """Replace the stored log by one update holding the document (when it has grown)."""
        if self._rows_since_compaction < 2:
            return
        async with self._sync:
            rows = await anyio.to_thread.run_sync(lambda: self.store.collab.read(self.workflow_id))
            if len(rows) < 2:
                return
            upto = rows[-1][0]
            merged = merge_updates(*[update for _, update in rows])
            await anyio.to_thread.run_sync(
                lambda: self.store.collab.compact(self.workflow_id, upto=upto, update=merged)
            )
            self._rows_since_compaction = 1

    async def _message_error(self, exc: Exception, message: bytes, channel: Any) -> bool:
        """A message the room could not apply (a malformed update): refused to its sender, the room goes on."""
        from serve.collab.protocol import permission_denied

        log.info("workflow %s: refused a message of %d bytes: %s", self.workflow_id, len(message), exc)
        await channel.send(permission_denied(f"update refused: it could not be applied ({exc})"))
        return True


def _log_exception(exception: Exception, logger: logging.Logger) -> bool:
    logger.warning("collab room: %r", exception)
    return True

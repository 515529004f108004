"""`CollabClient`: a Python client of `WS /v1/workflows/{id}/collab` (y-websocket protocol) for scripts, tests
and benchmarks; browsers use y-websocket's `WebsocketProvider` on the same route.

    async with CollabClient.connect(url, workflow_id, api_key) as client:
        await client.synced.wait()
        client.nodes["n1"]["params"]["column"] = "x"   # sent to everyone at once

Changes made to `client.doc` are sent as updates; changes from others are applied to it. Refusals from the
server (y-protocols permission denied: a read-only client's update, a malformed message) are kept in `denied`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from pycrdt import (
    Doc,
    Map,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from serve.collab.document import roots
from serve.collab.protocol import AUTH_MESSAGE, read_permission_denied


class CollabClient:
    """One connection to a workflow's shared document; use `connect`."""

    def __init__(self, websocket: Any, doc: Doc[Any]) -> None:
        self.websocket = websocket
        self.doc = doc
        self.synced = asyncio.Event()
        self.denied: list[str] = []
        self.awareness: list[bytes] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._remote = False
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._subscription = doc.observe(self._local_change)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        workflow_id: str,
        api_key: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        doc: Doc[Any] | None = None,
    ) -> AsyncIterator[CollabClient]:
        """Connect to the shared document of `workflow_id` on the server at `base_url` (http:// or ws://)."""
        url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        sent = dict(headers or {})
        if api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        async with cls.connect_url(
            f"{url}/v1/workflows/{workflow_id}/collab", headers=sent, doc=doc
        ) as client:
            yield client

    @classmethod
    @contextlib.asynccontextmanager
    async def connect_url(
        cls, url: str, *, headers: dict[str, str] | None = None, doc: Doc[Any] | None = None
    ) -> AsyncIterator[CollabClient]:
        """Connect to any y-websocket room at `url` (ws://host/path/room); `connect` builds rayweave's."""
        from websockets.asyncio.client import connect

        async with connect(url, additional_headers=headers or {}, max_size=None) as websocket:
            client = cls(websocket, doc or Doc())
            client._start()
            try:
                yield client
            finally:
                await client._stop()

    @property
    def nodes(self) -> Map[Any]:
        """The `nodes` root map of the shared document."""
        return roots(self.doc)["nodes"]

    @property
    def meta(self) -> Map[Any]:
        """The `meta` root map (name, format, description, version)."""
        return roots(self.doc)["meta"]

    async def changed(self, timeout: float = 5.0) -> None:
        """Wait until a change from the server is applied (after this call)."""
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout)

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `condition()` holds, looking again after each change from the server."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if condition():
                    return
                await self._changed.wait()

    async def send_presence(self, state: bytes) -> None:
        """Send an awareness message (an encoded awareness update)."""
        await self.websocket.send(create_awareness_message(state))

    async def send_raw(self, message: bytes) -> None:
        """Send bytes as they are (for testing what the server refuses)."""
        await self.websocket.send(message)

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the server closes the socket; returns the close code."""
        await asyncio.wait_for(self.websocket.wait_closed(), timeout)
        await asyncio.sleep(0)
        self.close_code = self.websocket.close_code
        self.close_reason = self.websocket.close_reason or ""
        return self.close_code

    def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer())]
        self._outbox.put_nowait(create_sync_message(self.doc))

    async def _stop(self) -> None:
        self._outbox.put_nowait(None)
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(self._tasks[1], 5)
        self._tasks[0].cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._tasks[0]
        self.doc.unobserve(self._subscription)

    def _local_change(self, event: TransactionEvent) -> None:
        if not self._remote:
            self._outbox.put_nowait(create_update_message(event.update))

    async def _writer(self) -> None:
        while (message := await self._outbox.get()) is not None:
            try:
                await self.websocket.send(message)
            except Exception:
                return

    async def _reader(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self.websocket:
                if isinstance(message, str) or not message:
                    continue
                if message[0] == YMessageType.SYNC:
                    self._remote = True
                    try:
                        reply = handle_sync_message(message[1:], self.doc)
                    finally:
                        self._remote = False
                    if reply is not None:
                        self._outbox.put_nowait(reply)
                    if message[1] == YSyncMessageType.SYNC_STEP2:
                        self.synced.set()
                    self._changed.set()
                elif message[0] == AUTH_MESSAGE:
                    reason = read_permission_denied(message)
                    if reason is not None:
                        self.denied.append(reason)
                elif message[0] == YMessageType.AWARENESS:
                    self.awareness.append(message)
        except ConnectionClosed:
            pass
        self.close_code = self.websocket.close_code
        self.close_reason = self.websocket.close_reason or ""

"""`SocketChannel`: one client's WebSocket as the `pycrdt` channel a room serves, with this server's rules.

- A client without write permission syncs read-only: its updates are dropped before the room sees them (not
  applied, not broadcast, not stored) and it is told why with y-protocols' permission-denied message.
- A message over the size limit closes the socket (1009); a text frame closes it (1003); a message that is
  not y-websocket protocol is answered with permission denied and dropped.
- Sending never raises: a client that went away is marked closed and skipped. pycrdt-websocket's room sends to
  every client from the task serving whichever client spoke, so a send error would otherwise end that
  (healthy) client's connection.
"""

from __future__ import annotations

import logging
from typing import Any

from anyio import Lock
from starlette.websockets import WebSocket, WebSocketState

from serve.collab.protocol import Kind, awareness_states, classify, permission_denied

log = logging.getLogger("rayweave.collab")

#: Close codes: message too big, unsupported data (a text frame), going away (server shutting down).
CLOSE_TOO_BIG = 1009
CLOSE_UNSUPPORTED = 1003
CLOSE_GOING_AWAY = 1001


class SocketChannel:
    """A pycrdt `Channel` over a Starlette WebSocket; iterate it for the messages the room may apply."""

    def __init__(
        self,
        websocket: WebSocket,
        path: str,
        *,
        writable: bool,
        who: str,
        max_message_bytes: int,
    ) -> None:
        self._websocket = websocket
        self._path = path
        self.writable = writable
        self.who = who
        self.max_message_bytes = max_message_bytes
        self.closed = False
        self.refused = 0
        #: The awareness client ids this client spoke for (its presence).
        self.presence_ids: set[int] = set()
        self._send_lock = Lock()

    @property
    def path(self) -> str:
        """The room this channel belongs to (the workflow id)."""
        return self._path

    def __aiter__(self) -> SocketChannel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            message = await self._receive()
            kind = classify(message)
            if kind is Kind.MALFORMED:
                self.refused += 1
                await self.send(
                    permission_denied(f"message refused: not y-websocket protocol ({len(message)} bytes)")
                )
                continue
            if kind is Kind.WRITE and not self.writable:
                self.refused += 1
                await self.send(
                    permission_denied(
                        f"update refused: {self.who} may view workflow {self._path} but not edit it "
                        "(editing needs the workflows:write scope and editor access to the workflow)"
                    )
                )
                continue
            if kind is Kind.NOOP and not self.writable:
                continue
            if kind is Kind.PRESENCE:  # remembered, so the room can remove them when this client leaves
                self.presence_ids.update(awareness_states(message))
            return message

    async def recv(self) -> bytes:
        """The next message the room may apply (raises `StopAsyncIteration` when the client is gone)."""
        return await self.__anext__()

    async def _receive(self) -> bytes:
        if self.closed:
            raise StopAsyncIteration
        try:
            event: Any = await self._websocket.receive()
        except Exception:  # the socket broke under us: same as a disconnect
            self.closed = True
            raise StopAsyncIteration from None
        if event["type"] == "websocket.disconnect":
            self.closed = True
            raise StopAsyncIteration
        data = event.get("bytes")
        if data is None:
            await self.close(CLOSE_UNSUPPORTED, "y-websocket messages are binary frames")
            raise StopAsyncIteration
        if len(data) > self.max_message_bytes:
            await self.close(
                CLOSE_TOO_BIG,
                f"message of {len(data)} bytes refused; the limit is {self.max_message_bytes}",
            )
            raise StopAsyncIteration
        return bytes(data)

    async def send(self, message: bytes) -> None:
        """Send a message; a client that is gone is marked closed instead of raising."""
        if self.closed:
            return
        try:
            async with self._send_lock:
                await self._websocket.send_bytes(message)
        except Exception as exc:  # disconnected meanwhile (ClientDisconnected, RuntimeError, OSError)
            self.closed = True
            log.debug("collab client of %s went away while sending: %r", self._path, exc)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with `code` and `reason` (cut to what a close frame holds); never raises."""
        from serve.problems import ws_close_reason

        if self.closed:
            return
        self.closed = True
        try:
            if self._websocket.application_state != WebSocketState.DISCONNECTED:
                await self._websocket.close(code=code, reason=ws_close_reason(reason))
        except Exception as exc:
            log.debug("closing a collab client of %s: %r", self._path, exc)

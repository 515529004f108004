"""Live co-editing of workflows (issue 23, ADR 019): one Yjs document per workflow, synced over
`WS /v1/workflows/{id}/collab` with the y-websocket protocol (pycrdt-websocket's `YRoom`), stored as an update
log in the store, and saved as a version through the normal validation.

Modules: `document` (workflow <-> Yjs layout), `protocol` (message kinds, permission denied), `channel` (one
client's socket, read-only filtering and limits), `room` (one workflow's live document kept in step with the
store), `rooms` (open/close under a lock per room, start/stop with the app), `save`, `routes`.
"""

from __future__ import annotations

from serve.collab.rooms import CollabOptions, CollabRooms

__all__ = ["CollabOptions", "CollabRooms"]

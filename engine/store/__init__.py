"""The persistent store of rayweave: workflows and versions, runs, node runs, events, plugins, users, API keys,
permissions and the audit log, on SQLite (default) or PostgreSQL.

`open_store(url)` returns a `Store` whose attributes are the repositories. Importing this package does no work;
the database is touched only when a store is opened.
"""

from __future__ import annotations

from engine.store.db import DatabaseOptions, create_db_engine, normalize_url, open_store
from engine.store.diff import Edge, NodeChange, WorkflowDiff, diff_documents
from engine.store.errors import (
    DuplicateAttemptError,
    DuplicateEventError,
    IdempotencyConflictError,
    InvalidApiKeyError,
    LastAdminKeyError,
    MigrationError,
    NotFoundError,
    ReservedUsernameError,
    RunStateError,
    StoreError,
    VersionConflictError,
)
from engine.store.events import NewEvent
from engine.store.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, CreatedRun, RunPage
from engine.store.store import Store

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "CreatedRun",
    "DatabaseOptions",
    "DuplicateAttemptError",
    "DuplicateEventError",
    "Edge",
    "IdempotencyConflictError",
    "InvalidApiKeyError",
    "LastAdminKeyError",
    "MigrationError",
    "NewEvent",
    "NodeChange",
    "NotFoundError",
    "ReservedUsernameError",
    "RunPage",
    "RunStateError",
    "Store",
    "StoreError",
    "VersionConflictError",
    "WorkflowDiff",
    "create_db_engine",
    "diff_documents",
    "normalize_url",
    "open_store",
]

"""The persistent store of rayweave: workflows and versions, runs, node runs, events, plugins, users, API keys,
permissions and the audit log, on SQLite (default), PostgreSQL, MariaDB/MySQL or Redis.

`Store` is the protocol every caller types its store with (`engine.store.protocol`, ADR 011); `open_store(url)`
returns the SQL backend (`SqlStore`) or, for a redis:// URL, the Redis one (`engine.store.redis`), whose
attributes are the repositories. Nothing outside this package
touches SQLAlchemy: database failures are recognised with `backend_errors()` and `is_unavailable()`. Importing
this package does no work; the database is touched only when a store is opened.
"""

from __future__ import annotations

from engine.store.db import DatabaseOptions, create_db_engine, normalize_url
from engine.store.diff import Edge, NodeChange, WorkflowDiff, diff_documents
from engine.store.errors import (
    DuplicateAttemptError,
    DuplicateEventError,
    DurabilityError,
    IdempotencyConflictError,
    InvalidApiKeyError,
    LastAdminKeyError,
    MigrationError,
    NotFoundError,
    ReservedUsernameError,
    RunQuotaExceededError,
    RunStateError,
    StoreError,
    VersionConflictError,
    WorkflowFileError,
    backend_errors,
    is_unavailable,
)
from engine.store.events import NewEvent
from engine.store.models import DeliveryStatus
from engine.store.open import open_store
from engine.store.protocol import Store
from engine.store.reports import MetricsSnapshot, NodeRunFigures, NodeRunHistoryRow, RunHistoryRow
from engine.store.runs import CreatedRun, RunPage
from engine.store.store import SqlStore

__all__ = [
    "CreatedRun",
    "DatabaseOptions",
    "DeliveryStatus",
    "DuplicateAttemptError",
    "DuplicateEventError",
    "DurabilityError",
    "Edge",
    "IdempotencyConflictError",
    "InvalidApiKeyError",
    "LastAdminKeyError",
    "MetricsSnapshot",
    "MigrationError",
    "NewEvent",
    "NodeChange",
    "NodeRunFigures",
    "NodeRunHistoryRow",
    "NotFoundError",
    "ReservedUsernameError",
    "RunHistoryRow",
    "RunPage",
    "RunQuotaExceededError",
    "RunStateError",
    "SqlStore",
    "Store",
    "StoreError",
    "VersionConflictError",
    "WorkflowDiff",
    "WorkflowFileError",
    "backend_errors",
    "create_db_engine",
    "diff_documents",
    "is_unavailable",
    "normalize_url",
    "open_store",
]

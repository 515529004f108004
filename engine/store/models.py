"""The tables of the store (SQLModel over SQLAlchemy).

Composite natural keys are used where the domain has them (a workflow version is `(workflow_id, version)`, an
event is `(run_id, seq)`, a node attempt is `(run_id, node_id, attempt)`), so the uniqueness the engine relies on
is enforced by the database and the most frequent lookups use the primary-key index. Secondary indexes exist only
for queries the API and the recovery sweep make; each is named so migrations stay stable.

Statuses are stored as short strings (the values of the engine's closed `RunStatus`/`NodeStatus` enums, which are
`str` enums), so the store does not need to import the executor.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import AutoString, Field, SQLModel

from engine.store.columns import JSONValue, LongText, UnboundedString, UTCDateTime
from nodes.ids import NodeId, NodeTypeId, RunId, WorkflowId
from nodes.states import EventType, NodeStatus, RunStatus

# One metadata object for the whole store keeps Alembic's autogenerate comparison honest; naming conventions make
# constraint names deterministic on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The store's own metadata (not SQLModel's global one), so nothing else that uses SQLModel leaks into migrations.
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: Iterable[str]) -> str:
    """The SQL of a CHECK constraint keeping `column` to `values` (portable: SQLite, PostgreSQL, MariaDB)."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of every table of the store; binds them to the store's `metadata`."""


def _id_type(length: int) -> AutoString:
    """The column type of an id typed with a `nodes.ids` NewType (SQLModel cannot map one by itself): the
    VARCHAR(length) SQLModel gives a `str` field."""
    return AutoString(length=length)


#: Surrogate integer keys: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements there).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Workflow(StoreModel, table=True):
    """A stored workflow: its identity and the number of its latest immutable version."""

    __tablename__ = "workflows"
    __table_args__ = (sa.Index("ix_workflows_owner_name", "owner", "name"),)

    id: WorkflowId = Field(primary_key=True, max_length=64, sa_type=_id_type(64))
    name: str = Field(max_length=200)
    owner: str = Field(default="local", max_length=200)
    latest_version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WorkflowVersion(StoreModel, table=True):
    """One immutable version of a workflow: the canonical document and its content hash."""

    __tablename__ = "workflow_versions"
    __table_args__ = (sa.Index("ix_workflow_versions_content_hash", "content_hash"),)

    workflow_id: WorkflowId = Field(
        primary_key=True, max_length=64, sa_type=_id_type(64), foreign_key="workflows.id", ondelete="CASCADE"
    )
    version: int = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_type=JSONValue)
    content_hash: str = Field(max_length=64)
    author: str = Field(default="", max_length=200)
    message: str = Field(default="", sa_type=UnboundedString)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Run(StoreModel, table=True):
    """One execution of a stored workflow version or of an inline document."""

    __tablename__ = "runs"
    __table_args__ = (
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_runs_owner_idempotency_key"),
        sa.Index("ix_runs_workflow_status_created", "workflow_id", "status", "created_at"),
        sa.Index("ix_runs_workflow_created", "workflow_id", "created_at"),
        sa.Index("ix_runs_status_created", "status", "created_at"),
        sa.Index("ix_runs_owner_created", "owner", "created_at"),
        sa.Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
        # The newest runs first, unfiltered (an admin's run list; migration 0010): read backwards, no sort.
        sa.Index("ix_runs_created_id", "created_at", "id"),
        sa.CheckConstraint(one_of("status", RunStatus), name="status"),
    )

    id: RunId = Field(primary_key=True, max_length=64, sa_type=_id_type(64))
    workflow_id: WorkflowId | None = Field(
        default=None, max_length=64, sa_type=_id_type(64), foreign_key="workflows.id"
    )
    workflow_version: int | None = Field(default=None)
    document: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    document_hash: str = Field(max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    outputs: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    #: Names of the workflow outputs whose node was skipped (not in `outputs`); None for runs recorded before.
    skipped_outputs: list[str] | None = Field(default=None, sa_type=JSONValue)
    status: str = Field(max_length=32)
    owner: str = Field(default="local", max_length=200)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64)
    coordinator: str | None = Field(default=None, max_length=200)
    plugin_versions: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    error: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    last_seq: int = Field(default=0)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NodeRun(StoreModel, table=True):
    """One attempt of one node in one run; retries and resumed runs add attempts, never overwrite them."""

    __tablename__ = "node_runs"
    __table_args__ = (
        sa.Index("ix_node_runs_started_at", "started_at"),
        sa.CheckConstraint(one_of("status", NodeStatus), name="status"),
        # PostgreSQL: 16 hash partitions by run (migration 0010, ADR 023); elsewhere a plain table.
        {"postgresql_partition_by": "HASH (run_id)"},
    )

    run_id: RunId = Field(
        primary_key=True, max_length=64, sa_type=_id_type(64), foreign_key="runs.id", ondelete="CASCADE"
    )
    node_id: NodeId = Field(primary_key=True, max_length=200, sa_type=_id_type(200))
    attempt: int = Field(primary_key=True)
    #: "" when the recorder did not know the type.
    node_type: NodeTypeId = Field(default=NodeTypeId(""), max_length=200, sa_type=_id_type(200))
    status: str = Field(max_length=32)
    cache_hit: bool = Field(default=False)
    result_location: str | None = Field(default=None, sa_type=UnboundedString)
    error: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


#: The event types outbound webhooks may subscribe to (`engine.webhooks`): the ends of runs, failures and
#: anomalies, never the chatty ones (logs, progress, outputs, every node start). A partial index holds only these.
NOTIFIED_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.RUN_STARTED,
    EventType.RUN_SUCCEEDED,
    EventType.RUN_FAILED,
    EventType.RUN_CANCELLED,
    EventType.NODE_FAILED,
    EventType.NODE_RETRYING,
    EventType.ANOMALY_DETECTED,
)


class Event(StoreModel, table=True):
    """One persisted event of a run; `seq` numbers a run's events 1, 2, 3, ... without gaps or duplicates."""

    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint(one_of("type", EventType), name="type"),
        # Only the anomaly events (migration 0008): /metrics counts them without reading every event.
        sa.Index(
            "ix_events_anomalies",
            "run_id",
            sqlite_where=sa.text(f"type = '{EventType.ANOMALY_DETECTED}'"),
            postgresql_where=sa.text(f"type = '{EventType.ANOMALY_DETECTED}'"),
        ),
        # Only the events webhooks may subscribe to (migration 0009): the delivery worker reads them by time.
        sa.Index(
            "ix_events_notified_created",
            "created_at",
            sqlite_where=sa.text(one_of("type", NOTIFIED_EVENT_TYPES)),
            postgresql_where=sa.text(one_of("type", NOTIFIED_EVENT_TYPES)),
        ),
        # PostgreSQL: 16 hash partitions by run (migration 0010, ADR 023); elsewhere a plain table.
        {"postgresql_partition_by": "HASH (run_id)"},
    )

    run_id: RunId = Field(
        primary_key=True, max_length=64, sa_type=_id_type(64), foreign_key="runs.id", ondelete="CASCADE"
    )
    seq: int = Field(primary_key=True)
    type: str = Field(max_length=64)
    node_id: NodeId | None = Field(default=None, max_length=200, sa_type=_id_type(200))
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Plugin(StoreModel, table=True):
    """An installed plugin package version and its manifest."""

    __tablename__ = "plugins"

    name: str = Field(primary_key=True, max_length=200)
    version: str = Field(primary_key=True, max_length=64)
    manifest: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    enabled: bool = Field(default=True)
    installed_at: datetime = Field(sa_type=UTCDateTime)


class Tenant(StoreModel, table=True):
    """A tenant: the users it holds see each other's shared workflows; each user has one role in it."""

    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class User(StoreModel, table=True):
    """A user (a person or a service account) that owns API keys and holds permissions."""

    __tablename__ = "users"
    __table_args__ = (sa.Index("ix_users_tenant_id", "tenant_id"),)

    id: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=200, unique=True)
    email: str | None = Field(default=None, max_length=320)
    display_name: str = Field(default="", max_length=200)
    is_admin: bool = Field(default=False)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: The user's tenant (`engine.store.tenants.DEFAULT_TENANT` unless told otherwise).
    tenant_id: str = Field(default="default", max_length=64, foreign_key="tenants.id")
    #: The user's role in its tenant (`engine.store.roles.ROLES`); what it allows is `serve.policy`'s data.
    role: str = Field(default="member", max_length=32)


class ApiKey(StoreModel, table=True):
    """An API key: only its public prefix and the SHA-256 of the secret are stored, never the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.Index("ix_api_keys_user_id", "user_id"),)

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=32, unique=True)
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONValue)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Permission(StoreModel, table=True):
    """A grant: `user_id` may perform `action` on `resource_type`/`resource_id` (`"*"` matches any)."""

    __tablename__ = "permissions"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "action", "resource_type", "resource_id", name="uq_permissions_grant"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    user_id: str = Field(max_length=64, foreign_key="users.id", ondelete="CASCADE")
    action: str = Field(max_length=64)
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(default="*", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)


class WorkflowShare(StoreModel, table=True):
    """A workflow shared at a role (`viewer`, `runner`, `editor`) with a user or with a whole tenant."""

    __tablename__ = "workflow_shares"
    __table_args__ = (sa.Index("ix_workflow_shares_subject", "subject_type", "subject_id"),)

    workflow_id: WorkflowId = Field(
        primary_key=True, max_length=64, sa_type=_id_type(64), foreign_key="workflows.id", ondelete="CASCADE"
    )
    #: `"user"` or `"tenant"`.
    subject_type: str = Field(primary_key=True, max_length=16)
    #: A user id or a tenant id.
    subject_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)


class AuditEntry(StoreModel, table=True):
    """One entry of the append-only audit log: who did what to which resource, and with what outcome."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.Index("ix_audit_entries_at", "at"),
        sa.Index("ix_audit_entries_actor_at", "actor", "at"),
        sa.Index("ix_audit_entries_resource_at", "resource_type", "resource_id", "at"),
        # No two entries follow the same one: a forked chain is refused by the database itself.
        sa.UniqueConstraint("prev_hash", name="uq_audit_entries_prev_hash"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    resource_type: str = Field(default="", max_length=64)
    resource_id: str = Field(default="", max_length=200)
    outcome: str = Field(default="ok", max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    #: The `hash` of the entry before (the chain's `GENESIS` for the first); see `engine.store.audit_chain`.
    prev_hash: str = Field(default="", max_length=64)
    #: SHA-256 of this entry's canonical form, `prev_hash` included.
    hash: str = Field(default="", max_length=64)


class Secret(StoreModel, table=True):
    """A named secret of an owner, sealed by envelope encryption (`engine.secrets`): the value encrypted under a
    data key of its own, that data key encrypted (wrapped) under the installation's master key. Neither the
    value nor the data key is ever stored in the clear; `key_id` names the master key that wrapped it."""

    __tablename__ = "secrets"
    __table_args__ = (sa.UniqueConstraint("owner", "name", name="uq_secrets_owner_name"),)

    id: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=200)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=1000)
    #: base64 of nonce + AES-256-GCM ciphertext of the value (associated data: owner and name).
    ciphertext: str = Field(sa_type=LongText)
    #: base64 of nonce + the data key encrypted under the master key `key_id`.
    wrapped_key: str = Field(max_length=200)
    key_id: str = Field(max_length=64)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)
    updated_by: str = Field(default="", max_length=200)


class CollabDocument(StoreModel, table=True):
    """The shared (co-edited) document of a workflow (`serve.collab`): the stored version it is based on, and
    the counter numbering its update log."""

    __tablename__ = "collab_documents"

    workflow_id: WorkflowId = Field(
        primary_key=True, max_length=64, sa_type=_id_type(64), foreign_key="workflows.id", ondelete="CASCADE"
    )
    #: The stored workflow version the shared document last took in (`serve.collab.document.apply_change`).
    base_version: int
    #: The sequence number of the newest update (updates are numbered 1, 2, 3, ... per workflow).
    last_seq: int = Field(default=0)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CollabUpdate(StoreModel, table=True):
    """One Yjs update of a shared document, in order; applying them all rebuilds the document. A compaction
    replaces a prefix of the log by one merged update at the prefix's last number."""

    __tablename__ = "collab_updates"

    workflow_id: WorkflowId = Field(
        primary_key=True,
        max_length=64,
        sa_type=_id_type(64),
        foreign_key="collab_documents.workflow_id",
        ondelete="CASCADE",
    )
    seq: int = Field(primary_key=True)
    #: The update (Yjs binary encoding v1) in base64: text keeps the row JSON-plain for copies and digests.
    data: str = Field(sa_type=LongText)
    created_at: datetime = Field(sa_type=UTCDateTime)


class DeliveryStatus(StrEnum):
    """State of one webhook delivery: `SCHEDULED` (waiting for its next attempt), `DELIVERED` (the receiver
    answered 2xx), `DEAD` (dead-lettered: out of attempts, or refused for good; re-deliverable)."""

    SCHEDULED = "scheduled"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookSubscription(StoreModel, table=True):
    """An outbound webhook (`engine.webhooks`): where to POST which events of the runs its owner may see.

    The signing secret is sealed like a stored secret (`engine.secrets.envelope`, associated data: owner and
    subscription id); `cursor_at` is the creation time of the newest event the delivery worker has considered.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (sa.Index("ix_webhook_subscriptions_owner", "owner"),)

    id: str = Field(primary_key=True, max_length=64)
    #: The user whose view of runs the webhook has (its tenant's runs too when the user's role sees them).
    owner: str = Field(max_length=64)
    tenant_id: str = Field(max_length=64)
    url: str = Field(max_length=2000)
    #: Subscribed event types (a subset of `NOTIFIED_EVENT_TYPES`).
    event_types: list[str] = Field(default_factory=list, sa_type=JSONValue)
    #: Only runs of this workflow (None: every visible run).
    workflow_id: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=1000)
    enabled: bool = Field(default=True)
    secret_ciphertext: str = Field(sa_type=LongText)
    secret_wrapped_key: str = Field(max_length=200)
    secret_key_id: str = Field(max_length=64)
    cursor_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)


class WebhookDelivery(StoreModel, table=True):
    """One event to deliver to one webhook, and how its attempts went; a `DEAD` row is the dead letter."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # One delivery per event and webhook, whichever replica's worker saw the event first.
        sa.UniqueConstraint("subscription_id", "run_id", "seq", name="uq_webhook_deliveries_event"),
        sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at"),
        sa.CheckConstraint(one_of("status", DeliveryStatus), name="status"),
    )

    id: str = Field(primary_key=True, max_length=64)
    subscription_id: str = Field(max_length=64, foreign_key="webhook_subscriptions.id", ondelete="CASCADE")
    #: The run event delivered (None for a test ping).
    run_id: str | None = Field(default=None, max_length=64)
    seq: int | None = Field(default=None)
    event_type: str = Field(max_length=64)
    #: The CloudEvent sent, exactly (a redelivery sends the same).
    body: dict[str, Any] = Field(sa_type=JSONValue)
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: A worker holds the delivery until then (another replica's worker leaves it alone).
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = Field(default=None)
    last_error: str = Field(default="", sa_type=LongText)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


#: Every table, parents before children (the order a copy between databases must follow).
ALL_TABLES: tuple[type[StoreModel], ...] = (
    Workflow,
    WorkflowVersion,
    Run,
    NodeRun,
    Event,
    Plugin,
    Tenant,
    User,
    ApiKey,
    Permission,
    WorkflowShare,
    AuditEntry,
    Secret,
    CollabDocument,
    CollabUpdate,
    WebhookSubscription,
    WebhookDelivery,
)


def table_of(model: type[StoreModel]) -> sa.Table:
    """The SQLAlchemy `Table` of a model (for Core queries and bulk statements)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table

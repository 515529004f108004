"""The `Store` protocol: what the rest of rayweave may ask of the persistent store, whatever holds the data.

Callers (the engine, the server, the CLI) type their store as `Store` and use only what is declared here; the SQL
backend (`engine.store.store.SqlStore`: SQLite, PostgreSQL, MariaDB/MySQL through SQLAlchemy) is one, and
`tests/engine/store/conformance` is the suite every implementation must pass (ADR 011). Records are the plain
data classes of `engine.store.models` (a backend without SQL builds them without a session); their attributes
are the contract, not their table mapping.

Each repository's methods raise the store's own errors (`engine.store.errors`) for what a caller can act on
(not found, conflicts); a failure of the database itself surfaces as one of `errors.backend_errors()`.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

from engine.execution.events import Event
from engine.store.audit_chain import AuditVerification
from engine.store.bulk import BulkResult
from engine.store.collab import CollabState
from engine.store.diff import WorkflowDiff
from engine.store.events import NewEvent
from engine.store.models import (
    ApiKey,
    AuditEntry,
    DeliveryStatus,
    NodeRun,
    Permission,
    Plugin,
    Run,
    Secret,
    Tenant,
    User,
    WebhookDelivery,
    WebhookSubscription,
    Workflow,
    WorkflowVersion,
)
from engine.store.reports import (
    BATCH_ROWS,
    ID_CHUNK,
    FinishedNodeRunRow,
    MetricsSnapshot,
    NodeRunHistoryRow,
    RunHistoryRow,
    RunScope,
)
from engine.store.runs import CreatedRun, RunPage
from engine.store.shares import Audience, Share
from engine.store.users import ANY
from engine.store.webhooks import NewDelivery, PendingEvent
from nodes.ids import NodeId, NodeTypeId, RunId, WorkflowId
from nodes.states import NodeStatus, RunStatus

# The method docstrings below are short: the SQL backend's methods document the behaviour in full, and the
# conformance suite pins it down.


class Workflows(Protocol):
    """Stored workflows and their immutable versions."""

    def create(
        self,
        document: Any,
        *,
        name: str | None = None,
        owner: str = "local",
        author: str = "",
        message: str = "",
        workflow_id: WorkflowId | None = None,
    ) -> WorkflowVersion:
        """Store a new workflow; returns its version 1."""
        ...

    def save(
        self,
        workflow_id: WorkflowId,
        document: Any,
        *,
        expected_version: int,
        author: str = "",
        message: str = "",
    ) -> WorkflowVersion:
        """Store the next version if the latest is still `expected_version` (else `VersionConflictError`)."""
        ...

    def get(self, workflow_id: WorkflowId) -> Workflow:
        """The workflow record; `NotFoundError` when missing or deleted."""
        ...

    def latest(self, workflow_id: WorkflowId) -> WorkflowVersion:
        """The latest version of a workflow."""
        ...

    def get_version(self, workflow_id: WorkflowId, version: int) -> WorkflowVersion:
        """One version (readable after the workflow was deleted)."""
        ...

    def history(self, workflow_id: WorkflowId) -> builtins.list[WorkflowVersion]:
        """Every version, newest first."""
        ...

    def list(
        self,
        *,
        owner: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        visible_to: Audience | None = None,
    ) -> builtins.list[Workflow]:
        """Workflows not deleted, most recently updated first (only those `visible_to` may see, when given)."""
        ...

    def delete(self, workflow_id: WorkflowId) -> None:
        """Hide a workflow from listings; its versions stay for the runs that used them."""
        ...

    def diff(self, workflow_id: WorkflowId, old_version: int, new_version: int) -> WorkflowDiff:
        """The structural difference between two versions."""
        ...


class Runs(Protocol):
    """Runs: idempotent creation, filtered listing, status changes, heartbeats and the recovery sweep's queries."""

    def create(
        self,
        *,
        workflow_id: WorkflowId | None = None,
        workflow_version: int | None = None,
        document: Any = None,
        inputs: Mapping[str, Any] | None = None,
        owner: str = "local",
        idempotency_key: str | None = None,
        run_id: RunId | None = None,
        status: str = RunStatus.QUEUED,
        plugin_versions: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        heartbeat: bool = False,
        max_active: int | None = None,
    ) -> CreatedRun:
        """Record a new run (or return the one an idempotency key already created)."""
        ...

    def get(self, run_id: RunId) -> Run:
        """One run; `NotFoundError` when missing."""
        ...

    def get_by_idempotency_key(self, owner: str, key: str) -> Run | None:
        """The run an owner created with an idempotency key, if any."""
        ...

    def list(
        self,
        *,
        workflow_id: WorkflowId | None = None,
        status: str | Collection[str] | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        visible_to: Audience | None = None,
    ) -> RunPage:
        """Runs matching the filters, newest first, one page at a time (only those `visible_to` may see)."""
        ...

    def update_status(
        self,
        run_id: RunId,
        status: str,
        *,
        only_from: Collection[str] | None = None,
        error: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        skipped_outputs: Sequence[str] | None = None,
        coordinator: str | None = None,
        at: datetime | None = None,
    ) -> Run:
        """Change a run's status (compare-and-set with `only_from`, else `RunStateError`)."""
        ...

    def heartbeat(self, run_id: RunId, coordinator: str | None = None, *, at: datetime | None = None) -> None:
        """Record that the run's coordinator is alive."""
        ...

    def heartbeat_many(self, run_ids: Collection[RunId], coordinator: str) -> builtins.list[RunId]:
        """Record one heartbeat for each of `run_ids` at once; returns those cancelled in the store."""
        ...

    def stale(
        self,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        limit: int = 1000,
        queued_grace: timedelta | None = None,
        after: tuple[datetime, RunId] | None = None,
    ) -> builtins.list[Run]:
        """Active runs whose coordinator stopped beating, oldest first (keyset pages with `after`)."""
        ...

    def claim(
        self,
        run_id: RunId,
        coordinator: str,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        queued_grace: timedelta | None = None,
    ) -> bool:
        """Atomically take over a stale run; exactly one of several concurrent claimers wins."""
        ...

    def delete(self, run_id: RunId) -> None:
        """Delete a run with its node runs and events."""
        ...


class NodeRuns(Protocol):
    """Attempts of nodes within runs."""

    def start(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        node_type: NodeTypeId = NodeTypeId(""),
        attempt: int | None = None,
        status: str = NodeStatus.RUNNING,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record the start of an attempt (`attempt=None`: the next number)."""
        ...

    def finish(
        self,
        run_id: RunId,
        node_id: NodeId,
        attempt: int,
        *,
        status: str,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        cache_hit: bool | None = None,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record how an attempt ended."""
        ...

    def record(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        attempt: int,
        status: str,
        node_type: NodeTypeId = NodeTypeId(""),
        cache_hit: bool = False,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> NodeRun:
        """Record a complete attempt in one step."""
        ...

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record many complete attempts at once; returns how many."""
        ...

    def list(self, run_id: RunId) -> builtins.list[NodeRun]:
        """Every attempt of a run, by node id then attempt."""
        ...

    def latest(self, run_id: RunId) -> dict[NodeId, NodeRun]:
        """The last attempt of each node of a run."""
        ...

    def succeeded(
        self, run_id: RunId, statuses: Collection[str] = NodeStatus.successes()
    ) -> dict[NodeId, NodeRun]:
        """The nodes of a run whose outputs are available, with that attempt."""
        ...


class Events(Protocol):
    """The persisted event log of each run."""

    def append(self, run_id: RunId, events: Sequence[NewEvent]) -> builtins.list[int]:
        """Append a batch with gap-free per-run sequence numbers; returns them."""
        ...

    def read(self, run_id: RunId, *, after: int = 0, limit: int | None = None) -> builtins.list[Event]:
        """The run's events after sequence `after`, in order, as the engine's `Event`s (the SQL backend reads
        its rows with `engine.store.events.event_from_row`)."""
        ...

    def last_seq(self, run_id: RunId) -> int:
        """The highest sequence number the run has used (0 before its first event)."""
        ...


class Plugins(Protocol):
    """Installed plugin versions and their manifests."""

    def add(self, name: str, version: str, manifest: Mapping[str, Any], *, enabled: bool = True) -> Plugin:
        """Record an installed plugin version (again: replace its manifest)."""
        ...

    def get(self, name: str, version: str) -> Plugin:
        """One installed plugin version; `NotFoundError` when missing."""
        ...

    def list(self, *, name: str | None = None, enabled_only: bool = False) -> builtins.list[Plugin]:
        """Installed plugin versions, by name then version."""
        ...

    def set_enabled(self, name: str, version: str, enabled: bool) -> Plugin:
        """Enable or disable an installed plugin version."""
        ...

    def remove(self, name: str, version: str) -> None:
        """Forget an installed plugin version."""
        ...


class Users(Protocol):
    """Users and their permissions."""

    def create(
        self,
        username: str,
        *,
        email: str | None = None,
        display_name: str = "",
        is_admin: bool = False,
        tenant_id: str | None = None,
        role: str | None = None,
    ) -> User:
        """Create a local user (unique name, no reserved prefix) in a tenant (default: the default one)."""
        ...

    def ensure_external(self, prefix: str, subject: str) -> User:
        """The user of an identity provider, created on first sight."""
        ...

    def get(self, user_id: str) -> User:
        """One user by id."""
        ...

    def get_by_username(self, username: str) -> User:
        """One user by username."""
        ...

    def list(self, *, tenant_id: str | None = None) -> builtins.list[User]:
        """Every user (of a tenant), by username."""
        ...

    def set_disabled(self, user_id: str, disabled: bool, *, keep_an_owner: bool = True) -> User:
        """Disable (or re-enable) a user (never a tenant's last owner or the last admin unless told)."""
        ...

    def set_role(self, user_id: str, role: str, *, keep_an_owner: bool = True) -> tuple[User, str]:
        """Change a user's role in its tenant; returns the user and the previous role."""
        ...

    def grant(
        self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY
    ) -> Permission:
        """Allow a user an action on a resource (idempotent)."""
        ...

    def revoke(self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY) -> bool:
        """Remove a grant; False when there was none."""
        ...

    def permissions(self, user_id: str) -> builtins.list[Permission]:
        """The grants of a user."""
        ...

    def is_allowed(self, user_id: str, action: str, resource_type: str, resource_id: str = ANY) -> bool:
        """Whether the user may perform the action on the resource."""
        ...


class ApiKeys(Protocol):
    """API keys of users (only a prefix and a hash of each secret are kept)."""

    def create(
        self,
        user_id: str,
        *,
        name: str = "",
        scopes: Collection[str] = (),
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the secret, shown this once."""
        ...

    def verify(self, secret: str, *, now: datetime | None = None) -> ApiKey:
        """The record of a presented secret; `InvalidApiKeyError` otherwise."""
        ...

    def verify_with_user(self, secret: str, *, now: datetime | None = None) -> tuple[ApiKey, User]:
        """The record of a presented secret and its user, in one read; refused as `verify` refuses."""
        ...

    def get(self, key_id: str) -> ApiKey:
        """One key record by id."""
        ...

    def list(self, *, user_id: str | None = None, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """Key records, newest first."""
        ...

    def active_admin_keys(self, *, now: datetime | None = None) -> builtins.list[ApiKey]:
        """The keys that act as admin now."""
        ...

    def revoke(self, key_id: str, *, keep_an_admin: bool = True) -> ApiKey:
        """Revoke a key (never the last active admin key unless told)."""
        ...

    def rotate(
        self,
        key_id: str,
        *,
        grace_s: float = 0.0,
        expires_at: datetime | None = None,
        keep_expiry: bool = True,
    ) -> tuple[ApiKey, ApiKey, str]:
        """Replace a key by a new secret (same user, name, scopes); the old one is revoked after `grace_s`."""
        ...


class Tenants(Protocol):
    """Tenants (groups of users, each user in one)."""

    def create(self, name: str) -> Tenant:
        """A new tenant (a duplicate name: `ValueError`)."""
        ...

    def ensure(self, name: str) -> Tenant:
        """The tenant of that name, created if new."""
        ...

    def get(self, tenant_id: str) -> Tenant:
        """One tenant by id."""
        ...

    def get_by_name(self, name: str) -> Tenant:
        """One tenant by name."""
        ...

    def list(self) -> builtins.list[Tenant]:
        """Every tenant, by name."""
        ...


class Shares(Protocol):
    """Workflows shared with users or tenants at a role (`engine.store.shares`)."""

    def set(
        self, workflow_id: str, subject_type: str, subject_id: str, role: str, *, actor: str = ""
    ) -> Share:
        """Share a workflow with a user or a tenant at a role."""
        ...

    def remove(self, workflow_id: str, subject_type: str, subject_id: str) -> bool:
        """Stop sharing; False when it was not shared."""
        ...

    def replace(self, workflow_id: str, shares: Iterable[Share], *, actor: str = "") -> builtins.list[Share]:
        """Make these the workflow's only shares."""
        ...

    def list(self, workflow_id: str) -> builtins.list[Share]:
        """The shares of a workflow."""
        ...

    def role_of(self, workflow_id: str, audience: Audience) -> str | None:
        """The highest role the workflow is shared with the audience at, if any."""
        ...


class Audit(Protocol):
    """The append-only audit log."""

    def append(
        self,
        actor: str,
        action: str,
        *,
        resource_type: str = "",
        resource_id: str = "",
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Record that an actor did an action on a resource, with its outcome."""
        ...

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Entries matching the filters, newest first."""
        ...

    def entries(self, *, since: datetime | None = None, batch: int = 1000) -> Iterator[AuditEntry]:
        """Every entry oldest first (chain order), with `prev_hash` and `hash`; `since` starts at that time."""
        ...

    def verify(self) -> AuditVerification:
        """Check the hash chain: the first edited, deleted or reordered entry, if any."""
        ...


class Reports(Protocol):
    """Read-only aggregates and bulk reads over runs and node runs (metrics, analytics export)."""

    def metrics_snapshot(self) -> MetricsSnapshot:
        """Runs by status and node-run figures by node type and status, as a scrape reports them."""
        ...

    def node_run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[NodeRunHistoryRow]]:
        """Every node attempt (with its run's workflow) from `since` on, in batches."""
        ...

    def run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[RunHistoryRow]]:
        """Every run created from `since` on, in batches."""
        ...

    def finished_runs(
        self, *, after: datetime | None, until: datetime, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[RunHistoryRow]]:
        """Every run that finished in (`after`, `until`], in batches (incremental analytics exports)."""
        ...

    def node_runs_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> Iterator[builtins.list[FinishedNodeRunRow]]:
        """Every node attempt of the given runs, read by run id in chunks."""
        ...

    def cache_levels_of(self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK) -> dict[tuple[str, str], str]:
        """(run id, node id) -> cache level, for the nodes of the given runs answered from the cache."""
        ...

    def usage_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]:
        """(run id, node id, attempt) -> (CPU-seconds, peak memory bytes, output bytes) measured per attempt."""
        ...

    def attempt_events_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> tuple[
        dict[tuple[str, str], str], dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]
    ]:
        """`cache_levels_of` and `usage_of` of the given runs in one read of their events."""
        ...

    def run_scope(self, audience: Audience) -> RunScope:
        """The ids of the workflows and owners whose runs the audience may see (analytics' visibility filter)."""
        ...

    def anomaly_events(
        self, *, visible_to: Audience | None = None, workflow_id: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        """The latest `anomaly.detected` events of the runs the audience may see, newest first."""
        ...

    def anomaly_counts(self) -> dict[str, int]:
        """`anomaly.detected` events by kind."""
        ...


class Bulk(Protocol):
    """Keyset pages and idempotent, id-keeping writes of workflows, versions, runs, node runs and events (the
    NDJSON export and import, `engine.store.ndjson`); kinds and keys are `engine.store.bulk.BULK_KINDS` and
    `BULK_KEYS`."""

    def page(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        after: Sequence[Any] | None = None,
        limit: int = 1000,
    ) -> builtins.list[dict[str, Any]]:
        """At most `limit` rows of `kind` with a key greater than `after`, in key order (constant memory)."""
        ...

    def put(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        """Write rows keeping their keys: insert new ones, skip or replace (when newer) present ones."""
        ...


class Secrets(Protocol):
    """Sealed secrets by owner and name (values are sealed and opened by `engine.secrets`, never here)."""

    def put(
        self,
        owner: str,
        name: str,
        *,
        ciphertext: str,
        wrapped_key: str,
        key_id: str,
        description: str | None = None,
        actor: str = "",
    ) -> Secret:
        """Store a secret (version 1) or a new value of one (version + 1)."""
        ...

    def get(self, owner: str, name: str) -> Secret:
        """One sealed secret; `NotFoundError` naming it."""
        ...

    def list(self, *, owner: str | None = None) -> builtins.list[Secret]:
        """Sealed secrets of an owner (all with None), by owner and name."""
        ...

    def delete(self, owner: str, name: str) -> None:
        """Remove a secret; `NotFoundError` when there is none."""
        ...

    def reseal(self, secret_id: str, *, version: int, ciphertext: str, wrapped_key: str, key_id: str) -> bool:
        """Replace one version's sealed form (a key rotation); False when it changed since read."""
        ...


class Collab(Protocol):
    """Shared (co-edited) workflow documents: the stored version each is based on and its Yjs update log."""

    def get(self, workflow_id: WorkflowId) -> CollabState | None:
        """The shared document's record, or None."""
        ...

    def start(self, workflow_id: WorkflowId, *, base_version: int, update: bytes) -> CollabState:
        """Create the shared document with its first update unless it exists; returns the record."""
        ...

    def append(self, workflow_id: WorkflowId, update: bytes) -> int:
        """Append an update; returns its number (1, 2, 3, ... per workflow, no gaps)."""
        ...

    def rebase(
        self, workflow_id: WorkflowId, *, expected_base: int, new_base: int, update: bytes | None
    ) -> int | None:
        """Move the base version if still `expected_base` (appending `update`); None when someone else did."""
        ...

    def read(self, workflow_id: WorkflowId, *, after: int = 0) -> builtins.list[tuple[int, bytes]]:
        """The updates numbered above `after`, in order."""
        ...

    def compact(self, workflow_id: WorkflowId, *, upto: int, update: bytes) -> int:
        """Replace the updates up to `upto` by their merge; returns how many rows went."""
        ...

    def delete(self, workflow_id: WorkflowId) -> bool:
        """Forget the shared document and its log."""
        ...


class Webhooks(Protocol):
    """Outbound webhook subscriptions (signing secrets sealed by `engine.webhooks`) and their deliveries."""

    def create(
        self,
        *,
        subscription_id: str,
        owner: str,
        tenant_id: str,
        url: str,
        event_types: Sequence[str],
        secret_ciphertext: str,
        secret_wrapped_key: str,
        secret_key_id: str,
        workflow_id: str | None = None,
        description: str = "",
        enabled: bool = True,
        actor: str = "",
    ) -> WebhookSubscription:
        """Store a new subscription whose cursor starts now."""
        ...

    def get(self, subscription_id: str) -> WebhookSubscription:
        """One subscription; `NotFoundError` naming it."""
        ...

    def list(
        self, *, owner: str | None = None, enabled_only: bool = False
    ) -> builtins.list[WebhookSubscription]:
        """Subscriptions of an owner (all with None), oldest first."""
        ...

    def update(self, subscription_id: str, changes: Mapping[str, Any]) -> WebhookSubscription:
        """Change url, event types, workflow filter, description or enabled flag."""
        ...

    def delete(self, subscription_id: str) -> None:
        """Remove a subscription and its deliveries; `NotFoundError` when there is none."""
        ...

    def new_events(
        self, subscription: WebhookSubscription, audience: Audience, *, since: datetime, limit: int = 500
    ) -> builtins.list[PendingEvent]:
        """Wanted, visible events created after `since` without a delivery yet, oldest first."""
        ...

    def enqueue(
        self, subscription_id: str, deliveries: Sequence[NewDelivery], *, cursor_at: datetime | None = None
    ) -> int:
        """Record deliveries (an event at most once per subscription) and move the cursor forward."""
        ...

    def claim_due(self, *, limit: int = 20, lease_s: float = 60.0) -> builtins.list[WebhookDelivery]:
        """Lease up to `limit` due deliveries of enabled subscriptions."""
        ...

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str = "",
        next_attempt_at: datetime | None = None,
    ) -> WebhookDelivery:
        """Record one attempt and the delivery's new state; releases the lease."""
        ...

    def deliveries(
        self, subscription_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> builtins.list[WebhookDelivery]:
        """A subscription's deliveries, newest first."""
        ...

    def get_delivery(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """One delivery of a subscription; `NotFoundError` naming it."""
        ...

    def redeliver(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """Schedule a delivery again now with a fresh count of attempts."""
        ...


class Store(Protocol):
    """The persistent state of an installation: one repository per kind of record, and the store itself."""

    @property
    def workflows(self) -> Workflows:
        """Stored workflows and versions."""
        ...

    @property
    def runs(self) -> Runs:
        """Runs."""
        ...

    @property
    def node_runs(self) -> NodeRuns:
        """Node attempts."""
        ...

    @property
    def events(self) -> Events:
        """Run events."""
        ...

    @property
    def plugins(self) -> Plugins:
        """Installed plugins."""
        ...

    @property
    def users(self) -> Users:
        """Users and permissions."""
        ...

    @property
    def api_keys(self) -> ApiKeys:
        """API keys."""
        ...

    @property
    def tenants(self) -> Tenants:
        """Tenants."""
        ...

    @property
    def shares(self) -> Shares:
        """Workflow shares."""
        ...

    @property
    def audit(self) -> Audit:
        """The audit log."""
        ...

    @property
    def reports(self) -> Reports:
        """Aggregates for metrics and analytics."""
        ...

    @property
    def secrets(self) -> Secrets:
        """Sealed secrets."""
        ...

    @property
    def bulk(self) -> Bulk:
        """Bulk pages and writes (NDJSON export and import)."""
        ...

    @property
    def collab(self) -> Collab:
        """Shared (co-edited) workflow documents."""
        ...

    @property
    def webhooks(self) -> Webhooks:
        """Outbound webhooks and their deliveries."""
        ...

    @property
    def backend(self) -> str:
        """The backend's name (`"sqlite"`, `"postgresql"`, ...)."""
        ...

    @property
    def url(self) -> str:
        """Where the store is, with any password hidden (for messages and logs)."""
        ...

    @property
    def connect_url(self) -> str:
        """The URL another process opens this same store with (`open_store`); it includes any password."""
        ...

    def ping(self) -> None:
        """Raise (one of `errors.backend_errors()`) unless the database answers now."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

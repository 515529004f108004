"""Runs: idempotent creation, listing with filters and keyset pagination, status changes, heartbeats."""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.store.base import Repository
from engine.store.canonical import content_hash, document_to_dict
from engine.store.columns import is_mysql, utcnow
from engine.store.errors import IdempotencyConflictError, NotFoundError, RunQuotaExceededError, RunStateError
from engine.store.locks import hold_until_checkin
from engine.store.models import Run, Workflow, WorkflowVersion
from engine.store.shares import Audience, visible_runs
from nodes.ids import RunId, WorkflowId, new_run_id
from nodes.states import RunStatus


class CreatedRun(NamedTuple):
    """The result of `RunRepository.create`: the run, and whether this call created it.

    `created` is False when the idempotency key matched an earlier request: the caller must then not start the
    run a second time.
    """

    run: Run
    created: bool


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first; pass `next_cursor` to get the following page (None: no more)."""

    items: list[Run]
    next_cursor: str | None


def _check_quota(session: Session, owner: str, limit: int) -> None:
    """Raise `RunQuotaExceededError` when `owner` has `limit` queued or running runs. Serialised per owner: on
    PostgreSQL by a transaction-scoped advisory lock on the owner, on MariaDB/MySQL by a named lock held until
    the transaction ended (`engine.store.locks`), on SQLite by the write lock every write transaction takes
    first (`BEGIN IMMEDIATE`)."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": f"quota:{owner}"}
        )
    elif is_mysql(dialect):
        hold_until_checkin(session.connection(), f"quota:{owner}")
    active = session.execute(
        sa.select(sa.func.count())
        .select_from(Run)
        .where(col(Run.owner) == owner, col(Run.status).in_([RunStatus.QUEUED, RunStatus.RUNNING]))
    ).scalar_one()
    if active >= limit:
        raise RunQuotaExceededError(owner, int(active), limit)


class RunRepository(Repository):
    """Runs of stored workflow versions or inline documents."""

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
        """Record a new run of a stored workflow (latest version unless given) or of an inline `document` (with
        both, the stored workflow's run of a document derived from its version).

        With an `idempotency_key`, a second call by the same owner with the same key returns the first run
        (`created=False`), even when both calls race; reusing the key for a different request raises
        `IdempotencyConflictError`. `at` overrides the creation time (imports, tests). `heartbeat=True` records
        a first heartbeat at creation (durable runners: the run counts as owned from the start, before its
        coordinator beats for the first time). `max_active`: the owner's quota of queued and running runs; at it,
        `RunQuotaExceededError` and nothing is recorded (checked and inserted in one transaction that holds the
        owner's lock, so concurrent creations never exceed it).
        """
        # Both: a run of a stored workflow that executes a document of its own (a "run to here" keeps its
        # version's document with the targets' ports as the outputs, which its readers go by).
        if workflow_id is None and document is None:
            raise ValueError("a run needs a workflow_id (a stored workflow) or a document (inline)")
        inputs_json = json.loads(json.dumps(dict(inputs or {})))
        inline = document_to_dict(document) if document is not None else None
        doc_hash = content_hash(inline) if inline is not None else ""
        request_hash = content_hash(
            {
                "workflow_id": workflow_id,
                "version": workflow_version,
                "document": doc_hash,
                "inputs": inputs_json,
            }
        )
        if idempotency_key is not None:
            existing = self._by_key(owner, idempotency_key)
            if existing is not None:
                return CreatedRun(self._check_same(existing, request_hash), False)
        now = at or utcnow()
        try:
            with self.session() as session:
                if max_active is not None:
                    _check_quota(session, owner, max_active)
                version = workflow_version
                if workflow_id is not None:
                    resolved = self._resolve_version(session, workflow_id, workflow_version)
                    version, doc_hash = resolved.version, resolved.content_hash
                run = Run(
                    id=run_id or new_run_id(),
                    workflow_id=workflow_id,
                    workflow_version=version,
                    document=inline,
                    document_hash=doc_hash,
                    inputs=inputs_json,
                    status=status,
                    owner=owner,
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    plugin_versions=dict(plugin_versions or {}),
                    created_at=now,
                    updated_at=now,
                    heartbeat_at=now if heartbeat else None,
                )
                session.add(run)
            return CreatedRun(run, True)
        except sa.exc.IntegrityError:
            # Lost a race on (owner, idempotency_key): the winner's run is committed by now.
            if idempotency_key is None:
                raise
            existing = self._by_key(owner, idempotency_key)
            if existing is None:
                raise
            return CreatedRun(self._check_same(existing, request_hash), False)

    def get(self, run_id: RunId) -> Run:
        """One run; raises `NotFoundError`."""
        with self.reading() as session:
            return self._get(session, run_id)

    def get_by_idempotency_key(self, owner: str, key: str) -> Run | None:
        """The run an owner created with an idempotency key, if any."""
        return self._by_key(owner, key)

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
        """Runs matching every given filter, newest first, `limit` at a time (keyset pagination: stable while
        new runs arrive); `visible_to`: only the runs that audience may see (`engine.store.shares`)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        query = select(Run)
        if visible_to is not None:
            query = query.where(visible_runs(visible_to))
        if workflow_id is not None:
            query = query.where(Run.workflow_id == workflow_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(col(Run.status).in_(statuses))
        if owner is not None:
            query = query.where(Run.owner == owner)
        if created_after is not None:
            query = query.where(col(Run.created_at) > created_after)
        if created_before is not None:
            query = query.where(col(Run.created_at) < created_before)
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(col(Run.created_at) < at, sa.and_(col(Run.created_at) == at, col(Run.id) < last_id))
            )
        query = query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).limit(limit + 1)
        with self.reading() as session:
            rows = builtins.list(session.exec(query))
        more = len(rows) > limit
        items = rows[:limit]
        return RunPage(items, _encode_cursor(items[-1]) if more else None)

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
        """Change a run's status (and error, outputs, skipped outputs). `running` sets `started_at`, a terminal
        status sets `finished_at`. With `only_from`, the change happens only if the current status is one of those
        (otherwise `RunStateError`), so e.g. a cancel cannot overwrite a success that just landed."""
        now = at or utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == RunStatus.RUNNING:
            values["started_at"] = sa.func.coalesce(col(Run.started_at), now)
        if status in RunStatus.terminal():
            values["finished_at"] = now
        if error is not None:
            values["error"] = json.loads(json.dumps(dict(error)))
        if outputs is not None:
            values["outputs"] = json.loads(json.dumps(dict(outputs)))
        if skipped_outputs is not None:
            values["skipped_outputs"] = [str(name) for name in skipped_outputs]
        if coordinator is not None:
            values["coordinator"] = coordinator
        with self.session() as session:
            stmt = sa.update(Run).where(col(Run.id) == run_id)
            if only_from is not None:
                stmt = stmt.where(col(Run.status).in_(list(only_from)))
            result = session.execute(stmt.values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                current = self._get(session, run_id)
                raise RunStateError(
                    f"run {run_id!r} is {str(current.status)!r}, not one of {sorted(map(str, only_from or []))}; "
                    f"it was not moved to {str(status)!r} (reload the run and decide again)"
                )
            return self._get(session, run_id, fresh=True)

    def heartbeat(self, run_id: RunId, coordinator: str | None = None, *, at: datetime | None = None) -> None:
        """Record that the run's coordinator is alive (the recovery sweep resumes runs whose heartbeat stops)."""
        values: dict[str, Any] = {"heartbeat_at": at or utcnow()}
        if coordinator is not None:
            values["coordinator"] = coordinator
        with self.session() as session:
            result = session.execute(sa.update(Run).where(col(Run.id) == run_id).values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFoundError(f"run {run_id!r} does not exist; cannot record a heartbeat for it")

    def heartbeat_many(self, run_ids: Collection[RunId], coordinator: str) -> builtins.list[RunId]:
        """Record one heartbeat by `coordinator` for every run of `run_ids` in one statement (a process owning
        hundreds of runs beats them all at once); returns those of them cancelled in the store, so their
        coordinator can stop them. Ids of runs that no longer exist are ignored."""
        ids = builtins.list(run_ids)
        if not ids:
            return []
        with self.session() as session:
            session.execute(
                sa.update(Run)
                .where(col(Run.id).in_(ids))
                .values(heartbeat_at=utcnow(), coordinator=coordinator)
            )
            rows = session.execute(
                select(Run.id).where(col(Run.id).in_(ids), Run.status == RunStatus.CANCELLED)
            )
            return [RunId(str(row[0])) for row in rows]

    def stale(
        self,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        limit: int = 1000,
        queued_grace: timedelta | None = None,
        after: tuple[datetime, RunId] | None = None,
    ) -> builtins.list[Run]:
        """Active runs (queued or running) whose coordinator has not heartbeaten for `older_than` (runs that
        never heartbeat count from their last update): the candidates of the recovery sweep, oldest first
        (by creation time, then id), at most `limit`.

        `queued_grace`: a run still `queued` (created or claimed, its coordinator not started yet) counts as
        stale only after this long without a heartbeat (never less than `older_than`): a run that is merely
        slow to start under load is not taken over while it starts. `after`: the `(created_at, id)` of the last
        run of the previous page, to page through every candidate (keyset pagination).
        """
        query = select(Run).where(_stale_clause(now or utcnow(), older_than, queued_grace))
        if after is not None:
            at, last_id = after
            query = query.where(
                sa.or_(col(Run.created_at) > at, sa.and_(col(Run.created_at) == at, col(Run.id) > last_id))
            )
        query = query.order_by(col(Run.created_at), col(Run.id)).limit(limit)
        with self.reading() as session:
            return builtins.list(session.exec(query))

    def claim(
        self,
        run_id: RunId,
        coordinator: str,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        queued_grace: timedelta | None = None,
    ) -> bool:
        """Atomically take over a stale active run for `coordinator` (stale as `stale` says); False when it is
        not stale any more (or another sweep claimed it first). Exactly one of several concurrent claimers wins.

        The claimed run gets a heartbeat and is `queued` again until its new coordinator starts it (as its
        `run.queued` / `run.started` events say), so the start-up grace protects the resume too.
        """
        now = now or utcnow()
        with self.session() as session:
            result = session.execute(
                sa.update(Run)
                .where(col(Run.id) == run_id, _stale_clause(now, older_than, queued_grace))
                .values(coordinator=coordinator, heartbeat_at=now, updated_at=now, status=RunStatus.QUEUED)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def delete(self, run_id: RunId) -> None:
        """Delete a run with its node runs and events."""
        with self.session() as session:
            session.delete(self._get(session, run_id))

    def _by_key(self, owner: str, key: str) -> Run | None:
        with self.reading() as session:
            return session.exec(select(Run).where(Run.owner == owner, Run.idempotency_key == key)).first()

    @staticmethod
    def _check_same(run: Run, request_hash: str) -> Run:
        if run.request_hash != request_hash:
            raise IdempotencyConflictError(run.owner, run.idempotency_key or "", run.id)
        return run

    @staticmethod
    def _resolve_version(session: Session, workflow_id: WorkflowId, version: int | None) -> WorkflowVersion:
        if version is None:
            wf = session.get(Workflow, workflow_id)
            if wf is None or wf.deleted_at is not None:
                raise NotFoundError(
                    f"workflow {workflow_id!r} does not exist (or was deleted); cannot run it"
                )
            version = wf.latest_version
        row = session.get(WorkflowVersion, (workflow_id, version))
        if row is None:
            raise NotFoundError(f"workflow {workflow_id!r} has no version {version}; cannot run it")
        return row

    @staticmethod
    def _get(session: Session, run_id: RunId, *, fresh: bool = False) -> Run:
        run = session.get(Run, run_id, populate_existing=fresh)
        if run is None:
            raise NotFoundError(f"run {run_id!r} does not exist; list runs to find its id")
        return run


def _stale_clause(now: datetime, older_than: timedelta, queued_grace: timedelta | None) -> Any:
    """SQL condition of a stale active run (see `RunRepository.stale`)."""
    last_sign = sa.func.coalesce(col(Run.heartbeat_at), col(Run.updated_at))
    grace = max(older_than, queued_grace or older_than)
    return sa.or_(
        sa.and_(col(Run.status) == RunStatus.RUNNING, last_sign < now - older_than),
        sa.and_(col(Run.status) == RunStatus.QUEUED, last_sign < now - grace),
    )


def _encode_cursor(run: Run) -> str:
    raw = json.dumps([run.created_at.isoformat(), run.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, run_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # cursors made here always carry one; a naive time cannot be compared
            raise ValueError("the cursor's time has no time zone")
        if not isinstance(run_id, str) or not run_id.isprintable():  # NUL or lone surrogates: not an id
            raise ValueError("the cursor's run id is not an id")
        return when.astimezone(UTC), run_id
    except (ValueError, TypeError, OverflowError) as exc:
        shown = cursor if len(cursor) <= 60 else cursor[:60] + "..."
        raise ValueError(f"invalid runs cursor {shown!r}; pass the next_cursor of the previous page") from exc

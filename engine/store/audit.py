"""The append-only audit log, hash-chained (`engine.store.audit_chain` defines the chain)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.store.audit_chain import GENESIS, ChainVerifying, entry_hash, hashed_record
from engine.store.base import Repository
from engine.store.columns import is_mysql, utcnow
from engine.store.locks import hold_until_checkin
from engine.store.models import AuditEntry

#: The PostgreSQL advisory lock key that serializes audit appends across processes ("rwaudit" in ASCII).
APPEND_LOCK_KEY = 0x72776175646974
#: Entries read per query while verifying or exporting.
BATCH = 1000


#: The most characters each text field of an entry holds (its column's length).
FIELD_LIMITS = {"actor": 200, "action": 64, "resource_type": 64, "resource_id": 200, "outcome": 32}


def new_entry(
    actor: str,
    action: str,
    resource_type: str = "",
    resource_id: str = "",
    outcome: str = "ok",
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """An entry to append (on any backend), its text fields cut to their columns' lengths: an attempt on a
    resource of a 5,000-character id is audited as well, with the id's start, an ellipsis and, under
    `details["cut"]`, each cut field's whole length (the entry was once refused and lost on PostgreSQL)."""
    fields = {
        "actor": actor,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
    }
    extra = dict(details or {})
    cut = {name: len(text) for name, text in fields.items() if len(text) > FIELD_LIMITS[name]}
    for name in cut:
        fields[name] = fields[name][: FIELD_LIMITS[name] - 1] + "\u2026"
    if cut:
        extra["cut"] = cut
    return AuditEntry(
        at=at or utcnow(),
        actor=fields["actor"],
        action=fields["action"],
        resource_type=fields["resource_type"],
        resource_id=fields["resource_id"],
        outcome=fields["outcome"],
        details=json.loads(json.dumps(extra, allow_nan=False)),
    )


class AuditRepository(ChainVerifying, Repository):
    """Audit entries: appended, never updated or deleted."""

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
        """Record that `actor` did `action` on a resource, with its outcome (`ok`, `denied`, `error`).

        The entry is chained to the last one (`prev_hash`, `hash`). Appends are serialized so the chain never
        forks: on PostgreSQL by a transaction-scoped advisory lock (several API replicas may append at once),
        on MariaDB/MySQL by a named lock held until the transaction ended (`engine.store.locks`), on SQLite by
        the write lock the transaction takes when it begins.
        """
        entry = new_entry(actor, action, resource_type, resource_id, outcome, details, at)
        with self.session() as session:
            entry.prev_hash = self._lock_head(session)
            session.add(entry)
            session.flush()  # assigns the id, which the hash covers
            entry.hash = entry_hash(entry.prev_hash, hashed_record(entry))
        return entry

    def _lock_head(self, session: Session) -> str:
        """Take the append lock and return the hash of the last entry (`GENESIS` for an empty log)."""
        if self.engine.dialect.name == "postgresql":
            session.connection().execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
        elif is_mysql(self.engine.dialect):
            hold_until_checkin(session.connection(), "audit-append")
        last = session.exec(select(AuditEntry.hash).order_by(col(AuditEntry.id).desc()).limit(1)).first()
        return last if last is not None else GENESIS

    def entries(self, *, since: datetime | None = None, batch: int = BATCH) -> Iterator[AuditEntry]:
        """Every entry in chain order (oldest first), read `batch` at a time; `since` starts at that time."""
        after: int | None = None
        while True:
            query = select(AuditEntry)
            if since is not None:
                query = query.where(col(AuditEntry.at) >= since)
            if after is not None:
                query = query.where(col(AuditEntry.id) > after)
            with self.reading() as session:
                rows = builtins.list(session.exec(query.order_by(col(AuditEntry.id)).limit(batch)))
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

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
        """Entries matching the filters, newest first; page with `before_id` = the last id seen."""
        query = select(AuditEntry)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if resource_type is not None:
            query = query.where(AuditEntry.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(AuditEntry.resource_id == resource_id)
        if since is not None:
            query = query.where(col(AuditEntry.at) >= since)
        if before_id is not None:
            query = query.where(col(AuditEntry.id) < before_id)
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)))

"""The append-only audit log."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import utcnow
from engine.store.models import AuditEntry


class AuditRepository(Repository):
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
        """Record that `actor` did `action` on a resource, with its outcome (`ok`, `denied`, `error`)."""
        entry = AuditEntry(
            at=at or utcnow(),
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            outcome=outcome,
            details=json.loads(json.dumps(dict(details or {}))),
        )
        with self.session() as session:
            session.add(entry)
        return entry

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

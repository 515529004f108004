"""`GET /v1/audit`: the audit log, for `admin` keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from engine.store import Store
from serve.api.v1.schemas import AUTH_ERRORS, MAX_INT, AuditEntryOut, AuditList
from serve.auth import Principal, require
from serve.deps import get_store

router = APIRouter(prefix="/audit", tags=["audit"], responses=AUTH_ERRORS)


@router.get("", response_model=AuditList, summary="Audit log")
def list_audit(
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = Query(default=None, description="ok, denied or error."),
    before_id: int | None = Query(
        default=None, ge=0, le=MAX_INT, description="The next_before_id of the previous page."
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    store: Store = Depends(get_store),
    _: Principal = Depends(require("admin")),
) -> AuditList:
    """Who did what to which resource, with what outcome; newest first."""
    rows = store.audit.list(actor=actor, action=action, before_id=before_id, limit=limit + 1)
    if outcome is not None:
        rows = [r for r in rows if r.outcome == outcome]
    more = len(rows) > limit
    items = [AuditEntryOut.model_validate(r) for r in rows[:limit]]
    return AuditList(items=items, next_before_id=items[-1].id if more and items else None)

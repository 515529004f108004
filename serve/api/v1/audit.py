"""`GET /v1/audit` and `GET /v1/audit/verify`: the audit log and its hash chain's check, for `admin` keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from engine.store import Store
from serve.api.v1.schemas import AUTH_ERRORS, MAX_INT, AuditEntryOut, AuditList
from serve.auth import Principal, require
from serve.deps import get_store


class AuditVerificationOut(BaseModel):
    """The result of checking the audit log's hash chain (`engine.store.audit_chain.AuditVerification`)."""

    ok: bool = Field(description="True when every entry matches its hash and links to the entry before it.")
    checked: int = Field(description="How many entries verified (before the broken one, if any).")
    head_hash: str = Field(
        description="Hash of the last entry verified; keep it elsewhere to detect rewrites."
    )
    broken_id: int | None = Field(default=None, description="The first entry that fails, if any.")
    problem: str | None = Field(
        default=None, description="hash (the entry was edited) or prev_hash (entries deleted or reordered)."
    )
    message: str = ""


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


@router.get("/verify", response_model=AuditVerificationOut, summary="Verify the audit log's hash chain")
def verify_audit(
    store: Store = Depends(get_store), _: Principal = Depends(require("admin"))
) -> AuditVerificationOut:
    """Recompute every entry's hash and link, oldest first; names the first edited, deleted or reordered entry.

    Reads the whole log (in batches): meant for an operator's occasional check, as `rayweave audit verify`.
    """
    return AuditVerificationOut(**store.audit.verify().as_dict())

"""Workflows shared with users or whole tenants at a role, and who may see which workflows and runs.

A share gives a user (`subject_type="user"`) or every user of a tenant (`"tenant"`) a role on one workflow:
`viewer` (read it and its runs), `runner` (also start runs of it) or `editor` (also save new versions). The
workflow's owner and the admins of its tenant hold it fully. The runs of a workflow are visible to whoever may see
the workflow. `Audience` describes a caller; `visible_workflows` / `visible_runs` are the clauses the workflow
and run listings filter with, so a page holds only what the caller may see.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Run, User, Workflow, WorkflowShare
from engine.store.roles import check_share_role, share_rank
from nodes.ids import WorkflowId

USER = "user"
TENANT = "tenant"
SUBJECT_TYPES = (USER, TENANT)


@dataclass(frozen=True)
class Audience:
    """Who is looking: a user of a tenant; `whole_tenant` when it may see every resource of its tenant (the
    tenant's owners and admins)."""

    user_id: str
    tenant_id: str
    whole_tenant: bool = False


@dataclass(frozen=True)
class Share:
    """One share of a workflow (`subject_type` is `"user"` or `"tenant"`)."""

    workflow_id: str
    subject_type: str
    subject_id: str
    role: str


def _shared_ids(audience: Audience) -> Any:
    """SELECT of the ids of the workflows shared with the audience's user or its tenant."""
    return select(WorkflowShare.workflow_id).where(
        sa.or_(
            sa.and_(
                col(WorkflowShare.subject_type) == USER, col(WorkflowShare.subject_id) == audience.user_id
            ),
            sa.and_(
                col(WorkflowShare.subject_type) == TENANT, col(WorkflowShare.subject_id) == audience.tenant_id
            ),
        )
    )


def _tenant_users(audience: Audience) -> Any:
    return select(User.id).where(User.tenant_id == audience.tenant_id)


def visible_workflows(audience: Audience) -> Any:
    """The WHERE clause of the workflows the audience may see: its own, those shared with it or its tenant, and
    for `whole_tenant` every workflow owned in its tenant."""
    clauses = [col(Workflow.owner) == audience.user_id, col(Workflow.id).in_(_shared_ids(audience))]
    if audience.whole_tenant:
        clauses.append(col(Workflow.owner).in_(_tenant_users(audience)))
    return sa.or_(*clauses)


def visible_runs(audience: Audience) -> Any:
    """The WHERE clause of the runs the audience may see: its own, and the runs of every workflow it may see
    (for `whole_tenant`, also every run started in its tenant)."""
    workflows = select(Workflow.id).where(visible_workflows(audience))
    clauses = [col(Run.owner) == audience.user_id, col(Run.workflow_id).in_(workflows)]
    if audience.whole_tenant:
        clauses.append(col(Run.owner).in_(_tenant_users(audience)))
    return sa.or_(*clauses)


class ShareRepository(Repository):
    """Shares of workflows."""

    def set(
        self, workflow_id: str, subject_type: str, subject_id: str, role: str, *, actor: str = ""
    ) -> Share:
        """Share a workflow with a user or a tenant at `role` (again: change the role)."""
        if subject_type not in SUBJECT_TYPES:
            raise ValueError(f"shares are with a {' or a '.join(SUBJECT_TYPES)}, not {subject_type!r}")
        check_share_role(role)
        with self.session() as session:
            if session.get(Workflow, workflow_id) is None:
                raise NotFoundError(f"workflow {workflow_id!r} does not exist; nothing to share")
            row = session.get(WorkflowShare, (workflow_id, subject_type, subject_id))
            if row is None:
                row = WorkflowShare(
                    workflow_id=WorkflowId(workflow_id),
                    subject_type=subject_type,
                    subject_id=subject_id,
                    role=role,
                    created_at=utcnow(),
                    created_by=actor,
                )
            row.role = role
            session.add(row)
        return Share(workflow_id, subject_type, subject_id, role)

    def remove(self, workflow_id: str, subject_type: str, subject_id: str) -> bool:
        """Stop sharing a workflow with a user or a tenant; False when it was not shared with it."""
        with self.session() as session:
            result = session.execute(
                sa.delete(WorkflowShare).where(
                    col(WorkflowShare.workflow_id) == workflow_id,
                    col(WorkflowShare.subject_type) == subject_type,
                    col(WorkflowShare.subject_id) == subject_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def replace(self, workflow_id: str, shares: Iterable[Share], *, actor: str = "") -> builtins.list[Share]:
        """Make `shares` the workflow's only shares, in one transaction."""
        wanted = builtins.list(shares)
        for share in wanted:
            if share.subject_type not in SUBJECT_TYPES:
                raise ValueError(
                    f"shares are with a {' or a '.join(SUBJECT_TYPES)}, not {share.subject_type!r}"
                )
            check_share_role(share.role)
        now = utcnow()
        with self.session() as session:
            if session.get(Workflow, workflow_id) is None:
                raise NotFoundError(f"workflow {workflow_id!r} does not exist; nothing to share")
            session.execute(sa.delete(WorkflowShare).where(col(WorkflowShare.workflow_id) == workflow_id))
            for share in wanted:
                session.add(
                    WorkflowShare(
                        workflow_id=WorkflowId(workflow_id),
                        subject_type=share.subject_type,
                        subject_id=share.subject_id,
                        role=share.role,
                        created_at=now,
                        created_by=actor,
                    )
                )
        return self.list(workflow_id)

    def list(self, workflow_id: str) -> builtins.list[Share]:
        """The shares of a workflow: users first, then tenants (subject type descending), each by subject id."""
        query = (
            select(WorkflowShare)
            .where(WorkflowShare.workflow_id == workflow_id)
            .order_by(col(WorkflowShare.subject_type).desc(), col(WorkflowShare.subject_id))
        )
        with self.reading() as session:
            rows = session.exec(query).all()
        return [Share(r.workflow_id, r.subject_type, r.subject_id, r.role) for r in rows]

    def role_of(self, workflow_id: str, audience: Audience) -> str | None:
        """The highest role the workflow is shared with the audience at (directly or through its tenant)."""
        query = select(WorkflowShare.role).where(
            WorkflowShare.workflow_id == workflow_id,
            sa.or_(
                sa.and_(
                    col(WorkflowShare.subject_type) == USER, col(WorkflowShare.subject_id) == audience.user_id
                ),
                sa.and_(
                    col(WorkflowShare.subject_type) == TENANT,
                    col(WorkflowShare.subject_id) == audience.tenant_id,
                ),
            ),
        )
        with self.reading() as session:
            roles = builtins.list(session.exec(query))
        return max(roles, key=share_rank, default=None)

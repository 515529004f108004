"""Tenants, a role per user, and workflow shares (issue 18, authorization).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:10:00.000000

Every existing user joins the default tenant. Its role keeps what it could do before: a user marked `is_admin`,
or holding an admin key that is not revoked, becomes `owner`; every other user becomes `member` (every scope but
`admin`, over its own resources and what is shared with it, which is what any user could do before roles). The
default tenant is created only when there are users to put in it (a new database starts with no tenant row).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.portable import TIMESTAMP

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Frozen copies of the names at the time of this revision.
DEFAULT_TENANT = "default"
ADMIN_SCOPES = {"admin", "*"}


def _scopes(value: object) -> list[str]:
    if isinstance(value, str):  # SQLite's JSON comes back as text through a plain column
        value = json.loads(value)
    return [str(s) for s in value or ()] if isinstance(value, list) else []


def _assign_roles() -> None:
    bind = op.get_bind()
    users = sa.table(
        "users", sa.column("id"), sa.column("is_admin"), sa.column("role"), sa.column("tenant_id")
    )
    keys = sa.table("api_keys", sa.column("user_id"), sa.column("scopes"), sa.column("revoked_at"))
    rows = bind.execute(sa.select(users.c.id, users.c.is_admin)).all()
    if not rows:
        return
    # Typed, so SQLAlchemy writes the time itself: a process-wide sqlite3 adapter (feast registers one that
    # stores epoch seconds) would otherwise decide what an untyped datetime becomes.
    tenants = sa.table("tenants", sa.column("id"), sa.column("name"), sa.column("created_at", TIMESTAMP))
    bind.execute(
        tenants.insert().values(id=DEFAULT_TENANT, name=DEFAULT_TENANT, created_at=datetime.now(UTC))
    )
    owners = {row.id for row in rows if row.is_admin}
    for key in bind.execute(sa.select(keys.c.user_id, keys.c.scopes).where(keys.c.revoked_at.is_(None))):
        if ADMIN_SCOPES & set(_scopes(key.scopes)):
            owners.add(key.user_id)
    bind.execute(users.update().values(tenant_id=DEFAULT_TENANT, role="member"))
    for user_id in owners:
        bind.execute(users.update().where(users.c.id == user_id).values(role="owner"))


def upgrade() -> None:
    """Apply this migration: `tenants`, `users.tenant_id` and `users.role`, `workflow_shares`."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tenant_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("role", sa.String(length=32), nullable=True))
    _assign_roles()
    with op.batch_alter_table("users") as batch:
        batch.alter_column("tenant_id", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("role", existing_type=sa.String(length=32), nullable=False)
        batch.create_foreign_key(op.f("fk_users_tenant_id_tenants"), "tenants", ["tenant_id"], ["id"])
        batch.create_index("ix_users_tenant_id", ["tenant_id"], unique=False)
    op.create_table(
        "workflow_shares",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_workflow_shares_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "subject_type", "subject_id", name=op.f("pk_workflow_shares")),
    )
    op.create_index(
        "ix_workflow_shares_subject", "workflow_shares", ["subject_type", "subject_id"], unique=False
    )


def downgrade() -> None:
    """Revert this migration (tenants, roles and shares are lost)."""
    op.drop_index("ix_workflow_shares_subject", table_name="workflow_shares")
    op.drop_table("workflow_shares")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_tenant_id")
        batch.drop_constraint(op.f("fk_users_tenant_id_tenants"), type_="foreignkey")
        batch.drop_column("role")
        batch.drop_column("tenant_id")
    op.drop_table("tenants")

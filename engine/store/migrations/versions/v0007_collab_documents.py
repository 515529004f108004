"""Shared workflow documents (live co-editing, `serve.collab`): the document record and its Yjs update log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.portable import LONG_TEXT, TIMESTAMP

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration: the `collab_documents` and `collab_updates` tables."""
    op.create_table(
        "collab_documents",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_collab_documents_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_collab_documents")),
    )
    op.create_table(
        "collab_updates",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", LONG_TEXT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["collab_documents.workflow_id"],
            name=op.f("fk_collab_updates_workflow_id_collab_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "seq", name=op.f("pk_collab_updates")),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("collab_updates")
    op.drop_table("collab_documents")

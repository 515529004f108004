"""Runs record which workflow outputs were skipped (their node's branch was not taken).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the column type at the time of this revision (migrations must not follow later model edits).
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Apply this migration: a nullable list of output names (null for runs recorded before it)."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("skipped_outputs", JSON_TYPE, nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("skipped_outputs")

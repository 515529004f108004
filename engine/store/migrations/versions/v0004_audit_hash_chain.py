"""The audit log is a hash chain: each entry stores `prev_hash` and `hash` (`engine.store.audit_chain`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 20:50:00.000000

Entries recorded before are chained in id order, so an upgraded installation verifies (`rayweave audit
verify`); the chain then proves only that nothing changed after this upgrade. The hash is computed by
`engine.store.audit_chain.entry_hash`, whose canonical form is frozen by design (changing it would break every
stored chain), so this migration may use it rather than a copy. A unique constraint on `prev_hash` lets the
database refuse a forked chain.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types at the time of this revision.
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
#: Entries hashed per query.
BATCH = 1000


def _chain_existing_rows() -> None:
    from engine.store.audit_chain import GENESIS, entry_hash, record_of
    from engine.store.columns import UTCDateTime

    bind = op.get_bind()
    names = ("id", "actor", "action", "resource_type", "resource_id", "outcome")
    entries = sa.table(
        "audit_entries",
        *(sa.column(name) for name in names),
        sa.column("at", UTCDateTime()),
        sa.column("details", JSON_TYPE),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    prev, after = GENESIS, None
    while True:
        query = sa.select(entries).order_by(entries.c.id).limit(BATCH)
        if after is not None:
            query = query.where(entries.c.id > after)
        rows = bind.execute(query).mappings().all()
        for row in rows:
            fields = {name: row[name] for name in (*names, "at", "details")}
            digest = entry_hash(prev, record_of(**fields))
            bind.execute(
                entries.update().where(entries.c.id == row["id"]).values(prev_hash=prev, hash=digest)
            )
            prev = digest
        if len(rows) < BATCH:
            return
        after = rows[-1]["id"]


def upgrade() -> None:
    """Apply this migration: add the columns, chain the entries already recorded, then make them required."""
    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(op.f("uq_audit_entries_prev_hash"), ["prev_hash"])


def downgrade() -> None:
    """Revert this migration (the chain is lost)."""
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_constraint(op.f("uq_audit_entries_prev_hash"), type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")

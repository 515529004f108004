"""Runs record `anomaly.detected` events (issue 20): the events' type constraint admits it, and a partial index
holds only those events, so `/metrics` counts them without reading the whole events table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:30:00.000000

The values are frozen copies of `nodes.states.EventType` at the time of this revision (see 0003). A downgrade
deletes the `anomaly.detected` events first: the older constraint does not admit them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_EVENT_TYPES = (
    "run.queued",
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "node.started",
    "node.succeeded",
    "node.failed",
    "node.retrying",
    "node.skipped",
    "node.cached",
    "node.cancelled",
    "node.log",
    "node.progress",
    "node.output",
)
ANOMALY = "anomaly.detected"
EVENT_TYPES = (*OLD_EVENT_TYPES, ANOMALY)
INDEX = "ix_events_anomalies"
WHERE = f"type = '{ANOMALY}'"


def condition(column: str, values: Sequence[str]) -> str:
    """The portable SQL of the constraint (SQLite, PostgreSQL and MariaDB read it alike)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _constrain(values: Sequence[str]) -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint(op.f("ck_events_type"), type_="check")
        batch.create_check_constraint(op.f("ck_events_type"), condition("type", values))


def upgrade() -> None:
    """Apply this migration: widen the CHECK constraint of `events.type`, add the partial index."""
    _constrain(EVENT_TYPES)
    op.create_index(INDEX, "events", ["run_id"], sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    """Revert this migration (the `anomaly.detected` events are deleted)."""
    op.drop_index(INDEX, table_name="events")
    op.execute(sa.text(f"DELETE FROM events WHERE {WHERE}"))
    _constrain(OLD_EVENT_TYPES)

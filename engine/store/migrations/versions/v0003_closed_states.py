"""The database accepts only the known run states, node states and event types (CHECK constraints).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 17:40:00.000000

The values are frozen copies of `nodes.states` at the time of this revision (a migration must not follow later
edits of the enums: a new state needs a new migration that widens the constraint). Rows recorded before hold
only these values; if a database holds others (written by hand), the upgrade stops before changing anything
and names them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
NODE_STATES = ("pending", "running", "succeeded", "failed", "skipped", "cached", "cancelled")
EVENT_TYPES = (
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
#: (table, column, constraint name as the naming convention spells it, allowed values)
CHECKS = (
    ("runs", "status", "ck_runs_status", RUN_STATES),
    ("node_runs", "status", "ck_node_runs_status", NODE_STATES),
    ("events", "type", "ck_events_type", EVENT_TYPES),
)


def condition(column: str, values: Sequence[str]) -> str:
    """The portable SQL of the constraint (SQLite, PostgreSQL and MariaDB read it alike)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_unknown_values() -> None:
    from engine.store.errors import MigrationError

    bind = op.get_bind()
    for table, column, _, values in CHECKS:
        col: sa.ColumnClause[str] = sa.column(column)
        rows = bind.execute(
            sa.select(col, sa.func.count())
            .select_from(sa.table(table, col))
            .where(col.not_in(values))
            .group_by(col)
        ).all()
        if rows:
            found = ", ".join(f"{value!r} ({count} rows)" for value, count in rows)
            raise MigrationError(
                f"table {table} holds {column} values rayweave does not know: {found}; the allowed values are "
                f"{', '.join(values)}. Correct or delete those rows, then run `rayweave db upgrade` again "
                "(nothing was changed)"
            )


def upgrade() -> None:
    """Apply this migration: one CHECK constraint per column (on SQLite the table is rebuilt with it)."""
    _refuse_unknown_values()
    for table, column, name, values in CHECKS:
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(op.f(name), condition(column, values))


def downgrade() -> None:
    """Revert this migration."""
    for table, _, name, _ in reversed(CHECKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(name), type_="check")

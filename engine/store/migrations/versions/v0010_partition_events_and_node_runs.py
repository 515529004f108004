"""PostgreSQL: `events` and `node_runs` become tables partitioned by hash of the run id (ADR 023), their rows
copied over; SQLite and MariaDB/MySQL keep plain tables. On every backend: an index on the runs' creation time
and id, for the unfiltered run list (newest first), which read and sorted the whole `runs` table before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:00:00.000000

Each table is converted in place, in this migration's transaction (PostgreSQL DDL is transactional: a failure
leaves the old tables as they were): the table and its indexes are renamed aside, a partitioned table with the
same columns, defaults and CHECK constraints is made (`CREATE TABLE ... (LIKE ...)`), with `PARTITIONS` hash
partitions, its primary key, the rows are copied, then its other indexes (re-created from the old table's own
definitions, so whatever index the earlier revisions made comes along) and its foreign key; the old table goes.
The copy holds an exclusive lock on both tables for its duration: about a minute per few million rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Hash partitions per table (a frozen copy of `engine.store.partitions.PARTITIONS`): changing it means copying
#: the tables again.
PARTITIONS = 16

#: table -> (primary key columns, the foreign key's name). Both reference `runs.id` with ON DELETE CASCADE.
TABLES = {
    "events": (("run_id", "seq"), "fk_events_run_id_runs"),
    "node_runs": (("run_id", "node_id", "attempt"), "fk_node_runs_run_id_runs"),
}


RUNS_INDEX = "ix_runs_created_id"


def partition_name(table: str, remainder: int) -> str:
    """The name of one hash partition: `events_p00` ... `events_p15`."""
    return f"{table}_p{remainder:02d}"


def _secondary_indexes(conn: sa.Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that are not its primary key, as PostgreSQL
    itself prints them (`pg_get_indexdef`), so they are re-created exactly."""
    rows = conn.execute(
        sa.text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = :table AND t.relnamespace = current_schema()::regnamespace "
            "AND NOT x.indisprimary ORDER BY i.relname"
        ),
        {"table": table},
    ).all()
    return [(str(name), str(definition)) for name, definition in rows]


def _rebuild(table: str, *, partitioned: bool) -> None:
    conn = op.get_bind()
    keys, foreign_key = TABLES[table]
    old = f"{table}_before_0010"
    indexes = _secondary_indexes(conn, table)
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {old}")
    conn.exec_driver_sql(f"ALTER INDEX pk_{table} RENAME TO pk_{old}")
    for name, _ in indexes:
        conn.exec_driver_sql(f"ALTER INDEX {name} RENAME TO {name}_before_0010")
    conn.exec_driver_sql(f"ALTER TABLE {old} DROP CONSTRAINT {foreign_key}")
    # LIKE copies the columns, their NOT NULLs and defaults, and the CHECK constraints with their names.
    layout = f"(LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    if partitioned:
        conn.exec_driver_sql(f"CREATE TABLE {table} {layout} PARTITION BY HASH (run_id)")
        for remainder in range(PARTITIONS):
            conn.exec_driver_sql(
                f"CREATE TABLE {partition_name(table, remainder)} PARTITION OF {table} "
                f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {remainder})"
            )
    else:
        conn.exec_driver_sql(f"CREATE TABLE {table} {layout}")
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(keys)})")
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {old}")
    for _, definition in indexes:
        conn.exec_driver_sql(definition)
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ADD CONSTRAINT {foreign_key} FOREIGN KEY (run_id) REFERENCES runs (id) "
        "ON DELETE CASCADE"
    )
    conn.exec_driver_sql(f"DROP TABLE {old}")
    # Fresh statistics, so the planner uses the indexes from the first query on.
    conn.exec_driver_sql(f"ANALYZE {table}")


def upgrade() -> None:
    """Apply this migration."""
    op.create_index(RUNS_INDEX, "runs", ["created_at", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            _rebuild(table, partitioned=True)


def downgrade() -> None:
    """Revert this migration: plain tables again, rows kept."""
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            _rebuild(table, partitioned=False)
    op.drop_index(RUNS_INDEX, table_name="runs")

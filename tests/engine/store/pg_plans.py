"""Test support for the query-plan test of PostgreSQL (ADR 023): fill a store with many rows fast, record the
statements the store runs, and ask PostgreSQL how it would run them (EXPLAIN), with or without a table's indexes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.store import Store
from engine.store.store import SqlStore


def _engine(store: Store) -> sa.Engine:
    if not isinstance(store, SqlStore) or store.backend != "postgresql":
        raise TypeError("query plans are checked on the PostgreSQL backend only")
    return store.engine


def fill(store: Store, workflow_id: str, *, runs: int, events: int, nodes: int, active_every: int) -> None:
    """Add `runs` runs of `workflow_id` (every `active_every`-th one running, the rest succeeded; created a second
    apart, owners spread over 10 users), each with `events` events and `nodes` node attempts, with SQL's
    `generate_series` (a few seconds' work for the store's API takes well under one here), then ANALYZE."""
    with _engine(store).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, workflow_id, workflow_version, document_hash, inputs, status, owner, "
                "request_hash, plugin_versions, last_seq, created_at, updated_at, heartbeat_at) "
                "SELECT 'run-' || lpad(g::text, 7, '0'), :wf, 1, '', '{}', "
                "CASE WHEN g % :every = 0 THEN 'running' ELSE 'succeeded' END, 'user-' || (g % 10), '', '{}', "
                ":events, now() - g * interval '1 second', now() - g * interval '1 second', now() "
                "FROM generate_series(1, :runs) g"
            ),
            {"wf": workflow_id, "every": active_every, "events": events, "runs": runs},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (run_id, seq, type, node_id, payload, created_at) "
                "SELECT r.id, s, 'node.log', 'node-' || (s % :nodes), "
                "jsonb_build_object('message', repeat('x', 40), 'attempt', 1), r.created_at "
                "FROM runs r CROSS JOIN generate_series(1, :events) s WHERE r.id LIKE 'run-%'"
            ),
            {"events": events, "nodes": nodes},
        )
        conn.execute(
            sa.text(
                "INSERT INTO node_runs (run_id, node_id, attempt, node_type, status, cache_hit, started_at, "
                "finished_at) SELECT r.id, 'node-' || n, 1, 'builtin/add@1', 'succeeded', false, r.created_at, "
                "r.created_at FROM runs r CROSS JOIN generate_series(1, :nodes) n WHERE r.id LIKE 'run-%'"
            ),
            {"nodes": nodes},
        )
    with _engine(store).connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


@dataclass(frozen=True)
class Statement:
    """One statement the store sent to the database, with its parameters."""

    sql: str
    parameters: Any


@contextmanager
def recorded_statements(store: Store) -> Iterator[list[Statement]]:
    """Every statement the store runs inside the block, in order."""
    engine = _engine(store)
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not many:
            seen.append(Statement(statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def seq_scanned(store: Store, statement: Statement, *, without_indexes_of: Sequence[str] = ()) -> set[str]:
    """The tables (partitions named as their table) that PostgreSQL's plan for `statement` reads by a
    sequential scan. With `without_indexes_of`, the plan is made after dropping every index of those tables
    (primary keys and unique constraints too) in a transaction that is then rolled back."""
    with _engine(store).connect() as conn, conn.begin() as transaction:
        for table in without_indexes_of:
            _drop_indexes(conn, table)
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement.sql}", statement.parameters)
        rows = plan.scalar_one()
        transaction.rollback()
    return {_table_of(name) for name in _scanned(rows[0]["Plan"])}


def _drop_indexes(conn: sa.Connection, table: str) -> None:
    constraints = conn.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u')"
        ),
        {"t": table},
    ).scalars()
    for name in list(constraints):
        conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}" CASCADE')
    indexes = conn.execute(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t AND schemaname = current_schema()"),
        {"t": table},
    ).scalars()
    for name in list(indexes):
        conn.exec_driver_sql(f'DROP INDEX "{name}"')


def _scanned(node: dict[str, Any]) -> Iterator[str]:
    if node.get("Node Type") == "Seq Scan":
        yield str(node["Relation Name"])
    for child in node.get("Plans", ()):
        yield from _scanned(child)


def _table_of(relation: str) -> str:
    # events_p07 -> events
    head, _, tail = relation.rpartition("_p")
    return head if head and tail.isdigit() else relation


def partitions_of(store: Store, table: str) -> list[str]:
    """The partitions of `table` by name (empty for a plain table)."""
    with _engine(store).connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = CAST(:t AS regclass) ORDER BY c.relname"
                ),
                {"t": table},
            ).scalars()
        )


def partition_strategy(store: Store, table: str) -> str | None:
    """How `table` is partitioned (`"hash"`, `"range"`, `"list"`), None for a plain table."""
    with _engine(store).connect() as conn:
        strategy = conn.execute(
            sa.text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = CAST(:t AS regclass)"),
            {"t": table},
        ).scalar()
    return {"h": "hash", "r": "range", "l": "list"}.get(strategy) if strategy else None


def downgrade(store: Store, revision: str) -> None:
    """Migrate the store's database down to `revision` (Alembic's downgrade of the packaged migrations)."""
    from alembic import command

    from engine.store.migrate import alembic_config

    command.downgrade(alembic_config(_engine(store)), revision)

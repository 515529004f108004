"""Copying a whole installation between databases (SQLite <-> PostgreSQL), verified and re-runnable.

Tables are copied parents first, in batches, with "insert unless the primary key exists", so a copy that was
interrupted is finished by running it again. Afterwards every table is verified: the row count and a content hash
(an order-independent sum of per-row SHA-256 digests over canonical JSON) must be equal on both sides; a target
row that differs from its source row, or an extra row, fails the verification with the table named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.canonical import canonical_json
from engine.store.errors import MigrationError
from engine.store.models import ALL_TABLES
from engine.store.store import SqlStore

BATCH_ROWS = 2_000
_MOD = 2**256


@dataclass(frozen=True)
class TransferReport:
    """What a copy did per table: rows in the source, rows inserted now, and the verified content hash."""

    source: str
    target: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`rayweave db migrate --json`)."""
        return {"source": self.source, "target": self.target, "tables": self.tables}


def copy_installation(source: SqlStore, target: SqlStore, *, batch_rows: int = BATCH_ROWS) -> TransferReport:
    """Copy every row of `source` into `target` (both already migrated to the same schema) and verify."""
    report = TransferReport(source.url, target.url)
    for model in ALL_TABLES:
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        before = _count(target, table)
        for batch in _batches(source, table, batch_rows):
            with target.engine.begin() as conn:
                conn.execute(_insert_ignoring_existing(target, table), batch)
        _fix_sequences(target, table)
        report.tables[table.name] = {
            "source": _count(source, table),
            "copied": _count(target, table) - before,
        }
    for model in ALL_TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        expected, actual = table_digest(source, table), table_digest(target, table)
        if expected != actual:
            raise MigrationError(
                f"table {table.name!r} differs after the copy: source has {expected[0]} rows (hash "
                f"{expected[1][:12]}), target has {actual[0]} rows (hash {actual[1][:12]}); the target already held "
                "different data - copy into an empty database"
            )
        report.tables[table.name]["hash"] = expected[1]
    return report


def table_digest(store: SqlStore, table: sa.Table) -> tuple[int, str]:
    """Row count and order-independent content hash of a table."""
    total, count = 0, 0
    for batch in _batches(store, table, BATCH_ROWS):
        for row in batch:
            digest = hashlib.sha256(canonical_json(_plain(row)).encode()).digest()
            total = (total + int.from_bytes(digest, "big")) % _MOD
            count += 1
    return count, f"{total:064x}"


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    # Normalize what backends return differently (timestamps) so equal data hashes equally.
    return {k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _batches(store: SqlStore, table: sa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    query = sa.select(table).order_by(*table.primary_key.columns)
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
        for part in result.mappings().partitions(size):
            yield [dict(row) for row in part]


def _count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _insert_ignoring_existing(store: SqlStore, table: sa.Table) -> Any:
    if store.backend == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _fix_sequences(store: SqlStore, table: sa.Table) -> None:
    # Explicit ids were copied into identity columns; PostgreSQL's sequence must move past them.
    if store.backend != "postgresql":
        return
    for column in table.primary_key.columns:
        if column.autoincrement is True or (column.autoincrement == "auto" and _is_integer(column)):
            with store.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f"coalesce((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"t": table.name, "c": column.name},
                )


def _is_integer(column: sa.Column[Any]) -> bool:
    return len(column.table.primary_key.columns) == 1 and isinstance(column.type, sa.Integer | sa.BigInteger)

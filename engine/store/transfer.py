"""Copying a whole installation between databases (any two of SQLite, PostgreSQL, MariaDB/MySQL and Redis),
verified and resumable (`rayweave db migrate --to URL`).

Tables are copied parents first, in batches read in primary-key order. Each batch is written together with a
row of a ledger table in the target (`rayweave_migration_ledger`: the source, the table, the key of the last
row copied, whether the table is done) in one transaction, so an interrupted copy is resumed exactly where it
stopped by running it again. A target that holds rows without such a ledger, or with the ledger of a copy from
another source, is refused naming the first table that holds rows: nothing is merged into unrelated data.

Afterwards every table is verified: the row count and a content hash (an order-independent sum of per-row
SHA-256 digests over canonical JSON, timestamps normalized to UTC) must be equal on both sides; a difference
fails with the table named. The source must not be written to during the copy (stop the servers and workers
first): rows added or changed behind the copy fail the verification.

A Redis store takes part through `engine.store.redis.tables.RedisTables`, which reads and writes its records as
the rows of these tables (with every index entry they need) and keeps its ledger in a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from engine.store.base import insert_ignoring_duplicates
from engine.store.canonical import canonical_json
from engine.store.columns import UTCDateTime, utcnow
from engine.store.errors import MigrationError
from engine.store.models import ALL_TABLES
from engine.store.store import SqlStore

if TYPE_CHECKING:
    from engine.store.protocol import Store

BATCH_ROWS = 2_000
_MOD = 2**256

#: The ledger of copies into a database; not part of the store's schema (its migrations never see it).
LEDGER = sa.Table(
    "rayweave_migration_ledger",
    sa.MetaData(),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("last_key", sa.JSON(), nullable=True),
    sa.Column("copied", sa.BigInteger(), nullable=False),
    sa.Column("done", sa.Boolean(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Called after each batch committed: the table, and the rows of it copied so far by this and earlier runs.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class TransferReport:
    """What a copy did per table: rows in the source, rows inserted now, and the verified content hash."""

    source: str
    target: str
    resumed: bool = False
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`rayweave db migrate --json`)."""
        return {"source": self.source, "target": self.target, "resumed": self.resumed, "tables": self.tables}


class _Side(Protocol):
    """One end of a copy: a SQL database (`_SqlSide`) or a Redis store (`RedisTables`)."""

    @property
    def url(self) -> str: ...

    def page(self, table: sa.Table, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]: ...

    def count(self, table: sa.Table) -> int: ...

    def ledger(self) -> dict[str, dict[str, Any]]: ...

    def write(self, table: sa.Table, rows: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> None: ...

    def finish(self, table: sa.Table) -> None: ...


class _SqlSide:
    """A SQL store as one end of a copy: keyset pages, and each batch inserted with its ledger row in one
    transaction."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @property
    def url(self) -> str:
        return self.store.url

    def page(self, table: sa.Table, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]:
        return _page(self.store, table, after, size)

    def count(self, table: sa.Table) -> int:
        return _count(self.store, table)

    def ledger(self) -> dict[str, dict[str, Any]]:
        LEDGER.create(self.store.engine, checkfirst=True)
        return _read_ledger(self.store)

    def write(self, table: sa.Table, rows: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> None:
        with self.store.engine.begin() as conn:
            if rows:
                conn.execute(insert_ignoring_duplicates(self.store.engine.dialect.name, table), list(rows))
            known = conn.execute(
                sa.select(LEDGER.c.table_name).where(LEDGER.c.table_name == table.name)
            ).first()
            if known:
                conn.execute(LEDGER.update().where(LEDGER.c.table_name == table.name).values(**entry))
            else:
                conn.execute(LEDGER.insert().values(table_name=table.name, **entry))

    def finish(self, table: sa.Table) -> None:
        _fix_sequences(self.store, table)


def _side(store: Store | SqlStore) -> _Side:
    """The copy's view of `store` (a Redis store's is built on first use: no Redis import otherwise)."""
    if store.backend == "redis":
        from engine.store.redis.tables import RedisTables

        return RedisTables(store)
    if not isinstance(store, SqlStore):
        raise MigrationError(f"cannot copy the {store.backend} store {store.url}: not a SQL or Redis store")
    return _SqlSide(store)


def tables() -> list[sa.Table]:
    """Every table of the store, parents before children (the order a copy must follow)."""
    return [model.__table__ for model in ALL_TABLES]  # type: ignore[attr-defined]


def copy_installation(
    source: Store | SqlStore,
    target: Store | SqlStore,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> TransferReport:
    """Copy every row of `source` into `target` (SQL stores migrated to the same schema, or Redis stores), or
    finish an interrupted copy from the same source, then verify every table. Raises `MigrationError` naming
    the table when the target holds other data or a table differs afterwards."""
    src, dst = _side(source), _side(target)
    ledger = dst.ledger()
    _refuse_unrelated_target(src, dst, ledger)
    report = TransferReport(src.url, dst.url, resumed=bool(ledger))
    for table in tables():
        entry = ledger.get(table.name)
        done = entry is not None and entry["done"]
        copied = 0 if done else _copy_table(src, dst, table, entry, batch_rows, progress)
        dst.finish(table)
        report.tables[table.name] = {"source": src.count(table), "copied": copied}
    for table in tables():
        expected, actual = _digest(src, table), _digest(dst, table)
        if expected != actual:
            raise MigrationError(
                f"table {table.name!r} differs after the copy: source has {expected[0]} rows (hash "
                f"{expected[1][:12]}), target has {actual[0]} rows (hash {actual[1][:12]}); was the source "
                "written to during the copy? Stop every writer, drop and recreate the target, and copy again"
            )
        report.tables[table.name]["hash"] = expected[1]
    return report


def _copy_table(
    source: _Side,
    target: _Side,
    table: sa.Table,
    entry: Mapping[str, Any] | None,
    batch_rows: int,
    progress: Progress | None,
) -> int:
    """Copy the rows of `table` after the ledger's last key; returns how many this call copied."""
    after: list[Any] | None = list(entry["last_key"]) if entry and entry["last_key"] is not None else None
    total = int(entry["copied"]) if entry else 0
    copied = 0
    while True:
        batch = source.page(table, after, batch_rows)
        done = len(batch) < batch_rows
        if batch:
            after = [batch[-1][c.name] for c in table.primary_key.columns]
        total += len(batch)
        values = {
            "source": source.url,
            "last_key": after,
            "copied": total,
            "done": done,
            "updated_at": utcnow(),
        }
        target.write(table, batch, values)
        copied += len(batch)
        if batch and progress is not None:
            progress(table.name, total)
        if done:
            return copied


def _refuse_unrelated_target(source: _Side, target: _Side, ledger: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise unless every table of `target` is empty or part of an earlier copy from `source`."""
    others = sorted({str(e["source"]) for e in ledger.values()} - {source.url})
    if others:
        raise MigrationError(
            f"the target {target.url} holds a copy from another database ({', '.join(others)}), not from "
            f"{source.url}; copy into an empty database"
        )
    for table in tables():
        if table.name in ledger:
            continue
        rows = target.count(table)
        if rows:
            raise MigrationError(
                f"the target {target.url} is not empty: table {table.name!r} holds {rows} rows that no earlier "
                f"copy from {source.url} wrote; copy into an empty database (drop and recreate it, then run "
                "`rayweave db migrate` again)"
            )


def _read_ledger(target: SqlStore) -> dict[str, dict[str, Any]]:
    with target.engine.connect() as conn:
        return {row["table_name"]: dict(row) for row in conn.execute(sa.select(LEDGER)).mappings()}


def table_digest(store: Store | SqlStore, table: sa.Table) -> tuple[int, str]:
    """Row count and order-independent content hash of a table (of a SQL or a Redis store)."""
    return _digest(_side(store), table)


def _digest(side: _Side, table: sa.Table) -> tuple[int, str]:
    total, count, after = 0, 0, None
    while True:
        batch = side.page(table, after, BATCH_ROWS)
        for row in batch:
            digest = hashlib.sha256(canonical_json(_plain(row)).encode()).digest()
            total = (total + int.from_bytes(digest, "big")) % _MOD
            count += 1
        if len(batch) < BATCH_ROWS:
            return count, f"{total:064x}"
        after = [batch[-1][c.name] for c in table.primary_key.columns]


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    # Normalize what backends return differently (timestamps) so equal data hashes equally.
    return {k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _page(store: SqlStore, table: sa.Table, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]:
    """At most `size` rows of `table` whose primary key follows `after`, in key order (one short query: an
    interrupted copy holds no cursor, and a resumed one starts at the key it recorded)."""
    keys = list(table.primary_key.columns)
    query = sa.select(table).order_by(*keys).limit(size)
    if after is not None:
        if len(keys) == 1:
            query = query.where(keys[0] > after[0])
        else:
            bound = sa.tuple_(*(sa.literal(v, k.type) for k, v in zip(keys, after, strict=True)))
            query = query.where(sa.tuple_(*keys) > bound)
    with store.engine.connect() as conn:
        result = conn.execute(query)
        names = list(result.keys())  # once: a mapping per row asks for its keys again (a third of the time)
        return [dict(zip(names, row, strict=True)) for row in result]


def _count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _fix_sequences(store: SqlStore, table: sa.Table) -> None:
    # Explicit ids were copied into identity columns; PostgreSQL's sequence must move past them (SQLite and
    # MariaDB/MySQL move their counters past an explicitly inserted id by themselves).
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

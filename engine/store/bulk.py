"""Bulk reads and writes of the store's records, for NDJSON export and import (`engine.store.ndjson`).

Reads are keyset pages: each page is one short query for the rows after the key of the previous page's last row,
in primary-key order, so reading millions of rows needs the memory of one page and holds no connection between
pages (the caller may stream each page to a slow client). Writes keep every id, version, sequence number and
timestamp and are idempotent: a row already present is skipped, or updated when the incoming copy is newer
(`BULK_KINDS` says which kinds change after they are written); an immutable row present with different content
is refused with `BulkRowError` naming the row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from engine.store.base import Repository
from engine.store.columns import UTCDateTime
from engine.store.errors import BulkRowError
from engine.store.models import Event, NodeRun, Run, StoreModel, Workflow, WorkflowVersion, table_of

#: The kinds of records a bulk export holds, parents before children (the order an import must follow).
BulkKind = Literal["workflows", "workflow_versions", "runs", "node_runs", "events"]
BULK_KINDS: tuple[BulkKind, ...] = ("workflows", "workflow_versions", "runs", "node_runs", "events")

_MODELS: dict[str, type[StoreModel]] = {
    "workflows": Workflow,
    "workflow_versions": WorkflowVersion,
    "runs": Run,
    "node_runs": NodeRun,
    "events": Event,
}
#: Each kind's key columns (its primary key): the page order and what identifies a row across installations.
BULK_KEYS: dict[str, tuple[str, ...]] = {
    "workflows": ("id",),
    "workflow_versions": ("workflow_id", "version"),
    "runs": ("id",),
    "node_runs": ("run_id", "node_id", "attempt"),
    "events": ("run_id", "seq"),
}
#: The parent each kind refers to: (column, parent kind).
_PARENTS: dict[str, tuple[str, str]] = {
    "workflow_versions": ("workflow_id", "workflows"),
    "runs": ("workflow_id", "workflows"),
    "node_runs": ("run_id", "runs"),
    "events": ("run_id", "runs"),
}


def bulk_columns(kind: str) -> tuple[str, ...]:
    """The fields of a row of `kind` (what a page returns and `put` expects)."""
    return tuple(c.name for c in table_of(_model(kind)).columns)


@dataclass
class BulkResult:
    """What one `put` did: rows inserted, rows updated (a newer copy of a changing record), rows already there."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    #: Index (in the batch) of each row inserted or updated, for callers that report per row.
    changed: list[int] = field(default_factory=list)


def _model(kind: str) -> type[StoreModel]:
    try:
        return _MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown bulk kind {kind!r}; kinds are {', '.join(BULK_KINDS)}") from None


class BulkRepository(Repository):
    """Keyset pages of every kind in `BULK_KINDS`, and idempotent writes that keep ids (see the module doc)."""

    def page(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        after: Sequence[Any] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """At most `limit` rows of `kind` whose key is greater than `after` (the key of the last row of the
        previous page, `BULK_KEYS` order), in key order; `since` keeps rows changed at or after that time
        (workflows and runs by `updated_at`, versions and events by `created_at`, node attempts by when they
        finished or started, attempts without either time always)."""
        table = table_of(_model(kind))
        keys = [table.c[name] for name in BULK_KEYS[kind]]
        raw = self.engine.dialect.name == "sqlite"
        query = sa.select(*(_raw(c) if raw else c for c in table.columns)).order_by(*keys).limit(limit)
        if after is not None:
            query = query.where(_after(keys, after))
        if since is not None:
            query = query.where(_changed_since(kind, table, since))
        with self.engine.connect() as conn:
            result = conn.execute(query)
            names = list(result.keys())
            rows = [dict(zip(names, row, strict=True)) for row in result]
        if raw:
            _decode(table, rows)
        return rows

    def put(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        """Write rows of `kind` in one transaction, keeping their keys: new rows are inserted; present rows are
        skipped, or replaced when the incoming copy is newer (a workflow or run with a later `updated_at`, an
        attempt that finished where the stored one had not). A workflow version present with another content
        hash, or a row whose parent (workflow, run) is neither stored nor earlier in the import, raises
        `BulkRowError` with the row's index; nothing of the batch is written then."""
        result = BulkResult()
        if not rows:
            return result
        table = table_of(_model(kind))
        names = BULK_KEYS[kind]
        with self.writing() as conn:
            self._check_parents(conn, kind, rows)
            existing = self._existing(conn, kind, table, rows)
            inserts, updates = [], []
            for index, row in enumerate(rows):
                key = tuple(row[n] for n in names)
                present = existing.get(key)
                if present is None:
                    inserts.append(index)
                elif _replaces(kind, present, row, index):
                    updates.append(index)
                else:
                    result.skipped += 1
            if inserts:
                conn.execute(sa.insert(table), [dict(rows[i]) for i in inserts])
            for index in updates:
                row = rows[index]
                values = {k: v for k, v in row.items() if k not in names}
                if kind == "runs":
                    # Events appended after the copy was taken keep their numbers reserved.
                    values["last_seq"] = sa.case(
                        (table.c.last_seq > row["last_seq"], table.c.last_seq), else_=row["last_seq"]
                    )
                conn.execute(sa.update(table).where(*(table.c[n] == row[n] for n in names)).values(**values))
            if kind == "events" and inserts:
                self._reserve_sequences(conn, [rows[i] for i in inserts])
        result.added, result.updated = len(inserts), len(updates)
        result.changed = sorted(inserts + updates)
        return result

    @staticmethod
    def _existing(
        conn: sa.Connection, kind: str, table: sa.Table, rows: Sequence[Mapping[str, Any]]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        names = BULK_KEYS[kind]
        keys = [table.c[n] for n in names]
        compared = [table.c[c] for c in _COMPARED.get(kind, ())]
        if len(keys) == 1:
            wanted = [row[names[0]] for row in rows]
            found_one = conn.execute(sa.select(*keys, *compared).where(keys[0].in_(wanted))).mappings()
            return {(r[names[0]],): dict(r) for r in found_one}
        # Grouped by the key's first column (a batch of events is mostly one run's): one indexed query each.
        groups: dict[Any, set[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault(row[names[0]], set()).add(tuple(row[n] for n in names[1:]))
        found: list[sa.RowMapping] = []
        for first, rests in groups.items():
            where = [keys[0] == first]
            if len(keys) == 2:
                where.append(keys[1].in_([r[0] for r in rests]))
            elif len(keys) > 2:
                where.append(sa.tuple_(*keys[1:]).in_(list(rests)))
            found.extend(conn.execute(sa.select(*keys, *compared).where(*where)).mappings())
        return {tuple(r[n] for n in names): dict(r) for r in found}

    @staticmethod
    def _check_parents(conn: sa.Connection, kind: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if kind not in _PARENTS:
            return
        column, parent = _PARENTS[kind]
        wanted = {row.get(column) for row in rows} - {None}
        if not wanted:
            return
        parent_id = table_of(_model(parent)).c.id
        found = set(conn.execute(sa.select(parent_id).where(parent_id.in_(wanted))).scalars())
        for index, row in enumerate(rows):
            value = row.get(column)
            if value is not None and value not in found:
                what = "workflow" if parent == "workflows" else "run"
                raise BulkRowError(
                    index,
                    column,
                    f"{what} {value!r} is neither in this store nor earlier in the import; import the "
                    f"{what} first (export it with its {parent}) or leave this record out",
                )

    @staticmethod
    def _reserve_sequences(conn: sa.Connection, events: Sequence[Mapping[str, Any]]) -> None:
        # Imported events keep their numbers; the run's counter moves past them so new events never collide.
        top: dict[str, int] = {}
        for event in events:
            top[event["run_id"]] = max(top.get(event["run_id"], 0), int(event["seq"]))
        runs = table_of(Run)
        for run_id, seq in top.items():
            conn.execute(
                sa.update(runs).where(runs.c.id == run_id, runs.c.last_seq < seq).values(last_seq=seq)
            )


#: The columns read back for each present row to decide between skipping and replacing it.
_COMPARED: dict[str, tuple[str, ...]] = {
    "workflows": ("updated_at",),
    "workflow_versions": ("content_hash",),
    "runs": ("updated_at",),
    "node_runs": ("finished_at",),
}


def _replaces(kind: str, present: Mapping[str, Any], row: Mapping[str, Any], index: int) -> bool:
    """Whether an incoming row replaces the stored one (or raises when an immutable row differs)."""
    if kind in ("workflows", "runs"):
        return bool(row["updated_at"] > present["updated_at"])
    if kind == "node_runs":
        return present["finished_at"] is None and row.get("finished_at") is not None
    if kind == "workflow_versions" and present["content_hash"] != row["content_hash"]:
        raise BulkRowError(
            index,
            "content_hash",
            f"workflow {row['workflow_id']!r} version {row['version']} already exists here with different "
            "content; import into an installation without that workflow, or delete it first",
        )
    return False


def _after(keys: Sequence[sa.ColumnElement[Any]], after: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`keys > after` in key order, as a row-value comparison: SQLite and PostgreSQL both answer it with a range
    scan of the primary-key index (the same condition written with OR is a full scan on SQLite)."""
    if len(keys) != len(after):
        raise ValueError(f"a page key has {len(keys)} parts, not {len(after)}")
    if len(keys) == 1:
        single: sa.ColumnElement[bool] = keys[0] > after[0]
        return single
    return sa.tuple_(*keys) > sa.tuple_(*(sa.literal(v, k.type) for k, v in zip(keys, after, strict=True)))


def _raw(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """On SQLite, a JSON or timestamp column read as its stored text (`_decode` parses it): the generic result
    processors cost several times the query itself on a large export."""
    if isinstance(column.type, sa.JSON | UTCDateTime):
        return sa.type_coerce(column, sa.String).label(column.name)
    return column


def _decode(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    times = [c.name for c in table.columns if isinstance(c.type, UTCDateTime)]
    documents = [c.name for c in table.columns if isinstance(c.type, sa.JSON)]
    loads, parse = json.loads, datetime.fromisoformat
    for row in rows:
        for name in times:
            if row[name] is not None:
                row[name] = parse(row[name]).replace(tzinfo=UTC)
        for name in documents:
            if row[name] is not None:
                row[name] = loads(row[name])


def _changed_since(kind: str, table: sa.Table, since: datetime) -> sa.ColumnElement[bool]:
    if kind in ("workflows", "runs"):
        return table.c.updated_at >= since
    if kind == "node_runs":
        return sa.func.coalesce(table.c.finished_at, table.c.started_at, since) >= since
    return table.c.created_at >= since

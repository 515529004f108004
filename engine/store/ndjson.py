"""NDJSON export and import of workflows, versions, runs, node runs and events, streamed in constant memory.

An export is one JSON object per line (`rayweave.ndjson/1`):

```
{"kind":"header","format":"rayweave.ndjson/1","kinds":[...],"since":null,"events":"native"}
{"kind":"workflow","id":"...","name":"...",...}
{"kind":"workflow_version","workflow_id":"...","version":1,"document":{...},"content_hash":"...",...}
{"kind":"run","id":"...",...}
{"kind":"node_run","run_id":"...","node_id":"...","attempt":1,...}
{"kind":"event","run_id":"...","seq":1,"type":"run.queued",...}
{"kind":"end","counts":{"workflow":1,"workflow_version":1,"run":1,"node_run":1,"event":1}}
```

Records carry the store's own fields (ids, versions, sequence numbers and times kept), parents before children.
With `events="cloudevents"` each event line is a CloudEvent instead (`engine.formats.cloudevents`), which the
import reads back as well. The store is read in keyset pages (`store.bulk.page`), so memory does not grow with
the size of the export.

The import validates every line (the error names the line number and the field), checks every workflow document
and content hash, and writes in batches (`store.bulk.put`). It is idempotent: what is already present is skipped
(or replaced by a newer copy of a run, workflow or node attempt). It is resumable rather than all-or-nothing:
each batch commits on its own, so after an error the lines before the failing batch stay imported; fix the file
and import it again. A file that stops before its `end` line (truncated) is refused at the end, naming the last
line read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pydantic
import sqlalchemy as sa

from engine.formats.cloudevents import from_cloudevent, is_cloudevent, to_cloudevent
from engine.store.bulk import BULK_KEYS, BULK_KINDS, BulkKind
from engine.store.canonical import content_hash
from engine.store.errors import BulkRowError, StoreError
from engine.store.events import NewEvent
from engine.store.models import Event, NodeRun, Run, Workflow, WorkflowVersion
from engine.store.protocol import Store
from nodes.states import EventType, NodeStatus, RunStatus

NDJSON_FORMAT = "rayweave.ndjson/1"
#: Media type of the export and of the import's request body.
NDJSON_MEDIA_TYPE = "application/x-ndjson"
#: Rows per page read and per batch written.
PAGE_ROWS = 1000

EventsForm = Literal["native", "cloudevents"]

#: The `kind` of a line for each kind of record, and back.
LINE_KIND: dict[str, str] = {
    "workflows": "workflow",
    "workflow_versions": "workflow_version",
    "runs": "run",
    "node_runs": "node_run",
    "events": "event",
}
_RECORD_KIND = {line: kind for kind, line in LINE_KIND.items()}
_TIMES = frozenset({"created_at", "updated_at", "deleted_at", "started_at", "finished_at", "heartbeat_at"})


class NdjsonError(StoreError, ValueError):
    """A line of an NDJSON import is invalid or cannot be stored: `line` is its number (1-based), `field` the
    field at fault (when one is), `imported_through` the last line of the batches already committed."""

    def __init__(
        self, line: int, message: str, *, field: str | None = None, imported_through: int = 0
    ) -> None:
        where = f"line {line}" + (f", field {field!r}" if field else "")
        resume = (
            f"; lines up to {imported_through} were imported (each batch commits on its own): fix the file "
            "and import it again, what is already present is skipped"
            if imported_through
            else "; nothing was imported"
        )
        super().__init__(f"{where}: {message}{resume}")
        self.line = line
        self.field = field
        self.imported_through = imported_through


def parse_kinds(text: str | Sequence[str] | None) -> tuple[BulkKind, ...]:
    """The record kinds named in `text` (comma-separated, plural or singular), in export order; all when empty.
    `ValueError` names an unknown kind."""
    names = text.split(",") if isinstance(text, str) else list(text or [])
    wanted = {n.strip() for n in names if n.strip()}
    unknown = sorted(n for n in wanted if n not in LINE_KIND and n not in _RECORD_KIND)
    if unknown:
        raise ValueError(f"unknown kind(s) {unknown}; kinds are {', '.join(BULK_KINDS)}")
    plural = {_RECORD_KIND.get(n, n) for n in wanted}
    return tuple(k for k in BULK_KINDS if not plural or k in plural)


def export_lines(
    store: Store,
    *,
    kinds: Sequence[BulkKind] = BULK_KINDS,
    since: datetime | None = None,
    events: EventsForm = "native",
    page_rows: int = PAGE_ROWS,
) -> Iterator[bytes]:
    """The export as lines of UTF-8 JSON, each ending in a newline: a header, the records of `kinds` changed
    at or after `since` (all without it), and an `end` line with the count of each kind."""
    header = {
        "kind": "header",
        "format": NDJSON_FORMAT,
        "kinds": list(kinds),
        "since": since.isoformat() if since else None,
        "events": events,
    }
    yield _line(header)
    counts: dict[str, int] = {}
    for kind in BULK_KINDS:
        if kind not in kinds:
            continue
        line_kind = LINE_KIND[kind]
        counts[line_kind] = 0
        cloud = kind == "events" and events == "cloudevents"
        for row in _rows(store, kind, since, page_rows):
            counts[line_kind] += 1
            if cloud:
                yield _line(to_cloudevent(_event(row)))
                continue
            for name in _TIMES.intersection(row):
                if row[name] is not None:
                    row[name] = row[name].astimezone(UTC).isoformat()
            yield _line({"kind": line_kind, **row})
    yield _line({"kind": "end", "counts": counts})


def _rows(store: Store, kind: str, since: datetime | None, page_rows: int) -> Iterator[dict[str, Any]]:
    after: tuple[Any, ...] | None = None
    keys = BULK_KEYS[kind]
    while True:
        page = store.bulk.page(kind, since=since, after=after, limit=page_rows)
        yield from page
        if len(page) < page_rows:
            return
        after = tuple(page[-1][k] for k in keys)


def _line(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _event(row: Mapping[str, Any]) -> Any:
    from engine.execution.events import Event as EngineEvent

    payload = dict(row["payload"] or {})
    attempt = payload.get("attempt")
    return EngineEvent(
        run_id=row["run_id"],
        seq=row["seq"],
        type=EventType(row["type"]),
        node=row["node_id"],
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        time=row["created_at"].timestamp(),
        payload=payload,
    )


def _validator(model: type[Any], enums: Mapping[str, Any]) -> type[pydantic.BaseModel]:
    """A strict-about-shape pydantic model of a table's fields (unknown fields refused), statuses and event
    types as their closed enums."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = enums.get(name, info.annotation)
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        if info.is_required():
            fields[name] = (annotation, ...)
        elif info.default_factory is not None:
            fields[name] = (annotation, pydantic.Field(default_factory=info.default_factory))
        else:
            fields[name] = (annotation, info.default)
    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.create_model(f"{model.__name__}Line", __config__=config, **fields)


@functools.cache  # built on first use, not at import
def _validator_of(kind: str) -> type[pydantic.BaseModel]:
    models: dict[str, tuple[type[Any], dict[str, Any]]] = {
        "workflows": (Workflow, {}),
        "workflow_versions": (WorkflowVersion, {}),
        "runs": (Run, {"status": RunStatus}),
        "node_runs": (NodeRun, {"status": NodeStatus}),
        "events": (Event, {"type": EventType}),
    }
    model, enums = models[kind]
    return _validator(model, enums)


@dataclass
class NdjsonImportReport:
    """What an import did, per kind of record: added, updated (a newer copy) and already present (skipped)."""

    lines: int = 0
    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (the API's answer, `rayweave import --json`)."""
        return {
            "lines": self.lines,
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,  # not a state
        }


class NdjsonImporter:
    """Feeds lines of an NDJSON export into a store, batch by batch (see the module docstring).

    Use `feed(lines)` as the input arrives (any number of calls, lines in order, with or without their newline)
    and `finish()` at its end; both raise `NdjsonError`."""

    def __init__(self, store: Store, *, batch_rows: int = PAGE_ROWS, validate_documents: bool = True) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self.validate_documents = validate_documents
        self.report = NdjsonImportReport()
        self._line = 0
        self._header = False
        self._ended = False
        self._counts: dict[str, int] = {}
        self._kind: str | None = None
        self._batch: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
        self._committed = 0

    def feed(self, lines: Iterable[bytes | str]) -> None:
        """Validate and import the next lines."""
        for raw in lines:
            self._line += 1
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            if not text.strip():
                continue
            self._one(text)
        self.report.lines = self._line

    def finish(self) -> NdjsonImportReport:
        """Write what is pending and check the export was complete (its `end` line and counts)."""
        self._flush()
        if not self._header:
            raise NdjsonError(1, "the input is empty; an export starts with a header line", field="kind")
        if not self._ended:
            raise NdjsonError(
                self._line,
                "the input stops before the export's `end` line: it was truncated",
                imported_through=self._committed,
            )
        return self.report

    def _fail(self, message: str, field: str | None = None, line: int | None = None) -> NdjsonError:
        return NdjsonError(line or self._line, message, field=field, imported_through=self._committed)

    def _one(self, text: str) -> None:
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise self._fail(f"not valid JSON ({exc}); each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise self._fail("not a JSON object; each line must be one JSON object")
        if self._ended:
            raise self._fail("a record after the `end` line; an export ends with it", "kind")
        if not self._header:
            self._read_header(record)
            return
        if is_cloudevent(record):
            self._add("events", self._cloud_event(record))
            return
        line_kind = record.get("kind")
        if line_kind == "end":
            self._read_end(record)
            return
        kind = _RECORD_KIND.get(line_kind) if isinstance(line_kind, str) else None
        if kind is None:
            known = ", ".join([*_RECORD_KIND, "end"])
            raise self._fail(f"unknown kind {line_kind!r}; kinds are {known} (or a CloudEvent)", "kind")
        data = {k: v for k, v in record.items() if k != "kind"}
        self._add(kind, self._validated(kind, data))

    def _cloud_event(self, record: Mapping[str, Any]) -> dict[str, Any]:
        try:
            event = from_cloudevent(record)
        except ValueError as exc:
            raise self._fail(f"not a rayweave event as a CloudEvent: {exc}") from None
        new = NewEvent.of(event)
        return self._validated(
            "events",
            {
                "run_id": event.run_id,
                "seq": event.seq,
                "type": new.type,
                "node_id": new.node_id,
                "payload": dict(new.payload),
                "created_at": datetime.fromisoformat(record["time"]),  # exact, not through a float
            },
        )

    def _read_header(self, record: Mapping[str, Any]) -> None:
        fmt = record.get("format")
        if record.get("kind") != "header" or not isinstance(fmt, str):
            raise self._fail(
                f"not a rayweave NDJSON export: the first line must be its header "
                f'{{"kind":"header","format":"{NDJSON_FORMAT}"}}',
                "kind",
            )
        if fmt != NDJSON_FORMAT:
            newer = fmt.startswith("rayweave.ndjson/")
            raise self._fail(
                f"format {fmt!r} "
                + (
                    "was written by a newer rayweave; upgrade rayweave to import it"
                    if newer
                    else "is unknown"
                )
                + f" (this rayweave reads {NDJSON_FORMAT!r})",
                "format",
            )
        self._header = True

    def _read_end(self, record: Mapping[str, Any]) -> None:
        self._flush()
        counts = record.get("counts")
        if not isinstance(counts, dict):
            raise self._fail("the `end` line needs `counts`, the number of records of each kind", "counts")
        for kind, expected in counts.items():
            got = self._counts.get(kind, 0)
            if got != expected:
                raise self._fail(
                    f"the export says it holds {expected} {kind} record(s) but {got} were read: records are "
                    "missing or repeated",
                    "counts",
                )
        self._ended = True

    def _validated(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        try:
            model = _validator_of(kind).model_validate(data)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise self._fail(f"{error['msg']} (in the {LINE_KIND[kind]} record)", where) from None
        row = model.model_dump()
        for name in _TIMES & row.keys():
            if isinstance(row[name], datetime) and row[name].tzinfo is None:
                row[name] = row[name].replace(tzinfo=UTC)
        if kind == "workflow_versions":
            self._check_version(row)
        return row

    def _check_version(self, row: dict[str, Any]) -> None:
        from engine.store.archive import ArchiveError, validate_document

        label = f"workflow {row['workflow_id']!r} version {row['version']}"
        if self.validate_documents:
            try:
                validate_document(row["document"], where=label)
            except ArchiveError as exc:
                raise self._fail(str(exc), "document") from None
        if content_hash(row["document"]) != row["content_hash"]:
            raise self._fail(
                f"{label}: content_hash does not match the document; the file was altered", "content_hash"
            )

    def _add(self, kind: str, row: dict[str, Any]) -> None:
        line_kind = LINE_KIND[kind]
        self._counts[line_kind] = self._counts.get(line_kind, 0) + 1
        if kind != self._kind:
            self._flush()
            self._kind = kind
        key = tuple(row[k] for k in BULK_KEYS[kind])
        if key in self._batch:  # the same record twice in a batch: the later copy stands
            self._count(self.report.skipped, kind, 1)
        self._batch[key] = (self._line, row)
        if len(self._batch) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._batch or self._kind is None:
            return
        kind, entries = self._kind, list(self._batch.values())
        self._batch = {}
        lines = [line for line, _ in entries]
        try:
            result = self.store.bulk.put(kind, [row for _, row in entries])
        except BulkRowError as exc:
            raise self._fail(f"{LINE_KIND[kind]}: {exc}", exc.field, lines[exc.index]) from None
        except sa.exc.IntegrityError as exc:
            raise self._fail(
                f"the database refused the {kind} of lines {lines[0]}-{lines[-1]}: {exc.orig}",
                line=lines[0],
            ) from None
        self._count(self.report.added, kind, result.added)
        self._count(self.report.updated, kind, result.updated)
        self._count(self.report.skipped, kind, result.skipped)
        self._committed = max(lines)

    @staticmethod
    def _count(target: dict[str, int], kind: str, n: int) -> None:
        if n:
            target[kind] = target.get(kind, 0) + n


def import_lines(
    store: Store, lines: Iterable[bytes | str], *, batch_rows: int = PAGE_ROWS
) -> NdjsonImportReport:
    """Import a whole NDJSON export from an iterable of lines (a file opened in binary, `sys.stdin.buffer`)."""
    importer = NdjsonImporter(store, batch_rows=batch_rows)
    importer.feed(lines)
    return importer.finish()

"""Bulk export and import as NDJSON: `GET /v1/export` streams workflows, versions, runs, node runs and events
(`engine.store.ndjson`, one JSON object per line), `POST /v1/import` reads such a stream line by line. Both are
for `admin` keys: they cross every owner's records. Memory stays constant however large the stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from engine.store import Store
from engine.store.ndjson import (
    NDJSON_MEDIA_TYPE,
    EventsForm,
    NdjsonError,
    NdjsonImporter,
    export_lines,
    parse_kinds,
)
from serve.api.v1.schemas import AUTH_ERRORS
from serve.auth import Principal, require
from serve.deps import get_store
from serve.errors import BadRequestError, InvalidImportError

router = APIRouter(tags=["bulk"], responses=AUTH_ERRORS)

#: Bytes sent per chunk of the export (lines are grouped so a chunk is not a thread hop per line).
CHUNK_BYTES = 256 * 1024
#: Lines handed to the importer at a time.
FEED_LINES = 1000


class ImportReportOut(BaseModel):
    """What an import did: lines read, and per kind of record how many were added, updated (a newer copy of a
    run, workflow or node attempt) or already present."""

    lines: int = Field(description="Lines read (the header and end lines included).")
    added: dict[str, int] = Field(description="Records inserted, by kind (workflows, runs, events, ...).")
    updated: dict[str, int] = Field(description="Records replaced by a newer copy, by kind.")
    skipped: dict[str, int] = Field(description="Records already present, by kind (a re-import skips all).")


def _chunks(lines: Iterator[bytes]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


@router.get(
    "/export",
    summary="Export records as NDJSON",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "One JSON object per line: a header, the records (parents first) and an `end` line "
            "with the count of each kind (`rayweave.ndjson/1`, see the bulk guide).",
        },
        400: {"description": "An unknown kind, or `since` outside the years 1970..9998."},
    },
)
def export_ndjson(
    kinds: str | None = Query(
        default=None,
        description="Comma-separated kinds to export: workflows, workflow_versions, runs, node_runs, events "
        "(default: all).",
        max_length=200,
    ),
    since: datetime | None = Query(
        default=None,
        description="Only records changed at or after this time (ISO 8601; UTC when it has no offset).",
    ),
    format: Literal["ndjson", "cloudevents"] = Query(
        default="ndjson", description="`cloudevents`: events as CloudEvents 1.0 (structured JSON) lines."
    ),
    store: Store = Depends(get_store),
    _: Principal = Depends(require("admin")),
) -> StreamingResponse:
    """Stream the store's records, read page by page (constant memory), for `POST /v1/import` elsewhere."""
    try:
        chosen = parse_kinds(kinds)
    except ValueError as exc:
        raise BadRequestError(f"kinds: {exc}") from None
    if since is not None:
        since = _utc_since(since)
    events: EventsForm = "cloudevents" if format == "cloudevents" else "native"
    lines = export_lines(store, kinds=chosen, since=since, events=events)
    return StreamingResponse(
        _chunks(lines),
        media_type=NDJSON_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="rayweave-export.ndjson"'},
    )


def _utc_since(since: datetime) -> datetime:
    """`since` in UTC (UTC when it has no offset), checked before the stream starts: an error inside a started
    stream could only cut the response short."""
    try:
        utc = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not 1970 <= utc.year <= 9998:
        raise BadRequestError(
            f"since {since.isoformat()} is outside the years 1970..9998 (in UTC); give a time in that range"
        )
    return utc


@router.post(
    "/import",
    summary="Import records from NDJSON",
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "An export made by `GET /v1/export` (or `rayweave export --format ndjson`).",
        }
    },
    responses={422: {"description": "A line is invalid: `line`, `field` and `imported_through` say where."}},
)
async def import_ndjson(
    request: Request,
    store: Store = Depends(get_store),
    _: Principal = Depends(require("admin")),
) -> ImportReportOut:
    """Read the body line by line and store its records, keeping ids; idempotent (a second import of the same
    stream adds nothing). Batches commit as they go: after a 422 the lines up to `imported_through` stay
    imported, and importing the corrected stream again finishes the job."""
    importer = NdjsonImporter(store)
    pending: list[bytes] = []
    rest = b""
    try:
        async for chunk in request.stream():
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            pending.extend(lines)
            if len(pending) >= FEED_LINES:
                await run_in_threadpool(importer.feed, pending)
                pending = []
        if rest:
            pending.append(rest)
        await run_in_threadpool(importer.feed, pending)
        report = await run_in_threadpool(importer.finish)
    except NdjsonError as exc:
        raise InvalidImportError(
            str(exc), line=exc.line, field=exc.field, imported_through=exc.imported_through
        ) from None
    return ImportReportOut(**report.to_json())

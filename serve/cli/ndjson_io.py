"""NDJSON export and import for `rayweave export --format ndjson|cloudevents` and `rayweave import FILE.ndjson`
(the streams of `engine.store.ndjson`), reading and writing files or stdin/stdout (`-`) in constant memory; an
export can also go to an object store (`--out s3://bucket/key.ndjson`, `nodes.objectstore`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.ndjson import NdjsonImportReport
    from nodes.objectstore import S3Options

#: The file suffixes `rayweave import` reads as NDJSON exports (besides `-`, stdin).
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def is_ndjson(path: Path) -> bool:
    """Whether `rayweave import` should read `path` as an NDJSON export (`-` is stdin)."""
    return str(path) == "-" or path.suffix.lower() in NDJSON_SUFFIXES


def parse_since(text: str | None) -> datetime | None:
    """`--since` as an aware time (UTC when it has no offset); `ValueError` says what is expected."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since must be an ISO 8601 date or time like 2026-12-01T00:00:00Z, not {text!r}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def export_ndjson(
    store: Store,
    out: str | Path | None,
    *,
    kinds: str | None,
    since: datetime | None,
    events: Literal["native", "cloudevents"],
    s3: S3Options | None = None,
) -> int:
    """Write the export to `out` (stdout when None or `-`; a file path or an s3:// URL reached with `s3`,
    written atomically: the file appears whole or not at all); returns the number of lines."""
    from engine.store.ndjson import export_lines, parse_kinds
    from nodes.objectstore import file_location

    chosen = parse_kinds(kinds)
    if out is None or str(out) == "-":
        return _write(sys.stdout.buffer, export_lines(store, kinds=chosen, since=since, events=events))
    folder, name = file_location(out, "--out", s3)
    with folder.writer(name) as sink:
        return _write(sink, export_lines(store, kinds=chosen, since=since, events=events))


def _write(sink: BinaryIO, lines: Iterable[bytes]) -> int:
    count = 0
    for line in lines:
        sink.write(line)
        count += 1
    sink.flush()
    return count


def import_ndjson(store: Store, source: Path) -> NdjsonImportReport:
    """Import an NDJSON export from `source` (stdin for `-`); raises `engine.store.ndjson.NdjsonError`."""
    from engine.store.ndjson import import_lines

    if str(source) == "-":
        return import_lines(store, sys.stdin.buffer)
    with source.open("rb") as lines:
        return import_lines(store, lines)

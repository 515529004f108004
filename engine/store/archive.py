"""Export and import: single workflows, and whole installations as one archive.

The archive (`"format": "rayweave.archive/1"`) holds every workflow with all its versions (ids, numbers,
authors, messages, timestamps and content hashes preserved) and, optionally, runs with their node attempts and
events. It is deterministic (sorted, no export timestamp), so `export(import(export(x))) == export(x)`.
Import validates every workflow document (field paths in the errors), checks every content hash, and is
idempotent: rows already present with the same content are skipped, different content is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from engine.store.canonical import content_hash, document_to_dict
from engine.store.errors import StoreError
from engine.store.models import Event, NodeRun, Run, Workflow, WorkflowVersion, table_of
from engine.store.protocol import Store
from engine.store.store import SqlStore
from nodes.ids import WorkflowId

ARCHIVE_FORMAT = "rayweave.archive/1"

_WORKFLOW_FIELDS = ("id", "name", "owner", "latest_version", "created_at", "updated_at", "deleted_at")
_VERSION_FIELDS = ("version", "document", "content_hash", "author", "message", "created_at")
_RUN_FIELDS = tuple(c for c in Run.model_fields if c != "id")
_NODE_RUN_FIELDS = tuple(c for c in NodeRun.model_fields if c != "run_id")
_EVENT_FIELDS = tuple(c for c in Event.model_fields if c != "run_id")
_TIMES = {"created_at", "updated_at", "deleted_at", "started_at", "finished_at", "heartbeat_at"}


class ArchiveError(StoreError, ValueError):
    """An archive or workflow document cannot be imported; the message names the workflow, version and field."""


@dataclass
class ImportReport:
    """How many rows an import added and how many it found already present."""

    added: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def count(self, table: str, added: bool) -> None:
        """Count one row of `table` as added or skipped."""
        target = self.added if added else self.skipped
        target[table] = target.get(table, 0) + 1


def validate_document(document: Any, *, where: str) -> dict[str, Any]:
    """Check a workflow document against the workflow format; returns its canonical dict.

    Raises `ArchiveError` naming `where` (e.g. the workflow and version) and the failing field path.
    """
    from engine.errors import WorkflowLoadError
    from engine.workflow.loader import doc_from_data

    data = document_to_dict(document)
    try:
        doc_from_data(data, source=where)
    except WorkflowLoadError as exc:
        raise ArchiveError(str(exc)) from None  # the message already starts with `where`
    return data


def import_workflow(
    store: Store,
    document: Any,
    *,
    workflow_id: WorkflowId | None = None,
    owner: str = "local",
    author: str = "",
    message: str = "imported",
) -> WorkflowVersion:
    """Store one workflow document: a new workflow, or (with `workflow_id`) a new version of it unless its
    latest version already has exactly this content."""
    data = validate_document(document, where=f"workflow {document_to_dict(document).get('name')!r}")
    if workflow_id is None:
        return store.workflows.create(data, owner=owner, author=author, message=message)
    latest = store.workflows.latest(workflow_id)
    if latest.content_hash == content_hash(data):
        return latest
    return store.workflows.save(
        workflow_id, data, expected_version=latest.version, author=author, message=message
    )


def export_archive(store: SqlStore, *, include_runs: bool = False) -> dict[str, Any]:
    """Everything in `store` as one JSON-ready archive (workflows with all versions; runs when asked)."""
    with store.engine.connect() as conn:
        workflows = []
        for wf in conn.execute(sa.select(table_of(Workflow)).order_by(col(Workflow.id))).mappings():
            versions = conn.execute(
                sa.select(table_of(WorkflowVersion))
                .where(col(WorkflowVersion.workflow_id) == wf["id"])
                .order_by(col(WorkflowVersion.version))
            ).mappings()
            workflows.append(
                {
                    **_out(wf, _WORKFLOW_FIELDS),
                    "versions": [_out(v, _VERSION_FIELDS) for v in versions],
                }
            )
        archive: dict[str, Any] = {"format": ARCHIVE_FORMAT, "workflows": workflows}
        if include_runs:
            archive["runs"] = [
                _export_run(conn, run)
                for run in conn.execute(sa.select(table_of(Run)).order_by(col(Run.id))).mappings()
            ]
    return archive


def import_archive(store: SqlStore, archive: Mapping[str, Any], *, validate: bool = True) -> ImportReport:
    """Load an archive into `store`, keeping ids, versions and timestamps. Safe to run twice."""
    if archive.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(
            f"not a rayweave archive: format is {archive.get('format')!r}, expected {ARCHIVE_FORMAT!r}; "
            "single workflow files are imported with import_workflow"
        )
    report = ImportReport()
    with store.engine.begin() as conn:
        for wf in archive.get("workflows", []):
            _import_workflow(conn, wf, report, validate)
        for run in archive.get("runs", []):
            _import_run(conn, run, report)
    return report


def _import_workflow(
    conn: sa.Connection, wf: Mapping[str, Any], report: ImportReport, validate: bool
) -> None:
    wf_id = _required(wf, "id", "workflow")
    where = f"workflow {wf.get('name')!r} (id {wf_id})"
    versions = list(wf.get("versions", []))
    if not versions:
        raise ArchiveError(f"{where} has no versions; an archive workflow needs at least version 1")
    for v in versions:
        label = f"{where} version {v.get('version')}"
        doc = (
            validate_document(v.get("document"), where=label)
            if validate
            else document_to_dict(v.get("document"))
        )
        if content_hash(doc) != v.get("content_hash"):
            raise ArchiveError(f"{label}: content_hash does not match the document; the archive was altered")
    existing = conn.execute(sa.select(table_of(Workflow)).where(col(Workflow.id) == wf_id)).mappings().first()
    row = _in(wf, _WORKFLOW_FIELDS)
    if existing is None:
        conn.execute(sa.insert(table_of(Workflow)), row)
        report.count("workflows", True)
    else:
        if existing["latest_version"] < row["latest_version"]:
            conn.execute(
                sa.update(table_of(Workflow))
                .where(col(Workflow.id) == wf_id)
                .values(latest_version=row["latest_version"], updated_at=row["updated_at"])
            )
        report.count("workflows", False)
    for v in versions:
        present = conn.execute(
            sa.select(col(WorkflowVersion.content_hash)).where(
                col(WorkflowVersion.workflow_id) == wf_id, col(WorkflowVersion.version) == v["version"]
            )
        ).scalar()
        if present is None:
            conn.execute(
                sa.insert(table_of(WorkflowVersion)), {**_in(v, _VERSION_FIELDS), "workflow_id": wf_id}
            )
            report.count("workflow_versions", True)
        elif present != v["content_hash"]:
            raise ArchiveError(
                f"{where} version {v['version']} already exists here with different content; import into an "
                "empty installation or delete the workflow first"
            )
        else:
            report.count("workflow_versions", False)


def _export_run(conn: sa.Connection, run: sa.RowMapping) -> dict[str, Any]:
    nodes = conn.execute(
        sa.select(table_of(NodeRun))
        .where(col(NodeRun.run_id) == run["id"])
        .order_by(col(NodeRun.node_id), col(NodeRun.attempt))
    ).mappings()
    events = conn.execute(
        sa.select(table_of(Event)).where(col(Event.run_id) == run["id"]).order_by(col(Event.seq))
    ).mappings()
    return {
        "id": run["id"],
        **_out(run, _RUN_FIELDS),
        "node_runs": [_out(n, _NODE_RUN_FIELDS) for n in nodes],
        "events": [_out(e, _EVENT_FIELDS) for e in events],
    }


def _import_run(conn: sa.Connection, run: Mapping[str, Any], report: ImportReport) -> None:
    run_id = _required(run, "id", "run")
    if conn.execute(sa.select(col(Run.id)).where(col(Run.id) == run_id)).first() is not None:
        report.count("runs", False)
        return
    conn.execute(sa.insert(table_of(Run)), {"id": run_id, **_in(run, _RUN_FIELDS)})
    report.count("runs", True)
    nodes = [{**_in(n, _NODE_RUN_FIELDS), "run_id": run_id} for n in run.get("node_runs", [])]
    events = [{**_in(e, _EVENT_FIELDS), "run_id": run_id} for e in run.get("events", [])]
    if nodes:
        conn.execute(sa.insert(table_of(NodeRun)), nodes)
    if events:
        conn.execute(sa.insert(table_of(Event)), events)
    report.added["node_runs"] = report.added.get("node_runs", 0) + len(nodes)
    report.added["events"] = report.added.get("events", 0) + len(events)


def _required(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ArchiveError(f"an archive {what} has no {key!r}; every {what} entry needs one")
    return value


def _out(row: Mapping[str, Any] | sa.RowMapping, fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: row[k].astimezone(UTC).isoformat() if isinstance(row[k], datetime) else row[k] for k in fields}


def _in(data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    row = {}
    for k in fields:
        value = data.get(k)
        if k in _TIMES and isinstance(value, str):
            value = datetime.fromisoformat(value)
        row[k] = value
    return row

"""Workflows and their immutable versions: create, save with optimistic concurrency, history, diff, delete."""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.store.base import Repository
from engine.store.canonical import content_hash, document_to_dict
from engine.store.columns import new_id, utcnow
from engine.store.diff import WorkflowDiff, diff_documents
from engine.store.errors import NotFoundError, VersionConflictError
from engine.store.models import Workflow, WorkflowVersion
from engine.store.shares import Audience, visible_workflows
from nodes.ids import WorkflowId


class WorkflowCreation:
    """Making the records of a new workflow and its version 1, the same on every backend (`WorkflowRepository`
    on SQL, `engine.store.redis.workflows` on Redis); a backend stores them (`_store_new`)."""

    def create(
        self,
        document: Any,
        *,
        name: str | None = None,
        owner: str = "local",
        author: str = "",
        message: str = "",
        workflow_id: WorkflowId | None = None,
    ) -> WorkflowVersion:
        """Store a new workflow; returns its version 1. The name defaults to the document's `name`."""
        doc = document_to_dict(document)
        now = utcnow()
        wf = Workflow(
            id=workflow_id or WorkflowId(new_id()),
            name=name or str(doc.get("name") or "unnamed"),
            owner=owner,
            latest_version=1,
            created_at=now,
            updated_at=now,
        )
        version = WorkflowVersion(
            workflow_id=wf.id,
            version=1,
            document=doc,
            content_hash=content_hash(doc),
            author=author,
            message=message,
            created_at=now,
        )
        return self._store_new(wf, version)

    def _store_new(self, wf: Workflow, version: WorkflowVersion) -> WorkflowVersion:
        raise NotImplementedError


class WorkflowRepository(WorkflowCreation, Repository):
    """Stored workflows. Every save creates a new immutable version; old versions are never changed."""

    def _store_new(self, wf: Workflow, version: WorkflowVersion) -> WorkflowVersion:
        with self.session() as session:
            session.add(wf)
            session.flush()  # the parent row must exist before the version that references it
            session.add(version)
        return version

    def save(
        self,
        workflow_id: WorkflowId,
        document: Any,
        *,
        expected_version: int,
        author: str = "",
        message: str = "",
    ) -> WorkflowVersion:
        """Store `document` as the next version, provided the latest version is still `expected_version`.

        Raises `VersionConflictError` when someone else saved in between (the caller must merge and retry),
        `NotFoundError` when the workflow does not exist or was deleted.
        """
        doc = document_to_dict(document)
        now = utcnow()
        with self.session() as session:
            # The conditional UPDATE is the lock: of two concurrent saves on the same version only one matches.
            result = session.execute(
                sa.update(Workflow)
                .where(
                    col(Workflow.id) == workflow_id,
                    col(Workflow.latest_version) == expected_version,
                    col(Workflow.deleted_at).is_(None),
                )
                .values(latest_version=expected_version + 1, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                current = self._live(session, workflow_id)
                raise VersionConflictError(workflow_id, expected_version, current.latest_version)
            version = WorkflowVersion(
                workflow_id=workflow_id,
                version=expected_version + 1,
                document=doc,
                content_hash=content_hash(doc),
                author=author,
                message=message,
                created_at=now,
            )
            session.add(version)
        return version

    def get(self, workflow_id: WorkflowId) -> Workflow:
        """The workflow record (name, owner, latest version number); raises `NotFoundError`."""
        with self.reading() as session:
            return self._live(session, workflow_id)

    def latest(self, workflow_id: WorkflowId) -> WorkflowVersion:
        """The latest version of a workflow."""
        with self.reading() as session:
            wf = self._live(session, workflow_id)
            return self._version(session, workflow_id, wf.latest_version)

    def get_version(self, workflow_id: WorkflowId, version: int) -> WorkflowVersion:
        """One version of a workflow. Versions of deleted workflows stay readable: runs refer to them."""
        with self.reading() as session:
            return self._version(session, workflow_id, version)

    def history(self, workflow_id: WorkflowId) -> list[WorkflowVersion]:
        """Every version of a workflow, newest first."""
        with self.reading() as session:
            self._live(session, workflow_id)
            rows = session.exec(
                select(WorkflowVersion)
                .where(WorkflowVersion.workflow_id == workflow_id)
                .order_by(col(WorkflowVersion.version).desc())
            )
            return list(rows)

    def list(
        self,
        *,
        owner: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        visible_to: Audience | None = None,
    ) -> builtins.list[Workflow]:
        """Workflows that are not deleted, most recently updated first, optionally filtered (`visible_to`: only
        those that audience may see, `engine.store.shares`)."""
        query = select(Workflow).where(col(Workflow.deleted_at).is_(None))
        if visible_to is not None:
            query = query.where(visible_workflows(visible_to))
        if owner is not None:
            query = query.where(Workflow.owner == owner)
        if name is not None:
            query = query.where(Workflow.name == name)
        query = query.order_by(col(Workflow.updated_at).desc(), col(Workflow.id)).limit(limit).offset(offset)
        with self.reading() as session:
            return builtins.list(session.exec(query))

    def delete(self, workflow_id: WorkflowId) -> None:
        """Delete a workflow: it disappears from listings; its versions are kept for the runs that used them."""
        with self.session() as session:
            wf = self._live(session, workflow_id)
            wf.deleted_at = utcnow()
            session.add(wf)

    def diff(self, workflow_id: WorkflowId, old_version: int, new_version: int) -> WorkflowDiff:
        """The structural difference between two versions of a workflow."""
        with self.reading() as session:
            old = self._version(session, workflow_id, old_version)
            new = self._version(session, workflow_id, new_version)
        return diff_documents(old.document, new.document)

    def _live(self, session: Session, workflow_id: WorkflowId) -> Workflow:
        wf = session.get(Workflow, workflow_id)
        if wf is None or wf.deleted_at is not None:
            raise NotFoundError(
                f"workflow {workflow_id!r} does not exist (or was deleted); list workflows to find it"
            )
        return wf

    def _version(self, session: Session, workflow_id: WorkflowId, version: int) -> WorkflowVersion:
        row = session.get(WorkflowVersion, (workflow_id, version))
        if row is None:
            raise NotFoundError(
                f"workflow {workflow_id!r} has no version {version}; its history lists the versions it has"
            )
        return row

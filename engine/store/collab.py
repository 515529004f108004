"""Shared (co-edited) workflow documents as stored: per workflow, the version the document is based on and the
log of its Yjs updates (`serve.collab` keeps the live rooms; this keeps what survives a restart).

Updates are opaque bytes here (the store never decodes Yjs). They are numbered 1, 2, 3, ... per workflow
without gaps: the document row's counter is advanced by one conditional UPDATE that also serializes concurrent
appenders (as for run events), so a reader that tails the log by number (another API replica) never skips an
update committed after a later-numbered one.
"""

from __future__ import annotations

import base64
import builtins
from dataclasses import dataclass

import sqlalchemy as sa

from engine.store.base import Repository, reserve
from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import CollabDocument, CollabUpdate, table_of
from nodes.ids import WorkflowId


@dataclass(frozen=True)
class CollabState:
    """A shared document's record: the stored version it is based on and the number of its newest update."""

    workflow_id: WorkflowId
    base_version: int
    last_seq: int


class CollabRepository(Repository):
    """The update logs of shared workflow documents."""

    def get(self, workflow_id: WorkflowId) -> CollabState | None:
        """The shared document's record, or None when the workflow has none yet."""
        docs = table_of(CollabDocument)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(docs.c.base_version, docs.c.last_seq).where(docs.c.workflow_id == workflow_id)
            ).first()
        return None if row is None else CollabState(workflow_id, int(row[0]), int(row[1]))

    def start(self, workflow_id: WorkflowId, *, base_version: int, update: bytes) -> CollabState:
        """Create the shared document of a workflow with its first update (the stored version `base_version`
        written as Yjs), unless one exists already (another server created it first): returns the record."""
        now = utcnow()
        try:
            with self.writing() as conn:
                conn.execute(
                    sa.insert(table_of(CollabDocument)),
                    {
                        "workflow_id": workflow_id,
                        "base_version": base_version,
                        "last_seq": 1,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                conn.execute(sa.insert(table_of(CollabUpdate)), _row(workflow_id, 1, update, now))
        except sa.exc.IntegrityError:
            existing = self.get(workflow_id)
            if existing is None:  # not a lost race: the workflow itself is missing
                raise NotFoundError(
                    f"workflow {workflow_id!r} does not exist; create it before sharing its document"
                ) from None
            return existing
        return CollabState(workflow_id, base_version, 1)

    def append(self, workflow_id: WorkflowId, update: bytes) -> int:
        """Append one update to a shared document's log; returns its number."""
        with self.writing() as conn:
            seq = self._next(conn, workflow_id)
            conn.execute(sa.insert(table_of(CollabUpdate)), _row(workflow_id, seq, update, utcnow()))
        return seq

    def rebase(
        self, workflow_id: WorkflowId, *, expected_base: int, new_base: int, update: bytes | None
    ) -> int | None:
        """Record that the shared document took in stored version `new_base` (with the `update` that did it),
        provided it is still based on `expected_base`; returns the update's number (0 without an update), or
        None when another server rebased it first (that server's update carries the same change)."""
        docs = table_of(CollabDocument)
        with self.writing() as conn:
            moved = conn.execute(
                sa.update(docs)
                .where(docs.c.workflow_id == workflow_id, docs.c.base_version == expected_base)
                .values(base_version=new_base, updated_at=utcnow())
            )
            if moved.rowcount != 1:
                return None
            if update is None:
                return 0
            seq = self._next(conn, workflow_id)
            conn.execute(sa.insert(table_of(CollabUpdate)), _row(workflow_id, seq, update, utcnow()))
        return seq

    def read(self, workflow_id: WorkflowId, *, after: int = 0) -> builtins.list[tuple[int, bytes]]:
        """The updates numbered above `after`, in order, as (number, update)."""
        log = table_of(CollabUpdate)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.seq, log.c.data)
                .where(log.c.workflow_id == workflow_id, log.c.seq > after)
                .order_by(log.c.seq)
            ).all()
        return [(int(seq), base64.b64decode(data)) for seq, data in rows]

    def compact(self, workflow_id: WorkflowId, *, upto: int, update: bytes) -> int:
        """Replace the updates numbered up to `upto` by `update` (their merge) numbered `upto`; returns how many
        rows went. Readers past `upto` are unaffected; a reader before it gets the merge, which holds them all."""
        log = table_of(CollabUpdate)
        with self.writing() as conn:
            removed = conn.execute(sa.delete(log).where(log.c.workflow_id == workflow_id, log.c.seq <= upto))
            conn.execute(sa.insert(log), _row(workflow_id, upto, update, utcnow()))
        return max(int(removed.rowcount) - 1, 0)

    def delete(self, workflow_id: WorkflowId) -> bool:
        """Forget a workflow's shared document and its log; False when it had none."""
        docs = table_of(CollabDocument)
        log = table_of(CollabUpdate)
        with self.writing() as conn:
            conn.execute(sa.delete(log).where(log.c.workflow_id == workflow_id))
            gone = conn.execute(sa.delete(docs).where(docs.c.workflow_id == workflow_id))
        return int(gone.rowcount) == 1

    @staticmethod
    def _next(conn: sa.Connection, workflow_id: WorkflowId) -> int:
        docs = table_of(CollabDocument)
        seq = reserve(conn, docs, docs.c.workflow_id == workflow_id, 1, updated_at=utcnow())
        if seq is None:
            raise NotFoundError(
                f"workflow {workflow_id!r} has no shared document; open its collaboration room first"
            )
        return int(seq)


def _row(workflow_id: WorkflowId, seq: int, update: bytes, at: object) -> dict[str, object]:
    return {
        "workflow_id": workflow_id,
        "seq": seq,
        "data": base64.b64encode(update).decode("ascii"),
        "created_at": at,
    }

"""Node runs: one row per attempt of a node in a run, so retries and resumed runs keep their whole history."""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.store.base import Repository
from engine.store.columns import utcnow
from engine.store.errors import DuplicateAttemptError, NotFoundError
from engine.store.models import NodeRun, table_of
from nodes.ids import NodeId, NodeTypeId, RunId
from nodes.states import NodeStatus


class NodeRunRepository(Repository):
    """Attempts of nodes within runs."""

    def start(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        node_type: NodeTypeId = NodeTypeId(""),
        attempt: int | None = None,
        status: str = NodeStatus.RUNNING,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record the start of an attempt; `attempt=None` takes the next number after the node's last one."""
        with self.session() as session:
            if attempt is None:
                last = session.exec(
                    select(sa.func.max(NodeRun.attempt)).where(
                        NodeRun.run_id == run_id, NodeRun.node_id == node_id
                    )
                ).one()
                attempt = (last or 0) + 1
            row = NodeRun(
                run_id=run_id,
                node_id=node_id,
                attempt=attempt,
                node_type=node_type,
                status=status,
                started_at=at or utcnow(),
            )
            self._insert(session, row)
        return row

    def finish(
        self,
        run_id: RunId,
        node_id: NodeId,
        attempt: int,
        *,
        status: str,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        cache_hit: bool | None = None,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record how an attempt ended (status, error, where its result was written)."""
        with self.session() as session:
            row = session.get(NodeRun, (run_id, node_id, attempt))
            if row is None:
                raise NotFoundError(
                    f"run {run_id!r} has no attempt {attempt} of node {node_id!r}; call start() before finish()"
                )
            row.status = status
            row.finished_at = at or utcnow()
            if error is not None:
                row.error = json.loads(json.dumps(dict(error)))
            if result_location is not None:
                row.result_location = result_location
            if cache_hit is not None:
                row.cache_hit = cache_hit
            session.add(row)
        return row

    def record(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        attempt: int,
        status: str,
        node_type: NodeTypeId = NodeTypeId(""),
        cache_hit: bool = False,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> NodeRun:
        """Record a complete attempt in one step (e.g. a cache hit, or a skipped node)."""
        row = NodeRun(
            run_id=run_id,
            node_id=node_id,
            attempt=attempt,
            node_type=node_type,
            status=status,
            cache_hit=cache_hit,
            error=json.loads(json.dumps(dict(error))) if error is not None else None,
            result_location=result_location,
            started_at=started_at,
            finished_at=finished_at,
        )
        with self.session() as session:
            self._insert(session, row)
        return row

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert many complete attempts in one batched statement (keys as in `record`, plus `run_id` and
        `node_id`); returns how many were inserted."""
        defaults = {"node_type": "", "cache_hit": False, "error": None, "result_location": None}
        batch = [{**defaults, "started_at": None, "finished_at": None, **row} for row in rows]
        if not batch:
            return 0
        with self.writing() as conn:
            conn.execute(sa.insert(table_of(NodeRun)), batch)
        return len(batch)

    def list(self, run_id: RunId) -> builtins.list[NodeRun]:
        """Every attempt of every node of a run, by node id then attempt."""
        with self.reading() as session:
            return builtins.list(
                session.exec(
                    select(NodeRun)
                    .where(NodeRun.run_id == run_id)
                    .order_by(col(NodeRun.node_id), col(NodeRun.attempt))
                )
            )

    def latest(self, run_id: RunId) -> dict[NodeId, NodeRun]:
        """The last attempt of each node of a run (the node's current state)."""
        with self.reading() as session:
            return {row.node_id: row for row in self._ordered(session, run_id)}

    def succeeded(
        self, run_id: RunId, statuses: Collection[str] = NodeStatus.successes()
    ) -> dict[NodeId, NodeRun]:
        """The nodes of a run whose outputs are available (an attempt in `statuses`: succeeded, cached or
        skipped), with that attempt. Its `result_location` tells a resumed run where the result is, so the node
        is not executed again."""
        with self.reading() as session:
            done: dict[NodeId, NodeRun] = {}
            for row in self._ordered(session, run_id):
                if row.status in statuses:
                    done[row.node_id] = row
            return done

    @staticmethod
    def _insert(session: Session, row: NodeRun) -> None:
        session.add(row)
        try:
            session.flush()
        except sa.exc.IntegrityError as exc:
            raise DuplicateAttemptError(
                f"run {row.run_id!r} already has attempt {row.attempt} of node {row.node_id!r} (or the run does "
                "not exist); start a new attempt with attempt=None to take the next number"
            ) from exc

    @staticmethod
    def _ordered(session: Session, run_id: RunId) -> builtins.list[NodeRun]:
        return builtins.list(
            session.exec(
                select(NodeRun)
                .where(NodeRun.run_id == run_id)
                .order_by(col(NodeRun.node_id), col(NodeRun.attempt))
            )
        )

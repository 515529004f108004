"""Turning a finished run back into the state a crash leaves behind (for fast, Ray-free recovery tests)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from engine.durable.results import ResultStore
from engine.store import Store
from engine.store.columns import utcnow
from engine.store.models import Event, NodeRun, Run, table_of


def simulate_crash(
    store: Store,
    results: ResultStore,
    run_id: str,
    *,
    running: str,
    later: tuple[str, ...],
    keep_result: bool,
) -> None:
    """Make `run_id` look as if its coordinator died while node `running` ran.

    `running`'s attempt goes back to `running` (its stored result is kept when `keep_result`: the task finished
    and wrote it, but the coordinator died before recording the success); the nodes in `later` never started
    (their rows, results and events are removed); the run is `running` with a heartbeat a minute old.
    """
    runs, node_runs, events = table_of(Run), table_of(NodeRun), table_of(Event)
    gone = (running, *later) if not keep_result else later
    # Results go first: a recovery sweep running meanwhile (a served installation's) may take the run over as
    # soon as the rows below say it is running, and must then find the state the crash leaves, not a mix.
    fs, _ = results._filesystem()
    for node in gone:
        fs.delete_dir(results._node_dir(run_id, node))
    with store.engine.begin() as conn:
        started = conn.execute(
            sa.select(events.c.seq).where(
                events.c.run_id == run_id, events.c.type == "node.started", events.c.node_id == running
            )
        ).scalar_one()
        conn.execute(sa.delete(events).where(events.c.run_id == run_id, events.c.seq > started))
        conn.execute(sa.delete(node_runs).where(node_runs.c.run_id == run_id, node_runs.c.node_id.in_(later)))
        conn.execute(
            sa.update(node_runs)
            .where(node_runs.c.run_id == run_id, node_runs.c.node_id == running)
            .values(status="running", finished_at=None, result_location=None)
        )
        old = utcnow() - timedelta(minutes=1)
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(status="running", finished_at=None, last_seq=started, heartbeat_at=old, updated_at=old)
        )

"""Turning a finished run back into the state a crash leaves behind (for fast, Ray-free recovery tests)."""

from __future__ import annotations

from engine.durable.results import ResultStore
from engine.store import Store
from tests.engine.store.sql_support import rewind_to_crash


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
    gone = (running, *later) if not keep_result else later
    # Results go first: a recovery sweep running meanwhile (a served installation's) may take the run over as
    # soon as the rows below say it is running, and must then find the state the crash leaves, not a mix.
    for node in gone:
        results.where.delete_dir(results._node_dir(run_id, node))
    rewind_to_crash(store, run_id, running=running, later=later)

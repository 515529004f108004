"""Crash tests through a real `rayweave serve` (issue 16, critical 1): the server's own recovery sweep, with its
live plugin catalog, resumes every run it accepted, and no node that succeeded runs again.

(a) only the run coordinator actor is killed under a live server; (b) a Ray worker is killed while a node runs
in it; (c) last, the server's whole process tree (its Ray included) is SIGKILLed with 12 runs in flight and the
server is started again on the same home. All three share one server (a start costs about 20 s), so (c) stays
last and each test counts only the runs it submitted.

Every node is `rwcrash/tick@1` (tests/serve/crash_plugin): each execution writes the worker's pid to
`<run>.<node>.started` when it starts and to `<run>.<node>.done` when its body finished, so the files show
how often each node really ran. The servers run with recovery timings of seconds (`--recovery-*`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.settings import Settings
from engine.durable.results import ResultStore, default_results_uri
from engine.store import open_store
from tests.serve.crash_server import (
    CoordinatorKiller,
    ServeProcess,
    done_counts,
    lines,
    submit,
    ticks_doc,
    wait_for,
)

pytestmark = pytest.mark.slow

NODES = ("t0", "t1", "t2")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One running server shared by the tests that do not restart it, killed with its Ray at the end."""
    process = ServeProcess(tmp_path_factory.mktemp("live") / "home")
    try:
        process.start()
        yield process
    finally:
        process.close()


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "log"
    log.mkdir()
    return log


class CrashState:
    """What the store and the result store say right after a crash: which nodes had succeeded, and which had
    written their result (finished, even if their success was not recorded yet)."""

    def __init__(self, home: Path, run_ids: list[str]) -> None:
        settings = Settings(home=home)
        results = ResultStore(default_results_uri(settings))
        with open_store(settings.resolved_database_url, upgrade=False) as store:
            self.statuses = {r: store.runs.get(r).status for r in run_ids}
            self.succeeded = {
                (r, node)
                for r in run_ids
                for node, row in store.node_runs.latest(r).items()
                if row.status == "succeeded"
            }
        self.persisted = {(r, n) for r in run_ids for n in NODES if results.exists(r, n)}


def _wait_all_succeeded(client: httpx.Client, run_ids: list[str], timeout: float) -> None:
    def statuses() -> dict[str, str]:
        return {r: client.get(f"/v1/runs/{r}").json()["status"] for r in run_ids}

    try:
        wait_for(lambda: set(statuses().values()) == {"succeeded"}, timeout, "every run to succeed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {sorted(statuses().items())}") from None


def _run_ids(home: Path) -> set[str]:
    """The ids of every run the server's store holds."""
    with open_store(Settings(home=home).resolved_database_url, upgrade=False) as store:
        return {r.id for r in store.runs.list(limit=1000).items}


def _check_recovered(
    home: Path,
    log: Path,
    run_ids: list[str],
    before: dict[tuple[str, str], int],
    crash: CrashState,
    earlier: set[str],
) -> None:
    """Every run succeeded once with the right output; no node that had finished ran again, every other node
    finished exactly once more; no run was lost or made twice."""
    after = done_counts(log, run_ids, NODES)
    for key, count in after.items():
        if key in crash.succeeded or key in crash.persisted:
            assert count == before[key] == 1, f"node {key} had succeeded, yet it ran {count} times"
        else:
            assert count == before[key] + 1, f"node {key} ran {before[key]} + {count - before[key]} times"
    settings = Settings(home=home)
    with open_store(settings.resolved_database_url, upgrade=False) as store:
        assert sorted(r.id for r in store.runs.list(limit=1000).items if r.id not in earlier) == sorted(
            run_ids
        )
        for x, run_id in enumerate(run_ids):
            run = store.runs.get(run_id)
            assert run.status == "succeeded" and run.outputs == {"y": x + len(NODES)}
            events = store.events.read(run_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert [e.type for e in events].count("run.succeeded") == 1 and events[-1].type == "run.succeeded"
            attempts = store.node_runs.list(run_id)
            for node in NODES:
                mine = [a.status for a in attempts if a.node_id == node]
                assert mine.count("succeeded") == 1 and mine[-1] == "succeeded", (run_id, node, mine)
                assert set(mine) <= {"succeeded", "failed"}, (run_id, node, mine)


def test_killing_the_coordinator_under_a_live_server_resumes_its_runs(
    live_server: ServeProcess, tmp_path: Path
) -> None:
    log = _log(tmp_path)
    earlier = _run_ids(live_server.home)
    with CoordinatorKiller(live_server.ray_address) as killer:
        with live_server.client() as c:
            run_ids = submit(c, ticks_doc(log, (0.2, 4.0, 0.2)), 6)
        # 4 CPUs: four second nodes run, two wait for a CPU.
        wait_for(
            lambda: sum(lines(log, r, "t1", "started") != [] for r in run_ids) >= 4,
            60,
            "4 second nodes to start",
        )
        killer.kill()
    before = done_counts(log, run_ids, NODES)
    crash = CrashState(live_server.home, run_ids)
    # Under load a run may finish in the moment between the check above and the kill: it must not run again.
    in_flight = {r for r in run_ids if crash.statuses[r] == "running"}
    assert len(in_flight) >= 2 and all(crash.statuses[r] == "succeeded" for r in set(run_ids) - in_flight), (
        crash.statuses
    )

    with live_server.client() as c:
        _wait_all_succeeded(c, run_ids, timeout=90)
    _check_recovered(live_server.home, log, run_ids, before, crash, earlier)
    with open_store(Settings(home=live_server.home).resolved_database_url, upgrade=False) as store:
        for run_id in run_ids:
            started = [e.payload.get("resumed") for e in store.events.read(run_id) if e.type == "run.started"]
            assert started == ([None, True] if run_id in in_flight else [None]), (run_id, started)


def test_a_worker_killed_mid_node_is_retried_and_the_run_finishes(
    live_server: ServeProcess, tmp_path: Path
) -> None:
    import os
    import signal

    log = _log(tmp_path)
    with live_server.client() as c:
        (run_id,) = submit(c, ticks_doc(log, (0.2, 4.0, 0.2)), 1)
    (victim,) = wait_for(lambda: lines(log, run_id, "t1", "started"), 60, "the second node to start")
    assert victim in live_server.pids(), "the node's worker is not a process of the test server"
    os.kill(victim, signal.SIGKILL)

    with live_server.client() as c:
        _wait_all_succeeded(c, [run_id], timeout=60)
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"y": len(NODES)}
    started, done = lines(log, run_id, "t1", "started"), lines(log, run_id, "t1", "done")
    assert len(started) == 2 and started[0] == victim and started[1] != victim
    assert done == [started[1]]  # the killed execution never finished; its retry did, once
    assert done_counts(log, [run_id], ("t0", "t2")) == {(run_id, "t0"): 1, (run_id, "t2"): 1}
    with open_store(Settings(home=live_server.home).resolved_database_url, upgrade=False) as store:
        latest = store.node_runs.latest(run_id)
        assert {n: latest[n].status for n in NODES} == dict.fromkeys(NODES, "succeeded")
        assert not [a for a in store.node_runs.list(run_id) if a.status == "running"]


def test_killing_the_whole_server_loses_no_run_and_reruns_no_finished_node(
    live_server: ServeProcess, tmp_path: Path
) -> None:
    # Last in the module: it kills the shared server and starts it again (one server start fewer).
    server = live_server
    log = _log(tmp_path)
    earlier = _run_ids(server.home)
    with server.client() as c:
        run_ids = submit(c, ticks_doc(log, (0.3, 1.5, 0.2)), 12)
    # Crash while runs are mid-flight: first nodes done, second nodes running or done, most runs unfinished.
    wait_for(
        lambda: sum(lines(log, r, "t1", "done") != [] for r in run_ids) >= 3, 90, "3 second nodes to finish"
    )
    server.kill()
    before = done_counts(log, run_ids, NODES)
    crash = CrashState(server.home, run_ids)
    assert sum(s != "succeeded" for s in crash.statuses.values()) >= 5, crash.statuses
    assert crash.succeeded, "no node had succeeded before the crash"

    server.start()  # the same home; a new Ray
    with server.client() as c:
        _wait_all_succeeded(c, run_ids, timeout=120)
    _check_recovered(server.home, log, run_ids, before, crash, earlier)
    with open_store(Settings(home=server.home).resolved_database_url, upgrade=False) as store:
        resumed = [r for r in run_ids if crash.statuses[r] != "succeeded"]
        for run_id in resumed:
            started = [e for e in store.events.read(run_id) if e.type == "run.started"]
            assert started[-1].payload.get("resumed") is True

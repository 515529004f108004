"""The server's own recovery sweep, with the server's live plugin catalog (issue 16, critical 1).

Fast, in-process versions of the crash tests in test_serve_crash.py: the API is served with uvicorn on a real
socket, runs execute in-process, and a crash is made by turning a finished run back into the state a dead
coordinator leaves (tests/engine/durable/crash.py). The server's catalog is its live catalog, which the engine
once failed to copy (`_LiveCatalog.__init__() got an unexpected keyword argument 'registry'`), so no crashed run
was ever resumed by a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.compile import compile_workflow
from engine.durable.results import ResultStore, default_results_uri
from engine.store import open_store
from engine.workflow import Workflow
from nodes import node
from nodes.plugins.home import PluginHome
from nodes.plugins.live import LivePlugins
from serve.app import _LiveCatalog
from serve.config import ServeOptions
from tests.engine.durable.crash import simulate_crash
from tests.serve.api.conftest import Api, sleep_chain_doc, start_api, wait_for_status


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A served installation whose sweep looks every 0.1 s and takes over runs silent for 3 s."""
    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        print_admin_key=False,
        recovery_stale_after_s=3.0,
        recovery_start_grace_s=3.0,
        recovery_interval_s=0.1,
    )
    yield from start_api(tmp_path / "home", options)


def test_the_servers_sweep_resumes_a_crashed_run_without_rerunning_finished_nodes(api: Api) -> None:
    with api.client() as c:
        accepted = c.post("/v1/runs", json={"workflow": sleep_chain_doc(3, 0.0), "inputs": {"x": 7}})
        assert accepted.status_code == 202
        run_id = accepted.json()["id"]
        wait_for_status(c, run_id, "succeeded")

        # Its coordinator "dies" while s1 runs: s0 succeeded, s1 was interrupted, s2 never started.
        results = ResultStore(default_results_uri(Settings(home=api.home)))
        simulate_crash(api.store, results, run_id, running="s1", later=("s2",), keep_result=False)
        # The sweep (every 0.1 s here) may resume and finish it before any request could see it running: the
        # attempts and the resumed run.started below show that it was resumed.

        wait_for_status(c, run_id, "succeeded")
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"x": 7}

    attempts = [(r.node_id, r.attempt, r.status) for r in api.store.node_runs.list(run_id)]
    assert attempts == [
        ("s0", 1, "succeeded"),  # not executed again
        ("s1", 1, "failed"),
        ("s1", 2, "succeeded"),
        ("s2", 1, "succeeded"),
    ]
    events = api.store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [(e.type, e.node) for e in events].count(("node.started", "s0")) == 1
    assert [e.payload.get("resumed") for e in events if e.type == "run.started"] == [None, True]
    assert events[-1].type == "run.succeeded"


@node(plugin="local", cache=False)
def twice(x: int) -> int:
    """2 * x (a node defined in code, not in the server's catalog)."""
    return 2 * x


def test_a_workflow_with_local_nodes_compiles_against_the_live_catalog(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with open_store(settings.resolved_database_url) as store:
        catalog = _LiveCatalog(LivePlugins(PluginHome(settings.home, records=store.plugins)))
        wf = Workflow("local-nodes")
        wf.output("out", wf.add("t", twice, x=wf.input("x", "Int")))
        plan = compile_workflow(wf, catalog)
        snapshot = catalog.copy()
    assert [p.type_id for p in plan.nodes] == ["local/twice@1"]
    assert "local/twice@1" not in catalog  # the live catalog itself is never extended
    assert type(snapshot).__name__ == "Catalog" and "builtin/add@1" in snapshot

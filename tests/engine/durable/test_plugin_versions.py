"""Every durable run records the exact version of the code that serves each of its node types (DESIGN: "the
exact plugin version that served a run is recorded with the run")."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.store import Store
from engine.workflow import Workflow
from nodes.states import RunStatus
from tests.engine.durable.flows import chain, slow_inc


def test_a_run_records_the_versions_of_its_node_types(
    settings: Settings, any_store: Store, log: Path
) -> None:
    runner = DurableRunner(settings, store=any_store, executor="local", heartbeat_s=0.1)
    result = runner.run(chain(log), {"x": 1})
    assert result.status is RunStatus.SUCCEEDED
    assert any_store.runs.get(result.run_id).plugin_versions == {
        "durable_t/slow_inc@1": "durable_t@1.0.0",
        "durable_t/add2@1": "durable_t@1.0.0",
    }


def test_builtin_nodes_are_recorded_with_the_rayweave_version(
    settings: Settings, any_store: Store, log: Path
) -> None:
    wf = Workflow("with-builtin")
    x = wf.input("x", "Int")
    inc = wf.add("inc", slow_inc, inputs={"x": x}, params={"log": str(log)})
    out = wf.add("out", "builtin/to_string@1", inputs={"value": inc})
    wf.output("s", out)
    runner = DurableRunner(settings, store=any_store, executor="local", heartbeat_s=0.1)
    result = runner.run(wf, {"x": 1})
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"s": "2"}
    versions = any_store.runs.get(result.run_id).plugin_versions
    assert versions["builtin/to_string@1"] == f"builtin@{importlib.metadata.version('rayweave')}"
    assert versions["durable_t/slow_inc@1"] == "durable_t@1.0.0"

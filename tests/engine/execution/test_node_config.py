"""A node's context in a run: the workflow's name and stored version, its key in the run's events (inside a map
too) and the per-run config made from the installation's Settings (`engine.execution.nodeconfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.compile.pipeline import document_version
from engine.execution.nodeconfig import node_config_for
from nodes import Catalog, context, node

pytestmark = pytest.mark.ray


@node(plugin="ctxprobe", cache=False, deterministic=False)
def probe(x: int) -> dict[str, Any]:
    """What the node's context says."""
    ctx = context.current()
    return {
        "x": x,
        "node": ctx.node_id,
        "workflow": ctx.workflow,
        "version": ctx.workflow_version,
        "config": dict(ctx.config),
    }


DOC = {
    "format": "rayweave.workflow/1",
    "name": "ctx-probe",
    "nodes": {
        "top": {"type": "ctxprobe/probe@1", "in": {"x": {"value": 0}}},
        "each": {
            "type": "builtin/map@1",
            "in": {"items": {"value": [1, 2]}},
            "params": {
                "workflow": {
                    "format": "rayweave.workflow/1",
                    "name": "inner",
                    "inputs": {"item": {"type": "Int"}},
                    "nodes": {"p": {"type": "ctxprobe/probe@1", "in": {"x": "$inputs.item"}}},
                    "outputs": {"out": "p.out"},
                }
            },
        },
    },
    "outputs": {"top": "top.out", "each": "each.out"},
}


def _catalog() -> Catalog:
    catalog = Catalog.builtin()
    catalog.add(probe)
    return catalog


def test_engine_run_gives_nodes_the_settings_config(ray_session: Any, tmp_path: Path) -> None:
    import engine

    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri="http://mlflow.internal:5000")
    result = engine.run(DOC, None, catalog=_catalog(), settings=settings, cache=False)
    assert result.ok, result.errors
    expected = node_config_for(settings)
    assert expected["mlflow.tracking_uri"] == "http://mlflow.internal:5000"
    assert expected["mlflow.artifacts_uri"] == (tmp_path / "home" / "mlartifacts").resolve().as_uri()
    top = result.outputs["top"]
    # A document that is not stored reports its content hash as its version (the store's hash of a version).
    version = document_version(DOC)
    assert version.startswith("sha256:") and len(version) == len("sha256:") + 16
    assert (top["node"], top["workflow"], top["version"], top["config"]) == (
        "top",
        "ctx-probe",
        version,
        expected,
    )
    assert [(p["node"], p["workflow"], p["config"]) for p in result.outputs["each"]] == [
        ("each[0].p", "ctx-probe", expected),
        ("each[1].p", "ctx-probe", expected),
    ]


def test_a_stored_workflow_run_names_its_version(ray_session: Any, tmp_path: Path) -> None:
    from engine.durable import DurableRunner

    settings = Settings(home=tmp_path / "home")
    runner = DurableRunner(settings, catalog=_catalog(), heartbeat_s=0.2)
    stored = runner.store.workflows.create(DOC)
    second = runner.store.workflows.save(stored.workflow_id, DOC, expected_version=1, message="again")
    result = runner.run(None, workflow_id=stored.workflow_id, timeout=120)
    assert result.ok, result.errors
    assert result.outputs["top"]["version"] == str(second.version) == "2"
    assert result.outputs["top"]["config"] == node_config_for(settings)
    assert result.outputs["each"][1]["version"] == "2"

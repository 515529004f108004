"""A workflow output whose node was skipped has no value: it is absent from `outputs` and listed in
`skipped_outputs`, the same on both executors, from the cache and on the durable path (never the `SKIP` object).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster.settings import Settings
from engine import run
from engine.cache.result_cache import ResultCache
from engine.durable import DurableRunner
from engine.durable.stored import StoredRun, read_outputs
from engine.store import open_store
from nodes.states import NodeStatus, RunStatus

#: `neg` reads a node skipped when `flag` is true; `f` reads the untaken port of the branch itself.
BRANCHES: dict[str, Any] = {
    "format": "rayweave.workflow/1",
    "name": "skipped-outputs",
    "inputs": {"flag": {"type": "Bool"}},
    "nodes": {
        "b": {"type": "builtin/if_else@1", "in": {"cond": "$inputs.flag", "value": {"value": 5}}},
        "n": {"type": "builtin/negate@1", "in": {"x": "b.false"}},
        "p": {"type": "builtin/negate@1", "in": {"x": "b.true"}},
    },
    "outputs": {"neg": "n", "pos": "p.out", "t": "b.true", "f": "b.false"},
}


def _assert_skipped(result: Any) -> None:
    assert result.status is RunStatus.SUCCEEDED
    assert dict(result.outputs) == {"pos": -5, "t": 5}
    assert result.skipped_outputs == ("f", "neg")
    assert result.nodes["n"].status is NodeStatus.SKIPPED
    doc = result.to_json()
    assert doc["outputs"] == {"pos": -5, "t": 5} and doc["skipped_outputs"] == ["f", "neg"]
    assert "SKIP" not in json.dumps(doc)


@pytest.mark.parametrize("optimize", [True, False])
def test_in_process_run_lists_skipped_outputs(settings: Settings, optimize: bool) -> None:
    result = run(
        BRANCHES, {"flag": True}, executor="local", cache=False, optimize=optimize, settings=settings
    )
    _assert_skipped(result)
    taken = run(BRANCHES, {"flag": False}, executor="local", cache=False, settings=settings)
    assert dict(taken.outputs) == {"neg": -5, "f": 5} and taken.skipped_outputs == ("pos", "t")


def test_ray_run_lists_skipped_outputs(ray_session: object, settings: Settings) -> None:
    _assert_skipped(run(BRANCHES, {"flag": True}, executor="ray", cache=False, settings=settings))


def test_a_run_answered_from_the_cache_lists_skipped_outputs(settings: Settings) -> None:
    cache = ResultCache.for_settings(settings)
    first = run(BRANCHES, {"flag": True}, executor="local", cache=cache, settings=settings)
    _assert_skipped(first)
    again = run(BRANCHES, {"flag": True}, executor="local", cache=cache, settings=settings)
    assert again.outputs == first.outputs and again.skipped_outputs == first.skipped_outputs


def test_a_durable_run_stores_and_reads_back_skipped_outputs(settings: Settings) -> None:
    store = open_store(settings.resolved_database_url)
    try:
        runner = DurableRunner(settings, store=store, executor="local", heartbeat_s=0.1)
        result = runner.run(BRANCHES, {"flag": True})
        _assert_skipped(result)
        row = store.runs.get(result.run_id)
        assert row.outputs == {"pos": -5, "t": 5} and row.skipped_outputs == ["f", "neg"]
        stored = read_outputs(store, runner.results, result.run_id)
        assert stored.values == {"pos": -5, "t": 5} and stored.skipped == ("f", "neg")
        _assert_skipped(StoredRun(store, runner.results, result.run_id).result(timeout=10))
    finally:
        store.close()

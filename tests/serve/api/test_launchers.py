"""The API's run launcher records runs durably: idempotent, validated first, events, status and outputs in the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.store import open_store
from nodes import Catalog
from serve.errors import InvalidWorkflowError
from serve.runs import DurableRunLauncher, launcher_for
from tests.serve.api.conftest import add_doc


def test_launcher_records_events_status_and_outputs(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with open_store(settings.resolved_database_url) as store:
        launcher = DurableRunLauncher(store, Catalog.builtin(), settings, executor="local")
        first = launcher.launch(owner="u1", document=add_doc(), inputs={"a": 2, "b": 3}, idempotency_key="k")
        repeat = launcher.launch(owner="u1", document=add_doc(), inputs={"a": 2, "b": 3}, idempotency_key="k")
        with pytest.raises(InvalidWorkflowError):
            launcher.launch(owner="u1", document=add_doc(), inputs={"a": 2})
        deadline = time.monotonic() + 20
        while store.runs.get(first.run.id).status != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.02)
        events = [e.to_json() for e in store.events.read(first.run.id)]
        run = store.runs.get(first.run.id)
        nodes = store.node_runs.latest(first.run.id)
        launcher.close()
    assert first.created and not repeat.created and repeat.run.id == first.run.id
    assert run.outputs == {"total": 5}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.succeeded"
    assert [e["attempt"] for e in events if e["type"] == "node.succeeded"] == [1]
    assert nodes["sum"].status == "succeeded"


def test_the_server_uses_the_durable_launcher(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with open_store(settings.resolved_database_url) as store:
        assert isinstance(
            launcher_for(store, Catalog.builtin(), settings, executor="local"), DurableRunLauncher
        )


def _sum_statuses(tmp_path: Path, launches: list[dict[str, Any]]) -> list[str]:
    """Launch the add workflow (2 + 3) once per keyword set, each after the one before succeeded; the status of
    its `sum` node in each run."""
    settings = Settings(home=tmp_path / "home")
    statuses = []
    with open_store(settings.resolved_database_url) as store:
        launcher = DurableRunLauncher(store, Catalog.builtin(), settings, executor="local")
        for kwargs in launches:
            launched = launcher.launch(
                document=add_doc(), inputs={"a": 2, "b": 3}, **{"owner": "u1", **kwargs}
            )
            deadline = time.monotonic() + 20
            while store.runs.get(launched.run.id).status != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert store.runs.get(launched.run.id).outputs == {"total": 5}
            statuses.append(store.node_runs.latest(launched.run.id)["sum"].status)
        launcher.close()
    return statuses


def test_a_repeated_run_is_answered_from_the_result_cache(tmp_path: Path) -> None:
    assert _sum_statuses(tmp_path, [{}, {}]) == ["succeeded", "cached"]


def test_a_run_can_leave_the_result_cache_alone(tmp_path: Path) -> None:
    assert _sum_statuses(tmp_path, [{"cache": True}, {"cache": False}]) == ["succeeded", "succeeded"]


def test_owners_do_not_share_cached_results(tmp_path: Path) -> None:
    # bob's first run computes its own result although alice's is in the cache; his second reuses his own.
    owners = [{"owner": "alice"}, {"owner": "bob"}, {"owner": "bob"}]
    assert _sum_statuses(tmp_path, owners) == ["succeeded", "succeeded", "cached"]

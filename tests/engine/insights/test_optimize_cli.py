"""`rayweave optimize` over history recorded in the store: useless retries and flaky nodes, with evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from engine.store import Store, open_store
from serve.cli import build_app

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DOC = {
    "format": "rayweave.workflow/1",
    "name": "retries",
    "inputs": {"x": {"type": "Int"}},
    "nodes": {
        "fetch": {
            "type": "builtin/add@1",
            "in": {"a": "$inputs.x", "b": {"value": 1}},
            "retry": {"max_attempts": 3},
        },
        "boom": {
            "type": "builtin/fail@1",
            "in": {"value": "fetch.out"},
            "retry": {"max_attempts": 3, "backoff": "fixed", "initial_s": 2},
        },
    },
    "outputs": {"y": "boom.out"},
}


def _attempt(run: str, node: str, n: int, status: str, at: datetime, seconds: float) -> dict[str, Any]:
    return {
        "run_id": run,
        "node_id": node,
        "node_type": DOC["nodes"][node]["type"],  # type: ignore[index]
        "attempt": n,
        "status": status,
        "started_at": at,
        "finished_at": at + timedelta(seconds=seconds),
    }


def _history(store: Store, wf: str, runs: int) -> None:
    """`fetch` fails its first attempt every other run and then succeeds (flaky); `boom` fails three attempts
    2 s apart in every run (retries that never succeed)."""
    for i in range(runs):
        created = T0 + timedelta(minutes=i)
        run = store.runs.create(workflow_id=wf, inputs={"x": i}, at=created).run
        clock = created + timedelta(seconds=1)
        store.runs.update_status(run.id, "running", at=clock)
        rows = []
        if i % 2:
            rows.append(_attempt(run.id, "fetch", 1, "failed", clock, 0.5))
            clock += timedelta(seconds=1)
        rows.append(_attempt(run.id, "fetch", 2 if i % 2 else 1, "succeeded", clock, 0.5))
        clock += timedelta(seconds=0.5)
        for n in (1, 2, 3):
            rows.append(_attempt(run.id, "boom", n, "failed", clock, 0.1))
            clock += timedelta(seconds=0.1 + (2 if n < 3 else 0))
        store.node_runs.record_many(rows)
        store.runs.update_status(run.id, "failed", at=clock)


def _cli(url: str, home: Path, *args: str) -> tuple[int, str]:
    env = {"RAYWEAVE_HOME": str(home), "RAYWEAVE_DATABASE_URL": ""}
    result = CliRunner().invoke(build_app(), ["optimize", *args, "--url", url], env=env)
    return result.exit_code, result.output


def test_optimize_finds_useless_retries_and_flaky_nodes_then_applies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rayweave.db'}"
    store = open_store(url)
    wf = store.workflows.create(DOC).workflow_id
    _history(store, wf, 6)
    store.close()
    code, out = _cli(url, tmp_path, wf, "--json")
    assert code == 0, out
    found = {i["id"]: i for i in json.loads(out)["insights"]}
    retry = found["retry_never_succeeds:boom"]
    assert retry["evidence"]["retried_runs"] == 6 and retry["edit"] == {
        "boom": {"retry": {"max_attempts": 1}}
    }
    # Every run loses its 4 s of retries (two 2 s waits and the attempts between them).
    assert abs(retry["predicted_saving_s"] - 4.2) < 0.01
    assert found["flaky:fetch"]["evidence"]["succeeded_after_retry"] == 3
    assert "edit" in found["flaky:fetch"] and found["flaky:fetch"]["edit"] is None
    assert found["critical_path"]["nodes"] == ["fetch", "boom"]
    code, out = _cli(url, tmp_path, wf)
    assert code == 0 and "* [retry_never_succeeds:boom]" in out and "--apply" in out
    code, out = _cli(url, tmp_path, wf, "--apply")
    assert code == 0 and "saved as version 2" in out, out
    store = open_store(url)
    latest = store.workflows.latest(wf)
    store.close()
    assert latest.document["nodes"]["boom"]["retry"] == {
        "max_attempts": 1,
        "backoff": "fixed",
        "initial_s": 2,
    }
    assert latest.message == "optimize: retry_never_succeeds:boom"
    code, out = _cli(url, tmp_path, "nope")
    assert code == 1 and "workflow 'nope' does not exist" in out

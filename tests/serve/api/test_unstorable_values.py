"""Values a run produces that the store cannot hold as they are, through the API on SQLite and PostgreSQL (issue
16): the run always ends, and every GET about it answers (never a 5xx, never a run stuck in `running`).

`builtin/json_parse` turns text that passes the input limits (`"a\\u0000b"` is ten plain characters) into a
value that breaks them: a NUL character (PostgreSQL refused to record the run's end, so it stayed `running`
forever), a lone surrogate (SQLite stored it, and `GET /outputs` was a 500 forever), 300 levels of nesting (the
same), NaN. The node fails naming its port and the workflow output, and the run ends `failed`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve.config import ServeOptions
from tests.postgres import postgres_database
from tests.serve.api.conftest import Api, start_api

PARSE = {
    "format": "rayweave.workflow/1",
    "name": "parse-text",
    "inputs": {"text": {"type": "String"}},
    "nodes": {"parse": {"type": "builtin/json_parse@1", "in": {"text": "$inputs.text"}}},
    "outputs": {"value": "parse.out"},
}
#: JSON texts (valid inputs: no NUL, no surrogate, shallow) whose parsed values break a limit.
TEXTS = {
    "nul": ('"a\\u0000b"', "NUL character"),
    "surrogate": ('"\\ud800"', "lone UTF-16 surrogate"),
    "deep": ("[" * 300 + "]" * 300, "nests deeper than 64 levels"),
    "nan": ("NaN", "is not a JSON number"),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served API on each database (in-process executor)."""
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    home: Path = tmp_path_factory.mktemp(f"unstorable-{request.param}")
    if request.param == "sqlite":
        yield from start_api(home, options)
        return
    with postgres_database("rayweave_unstorable") as url:
        yield from start_api(home, options, database_url=url)


def _ended(c: httpx.Client, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = c.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']!r} after {timeout} s"
        time.sleep(0.1)


def _every_read_answers(c: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    outputs = c.get(f"/v1/runs/{run_id}/outputs")
    assert outputs.status_code == 200, outputs.text
    assert outputs.json()["outputs"] == {}
    listed = c.get("/v1/runs", params={"status": "failed"})
    assert listed.status_code == 200 and run_id in {r["id"] for r in listed.json()["items"]}
    stream = c.get(f"/v1/runs/{run_id}/events")
    assert stream.status_code == 200, stream.text
    events = [
        json.loads(line[len("data: ") :]) for line in stream.text.splitlines() if line.startswith("data: ")
    ]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.failed"
    return events


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_a_node_output_the_store_cannot_hold_fails_the_node_and_the_run_ends(served: Api, kind: str) -> None:
    text, problem = TEXTS[kind]
    with served.client() as c:
        accepted = c.post("/v1/runs", json={"workflow": PARSE, "inputs": {"text": text}})
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        run = _ended(c, run_id)
        assert run["status"] == "failed"
        [node] = run["nodes"]
        assert (node["node"], node["status"], node["error"]["type"]) == (
            "parse",
            "failed",
            "UnstorableOutputError",
        )
        message = node["error"]["message"]
        assert "workflow output 'value' (node 'parse', port 'out') cannot be stored" in message
        assert problem in message
        assert run["error"]["failed_nodes"] == ["parse"]
        _every_read_answers(c, run_id)


def test_outputs_within_the_limits_come_back(served: Api) -> None:
    with served.client() as c:
        text = '{"k": ["\\ud83d\\ude00 \\u00b2", 1.5, ' + "[" * 60 + "]" * 60 + "]}"
        run_id = c.post("/v1/runs", json={"workflow": PARSE, "inputs": {"text": text}}).json()["id"]
        assert _ended(c, run_id)["status"] == "succeeded"
        outputs = c.get(f"/v1/runs/{run_id}/outputs")
        assert outputs.status_code == 200 and outputs.json()["outputs"] == {"value": json.loads(text)}

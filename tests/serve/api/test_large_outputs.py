"""Outputs bigger than the run row keeps (64 KiB of JSON each) through the API, on SQLite and PostgreSQL.

The run row keeps each output as JSON only up to `engine.durable.sink.MAX_JSON_OUTPUT_BYTES`; `GET /outputs`
answered from the row alone, so a run that succeeded with a 200 KB string answered `outputs: {}` and said
nothing. Now every output comes back (read from the run's result store) up to `ServeOptions.max_output_bytes`
for all of them together, and one beyond it is named in `omitted_outputs` with its size and how to get it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from engine.durable.results import ResultStore
from engine.durable.sink import MAX_JSON_OUTPUT_BYTES
from serve.cli import build_app
from serve.client import Client
from serve.config import ServeOptions
from serve.errors import OutputsOmittedWarning
from tests.postgres import postgres_database
from tests.serve.api.conftest import Api, start_api

#: The cap of the test servers: the 200 KB text fits, the text and the 229 KB list together do not (big
#: outputs are read in the order of their names, so the list is sent and the text left out).
CAP = 300_000
#: `builtin/replace` makes a 200,000-character text of a 1,000-character input.
TEXT_NODES = {
    "text": {
        "type": "builtin/replace@1",
        "in": {"text": "$inputs.seed"},
        "params": {"old": "x", "new": "y" * 200},
    },
}
BIG_TEXT = {
    "format": "rayweave.workflow/1",
    "name": "big-text",
    "inputs": {"seed": {"type": "String"}},
    "nodes": TEXT_NODES,
    "outputs": {"text": "text.out"},
}
TWO_BIG = {
    "format": "rayweave.workflow/1",
    "name": "two-big",
    "inputs": {"seed": {"type": "String"}},
    "nodes": {
        **TEXT_NODES,
        "numbers": {"type": "builtin/range@1", "params": {"stop": 40_000}},
        "count": {"type": "builtin/text_length@1", "in": {"text": "$inputs.seed"}},
    },
    "outputs": {"text": "text.out", "numbers": "numbers.out", "count": "count.out"},
}
SEED = "x" * 1000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served API on each database (in-process executor) whose outputs answers hold at most `CAP` bytes."""
    options = ServeOptions(
        executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False, max_output_bytes=CAP
    )
    home: Path = tmp_path_factory.mktemp(f"large-outputs-{request.param}")
    if request.param == "sqlite":
        yield from start_api(home, options)
        return
    with postgres_database("rayweave_large_outputs") as url:
        yield from start_api(home, options, database_url=url)


def _succeeded(c: httpx.Client, document: dict[str, Any], timeout: float = 60.0) -> str:
    response = c.post("/v1/runs", json={"workflow": document, "inputs": {"seed": SEED}})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    deadline = time.monotonic() + timeout
    while True:
        run = c.get(f"/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            assert run["status"] == "succeeded", run
            return run_id
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']!r} after {timeout} s"
        time.sleep(0.1)


def test_an_output_bigger_than_the_run_row_keeps_comes_back_whole(served: Api) -> None:
    with served.client() as c:
        run_id = _succeeded(c, BIG_TEXT)
        response = c.get(f"/v1/runs/{run_id}/outputs")
    assert response.status_code == 200, response.text
    body = response.json()
    text = "y" * 200_000
    assert len(text) > MAX_JSON_OUTPUT_BYTES
    assert "text" not in (served.store.runs.get(run_id).outputs or {})  # the run row does not hold it
    assert body["outputs"] == {"text": text}
    assert body["omitted_outputs"] == []
    assert body["skipped_outputs"] == []


def test_an_output_beyond_the_cap_is_named_with_its_size_and_how_to_get_it(served: Api) -> None:
    with served.client() as c:
        run_id = _succeeded(c, TWO_BIG)
        body = c.get(f"/v1/runs/{run_id}/outputs").json()
    # The small output (in the run row) and the first big one by name fit; the second does not.
    assert body["outputs"] == {"count": 1000, "numbers": list(range(40_000))}
    assert len(body["omitted_outputs"]) == 1
    omitted = body["omitted_outputs"][0]
    assert omitted["name"] == "text"
    assert omitted["bytes"] == 200_002
    assert omitted["reason"] == "too_large"
    assert f"{CAP} bytes" in omitted["message"]
    assert "max_output_bytes" in omitted["message"]
    assert f"rayweave runs show {run_id} --json" in omitted["message"]

    # The SDK client says so too: a warning naming it, and the list.
    with Client(served.url, api_key=served.admin_key) as client:
        handle = client.run(run_id)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outputs = handle.outputs()
        assert set(outputs) == {"numbers", "count"}
        assert [w.category for w in caught] == [OutputsOmittedWarning]
        assert "'text'" in str(caught[0].message)
        assert [o["name"] for o in handle.omitted_outputs()] == ["text"]


def test_an_output_far_beyond_the_cap_is_not_even_read(served: Api) -> None:
    document = {
        "format": "rayweave.workflow/1",
        "name": "huge-list",
        "inputs": {"seed": {"type": "String"}},
        "nodes": {"numbers": {"type": "builtin/range@1", "params": {"stop": 1_000_000}}},
        "outputs": {"numbers": "numbers.out"},
    }
    with served.client() as c:
        run_id = _succeeded(c, document)
        body = c.get(f"/v1/runs/{run_id}/outputs").json()
    assert body["outputs"] == {}
    [omitted] = body["omitted_outputs"]
    # Its stored data (about 4.9 MB) is more than 8 times the cap: the server does not load it to measure it.
    assert (omitted["name"], omitted["bytes"], omitted["reason"]) == ("numbers", None, "too_large")
    assert "bytes in the result store" in omitted["message"]


def test_an_output_whose_stored_value_is_gone_is_named_as_unavailable(served: Api) -> None:
    with served.client() as c:
        run_id = _succeeded(c, BIG_TEXT)
        ResultStore(served.home / "results").delete_run(run_id)
        response = c.get(f"/v1/runs/{run_id}/outputs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outputs"] == {}
    [omitted] = body["omitted_outputs"]
    assert (omitted["name"], omitted["bytes"], omitted["reason"]) == ("text", None, "unavailable")
    assert "start the run again" in omitted["message"]


def test_the_command_line_through_the_server_names_what_it_was_not_sent(
    served: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAYWEAVE_SERVER", served.url)
    monkeypatch.setenv("RAYWEAVE_API_KEY", served.admin_key)
    path = tmp_path / "two-big.json"
    path.write_text(json.dumps(TWO_BIG))
    cli = CliRunner()
    ran = cli.invoke(build_app(), ["run", str(path), "-i", f"seed={SEED}", "--json"])
    assert ran.exit_code == 0, ran.output
    doc = json.loads(ran.stdout)
    assert set(doc["outputs"]) == {"count", "numbers"}
    assert [o["name"] for o in doc["omitted_outputs"]] == ["text"]

    shown = cli.invoke(build_app(), ["runs", "show", doc["run_id"], "--json"])
    assert shown.exit_code == 0, shown.output
    assert [o["name"] for o in json.loads(shown.stdout)["omitted_outputs"]] == ["text"]
    text = cli.invoke(build_app(), ["runs", "show", doc["run_id"]])
    assert "output text not sent by the server: output 'text' is 200002 bytes as JSON" in text.stdout

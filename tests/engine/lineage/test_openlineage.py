"""Durable runs post OpenLineage run events (START, then COMPLETE or FAIL) with the datasets of their data nodes
to `RAYWEAVE_OPENLINEAGE_URL`: checked by a receiver on loopback that validates each event against the
OpenLineage RunEvent schema, answers the first post with 503 (the event is retried) and never holds a run up."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.lineage.openlineage import datasets, emitter_for, lineage_run_id
from nodes.states import RunStatus

SCHEMA = json.loads((Path(__file__).parent / "openlineage-runevent.schema.json").read_text())
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or ("T" in value and datetime.fromisoformat(value).tzinfo is not None)


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlparse(value).scheme)


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@dataclass
class Receiver:
    """An OpenLineage endpoint on loopback: valid events are kept; invalid ones are answered 400."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    refuse_first: int = 1
    posts: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=FORMATS)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts += 1
            if state.posts <= state.refuse_first:
                self.send_response(503)  # the emitter must retry
                self.end_headers()
                return
            event = json.loads(body)
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
            state.invalid.extend(errors)
            if not errors:
                state.events.append(event)
            self.send_response(400 if errors else 201)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/lineage"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _document(out: Path) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "csv-to-parquet",
        "inputs": {"path": {"type": "String"}},
        "nodes": {
            "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
            "save": {
                "type": "builtin/write_parquet@1",
                "in": {"table": "load.table", "path": {"value": str(out)}},
            },
        },
        "outputs": {"written": "save.path"},
    }


def _runner(tmp_path: Path, url: str) -> DurableRunner:
    settings = Settings(home=tmp_path / "home", data_roots=[tmp_path], openlineage_url=url)
    return DurableRunner(settings, executor="local", heartbeat_s=0.1)


def test_runs_post_start_and_end_with_their_datasets(tmp_path: Path, receiver: Receiver) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.parquet"
    source.write_text("x,y\n1,2\n3,4\n")
    runner = _runner(tmp_path, receiver.url)
    ok = runner.run(_document(target), {"path": str(source)})
    failed = runner.run(_document(target), {"path": str(tmp_path / "missing.csv")})
    assert ok.status is RunStatus.SUCCEEDED and failed.status is RunStatus.FAILED
    assert emitter_for(receiver.url).flush(20)
    assert receiver.invalid == []
    assert receiver.posts == 5  # four events, the first posted twice
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in receiver.events:
        by_run.setdefault(event["run"]["runId"], []).append(event)
    assert [e["eventType"] for e in by_run[lineage_run_id(ok.run_id)]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in by_run[lineage_run_id(failed.run_id)]] == ["START", "FAIL"]
    complete = by_run[lineage_run_id(ok.run_id)][1]
    assert complete["job"] == {"namespace": "rayweave", "name": "csv-to-parquet"}
    assert complete["inputs"] == [{"namespace": "file", "name": str(source)}]
    assert complete["outputs"] == [{"namespace": "file", "name": str(target)}]
    assert complete["run"]["facets"]["rayweave"]["runId"] == ok.run_id
    assert str(uuid.UUID(complete["run"]["runId"])) == lineage_run_id(ok.run_id)


def test_an_unreachable_endpoint_never_holds_a_run_up(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    source = tmp_path / "in.csv"
    source.write_text("x\n1\n")
    runner = _runner(tmp_path, f"http://127.0.0.1:{port}/lineage")
    began = time.monotonic()
    result = runner.run(_document(tmp_path / "out.parquet"), {"path": str(source)})
    assert result.status is RunStatus.SUCCEEDED
    assert time.monotonic() - began < 10  # the retries (0.5 + 1 + 2 s per event) happen in the background


def test_datasets_come_from_constants_and_inputs_not_from_other_nodes() -> None:
    document = {
        "nodes": {
            "a": {"type": "builtin/read_parquet@1", "in": {"path": {"value": "/d/a.parquet"}}},
            "b": {"type": "builtin/sql_files@1", "in": {"files": "$inputs.files"}, "params": {"query": "x"}},
            "c": {"type": "builtin/read_csv@1", "in": {"path": "other.path"}},
            "d": {"type": "builtin/write_parquet@1", "in": {"table": "a.table", "path": "$inputs.out"}},
        }
    }
    ins, outs = datasets(document, {"files": {"o": "/d/o.csv", "p": "/d/p.parquet"}, "out": "/d/out.parquet"})
    assert [d["name"] for d in ins] == ["/d/a.parquet", "/d/o.csv", "/d/p.parquet"]
    assert outs == [{"namespace": "file", "name": "/d/out.parquet"}]

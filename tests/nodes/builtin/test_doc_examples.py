"""Every example of the built-in nodes' reference pages (docs/nodes/builtin, made by `nodes.docgen`) validates,
and runs with the inputs the page gives to the outputs the page shows.

The pages' `$DATA` is a data root of the test's installation holding the example files, `$SERVER` a loopback
HTTP server started here (allowed to `http_request` by the installation's settings).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine import run
from engine.compile import validate
from engine.execution.result import jsonable
from nodes import Catalog
from nodes.docexamples import DATA, SERVER, Example, examples
from nodes.docgen import builtin_samples

#: Examples that cannot be given inputs at all (none today; a new one must say why here).
NOT_RUN: frozenset[str] = frozenset()


def _all() -> list[tuple[str, Example]]:
    samples = builtin_samples()
    return [
        (f"{d.spec.id}:{example.title}", example)
        for d in Catalog.builtin().definitions()
        for example in examples(d, samples.get(d.spec.id))
    ]


class _Items(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"items": [1, 2, 3]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Place:
    """The installation the examples run in: its settings, data root and server address."""

    settings: Settings
    data: Path
    server: str

    def fill(self, value: Any) -> Any:
        """`value` with the placeholders replaced."""
        text = json.dumps(value).replace(DATA, str(self.data)).replace(SERVER, self.server)
        return json.loads(text)

    def plain(self, value: Any) -> Any:
        """JSON `value` with the data root written as the placeholder again."""
        return json.loads(json.dumps(value).replace(str(self.data), DATA))


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("doc-examples")
    data = root / "data"
    data.mkdir()
    files: dict[str, Any] = {}
    for _, example in _all():
        files.update(example.files)
    for name, content in files.items():
        if isinstance(content, str):
            (data / name).write_text(content)
        else:
            pq.write_table(pa.Table.from_pylist(content), data / name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Items)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = Settings(home=root / "home", data_roots=[data], http_allow=["127.0.0.1"])
    try:
        yield Place(settings, data.resolve(), f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


@pytest.mark.parametrize(("name", "example"), _all(), ids=[name for name, _ in _all()])
def test_the_example_validates_and_runs_as_shown(place: Place, name: str, example: Example) -> None:
    text = json.dumps(example.document)
    for constant, stands_for in example.constants.items():
        text = text.replace(json.dumps(constant), json.dumps(stands_for))
    document = place.fill(json.loads(text))
    errors = [d.render() for d in validate(document) if d.severity == "error"]
    assert errors == [], f"{name}: the example does not validate"
    if example.inputs is None:
        assert name in NOT_RUN, f"{name}: give the example inputs in nodes/builtin/samples.py"
        return
    result = run(document, place.fill(example.inputs), executor="local", cache=False, settings=place.settings)
    if example.fails is not None:
        assert not result.ok and any(example.fails in e.message for e in result.errors), result.errors
        return
    assert result.ok, f"{name}: {[str(e) for e in result.errors]}"
    if example.outputs is not None:
        outputs = place.plain({k: jsonable(v) for k, v in result.outputs.items()})
        assert outputs == dict(example.outputs)
        declared = set(document["outputs"])
        assert set(result.skipped_outputs) == declared - set(example.outputs)


def test_every_built_in_node_has_a_sample_and_a_run_example() -> None:
    samples = builtin_samples()
    catalog = Catalog.builtin()
    assert set(samples) <= {d.spec.id for d in catalog.definitions()}, "a sample names no built-in node"
    missing = [d.spec.id for d in catalog.definitions() if d.spec.id not in samples]
    assert missing == [], "every built-in node's example gets a sample in nodes/builtin/samples.py"
    run = [name for name, example in _all() if example.inputs is not None]
    assert len(run) >= len(catalog) and not NOT_RUN

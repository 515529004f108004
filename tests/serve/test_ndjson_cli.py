"""`rayweave export --format ndjson|cloudevents` and `rayweave import FILE.ndjson` (or `-`): a round trip
between two installations through a file and through stdin/stdout, idempotent, and bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from engine.store import open_store
from serve.cli import build_app
from tests.engine.store.conformance.populate import populate


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_export_and_import_ndjson_between_installations(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(source) as store:
        populate(store, runs=2)
    out = tmp_path / "all.ndjson"
    code, _, err = _run("export", "--format", "ndjson", "--out", str(out), "--url", source)
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert json.loads(lines[-1])["counts"] == {
        "workflow": 2,
        "workflow_version": 3,
        "run": 3,
        "node_run": 4,
        "event": 4,
    }
    code, text, err = _run("import", str(out), "--url", target, "--json")
    assert code == 0, err
    assert json.loads(text)["added"]["events"] == 4
    # Again, from stdin: nothing new.
    code, text, err = _run("import", "-", "--url", target, "--json", stdin=out.read_bytes())
    assert code == 0, err
    assert json.loads(text)["added"] == {}
    # Both installations now export the same records; stdout with `-`.
    code, again, err = _run("export", "--format", "ndjson", "--out", "-", "--url", target)
    assert code == 0, err
    assert again.splitlines() == lines


def test_cloudevents_kinds_and_bad_input(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    with open_store(source) as store:
        populate(store, runs=1)
    code, text, err = _run("export", "--format", "cloudevents", "--kinds", "events", "--url", source)
    assert code == 0, err
    records = [json.loads(line) for line in text.splitlines()]
    assert [r.get("type") for r in records[1:-1]] == ["io.rayweave.run.started", "io.rayweave.node.started"]
    assert _run("export", "--format", "ndjson", "--kinds", "bogus", "--url", source)[0] == 2
    assert _run("export", "--format", "ndjson", "--since", "yesterday", "--url", source)[0] == 2
    broken = tmp_path / "broken.ndjson"
    broken.write_text(text.replace('"specversion":"1.0"', '"specversion":"0.3"', 1))
    code, _, err = _run("import", str(broken), "--url", source)
    assert code == 1
    assert "line 2: not a rayweave event as a CloudEvent: attribute 'specversion'" in err

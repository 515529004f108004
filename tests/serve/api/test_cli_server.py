"""The command line against a served app (`--server URL`): run, runs, validate, nodes, types, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve.cli import build_app
from serve.client import Client
from tests.serve.api.conftest import Api, add_doc, sleep_chain_doc
from tests.serve.api.server import free_port

PY_WORKFLOW = '''
from engine.workflow import Workflow
from nodes import node


@node(plugin="clilocal")
def triple(x: int) -> int:
    """Three times x."""
    return 3 * x


workflow = Workflow("py-remote")
n = workflow.input("n", "Int")
workflow.output("out", workflow.add("t", triple, x=n))
'''


@pytest.fixture
def cli(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose commands talk to `api` (RAYWEAVE_SERVER) with its admin key (RAYWEAVE_API_KEY)."""
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAYWEAVE_SERVER", api.url)
    monkeypatch.setenv("RAYWEAVE_API_KEY", api.admin_key)
    return CliRunner()


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_run_json_through_the_server(cli: CliRunner, api: Api, tmp_path: Path) -> None:
    path = write(tmp_path, "add.json", add_doc("cli-remote"))
    result = cli.invoke(build_app(), ["run", str(path), "-i", "a=2", "-i", "b=40", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded" and doc["outputs"] == {"total": 42}
    assert doc["nodes"]["sum"]["status"] == "succeeded" and doc["server"] == api.url
    with Client(api.url, api.admin_key) as client:  # the run really lives on the server
        assert client.run(doc["run_id"]).outputs() == {"total": 42}


def test_run_live_view_shows_nodes_and_outputs(cli: CliRunner, api: Api, tmp_path: Path) -> None:
    path = write(tmp_path, "sleepy.json", sleep_chain_doc(2, 0.01))
    result = cli.invoke(build_app(), ["run", str(path), "--input", "x=9", "--server", api.url])
    assert result.exit_code == 0, result.output
    assert "s0" in result.output and "s1" in result.output and "succeeded" in result.output
    assert "x = 9" in result.output


def test_run_failure_exits_1_with_the_node_error(cli: CliRunner, tmp_path: Path) -> None:
    failing = {
        "format": "rayweave.workflow/1",
        "name": "fails",
        "inputs": {},
        "nodes": {
            "f": {"type": "builtin/fail@1", "in": {"value": {"value": 1}}, "params": {"message": "nope"}}
        },
        "outputs": {"out": "f.out"},
    }
    result = cli.invoke(build_app(), ["run", str(write(tmp_path, "f.json", failing))])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "nope" in result.output


def test_run_bad_input_is_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "add.json", add_doc())
    unknown = cli.invoke(build_app(), ["run", str(path), "-i", "c=1"])
    assert unknown.exit_code == 2 and "has no input 'c'" in unknown.output
    missing = cli.invoke(build_app(), ["run", str(path), "-i", "a=1"])
    assert missing.exit_code == 2 and "HTTP" not in missing.output and "b" in missing.output
    assert "Traceback" not in missing.output


def test_py_file_with_local_nodes_gets_unknown_node_type(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "wf.py", PY_WORKFLOW)
    result = cli.invoke(build_app(), ["run", str(path), "-i", "n=2"])
    assert result.exit_code == 1, result.output
    assert "HTTP 422" in result.output and "RW101" in result.output
    assert "clilocal/triple@1" in result.output and "plugins installed on the server" in result.output
    assert "Traceback" not in result.output
    checked = cli.invoke(build_app(), ["validate", str(path), "--json"])
    assert checked.exit_code == 1
    assert [d["code"] for d in json.loads(checked.stdout)["diagnostics"]] == ["RW101"]
    assert "plugins installed on the server" in checked.stderr


def test_runs_list_show_events(cli: CliRunner, api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        run = client.submit(add_doc("cli-runs"), {"a": 1, "b": 2})
        run.wait(timeout=20)
    listed = cli.invoke(build_app(), ["runs", "list", "--json", "--status", "succeeded"])
    assert listed.exit_code == 0, listed.output
    assert run.id in [r["id"] for r in json.loads(listed.stdout)["runs"]]
    shown = cli.invoke(build_app(), ["runs", "show", run.id, "--json"])
    detail = json.loads(shown.stdout)
    assert detail["status"] == "succeeded" and detail["outputs"] == {"total": 3}
    assert [n["node"] for n in detail["nodes"]] == ["sum"]
    text = cli.invoke(build_app(), ["runs", "show", run.id])
    assert f"run {run.id}: succeeded" in text.output and "output total = 3" in text.output
    events = cli.invoke(build_app(), ["runs", "events", run.id, "--json"])
    seqs = [e["seq"] for e in json.loads(events.stdout)["events"]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
    later = cli.invoke(build_app(), ["runs", "events", run.id, "--after", "2"])
    assert later.exit_code == 0 and "run.succeeded" in later.output and "run.queued" not in later.output


def test_runs_cancel_and_unknown_run(cli: CliRunner, api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        run = client.submit(sleep_chain_doc(40, 0.05), {"x": 1})
        cancelled = cli.invoke(build_app(), ["runs", "cancel", run.id, "--json"])
        assert cancelled.exit_code == 0, cancelled.output
        assert run.wait(timeout=20)["status"] == "cancelled"
    again = cli.invoke(build_app(), ["runs", "cancel", run.id])
    assert again.exit_code == 1 and "already cancelled" in again.output
    missing = cli.invoke(build_app(), ["runs", "show", "no-such-run"])
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.output and "no-such-run" in missing.output
    assert "Traceback" not in missing.output


def test_validate_clean_and_with_errors(cli: CliRunner, tmp_path: Path) -> None:
    clean = cli.invoke(build_app(), ["validate", str(write(tmp_path, "ok.json", add_doc()))])
    assert clean.exit_code == 0 and "ok (0 warning(s))" in clean.output
    bad_doc = add_doc()
    bad_doc["nodes"]["sum"]["type"] = "builtin/nope@1"
    bad = write(tmp_path, "bad.json", json.dumps(bad_doc, indent=2))
    text = cli.invoke(build_app(), ["validate", str(bad)])
    assert text.exit_code == 1 and "RW101" in text.output
    assert f"{bad}:" in text.output and "1 error(s)" in text.output  # located in the file's text
    sarif = cli.invoke(build_app(), ["validate", str(bad), "--format", "sarif"])
    assert sarif.exit_code == 1
    assert json.loads(sarif.stdout)["runs"][0]["results"][0]["ruleId"] == "RW101"


def test_nodes_and_types_catalogs(cli: CliRunner) -> None:
    nodes = cli.invoke(build_app(), ["nodes", "--json", "--category", "math"])
    assert nodes.exit_code == 0, nodes.output
    ids = [n["id"] for n in json.loads(nodes.stdout)["nodes"]]
    assert "builtin/add@1" in ids and "builtin/sleep@1" not in ids
    table = cli.invoke(build_app(), ["nodes", "--category", "math"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and f"{len(ids)} node types" in table.output
    assert "builtin/add@1" in table.output
    types = cli.invoke(build_app(), ["types", "--json"])
    assert types.exit_code == 0 and any(p["name"] == "Int" for p in json.loads(types.stdout)["primitives"])
    text = cli.invoke(build_app(), ["types"])
    assert text.exit_code == 0 and "Int -> Float" in text.output


def test_bad_key_is_one_clear_401_line(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(build_app(), ["nodes", "--api-key", "rw_not_a_key"])
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "Traceback" not in result.output
    path = write(tmp_path, "add.json", add_doc())
    run = cli.invoke(build_app(), ["run", str(path), "-i", "a=1", "-i", "b=1", "--api-key", "rw_bad"])
    assert run.exit_code == 1 and "HTTP 401" in run.output


def test_unreachable_server_names_the_url(cli: CliRunner, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["types", "--server", url], ["runs", "list", "--server", url]):
        result = cli.invoke(build_app(), args)
        assert result.exit_code == 1, result.output
        assert f"cannot reach the rayweave server at {url}" in result.output
        assert "Traceback" not in result.output


def test_missing_key_and_local_flags_are_usage_errors(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "add.json", add_doc())
    assert cli.invoke(build_app(), ["run", str(path), "--local"]).exit_code == 2
    monkeypatch.delenv("RAYWEAVE_API_KEY")
    result = cli.invoke(build_app(), ["types"])
    assert result.exit_code == 2 and "no API key" in result.output


def test_runs_events_follow_streams_until_the_run_ends(cli: CliRunner, api: Api) -> None:
    with Client(api.url, api.admin_key) as client:
        run = client.submit(sleep_chain_doc(4, 0.05), {"x": 3})
    followed = cli.invoke(build_app(), ["runs", "events", run.id, "--follow", "--json"])
    assert followed.exit_code == 0, followed.output
    events = json.loads(followed.stdout)["events"]
    assert events[-1]["type"] == "run.succeeded"
    assert sum(e["type"] == "node.succeeded" for e in events) == 4


def test_run_json_through_the_server_reports_invalid_workflows_and_skipped_outputs(
    cli: CliRunner, tmp_path: Path
) -> None:
    from tests.engine.execution.test_skipped_outputs import BRANCHES
    from tests.serve.test_run_cli import INVALID

    invalid = cli.invoke(build_app(), ["run", str(write(tmp_path, "invalid.json", INVALID)), "--json"])
    assert invalid.exit_code == 1, invalid.output
    report = json.loads(invalid.stdout)
    assert report["status"] == "invalid" and [d["code"] for d in report["diagnostics"]] == ["RW103"]
    bad_input = cli.invoke(
        build_app(), ["run", str(write(tmp_path, "b.json", BRANCHES)), "-i", "x=1", "--json"]
    )
    assert bad_input.exit_code == 2 and json.loads(bad_input.stdout)["status"] == "error"
    branches = write(tmp_path, "branches.json", BRANCHES)
    result = cli.invoke(build_app(), ["run", str(branches), "-i", "flag=true", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outputs"] == {"pos": -5, "t": 5} and doc["skipped_outputs"] == ["f", "neg"]
    shown = json.loads(cli.invoke(build_app(), ["runs", "show", doc["run_id"], "--json"]).stdout)
    assert shown["skipped_outputs"] == ["f", "neg"]

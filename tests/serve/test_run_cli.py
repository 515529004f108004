"""`rayweave run` and `rayweave cache` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from serve.cli import build_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FAILING = {
    "format": "rayweave.workflow/1",
    "name": "fails",
    "inputs": {},
    "nodes": {"f": {"type": "builtin/fail@1", "in": {"value": {"value": 1}}, "params": {"message": "nope"}}},
    "outputs": {"out": "f.out"},
}

PY_WORKFLOW = '''
from engine.workflow import Workflow
from nodes import node


@node(plugin="clitest")
def triple(x: int) -> int:
    """Three times x."""
    return 3 * x


workflow = Workflow("py-cli")
n = workflow.input("n", "Int")
workflow.output("out", workflow.add("t", triple, x=n))
'''


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_run_json_prints_one_document_with_outputs_and_node_states(cli: CliRunner) -> None:
    result = cli.invoke(
        build_app(), ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json", "--local"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded" and doc["outputs"] == {"sum_of_squares": 25 + 4 + 9 + 16}
    assert doc["run_id"] and doc["nodes"]["total"]["status"] == "succeeded"


def test_a_run_is_stored_and_a_rerun_comes_from_the_cache(cli: CliRunner) -> None:
    app = build_app()
    command = ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json", "--local"]
    first = cli.invoke(app, command)
    assert first.exit_code == 0, first.output
    ran = json.loads(first.stdout)
    shown = cli.invoke(app, ["runs", "show", ran["run_id"], "--json"])
    assert shown.exit_code == 0, shown.output
    stored = json.loads(shown.stdout)
    assert stored["status"] == "succeeded" and stored["outputs"] == ran["outputs"]
    assert {n["node"] for n in stored["nodes"]} == set(ran["nodes"])
    again = json.loads(cli.invoke(app, command).stdout)
    assert again["run_id"] != ran["run_id"] and again["outputs"] == ran["outputs"]
    assert again["nodes"]["total"]["status"] == "cached"
    forced = json.loads(cli.invoke(app, [*command, "--no-cache"]).stdout)
    assert forced["outputs"] == ran["outputs"]
    assert {node["status"] for node in forced["nodes"].values()} == {"succeeded"}


def test_run_shows_states_and_outputs(cli: CliRunner) -> None:
    result = cli.invoke(build_app(), ["run", str(EXAMPLES / "conditional.json"), "--input", "n=2", "--local"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "result" in result.output and "-2" in result.output


def test_failed_run_exits_1(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "fails.json"
    path.write_text(json.dumps(FAILING))
    result = cli.invoke(build_app(), ["run", str(path), "--json", "--local"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed" and doc["nodes"]["f"]["error"]["message"].endswith("nope")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "a=three"], "not a valid Int"),
        (["--input", "zzz=1"], "has no input 'zzz'"),
        (["--input", "a"], "name=value"),
    ],
)
def test_bad_inputs_exit_2(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(build_app(), ["run", str(EXAMPLES / "fan_out_join.json"), *args, "--local"])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_file_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(build_app(), ["run", str(tmp_path / "nope.json"), "--local"])
    assert result.exit_code == 2 and "no such file" in result.output


def test_python_workflow_file_on_ray(ray_session: object, cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(PY_WORKFLOW)
    result = cli.invoke(build_app(), ["run", str(path), "--input", "n=4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"out": 12}


def test_cache_stats_and_purge(cli: CliRunner) -> None:
    app = build_app()
    assert cli.invoke(app, ["run", str(EXAMPLES / "map_list.json"), "--local", "--json"]).exit_code == 0
    stats = json.loads(cli.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert stats["entries"] >= 1 and "builtin/sum@1" in stats["by_node_type"]
    purged = json.loads(cli.invoke(app, ["cache", "purge", "--node-type", "builtin/sum@1", "--json"]).stdout)
    assert purged["removed"] >= 1
    after = json.loads(cli.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert "builtin/sum@1" not in after["by_node_type"]


def test_a_store_only_this_machine_reaches_is_not_shared_with_a_cluster_of_several_nodes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ray

    from serve.cli.run_cmd import unshared_store

    sqlite = Settings(home=tmp_path / "home")
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True}, {"Alive": False}])
    assert unshared_store(sqlite) is None  # one live node: this machine
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True}, {"Alive": True}])
    reason = unshared_store(sqlite)
    assert reason is not None and "2 nodes" in reason and "RAYWEAVE_DATABASE_URL" in reason
    postgres = Settings(home=tmp_path / "home", database_url="postgresql://db.example/rayweave")
    assert unshared_store(postgres) is None


def test_a_run_the_store_cannot_record_still_runs_and_says_why(
    ray_session: object, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("serve.cli.run_cmd.unshared_store", lambda settings: "the cluster has 3 nodes")
    app = build_app()
    result = cli.invoke(app, ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"sum_of_squares": 54}
    assert "not recorded in the store: the cluster has 3 nodes" in result.stderr
    assert json.loads(cli.invoke(app, ["runs", "list", "--json"]).stdout)["runs"] == []


INVALID = {
    "format": "rayweave.workflow/1",
    "name": "invalid",
    "inputs": {"s": {"type": "String"}},
    "nodes": {"n": {"type": "builtin/negate@1", "in": {"x": "$inputs.s"}}},
    "outputs": {"out": "n.out"},
}


def test_run_json_prints_the_diagnostics_of_an_invalid_workflow_and_exits_1(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(INVALID, indent=2))
    result = cli.invoke(build_app(), ["run", str(path), "--json", "--local"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "invalid" and doc["workflow"] == "invalid" and doc["errors"] == 1
    [diagnostic] = doc["diagnostics"]
    assert diagnostic["code"] == "RW103" and diagnostic["node"] == "n" and diagnostic["port"] == "x"
    assert diagnostic["line"] is not None  # located in the file, as `rayweave validate --json` does


def test_run_json_reports_a_file_that_is_not_a_document_as_diagnostics(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "rayweave.workflow/1",\n "name": }\n')
    result = cli.invoke(build_app(), ["run", str(path), "--json", "--local"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "invalid" and [d["code"] for d in doc["diagnostics"]] == ["RW001"]
    assert doc["diagnostics"][0]["line"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "a=three"], "not a valid Int"),
        (["--input", "a"], "name=value"),
    ],
)
def test_run_json_reports_bad_usage_as_one_document_and_exits_2(
    cli: CliRunner, args: list[str], message: str
) -> None:
    result = cli.invoke(build_app(), ["run", str(EXAMPLES / "fan_out_join.json"), *args, "--json", "--local"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and message in doc["error"]
    missing = cli.invoke(build_app(), ["run", "nope.json", "--json", "--local"])
    assert missing.exit_code == 2 and "no such file" in json.loads(missing.stdout)["error"]


def test_run_json_lists_skipped_outputs_without_values(cli: CliRunner, tmp_path: Path) -> None:
    from tests.engine.execution.test_skipped_outputs import BRANCHES

    path = tmp_path / "branches.json"
    path.write_text(json.dumps(BRANCHES))
    app = build_app()
    result = cli.invoke(app, ["run", str(path), "--input", "flag=true", "--json", "--local"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outputs"] == {"pos": -5, "t": 5} and doc["skipped_outputs"] == ["f", "neg"]
    shown = json.loads(cli.invoke(app, ["runs", "show", doc["run_id"], "--json"]).stdout)
    assert shown["outputs"] == doc["outputs"] and shown["skipped_outputs"] == ["f", "neg"]
    text = cli.invoke(app, ["run", str(path), "--input", "flag=true", "--local"])
    assert "neg skipped" in " ".join(text.output.split()) and "SKIP" not in text.output


FUSED = {
    "format": "rayweave.workflow/1",
    "name": "fused-chain",
    "inputs": {"x": {"type": "Int"}},
    "nodes": {
        "a": {"type": "builtin/add@1", "in": {"a": "$inputs.x", "b": {"value": 1}}},
        "n": {"type": "builtin/negate@1", "in": {"x": "a"}},
        "m": {"type": "builtin/abs@1", "in": {"x": "n"}},
    },
    "outputs": {"out": "m"},
}


def test_cache_purge_of_a_node_type_drops_fused_groups_holding_it(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "fused.json"
    path.write_text(json.dumps(FUSED))
    app = build_app()
    command = ["run", str(path), "--input", "x=4", "--json", "--local"]
    assert json.loads(cli.invoke(app, command).stdout)["outputs"] == {"out": 5}
    stats = json.loads(cli.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert "rayweave/fused@1" in stats["by_node_type"], stats  # the three nodes ran as one fused task
    assert json.loads(cli.invoke(app, command).stdout)["nodes"]["m"]["status"] == "cached"
    purged = json.loads(
        cli.invoke(app, ["cache", "purge", "--node-type", "builtin/negate@1", "--json"]).stdout
    )
    assert purged["removed"] >= 1
    after = json.loads(cli.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert "rayweave/fused@1" not in after["by_node_type"]
    rerun = json.loads(cli.invoke(app, command).stdout)
    assert {node["status"] for node in rerun["nodes"].values()} == {"succeeded"}


def _count_compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every workflow compiled from now on (the real compiler still runs)."""
    import engine.compile
    import engine.compile.pipeline

    real = engine.compile.pipeline.compile_workflow
    compiled: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        compiled.append(plan.name)
        return plan

    monkeypatch.setattr(engine.compile.pipeline, "compile_workflow", counting)
    monkeypatch.setattr(engine.compile, "compile_workflow", counting, raising=False)
    return compiled


def test_rayweave_run_compiles_the_workflow_once(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = _count_compilations(monkeypatch)
    command = ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json", "--local"]
    result = cli.invoke(build_app(), command)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"sum_of_squares": 54}
    assert len(compiled) == 1, compiled


def test_rayweave_run_on_ray_compiles_the_workflow_once(
    ray_session: object, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _count_compilations(monkeypatch)
    command = ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=6", "--json", "--no-cache"]
    result = cli.invoke(build_app(), command)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert len(compiled) == 1, compiled


def test_run_to_a_node_runs_it_and_its_ancestors_and_names_an_unknown_one(cli: CliRunner) -> None:
    command = ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json", "--local"]
    result = cli.invoke(build_app(), [*command, "--target", "sq_a"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded" and doc["outputs"] == {"sq_a__out": 25}
    unknown = cli.invoke(build_app(), [*command, "--target", "nope"])
    assert unknown.exit_code == 1 and "target node 'nope'" in unknown.stdout


NOISY_WORKFLOW = '''
from engine.workflow import Workflow
from nodes import node


@node(plugin="clitest")
def noisy(x: int) -> int:
    """Print, as nodes and Ray's forwarded worker logs and autoscaler events do, then double x."""
    print("noise on stdout")
    return 2 * x


workflow = Workflow("noisy")
n = workflow.input("n", "Int")
workflow.output("out", workflow.add("t", noisy, x=n))
'''


def test_run_json_keeps_stdout_for_the_document_alone(cli: CliRunner, tmp_path: Path) -> None:
    """What a node prints (and what Ray forwards to the driver's stdout: worker logs, autoscaler events) goes to
    stderr with --json, so stdout parses as one JSON document."""
    path = tmp_path / "noisy.py"
    path.write_text(NOISY_WORKFLOW)
    result = CliRunner().invoke(build_app(), ["run", str(path), "--input", "n=4", "--json", "--local"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"out": 8}
    assert "noise on stdout" in result.stderr

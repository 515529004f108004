"""A workflow exported as a plain Ray script (`engine.formats.ray_script`, `rayweave export --format ray`): the
scripts run in subprocesses against the session's Ray and print what the engine returns for the same inputs;
what the script cannot translate is refused, naming the node."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import engine
from engine.errors import ExportError
from engine.formats.ray_script import ray_script
from examples import retry_flaky
from nodes import Catalog, node
from serve.cli import build_app
from tests.engine.durable.driver import ROOT, subprocess_env
from tests.engine.formats import export_nodes

EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "guides" / "migrating-from-ray-workflows.md"


def _catalog() -> Catalog:
    catalog = Catalog.builtin().copy()
    catalog.extend(
        [
            export_nodes.stats,
            export_nodes.ratio,
            export_nodes.countdown,
            export_nodes.Scaler,
            export_nodes.skipper,
            export_nodes.parts,
        ]
    )
    return catalog


def _engine_outputs(workflow: Any, inputs: Mapping[str, Any], catalog: Catalog | None = None) -> Any:
    result = engine.run(workflow, inputs, catalog=catalog, executor="local", cache=False)
    assert result.status == "succeeded", result
    return result.outputs


#: name -> (workflow, catalog, script arguments, inputs for the engine)
CASES: dict[str, tuple[Any, Catalog | None, list[str], dict[str, Any]]] = {
    "fan_out_join": (EXAMPLES / "fan_out_join.json", None, ["--input", "a=5"], {"a": 5}),
    "test_module_nodes": (export_nodes.workflow(), _catalog(), ["--input", "n=3"], {"n": 3}),
    "conditional": (EXAMPLES / "conditional.json", None, ["--input", "n=3"], {"n": 3}),
    "map_list": (EXAMPLES / "map_list.json", None, ["--input", "numbers=[3, 1, 4]"], {"numbers": [3, 1, 4]}),
}


@pytest.fixture(scope="module")
def script_runs(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every case's exported script, started at once against the session's Ray: name -> finished process."""
    folder = tmp_path_factory.mktemp("ray-scripts")
    states = {"engine": Path(folder / "engine-state"), "script": Path(folder / "script-state")}
    for state in states.values():
        state.mkdir()
    cases = dict(CASES)
    cases["retry_flaky"] = (retry_flaky.workflow, None, ["--input", f"state_dir={states['script']}"], {})
    started = {}
    for name, (workflow, catalog, arguments, _) in cases.items():
        script = folder / f"{name}.py"
        script.write_text(ray_script(workflow, catalog))
        command = [sys.executable, str(script), *arguments, "--address", ray_session.address]
        started[name] = subprocess.Popen(
            command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finished = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        finished[name] = (process.returncode, out, err)
    yield {"runs": finished, "states": states}


def _printed(run: tuple[int, str, str]) -> Any:
    status, out, err = run
    assert status == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow  # the five scripts run at once, per module: 7 to 11 s at load 4 on 2 cores, 20 s at 9
@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_script_prints_what_the_engine_returns(name: str, script_runs: dict[str, Any]) -> None:
    workflow, catalog, _, inputs = CASES[name]
    assert _printed(script_runs["runs"][name]) == _engine_outputs(workflow, inputs, catalog)


@pytest.mark.slow
def test_the_guide_example_prints_what_the_guide_says(script_runs: dict[str, Any]) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    section = guide[guide.index("## Leaving rayweave") :]
    assert "rayweave export --file examples/fan_out_join.json --format ray --out fan_out_join.py" in section
    assert "python fan_out_join.py --input a=5\n" in section
    status, out, err = script_runs["runs"]["fan_out_join"]
    assert status == 0, err[-3000:]
    assert f"```\n{out.strip().splitlines()[-1]}\n```" in section


@pytest.mark.slow
def test_retries_become_ray_retries_of_the_named_exceptions(script_runs: dict[str, Any]) -> None:
    expected = _engine_outputs(retry_flaky.workflow, {"state_dir": str(script_runs["states"]["engine"])})
    assert _printed(script_runs["runs"]["retry_flaky"]) == expected == {"answer": "payload after 3 calls"}
    text = ray_script(retry_flaky.workflow)
    assert "'retry_exceptions': [ConnectionError], 'max_retries': 2" in text


@pytest.mark.slow
def test_skipped_outputs_are_left_out_as_the_engine_leaves_them_out(script_runs: dict[str, Any]) -> None:
    printed = _printed(script_runs["runs"]["test_module_nodes"])
    assert "skipped" not in printed
    assert _printed(script_runs["runs"]["conditional"]) == {"result": -3}


def test_the_script_imports_no_engine_store_server_or_compiler() -> None:
    text = ray_script(export_nodes.workflow(), _catalog())
    imports = [line for line in text.splitlines() if line.lstrip().startswith(("import ", "from "))]
    assert not [line for line in imports if any(p in line for p in ("engine", "serve", "typesys", "cluster"))]
    assert "node_function('nodes.builtin.math', 'sum_numbers')" in text
    assert "{'num_cpus': 0.5, 'name': 'export-nodes/p:exporttest/parts@1'" in text  # the node's resources


def test_the_task_body_follows_the_engines_skip_rule_and_widens_ints() -> None:
    from engine.formats.ray_runtime import node_task
    from nodes import SKIP

    def total(values: list[float]) -> dict[str, Any]:
        return {"sum": sum(values), "types": [type(v).__name__ for v in values]}

    body = node_task(total, "t", ("sum", "types"), "mapping", lists=("values",), floats=("values[1]",))
    assert body(values=[1, 2]) == (3, ["int", "float"])
    assert body(values=[1, SKIP]) == (SKIP, SKIP)  # a node given SKIP is skipped
    accepting = node_task(total, "t", ("sum", "types"), "mapping", lists=("values",), accepts_skipped=True)
    assert accepting(values=[SKIP, 2]) == (2, ["int"])  # unless it accepts skipped inputs


def test_inputs_are_read_by_their_declared_type_as_rayweave_run_reads_them() -> None:
    from engine.formats.ray_runtime import parse_value

    assert parse_value("5", "String") == "5"
    assert parse_value("5", "Int") == 5
    assert parse_value("5", "Float") == 5.0
    assert parse_value("2.5", "Number") == 2.5
    assert parse_value("off", "Bool") is False
    assert parse_value("[1, 2]", "List[Int]") == [1, 2]
    with pytest.raises(ValueError):
        parse_value("[1,", "List[Int]")


@node(plugin="exporttest", timeout_s=5.0)
def slow(x: int) -> int:
    """A node with a timeout (not translated)."""
    return x


def test_what_is_not_translated_is_refused_naming_the_node() -> None:
    with pytest.raises(ExportError, match=r"node 'sales' \(builtin/read_csv@1\): reaches files"):
        ray_script(EXAMPLES / "sql_pipeline.json")

    @node(plugin="exporttest")
    def local(x: int) -> int:
        return x

    catalog = Catalog.builtin().copy()
    catalog.extend([slow, local])
    document = {
        "format": "rayweave.workflow/1",
        "name": "refused",
        "inputs": {"x": {"type": "Int", "default": 1}},
        "nodes": {
            "t": {"type": "exporttest/slow@1", "in": {"x": "$inputs.x"}},
            "l": {"type": "exporttest/local@1", "in": {"x": "t"}},
        },
        "outputs": {"y": "l.out"},
    }
    with pytest.raises(ExportError) as caught:
        ray_script(document, catalog)
    message = str(caught.value)
    assert "node 't' (exporttest/slow@1): a timeout of 5.0 s is not translated" in message
    assert "node 'l' (exporttest/local@1): its function" in message
    assert "define the node at module level of an importable module" in message


def test_a_plugin_node_in_its_own_runtime_environment_is_refused_saying_what_to_do() -> None:
    from nodes.definition import NodeDefinition

    ratio = export_nodes.ratio
    in_plugin = NodeDefinition(ratio.target, ratio.spec, ratio.layout)
    in_plugin.runtime_env = {"pip": ["exporttest==1.0.0"]}  # type: ignore[attr-defined] (as a plugin's is)
    catalog = Catalog.builtin().copy()
    catalog.add(in_plugin)
    document = {
        "format": "rayweave.workflow/1",
        "name": "plugin",
        "nodes": {"r": {"type": "exporttest/ratio@1", "in": {"a": {"value": 1.0}, "b": {"value": 2.0}}}},
        "outputs": {"y": "r.out"},
    }
    with pytest.raises(
        ExportError, match=r"node 'r' \(exporttest/ratio@1\): runs in its plugin's own runtime "
    ):
        ray_script(document, catalog)


def test_cli_writes_the_script_or_refuses_with_status_2(tmp_path: Path) -> None:
    env = {"RAYWEAVE_HOME": str(tmp_path / "home"), "RAYWEAVE_PLUGIN_INDEX": ""}
    out = tmp_path / "fan_out_join.py"
    args = ["export", "--file", str(EXAMPLES / "fan_out_join.json"), "--format", "ray", "--out", str(out)]
    result = CliRunner().invoke(build_app(), args, env=env)
    assert result.exit_code == 0, result.output
    assert out.read_text() == ray_script(EXAMPLES / "fan_out_join.json")
    args = ["export", "--file", str(EXAMPLES / "sql_pipeline.json"), "--format", "ray"]
    result = CliRunner().invoke(build_app(), args, env=env)
    assert result.exit_code == 2
    assert "node 'sales' (builtin/read_csv@1): reaches files" in result.output
    result = CliRunner().invoke(build_app(), ["export", "--file", str(out), "--format", "json"], env=env)
    assert result.exit_code == 2


def test_cli_imports_a_python_workflow_file_by_its_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    env = {"RAYWEAVE_HOME": str(tmp_path / "home"), "RAYWEAVE_PLUGIN_INDEX": ""}
    args = ["export", "--file", "examples/retry_flaky.py", "--format", "ray"]
    result = CliRunner().invoke(build_app(), args, env=env)
    assert result.exit_code == 0, result.output
    assert "node_function('examples.retry_flaky', 'flaky_fetch')" in result.stdout
    assert result.stdout == ray_script(retry_flaky.workflow)


def test_cli_exports_a_stored_workflow(tmp_path: Path) -> None:
    env = {"RAYWEAVE_HOME": str(tmp_path / "home"), "RAYWEAVE_PLUGIN_INDEX": ""}
    app = build_app()
    imported = CliRunner().invoke(app, ["import", str(EXAMPLES / "fan_out_join.json"), "--json"], env=env)
    assert imported.exit_code == 0, imported.output
    workflow_id = json.loads(imported.stdout)["workflow_id"]
    result = CliRunner().invoke(app, ["export", workflow_id, "--format", "ray", "--version", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == ray_script(EXAMPLES / "fan_out_join.json")
    result = CliRunner().invoke(app, ["export", "no-such-workflow", "--format", "ray"], env=env)
    assert result.exit_code == 1
    assert "no-such-workflow" in result.output

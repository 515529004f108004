"""`rayweave validate` and `rayweave schema` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve.cli import build_app

runner = CliRunner()

GOOD = {
    "format": "rayweave.workflow/1",
    "name": "good",
    "inputs": {"n": {"type": "Int"}},
    "nodes": {"a": {"type": "builtin/add@1", "in": {"a": "$inputs.n", "b": {"value": 2}}}},
    "outputs": {"x": "a.out"},
}
BAD = {
    "format": "rayweave.workflow/1",
    "name": "bad",
    "nodes": {
        "a": {"type": "builtin/add@1", "in": {"a": {"value": 1}, "b": {"value": "x"}}},
        "b": {"type": "builtin/ad@1", "in": {"a": "a.out"}},
    },
    "outputs": {"x": "a.out", "y": "b.out"},
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    return path


def test_clean_file_exits_zero(tmp_path: Path) -> None:
    code, out, _ = invoke("validate", str(write(tmp_path, "good.json", GOOD)))
    assert code == 0 and "ok" in out


def test_errors_exit_one_with_codes_lines_and_hints(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", BAD)
    code, out, _ = invoke("validate", str(path))
    assert code == 1
    assert f"{path}:" in out and "RW114" in out and "RW101" in out and "hint:" in out
    type_line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "builtin/ad@1" in s)
    assert any(line.startswith(f"{path}:{type_line}:") and "RW101" in line for line in out.splitlines())


def test_json_output(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", BAD)
    for args in (["--json"], ["--format", "json"]):
        code, out, _ = invoke("validate", str(path), *args)
        report = json.loads(out)
        assert code == 1 and report["valid"] is False and report["errors"] == 2
        assert {d["code"] for d in report["diagnostics"]} == {"RW101", "RW114"}


def test_sarif_output(tmp_path: Path) -> None:
    code, out, _ = invoke("validate", str(write(tmp_path, "bad.json", BAD)), "--format", "sarif")
    log = json.loads(out)
    assert code == 1 and log["version"] == "2.1.0"
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"RW101", "RW114"}


def test_yaml_file(tmp_path: Path) -> None:
    text = "format: rayweave.workflow/1\nname: y\nnodes:\n  a: {type: builtin/add@1, in: {a: {value: 1}}}\n"
    code, out, _ = invoke("validate", str(write(tmp_path, "w.yaml", text)), "--json")
    report = json.loads(out)
    assert code == 1 and [d["code"] for d in report["diagnostics"] if d["severity"] == "error"] == ["RW106"]


@pytest.mark.parametrize(
    ("name", "text", "line", "code"),
    [
        ("broken.json", '{\n  "format": "rayweave.workflow/1",\n  "name": "x",,\n}', 3, "RW001"),
        ("broken.yaml", "format: rayweave.workflow/1\nname: [x\n", 3, "RW001"),
        (
            "shape.yaml",
            "format: rayweave.workflow/1\nname: x\nnodes:\n  a:\n    type: builtin/add@1\n    tries: 2\n",
            6,
            "RW002",
        ),
        ("other.json", '{"format": "something/2", "name": "x"}', 1, "RW002"),
    ],
)
def test_unreadable_documents_are_diagnostics_with_line(
    tmp_path: Path, name: str, text: str, line: int, code: str
) -> None:
    exit_code, out, _ = invoke("validate", str(write(tmp_path, name, text)), "--json")
    report = json.loads(out)
    assert exit_code == 1
    first = report["diagnostics"][0]
    assert first["code"] == code and first["line"] == line and first["column"] is not None


def test_missing_file_and_bad_usage_exit_two(tmp_path: Path) -> None:
    code, _, err = invoke("validate", str(tmp_path / "nope.json"))
    assert code == 2 and "no such file" in err
    code, _, _ = invoke("validate", str(write(tmp_path, "good.json", GOOD)), "--format", "xml")
    assert code == 2


def test_python_workflow_file(tmp_path: Path) -> None:
    source = (
        "from engine.workflow import Workflow\n"
        "workflow = Workflow('py')\n"
        "n = workflow.input('n', 'Int')\n"
        "a = workflow.add('a', 'builtin/add@1', a=n, b=1)\n"
        "workflow.output('x', a.out)\n"
    )
    code, out, _ = invoke("validate", str(write(tmp_path, "flow.py", source)))
    assert code == 0, out


def test_python_file_errors_are_reported_without_traceback(tmp_path: Path) -> None:
    code, _, err = invoke("validate", str(write(tmp_path, "none.py", "x = 1\n")))
    assert code == 2 and "no module-level 'workflow'" in err
    code, _, err = invoke("validate", str(write(tmp_path, "boom.py", "x = 1\nraise RuntimeError('boom')\n")))
    assert code == 2 and "boom.py:2" in err and "RuntimeError: boom" in err and "Traceback" not in err


def test_schema_prints_the_json_schema() -> None:
    from engine.workflow.document import workflow_json_schema

    code, out, _ = invoke("schema")
    assert code == 0 and json.loads(out) == workflow_json_schema()

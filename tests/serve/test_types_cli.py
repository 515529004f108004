"""`rayweave types` and `rayweave types check`, run through the real Typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from serve.cli import build_app


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_types_json_is_the_catalog() -> None:
    code, out, _ = _run("types", "--json")
    assert code == 0
    data = json.loads(out)
    parents = {p["name"]: p["parents"] for p in data["primitives"]}
    assert parents["Int"] == ["Number"] and parents["Float"] == ["Number"]
    nodes = {(r["source"], r["target"]): r["node"] for r in data["coercions"]}
    assert nodes["String", "Int"] == "builtin/to_int@1"
    assert nodes["Int", "Float"] is None


def test_types_text_lists_types_and_rules() -> None:
    code, out, _ = _run("types")
    assert code == 0
    assert "Number" in out and "builtin/parse_number@1" in out


@pytest.mark.parametrize(
    ("source", "target", "code", "kind", "subtype"),
    [
        ("Int", "Int | Null", 0, "identity", True),
        ("List[Int]", "List[Float]", 0, "implicit", False),
        ("String", "Int", 1, "explicit", False),
        ("Bool", "Table", 1, None, False),
    ],
)
def test_check_json(source: str, target: str, code: int, kind: str | None, subtype: bool) -> None:
    exit_code, out, _ = _run("types", "check", source, target, "--json")
    assert exit_code == code
    data = json.loads(out)
    assert data["assignable"] is (code == 0) and data["subtype"] is subtype
    assert (data["coercion"] or {}).get("kind") == kind
    if kind == "explicit":
        assert data["coercion"]["steps"][0]["node"] == "builtin/to_int@1"


def test_check_text() -> None:
    code, out, _ = _run("types", "check", "Float", "Int")
    assert code == 1 and "builtin/to_int@1" in out
    code, out, _ = _run("types", "check", "Int", "Number")
    assert code == 0 and out.startswith("yes")


def test_malformed_type_exits_2_with_the_parse_error() -> None:
    code, out, err = _run("types", "check", "List[Int", "Int")
    assert code == 2
    assert "SOURCE" in err and "position 8" in err and "Traceback" not in err + out
    code, out, err = _run("types", "check", "Int", "Foo", "--json")
    assert code == 2
    assert json.loads(out)["error"]["argument"] == "TARGET"

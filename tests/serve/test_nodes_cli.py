"""`rayweave nodes` and `rayweave nodes docs`, run through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from serve.cli import build_app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "nodes"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_nodes_json_lists_the_builtin_catalog() -> None:
    code, out = _run("nodes", "--json")
    assert code == 0
    ids = [n["id"] for n in json.loads(out)["nodes"]]
    assert "builtin/to_int@1" in ids and ids == sorted(ids)


def test_nodes_filters_by_type_and_category() -> None:
    code, out = _run("nodes", "--json", "--produces", "Int")
    assert code == 0
    nodes = json.loads(out)["nodes"]
    assert nodes and "builtin/to_int@1" in {n["id"] for n in nodes}
    code, out = _run("nodes", "--json", "--category", "no-such-category")
    assert code == 0 and json.loads(out) == {"nodes": []}
    code, out = _run("nodes", "--accepts", "List[")
    assert code == 2 and "--accepts" in out


def test_nodes_text_table_lists_the_same_nodes_as_json() -> None:
    count = len(json.loads(_run("nodes", "--json", "--category", "convert")[1])["nodes"])
    code, out = _run("nodes", "--category", "convert")
    assert code == 0 and count > 0 and f"{count} node types" in out and "builtin/to_i" in out


def test_docs_check_fails_on_a_stale_directory_and_passes_after_writing(tmp_path: Path) -> None:
    out = tmp_path / "nodes"
    code, text = _run("nodes", "docs", "--out", str(out), "--check")
    assert code == 1 and "README.md" in text
    assert _run("nodes", "docs", "--out", str(out))[0] == 0
    code, text = _run("nodes", "docs", "--out", str(out), "--check", "--json")
    assert code == 0 and json.loads(text)["ok"] is True


def test_generated_example_documents_are_valid_workflows() -> None:
    """Every example on a node page is a workflow document the engine accepts with the built-in catalog."""
    import re

    from engine.compile import validate
    from engine.workflow.document import WorkflowDoc
    from nodes import Catalog
    from nodes.docgen import generate_docs

    catalog = Catalog.builtin()
    checked = 0
    for rel, text in generate_docs(catalog).items():
        match = re.search(r"```json\n(.*?)```", text, re.DOTALL)
        if match is None:
            continue
        doc = WorkflowDoc.model_validate(json.loads(match.group(1)))
        errors = [d for d in validate(doc, catalog) if d.severity == "error"]
        assert errors == [], f"{rel}: {errors}"
        checked += 1
    assert checked >= len(catalog) - 5


def test_checked_in_node_docs_are_up_to_date() -> None:
    code, text = _run("nodes", "docs", "--out", str(DOCS), "--check")
    assert code == 0, f"docs/nodes is stale; run `rayweave nodes docs` and commit the pages:\n{text}"

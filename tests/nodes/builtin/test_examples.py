"""The workflow examples in the built-in nodes' docstrings (shown in the generated docs) stay correct.

Each example is a complete workflow document; this checks it against the node specs: node types exist,
every wired port and param exists, required ones are set, and every reference points at a declared
workflow input or an existing node's output port. Sub-workflows of ``map`` are checked the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from nodes import Catalog, NodeDefinition
from nodes.builtin import definitions

_FENCE = re.compile(r"```json\n(.*?)```", re.S)


def _examples() -> list[NodeDefinition]:
    return [d for d in definitions() if d.example]


def _resolve(ref: str, doc: dict[str, Any], catalog: Catalog, where: str) -> None:
    if ref.startswith("$inputs."):
        assert ref.removeprefix("$inputs.") in doc.get("inputs", {}), f"{where}: undeclared input {ref}"
        return
    node_id, _, port = ref.partition(".")
    assert node_id in doc["nodes"], f"{where}: reference {ref!r} to unknown node"
    spec = catalog.get(doc["nodes"][node_id]["type"]).spec
    if not port:
        assert len(spec.outputs) == 1, f"{where}: {ref!r} names a node with several outputs; add the port"
    else:
        assert port in spec.output_names, f"{where}: {spec.id} has no output {port!r}"


def _check_document(doc: dict[str, Any], catalog: Catalog) -> None:
    assert doc["format"] == "rayweave.workflow/1"
    for node_id, node in doc["nodes"].items():
        spec = catalog.get(node["type"]).spec
        where = f"{doc['name']}.{node_id} ({spec.id})"
        bound = node.get("in", {})
        assert set(bound) <= set(spec.input_names), f"{where}: unknown input ports"
        assert {p.name for p in spec.inputs if p.required} <= set(bound), f"{where}: required input unbound"
        params = node.get("params", {})
        assert set(params) <= {p.name for p in spec.params}, f"{where}: unknown params"
        assert {p.name for p in spec.params if p.required} <= set(params), f"{where}: required param unset"
        for value in bound.values():
            if isinstance(value, str):
                _resolve(value, doc, catalog, where)
        if spec.control == "map":
            _check_document(params["workflow"], catalog)
    for ref in doc["outputs"].values():
        _resolve(ref, doc, catalog, f"{doc['name']} outputs")


def test_the_main_nodes_carry_examples() -> None:
    names = {d.spec.name for d in _examples()}
    assert {"if_else", "switch", "map", "sql", "read_csv", "group_by", "http_request", "to_int"} <= names


@pytest.mark.parametrize("definition", _examples(), ids=lambda d: d.spec.id)
def test_docstring_example_is_a_valid_workflow(definition: NodeDefinition) -> None:
    match = _FENCE.search(definition.example)
    assert match, f"{definition.spec.id}: the example must be a ```json fenced workflow document"
    doc = json.loads(match.group(1))
    _check_document(doc, Catalog.builtin())
    assert any(n["type"] == definition.spec.id for n in doc["nodes"].values()), (
        "the example must use the node"
    )

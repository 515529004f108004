"""Every port and param of the built-in library is documented where users read it.

The catalog (`rayweave nodes --json`, `GET /v1/nodes`) and the generated pages in `docs/nodes/` show the
descriptions the SDK reads from each node's `Args:` and `Returns:` docstring sections; these tests keep any
of them from going empty or pointing at a port that does not exist.
"""

from __future__ import annotations

import pytest

from nodes import Catalog, NodeDefinition
from nodes.builtin import definitions
from nodes.docstrings import parse_docstring

# Each description says at least what the port holds; a word or two ("the list.") is a stub, not docs.
MIN_WORDS = 3

DEFINITIONS = definitions()


def _missing(ports: list[dict[str, object]], kind: str) -> list[str]:
    return [
        f"{kind} {p['name']!r}" for p in ports if len(str(p.get("description") or "").split()) < MIN_WORDS
    ]


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.spec.id)
def test_every_input_param_and_output_has_a_description_in_the_catalog(definition: NodeDefinition) -> None:
    # Checked on the serialized spec: that is exactly what the CLI and the HTTP API hand to users.
    spec = definition.spec.to_json()
    missing = (
        _missing(spec["inputs"], "input port")
        + _missing(spec["params"], "param")
        + _missing(spec["outputs"], "output port")
    )
    assert not missing, (
        f"{spec['id']}: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no description of at "
        f"least {MIN_WORDS} words; document inputs and params under `Args:` and output ports under `Returns:` "
        "in the node's docstring, then run `rayweave nodes docs`"
    )


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.spec.id)
def test_docstring_sections_name_only_real_ports(definition: NodeDefinition) -> None:
    # A renamed port whose old `Args:` entry stayed behind would leave the new one undocumented and the
    # page describing a port that no longer exists.
    spec = definition.spec
    doc = parse_docstring(definition.target.__doc__)
    ports = {p.name for p in spec.inputs} | {p.name for p in spec.params}
    assert set(doc.args) <= ports, f"{spec.id}: `Args:` documents {sorted(set(doc.args) - ports)}, not ports"
    outputs = {p.name for p in spec.outputs}
    assert set(doc.returns) <= outputs, (
        f"{spec.id}: `Returns:` documents {sorted(set(doc.returns) - outputs)}, not output ports"
    )
    assert not doc.returns_text, f"{spec.id}: write `Returns:` as `name: description` lines, one per port"


def test_branch_outputs_say_when_they_are_skipped() -> None:
    branches = [d.spec for d in DEFINITIONS if "branch" in d.spec.tags]
    assert {s.name for s in branches} >= {"if_else", "switch", "gate", "merge"}
    for spec in branches:
        for port in spec.outputs:
            assert "SKIP" in port.description or "skipped" in port.description, (
                f"{spec.id}: output port {port.name!r} does not say when it is skipped"
            )


def test_the_catalog_serves_the_descriptions() -> None:
    specs = {n["id"]: n for n in Catalog.builtin().to_json()["nodes"]}
    clamp = specs["builtin/clamp@1"]
    assert {p["name"]: p["description"] for p in clamp["params"]}["low"].startswith("the lower bound")
    assert "Float" in specs["builtin/divide@1"]["outputs"][0]["description"]

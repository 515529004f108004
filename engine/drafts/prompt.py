"""What the model is told: the node catalog, the workflow document format, and what to repair.

The catalog is one entry per node type: its id, the first sentence of its documentation, its input ports,
output ports and params with their types (what the compiler checks the draft against). The format is the
canonical `rayweave.workflow/1` document of DESIGN.md, with a small example.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.compile.diagnostics import Diagnostic
    from nodes import Catalog
    from nodes.spec import NodeSpec

#: Longest documentation text given per node type (its first sentence, cut there).
DOC_CHARS = 160

EXAMPLE = {
    "format": "rayweave.workflow/1",
    "name": "mean-of-csv",
    "inputs": {"path": {"type": "String"}},
    "nodes": {
        "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
        "mean": {"type": "builtin/column_mean@1", "in": {"table": "load.table"}, "params": {"column": "x"}},
    },
    "outputs": {"mean": "mean.value"},
}

FORMAT = """A workflow is one JSON object:
{"format": "rayweave.workflow/1", "name": NAME, "inputs": {INPUT: {"type": TYPE}}, "nodes": {NODE_ID: NODE},
 "outputs": {OUTPUT: REFERENCE}}
A NODE is {"type": NODE_TYPE, "in": {PORT: BINDING}, "params": {PARAM: VALUE}}; "type" is a node type id
(plugin/name@major) from the catalog below, "in" binds the node's input ports and "params" sets its params.
A BINDING is a reference string: "node_id.port" (an output port of another node), "node_id" alone (a node
with a single output), or "$inputs.name" (a workflow input); a constant bound to an input port is written
{"value": ...}. Every required input port must be bound, with a value of a type the port accepts. OUTPUT
maps workflow output names to references. Node ids are short identifiers (letters, digits, _ and -).
Example:
"""

RULES = """Answer with the workflow's JSON object only: no prose, no comments. Use only node types, ports and params
of the catalog, exactly as spelled there."""


def _first_sentence(text: str) -> str:
    line = " ".join(text.split())
    cut = line.find(". ")
    sentence = line if cut < 0 else line[: cut + 1]
    return sentence if len(sentence) <= DOC_CHARS else sentence[: DOC_CHARS - 3] + "..."


def node_entry(spec: NodeSpec) -> str:
    """One node type for the prompt: id, documentation, ports and params with their types."""

    def ports(items: Sequence[Any]) -> str:
        shown = []
        for p in items:
            text = f"{p.name}: {p.type}"
            if not p.required:
                text += f" = {json.dumps(p.default, default=str)}"
            shown.append(text)
        return ", ".join(shown) or "-"

    lines = [f"{spec.id}: {_first_sentence(spec.description)}", f"  in: {ports(spec.inputs)}"]
    lines.append(f"  out: {ports(spec.outputs)}")
    if spec.params:
        lines.append(f"  params: {ports(spec.params)}")
    return "\n".join(lines)


def catalog_text(catalog: Catalog) -> str:
    """Every node type of `catalog`, one entry each, sorted by id."""
    return "\n".join(node_entry(d.spec) for d in sorted(catalog, key=lambda d: d.spec.id))


def system_message(catalog: Catalog) -> str:
    """The system message: the task, the document format with its example, the rules and the catalog."""
    return (
        "You write rayweave workflows: typed graphs of nodes. "
        + FORMAT
        + json.dumps(EXAMPLE)
        + "\n\n"
        + RULES
        + "\n\nNode catalog (id: documentation; in: input ports; out: output ports; params):\n"
        + catalog_text(catalog)
    )


def repair_message(diagnostics: Sequence[Diagnostic]) -> str:
    """The user message of a repair round: what the compiler found wrong, one diagnostic a line."""
    lines = [d.render() for d in diagnostics if d.severity == "error"]
    return (
        "The compiler rejected that workflow:\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\nFix every error and answer with the whole corrected workflow JSON object only."
    )

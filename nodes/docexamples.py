"""The runnable examples of the node reference (`nodes.docgen`): a workflow document, the inputs to run it with,
and what it gives.

Every node page shows a workflow document running the node alone, and the node's own `Example:` workflow when
its docstring has one. A `Sample` says what to run them with: input and param values, the data files they
read, and the outputs they give. Values may name two placeholders, which the page explains and a test
replaces: `$DATA` (a data root of the installation, where file nodes may read and write) and `$SERVER` (the
base URL of an HTTP server). Table input ports take a list of records in the example, turned into a table by
`builtin/records_to_table@1`, so that every input can be written in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import typesys
from nodes.definition import NodeDefinition
from nodes.spec import NodeSpec, PortSpec, json_default

__all__ = [
    "DATA",
    "RECORDS_TO_TABLE",
    "SERVER",
    "Example",
    "Sample",
    "docstring_document",
    "example_value",
    "examples",
    "generated_document",
    "render_example",
]

#: Stands for a data root of the installation in sample values (file nodes read and write only there).
DATA = "$DATA"
#: Stands for the base URL of an HTTP server in sample values.
SERVER = "$SERVER"
#: The node that turns the records of a Table input port's example into a table.
RECORDS_TO_TABLE = "builtin/records_to_table@1"
#: The workflow input type of a Table port's records.
_RECORDS_TYPE = "List[Dict[String, Any]]"


@dataclass(frozen=True)
class Sample:
    """What a node's examples run with (see the module docstring).

    `inputs`/`params`: values for the node's ports and params in the generated example (required ones left out
    get a value made from their type, optional ones are left out). `types`: the workflow input type of a port
    when not the port's own (e.g. `List[Int]` for `List[T]`). `outputs`: what the example gives (JSON form: a
    table as its records); `fails`: a text the error of a run that fails on purpose contains. `files`: data
    files under `$DATA`, by name: a CSV file's text, or the records of a `.parquet` file. `example_inputs`,
    `example_outputs` and `example_constants` do the same for the docstring's `Example:` workflow
    (`example_constants` maps a constant of that document to the sample value it stands for).
    """

    inputs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Any] | None = None
    fails: str | None = None
    files: Mapping[str, Any] = field(default_factory=dict)
    example_inputs: Mapping[str, Any] | None = None
    example_outputs: Mapping[str, Any] | None = None
    example_constants: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """One runnable example of a node page: the document, its inputs, the files it reads and what it gives
    (`outputs` None: not stated; `fails`: the run fails on purpose with an error containing it)."""

    title: str
    document: dict[str, Any]
    inputs: dict[str, Any] | None
    outputs: Mapping[str, Any] | None = None
    fails: str | None = None
    files: Mapping[str, Any] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)


def _concrete(t: typesys.Type) -> typesys.Type:
    """`t` with its type variables replaced by Any (a workflow input has a concrete type)."""
    names = typesys.free_vars(t)
    return typesys.substitute(t, dict.fromkeys(names, typesys.ANY)) if names else t


def _is_table(port: PortSpec) -> bool:
    t = port.type
    members = t.members if isinstance(t, typesys.UnionType) else (t,)
    return any(isinstance(m, typesys.TableType) for m in members)


def _step(spec: NodeSpec) -> str:
    return spec.name.replace(".", "_").replace("-", "_")


_PRIMITIVE_EXAMPLES: Mapping[str, Any] = MappingProxyType(
    {
        "Any": "anything",
        "Null": None,
        "Bool": True,
        "Int": 1,
        "Float": 1.5,
        "Number": 1,
        "String": "text",
        "Bytes": None,
    }
)


def example_value(t: typesys.Type) -> Any:
    """A small JSON value of type `t` for examples (None where JSON has no literal for it, e.g. tables)."""
    if isinstance(t, typesys.Primitive):
        return _PRIMITIVE_EXAMPLES.get(t.name)
    if isinstance(t, typesys.ListType):
        return [example_value(t.item)]
    if isinstance(t, typesys.DictType):
        return {"key": example_value(t.value)}
    if isinstance(t, typesys.TupleType):
        return [example_value(item) for item in t.items]
    if isinstance(t, typesys.UnionType):
        members = [m for m in t.members if m != typesys.NULL]
        return example_value(members[0]) if members else None
    if isinstance(t, typesys.RecordType):
        return {f.name: example_value(f.type) for f in t.fields if f.required}
    if isinstance(t, typesys.NominalType):
        return example_value(t.parent)
    return None


def generated_document(spec: NodeSpec, sample: Sample) -> tuple[dict[str, Any], dict[str, Any]]:
    """The workflow document running `spec`'s node alone, and the input values to run it with."""
    step = _step(spec)
    declared: dict[str, Any] = {}
    values: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    bound: dict[str, str] = {}
    for port in spec.inputs:
        if not port.required and port.name not in sample.inputs:
            continue
        if _is_table(port):
            declared[port.name] = {"type": sample.types.get(port.name, _RECORDS_TYPE)}
            nodes[f"{port.name}_table"] = {"type": RECORDS_TO_TABLE, "in": {"value": f"$inputs.{port.name}"}}
            bound[port.name] = f"{port.name}_table.out"
        else:
            declared[port.name] = {"type": sample.types.get(port.name, str(_concrete(port.type)))}
            bound[port.name] = f"$inputs.{port.name}"
        values[port.name] = (
            sample.inputs[port.name] if port.name in sample.inputs else example_value(_concrete(port.type))
        )
    node_doc: dict[str, Any] = {"type": spec.id}
    if bound:
        node_doc["in"] = bound
    params = {
        p.name: sample.params[p.name]
        if p.name in sample.params
        else (json_default(p.default) if not p.required else example_value(p.type))
        for p in spec.params
    }
    if params:
        node_doc["params"] = params
    nodes[step] = node_doc
    document: dict[str, Any] = {
        "format": "rayweave.workflow/1",
        "name": f"try-{step}",
        "inputs": declared,
        "nodes": nodes,
        "outputs": {p.name: f"{step}.{p.name}" for p in spec.outputs},
    }
    return document, values


def docstring_document(definition: NodeDefinition) -> dict[str, Any] | None:
    """The workflow document of the docstring's `Example:` block, or None when it has none (or no JSON)."""
    text = definition.example
    start = text.find("```json\n")
    if start < 0:
        return None
    end = text.find("```", start + 8)
    try:
        data = json.loads(text[start + 8 : end])
    except ValueError:
        return None
    return data if isinstance(data, dict) and "nodes" in data else None


def _used_files(files: Mapping[str, Any], *values: Any) -> dict[str, Any]:
    """The files of `files` that `values` name as `$DATA/<name>`."""
    text = json.dumps(values)
    return {name: content for name, content in files.items() if f"{DATA}/{name}" in text}


def examples(definition: NodeDefinition, sample: Sample | None) -> list[Example]:
    """The examples of a node page, in the order the page shows them (control nodes have only their own)."""
    sample = sample or Sample()
    found: list[Example] = []
    own = docstring_document(definition)
    if own is not None:
        found.append(
            Example(
                "docstring",
                own,
                dict(sample.example_inputs) if sample.example_inputs is not None else None,
                sample.example_outputs,
                None,
                _used_files(sample.files, sample.example_inputs, dict(sample.example_constants)),
                sample.example_constants,
            )
        )
    if definition.spec.control is None:
        document, values = generated_document(definition.spec, sample)
        files = _used_files(sample.files, values)
        found.append(Example("alone", document, values, sample.outputs, sample.fails, files))
    return found


def _json_block(value: Any, *, compact: bool = False) -> list[str]:
    """A fenced JSON block; `compact` values (inputs, outputs, rows) stay on one line when it is short."""
    text = json.dumps(value)
    if not compact or len(text) > 100:
        text = json.dumps(value, indent=2)
    return ["```json", text, "```", ""]


def _mentions(value: Any, placeholder: str) -> bool:
    return placeholder in json.dumps(value)


def render_run(example: Example) -> list[str]:
    """The Markdown telling how to run `example` (its inputs, files and outputs), after its document."""
    lines: list[str] = []
    if example.inputs is None:
        return lines
    if example.constants:
        stands = ", ".join(f"`{k}` stands for `{v}`" for k, v in sorted(example.constants.items()))
        lines += [f"In this document {stands}.", ""]
    lines += [
        "Run it with these inputs (`inputs` of `POST /v1/runs`, or `--input name=value` of `rayweave run`):",
        "",
    ]
    lines += _json_block(example.inputs, compact=True)
    if _mentions(example.inputs, DATA) or _mentions(dict(example.constants), DATA):
        held = ", holding these files:" if example.files else "."
        lines += [
            f"`{DATA}` stands for a data root of the installation (by default `$RAYWEAVE_HOME/data`; file nodes "
            f"read and write only below the data roots){held}",
            "",
        ]
        for name, content in sorted(example.files.items()):
            if isinstance(content, str):
                lines += [f"`{name}`:", "", "```csv", content.rstrip("\n"), "```", ""]
            else:
                rows = ",\n".join(f"  {json.dumps(row)}" for row in content)
                lines += [
                    f"`{name}`, a Parquet file of these rows:",
                    "",
                    "```json",
                    f"[\n{rows}\n]",
                    "```",
                    "",
                ]
    if _mentions(example.inputs, SERVER):
        lines += [f"`{SERVER}` stands for the base URL of the HTTP server to call.", ""]
    if example.fails is not None:
        lines += [f"It fails on purpose, with an error saying `{example.fails}`.", ""]
    elif example.outputs is not None:
        lines += ["It gives:", "", *_json_block(dict(example.outputs), compact=True)]
        skipped = sorted(set(example.document.get("outputs", {})) - set(example.outputs))
        if skipped:
            names = ", ".join(f"`{name}`" for name in skipped)
            what = f"The output {names} is" if len(skipped) == 1 else f"The outputs {names} are"
            lines += [
                f"{what} skipped: the branch was not taken, so there is no value (the run lists "
                f"{'it' if len(skipped) == 1 else 'them'} in `skipped_outputs`).",
                "",
            ]
    return lines


def render_example(definition: NodeDefinition, sample: Sample | None) -> list[str]:
    """The lines of a node page's "Example" section."""
    lines: list[str] = []
    if definition.example:
        lines += [definition.example, ""]
    for example in examples(definition, sample):
        if example.title != "docstring":
            lines += ["A workflow document running this node alone:", "", *_json_block(example.document)]
        lines += render_run(example)
    if definition.spec.control is not None:
        # Control nodes take sub-workflows as params; a made-up one would not be a valid document.
        lines += ["This control node is expanded by the engine; see its description for a usage example.", ""]
    return lines

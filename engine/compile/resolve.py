"""Pass 2, resolve: attach each node's type from the catalog and check ports, params and options.

Unknown node types give RW101 with close matches and existing versions; bindings to ports the node does not
have give RW102; required inputs left unbound RW106; unknown params RW108; missing required params RW110;
invalid retry/resources overrides RW117. References written as a node alone get their port (the node's only
output) or RW113 when the node has several; references to output ports that do not exist give RW102 (RW107
for workflow outputs).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.compile.diagnostics import Diagnostic, abbreviate, error
from engine.compile.options import effective_resources, effective_retry
from engine.compile.parse import PassResult
from engine.workflow.bindings import Binding, NodeRef, Single, map_leaves
from engine.workflow.graph import SINGLE_OUTPUT, GraphNode, WorkflowGraph, evolve

if TYPE_CHECKING:
    from nodes import Catalog


def resolve(graph: WorkflowGraph, catalog: Catalog) -> PassResult:
    """Look up every node type in ``catalog`` (a `nodes.Catalog`) and check the node against its spec."""
    diagnostics: list[Diagnostic] = []
    definitions: dict[str, Any] = {}
    for node in graph.nodes.values():
        try:
            definitions[node.id] = catalog.get(node.type_id)
        except KeyError as exc:
            message = exc.args[0] if exc.args else f"unknown node type {node.type_id!r}"
            diagnostics.append(
                error(
                    "RW101",
                    f"node type {node.type_id!r} is not in the catalog",
                    node=node.id,
                    field=f"nodes.{node.id}.type",
                    hint=str(message),
                )
            )
    specs = {node_id: definition.spec for node_id, definition in definitions.items()}
    nodes: list[GraphNode] = []
    for node in graph.nodes.values():
        definition = definitions.get(node.id)
        if definition is not None:
            diagnostics.extend(_check_node(node, definition.spec))
        bindings: dict[str, Binding] = {}
        for port, binding in node.bindings.items():

            def one(single: Single, port: str = port, node_id: str = node.id) -> Single:
                new, diagnostic = _resolve_ref(specs, single, node=node_id, port=port)
                if diagnostic is not None:
                    diagnostics.append(diagnostic)
                return new

            bindings[port] = map_leaves(binding, one)  # each element of a list binding on its own
        if definition is None:
            nodes.append(evolve(node, bindings=bindings))
        else:
            nodes.append(evolve(node, bindings=bindings, spec=definition.spec, definition=definition))
    outputs: dict[str, Binding] = {}
    for name, binding in graph.outputs.items():

        def one_output(single: Single, name: str = name) -> Single:
            new, diagnostic = _resolve_ref(specs, single, output=name)
            if diagnostic is not None:
                diagnostics.append(diagnostic)
            return new

        outputs[name] = map_leaves(binding, one_output)
    return PassResult(graph.replace_nodes(nodes, outputs=outputs), tuple(diagnostics))


def _check_node(node: GraphNode, spec: Any) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    inputs = {p.name for p in spec.inputs}
    for port in node.bindings:
        if port not in inputs:
            found.append(
                error(
                    "RW102",
                    f"{spec.id} has no input port {port!r}",
                    node=node.id,
                    port=port,
                    field=f"nodes.{node.id}.in.{port}",
                    hint=_names_hint(port, spec.input_names, "input ports"),
                )
            )
    for port in spec.inputs:
        if port.required and port.name not in node.bindings:
            found.append(
                error(
                    "RW106",
                    f"required input {port.name!r} ({port.type}) of {spec.id} is not bound",
                    node=node.id,
                    port=port.name,
                    field=f"nodes.{node.id}.in",
                    hint=f'bind it in "in": {{"{port.name}": "other_node.port"}} or to a workflow input',
                )
            )
    params = [p.name for p in spec.params]
    for name in node.params:
        if name not in params:
            found.append(
                error(
                    "RW108",
                    f"{spec.id} has no param {name!r}",
                    node=node.id,
                    field=f"nodes.{node.id}.params.{name}",
                    hint=_names_hint(name, params, "params"),
                )
            )
    for param in spec.params:
        if param.required and param.name not in node.params:
            found.append(
                error(
                    "RW110",
                    f"required param {param.name!r} ({param.type}) of {spec.id} is not set",
                    node=node.id,
                    field=f"nodes.{node.id}.params",
                    hint=f'set it in "params": {{"{param.name}": ...}}',
                )
            )
    for option, merge in (("retry", effective_retry), ("resources", effective_resources)):
        if node.options is None or getattr(node.options, option) is None:
            continue  # nothing overridden: the spec's own policy is valid by construction
        try:
            merge(spec, node.options)
        except ValueError as exc:
            found.append(
                error(
                    "RW117",
                    f"invalid {option} for this node: {abbreviate(exc)}",
                    node=node.id,
                    field=f"nodes.{node.id}.{option}",
                    hint=f"fix the {option} override of this node",
                )
            )
    return found


def _resolve_ref(
    specs: Mapping[str, Any],
    binding: Single,
    *,
    node: str | None = None,
    port: str | None = None,
    output: str | None = None,
) -> tuple[Single, Diagnostic | None]:
    if not isinstance(binding, NodeRef):
        return binding, None
    spec = specs.get(binding.node)
    if spec is None:
        return binding, None  # an unknown node or node type: reported already
    outputs = spec.output_names
    where = f"output {output!r}" if output is not None else f"input {port!r}"
    field = f"outputs.{output}" if output is not None else f"nodes.{node}.in.{port}"
    if binding.port == SINGLE_OUTPUT:
        if len(outputs) == 1:
            return NodeRef(binding.node, outputs[0]), None
        return binding, error(
            "RW113",
            f"{where} refers to node {binding.node!r} alone, but {spec.id} has {len(outputs)} outputs",
            node=node,
            port=port,
            field=field,
            hint=f"write '{binding.node}.<port>' with one of {outputs}",
        )
    if binding.port not in outputs:
        return binding, error(
            "RW107" if output is not None else "RW102",
            f"{where} refers to {binding.node}.{binding.port}, but {spec.id} has no output port "
            f"{binding.port!r}",
            node=node,
            port=port,
            field=field,
            hint=_names_hint(binding.port, outputs, "output ports"),
        )
    return binding, None


def _names_hint(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}? ({what}: {', '.join(known) or 'none'})"
    return f"{what}: {', '.join(known) or 'none'}"

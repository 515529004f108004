"""Pass 1, parse: a document (or raw data) becomes a `WorkflowGraph` whose references all point somewhere.

Checks what needs no catalog: every reference names an existing node (RW111) or workflow input (RW112),
workflow outputs refer to something that exists (RW107), there is no cycle (RW105) and there is at least
one output (RW202, a warning). Raw data that is not a valid document gives RW002 diagnostics. The returned
graph lists its nodes in topological order when it has no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.compile.diagnostics import Diagnostic, error
from engine.errors import WorkflowLoadError
from engine.workflow.bindings import Binding, InputRef, NodeRef, leaves
from engine.workflow.document import WorkflowDoc
from engine.workflow.graph import SINGLE_OUTPUT, WorkflowGraph, build_graph
from engine.workflow.loader import doc_from_data


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the new graph (None when it could not be built) and its diagnostics."""

    graph: WorkflowGraph | None
    diagnostics: tuple[Diagnostic, ...]


def load_diagnostics(exc: WorkflowLoadError) -> list[Diagnostic]:
    """RW001/RW002 diagnostics for a document that could not be loaded (one per problem found)."""
    problems = exc.problems or (exc,)
    result = []
    for problem in problems:
        syntax = problem.path is None and problem.message.startswith("invalid ")
        result.append(
            Diagnostic(
                "RW001" if syntax else "RW002",
                "error",
                problem.message,
                field=problem.path or None,
                line=problem.line,
                column=problem.column,
                hint=None if syntax else "see `rayweave schema` for the document format",
            )
        )
    return result


def parse(doc: WorkflowDoc | Mapping[str, Any]) -> PassResult:
    """Build the graph of ``doc`` and check its references and acyclicity."""
    if not isinstance(doc, WorkflowDoc):
        try:
            doc = doc_from_data(doc)
        except WorkflowLoadError as exc:
            return PassResult(None, tuple(load_diagnostics(exc)))
    graph = build_graph(doc)
    diagnostics: list[Diagnostic] = []
    for node in graph.nodes.values():
        for port, whole in node.bindings.items():
            for single in leaves(whole):
                diagnostics.extend(_check_reference(graph, node.id, port, single))
    for name, binding in graph.outputs.items():
        if isinstance(binding, NodeRef) and binding.node not in graph.nodes:
            diagnostics.append(
                error(
                    "RW107",
                    f"workflow output {name!r} refers to node {binding.node!r}, which is not in the workflow",
                    field=f"outputs.{name}",
                    hint=_close_hint(binding.node, graph.nodes),
                )
            )
        elif isinstance(binding, InputRef) and binding.name not in graph.inputs:
            diagnostics.append(
                error(
                    "RW107",
                    f"workflow output {name!r} refers to workflow input {binding.name!r}, which is not declared",
                    field=f"outputs.{name}",
                )
            )
    if not graph.outputs:
        diagnostics.append(
            error(
                "RW202",
                f"workflow {graph.name!r} declares no outputs, so running it computes nothing",
                field="outputs",
                hint='add an output such as "outputs": {"result": "node.port"}',
            )
        )
    order = graph.topological_order()
    if order is None:
        cycle = graph.find_cycle()
        diagnostics.append(
            error(
                "RW105",
                "the nodes form a cycle: " + " -> ".join(cycle),
                node=cycle[0] if cycle else None,
                field=f"nodes.{cycle[0]}" if cycle else "nodes",
                hint="workflows are acyclic; remove one of these bindings",
            )
        )
        return PassResult(graph, tuple(diagnostics))
    graph = graph.replace_nodes(graph.nodes[node_id] for node_id in order)
    return PassResult(graph, tuple(diagnostics))


def _close_hint(name: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}?"
    listed = sorted(known)
    more = f" and {len(listed) - 10} more" if len(listed) > 10 else ""
    return f"node ids in this workflow: {', '.join(listed[:10]) or 'none'}{more}"


def is_single_output(port: str) -> bool:
    """True for the port of a reference written as a node alone (resolved by the resolve pass)."""
    return port == SINGLE_OUTPUT


def _check_reference(graph: WorkflowGraph, node_id: str, port: str, binding: Binding) -> list[Diagnostic]:
    """RW111/RW112 for a reference in input ``port`` of ``node_id`` to a node or input that does not exist."""
    diagnostics: list[Diagnostic] = []
    field = f"nodes.{node_id}.in.{port}"
    if isinstance(binding, NodeRef) and binding.node not in graph.nodes:
        diagnostics.append(
            error(
                "RW111",
                f"input {port!r} refers to node {binding.node!r}, which is not in the workflow",
                node=node_id,
                port=port,
                field=field,
                hint=_close_hint(binding.node, graph.nodes),
            )
        )
    elif isinstance(binding, InputRef) and binding.name not in graph.inputs:
        diagnostics.append(
            error(
                "RW112",
                f"input {port!r} refers to workflow input {binding.name!r}, which is not declared",
                node=node_id,
                port=port,
                field=field,
                hint=f"declare it under 'inputs' (known inputs: {sorted(graph.inputs) or 'none'})",
            )
        )
    return diagnostics

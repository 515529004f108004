"""Pass 4, prune: keep only the nodes the requested workflow outputs need (lazy evaluation).

``outputs=None`` keeps every declared output; nodes no output depends on are dropped with an RW201 warning
(they would never affect a result). Asking for an output the workflow does not declare is RW107.

``targets`` ("run to here") keeps the target nodes and their ancestors instead, and makes every output port of
each target a workflow output named ``node__port`` (the declared outputs are dropped); an unknown target node is
RW107 too.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.compile.diagnostics import Diagnostic, abbreviate, error
from engine.compile.parse import PassResult
from engine.workflow.bindings import Binding, NodeRef
from engine.workflow.graph import WorkflowGraph


def prune(
    graph: WorkflowGraph, outputs: Sequence[str] | None = None, targets: Sequence[str] | None = None
) -> PassResult:
    """Restrict ``graph`` to ``outputs`` (all declared outputs when None) and the nodes they need, or, with
    ``targets``, to those nodes and their ancestors, with the targets' output ports as the outputs."""
    diagnostics: list[Diagnostic] = []
    if targets is not None:
        wanted, diagnostics = _target_outputs(graph, targets)
    elif outputs is None:
        wanted = dict(graph.outputs)
    else:
        wanted = {}
        for name in outputs:
            if name in graph.outputs:
                wanted[name] = graph.outputs[name]
            else:
                diagnostics.append(
                    error(
                        "RW107",
                        f"output {name!r} was requested but workflow {graph.name!r} does not declare it",
                        field="outputs",
                        hint=f"declared outputs: {', '.join(graph.outputs) or 'none'}",
                    )
                )
    roots = [b.node for b in wanted.values() if isinstance(b, NodeRef)]
    keep = graph.ancestors(roots)
    if outputs is None and targets is None:
        for node in graph.nodes.values():
            if node.id not in keep and not node.inserted:
                diagnostics.append(
                    error(
                        "RW201",
                        f"no workflow output depends on node {node.id!r}, so it never runs",
                        node=node.id,
                        field=f"nodes.{node.id}",
                        hint="expose one of its ports under 'outputs' or remove the node",
                    )
                )
    pruned = graph.replace_nodes((n for n in graph.nodes.values() if n.id in keep), outputs=wanted)
    return PassResult(pruned, tuple(diagnostics))


def target_output_name(node: str, port: str) -> str:
    """The workflow output a "run to here" gives for `port` of target `node`: ``node__port``."""
    return f"{node}__{port}"


def _target_outputs(
    graph: WorkflowGraph, targets: Sequence[str]
) -> tuple[dict[str, Binding], list[Diagnostic]]:
    """Every output port of each target node as a workflow output ``node__port`` (a name a document can declare),
    and an RW107 per unknown target."""
    wanted: dict[str, Binding] = {}
    diagnostics: list[Diagnostic] = []
    for target in targets:
        node = graph.nodes.get(target)
        if node is None:
            diagnostics.append(
                error(
                    "RW107",
                    f"target node {abbreviate(repr(target))} was requested but workflow {graph.name!r} has no such node",
                    field="targets",
                    hint=f"its nodes: {abbreviate(', '.join(sorted(graph.nodes)) or 'none', 400)}",
                )
            )
            continue
        ports = [p.name for p in node.spec.outputs] if node.spec is not None else list(node.output_types)
        for port in ports:
            wanted[target_output_name(node.id, port)] = NodeRef(node.id, port)
    return wanted, diagnostics

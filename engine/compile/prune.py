"""Pass 4, prune: keep only the nodes the requested workflow outputs need (lazy evaluation).

``outputs=None`` keeps every declared output; nodes no output depends on are dropped with an RW201 warning
(they would never affect a result). Asking for an output the workflow does not declare is RW107.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.compile.diagnostics import Diagnostic, error
from engine.compile.parse import PassResult
from engine.workflow.bindings import NodeRef
from engine.workflow.graph import WorkflowGraph


def prune(graph: WorkflowGraph, outputs: Sequence[str] | None = None) -> PassResult:
    """Restrict ``graph`` to ``outputs`` (all declared outputs when None) and the nodes they need."""
    diagnostics: list[Diagnostic] = []
    if outputs is None:
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
    if outputs is None:
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

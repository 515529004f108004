"""What the run-node routes read of a run (`serve.api.v1.run_nodes` inspects a node and pages its tables,
`serve.api.v1.run_node_values` sends its values): the run's document, one node's entry in it, and where a node's
stored results are."""

from __future__ import annotations

from typing import Any

from engine.store import Store
from nodes.ids import RunId
from serve.errors import NotFoundError


def run_document_or_404(store: Store, run: Any) -> dict[str, Any]:
    """The workflow document `run` ran, or a 404 saying the run records none."""
    from engine.durable.stored import run_document

    document = run_document(store, run)
    if document is None:
        raise NotFoundError(f"run {run.id!r} records no workflow document, so its nodes cannot be inspected")
    return document


def declared_node(run: Any, document: dict[str, Any], node: str) -> dict[str, Any]:
    """The document entry of `node`, or a 404 naming it and the run's nodes."""
    nodes = dict(document.get("nodes") or {})
    if node not in nodes:
        known = ", ".join(sorted(nodes)[:50]) or "none"
        raise NotFoundError(f"run {run.id!r} has no node {node!r} (its nodes: {known})")
    return dict(nodes[node])


def result_node(store: Store, results: Any, run_id: RunId, node: str, port: str) -> str:
    """`node`, or, when it stored no such output, the node the compiler merged it into (which ran once for
    both and stored the results of both)."""
    from engine.durable.errors import ResultNotFoundError
    from engine.durable.stored import merged_nodes

    try:
        results.size(run_id, node, (port,))
        return node
    except ResultNotFoundError:
        return merged_nodes(store, run_id).get(node, node)


def is_table(value: Any) -> bool:
    """Whether `value` is an Arrow table (without importing pyarrow)."""
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"

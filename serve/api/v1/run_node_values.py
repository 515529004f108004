"""The values a node of a run gave and received, for the UI's node inspector: any output that is not a table
(tables are paged by `serve.api.v1.run_nodes`) and each input, read through the upstream port, workflow input
or constant that fed it. Every answer is bounded: JSON cut to `limit` bytes, and a value stored bigger than
`MAX_VALUE_STORED_BYTES` is refused with what to do instead, never loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request

from engine.jsonlimits import JsonLimitError, sanitized, storable
from engine.store import Store
from nodes.ids import RunId
from serve.api.v1.run_node_reads import declared_node, is_table, result_node, run_document_or_404
from serve.api.v1.runs import owned_run
from serve.api.v1.schemas import NOT_FOUND, NodeInputPort, NodeValue, Problem
from serve.auth import Principal, require
from serve.deps import get_context, get_store
from serve.errors import BadRequestError, ConflictError, NotFoundError

router = APIRouter(prefix="/runs", tags=["runs"])

#: The most bytes of JSON one answer carries (query `limit`), and its default.
MAX_VALUE_LIMIT = 1024 * 1024
DEFAULT_VALUE_LIMIT = 64 * 1024
#: The biggest stored value these routes load (bigger ones are refused with a 409 saying what to do).
MAX_VALUE_STORED_BYTES = 64 * 1024 * 1024

_LIMIT = Query(
    default=DEFAULT_VALUE_LIMIT,
    ge=1,
    le=MAX_VALUE_LIMIT,
    description=f"The most bytes of JSON to send (at most {MAX_VALUE_LIMIT}); a bigger value is cut.",
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    400: {"model": Problem, "description": "The value is a table: page through it instead."},
    409: {"model": Problem, "description": "The value is too big to load (more than 64 MiB stored)."},
}


@router.get(
    "/{run_id}/nodes/{node}/outputs/{port}/value",
    response_model=NodeValue,
    summary="The value of an output of a node, as JSON",
    responses=_RESPONSES,
)
def get_output_value(
    run_id: RunId,
    node: str,
    port: str,
    request: Request,
    limit: int = _LIMIT,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> NodeValue:
    """The value output `port` of `node` gave in the run, as JSON cut to `limit` bytes. A table is a 400 that
    points to its paged preview; a node that kept no output (skipped, failed, not run, or answered by the cache
    without being read) is a 404 that says so."""
    run = owned_run(store, principal, run_id)
    declared_node(run, run_document_or_404(store, run), node)
    reader = _Reader(store, run, get_context(request).settings)
    value = reader.output(node, port)
    if is_table(value):
        raise BadRequestError(
            f"output {port!r} of node {node!r} in run {run.id!r} is a table; page through it with "
            f"GET /v1/runs/{run.id}/nodes/{node}/outputs/{port}"
        )
    return bounded_value(value, run=run.id, node=node, port=port, direction="output", limit=limit)


@router.get(
    "/{run_id}/nodes/{node}/inputs/{port}/value",
    response_model=NodeValue,
    summary="The value an input of a node received, as JSON",
    responses=_RESPONSES,
)
def get_input_value(
    run_id: RunId,
    node: str,
    port: str,
    request: Request,
    limit: int = _LIMIT,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> NodeValue:
    """The value input `port` of `node` received in the run, read where the workflow binds it: the upstream
    node's stored output, the run's input (or its declared default) or the constant; a list port gets the list
    of its items. It is the value before any implicit coercion to the port's type (Int to Float, say)."""
    from engine.workflow.graph import binding_from_doc

    run = owned_run(store, principal, run_id)
    document = run_document_or_404(store, run)
    declared = declared_node(run, document, node)
    bindings = _bindings(declared)
    if port not in bindings:
        known = ", ".join(sorted(bindings)) or "none"
        raise NotFoundError(
            f"node {node!r} of run {run.id!r} has no bound input {port!r} (its inputs: {known})"
        )
    binding = binding_from_doc(bindings[port])
    reader = _Reader(store, run, get_context(request).settings, document)
    value = reader.binding(node, port, binding)
    if is_table(value):
        raise BadRequestError(
            f"input {port!r} of node {node!r} in run {run.id!r} is a table; page through it with the preview "
            f"of its upstream output (`inputs` of GET /v1/runs/{run.id}/nodes/{node})"
        )
    return bounded_value(value, run=run.id, node=node, port=port, direction="input", limit=limit)


def node_inputs(
    run_id: str, node: str, declared: dict[str, Any], member: Any, plan: Any
) -> list[NodeInputPort]:
    """The input ports of document node `node` for `GET /v1/runs/{id}/nodes/{node}`: their sources, types
    (from the compiled `member`, when the workflow still compiles) and the paths of their values."""
    from engine.workflow.bindings import ListBinding, NodeRef, leaves
    from engine.workflow.graph import binding_from_doc

    base = f"/v1/runs/{run_id}/nodes/{quote(node, safe='')}"
    types = dict(getattr(member, "input_types", {}) or {})
    ports: list[NodeInputPort] = []
    for port, ref in _bindings(declared).items():
        binding = binding_from_doc(ref)
        sources = leaves(binding)
        upstream = [s for s in sources if isinstance(s, NodeRef)]
        port_type = str(types[port]) if port in types else None
        preview = None
        if isinstance(binding, NodeRef) and port_type is not None and port_type.startswith("Table"):
            out_port = binding.port or _single_port(plan, binding.node)
            if out_port:
                preview = f"/v1/runs/{run_id}/nodes/{quote(binding.node, safe='')}/outputs/{quote(out_port, safe='')}"
        texts = [_source_text(s) for s in sources]
        source = texts[0] if not isinstance(binding, ListBinding) else "[" + ", ".join(texts) + "]"
        ports.append(
            NodeInputPort(
                port=port,
                type=port_type,
                source=source if len(source) <= 500 else source[:499] + "…",
                from_nodes=list(dict.fromkeys(str(s.node) for s in upstream)),
                table=preview is not None,
                preview=preview,
                value=f"{base}/inputs/{quote(port, safe='')}/value",
            )
        )
    return ports


def _source_text(single: Any) -> str:
    """`node.port`, `node` (a node alone), `$inputs.name`, or `constant` (its value is the input's value)."""
    from engine.workflow.bindings import Const, NodeRef

    if isinstance(single, Const):
        return "constant"
    if isinstance(single, NodeRef) and not single.port:
        return str(single.node)
    return str(single)


def _single_port(plan: Any, node: str) -> str | None:
    """The only output port of `node` in the compiled plan (a reference may name a node alone)."""
    from engine.execution.runstate import members_of

    if plan is None:
        return None
    for planned in plan.nodes:
        for member in members_of(planned):
            if member.id == node and len(member.output_types) == 1:
                return str(next(iter(member.output_types)))
    return None


def _bindings(declared: dict[str, Any]) -> dict[str, Any]:
    """The document references of a node's `in`, parsed as the workflow format parses them (none for a node
    this version of the format no longer reads: a stored document is shown, never refused)."""
    from pydantic import ValidationError

    from engine.workflow.document import NodeDoc

    try:
        return dict(NodeDoc.model_validate(declared).in_)
    except ValidationError:
        return {}


@dataclass
class _Reader:
    """Reads the stored values of one run, refusing one stored bigger than `MAX_VALUE_STORED_BYTES`."""

    store: Store
    run: Any
    settings: Any
    document: dict[str, Any] | None = None

    def output(self, node: str, port: str) -> Any:
        from engine.durable.errors import ResultNotFoundError
        from engine.durable.results import result_store_for
        from nodes.skip import is_skip

        results = result_store_for(self.settings)
        try:
            source = result_node(self.store, results, self.run.id, node, port) if port else node
            stored = results.size(self.run.id, source, (port,) if port else None)
            if stored > MAX_VALUE_STORED_BYTES:
                raise ConflictError(
                    f"output {port or '(its only one)'!r} of node {node!r} in run {self.run.id!r} is {stored:,} "
                    f"bytes stored, more than the {MAX_VALUE_STORED_BYTES:,} the inspector loads; write it to a "
                    "file with a node (builtin/write_json, builtin/write_parquet) and read that"
                )
            values = results.get(self.run.id, source, (port,) if port else None)
        except ResultNotFoundError:
            states: dict[str, str] = {a.node_id: a.status for a in self.store.node_runs.list(self.run.id)}
            raise NotFoundError(
                f"node {node!r} of run {self.run.id!r} ({states.get(node, 'not started')}) has no stored output "
                f"{port or '(its only one)'!r}: only a node that succeeded in this run (not one answered by the "
                "cache that no output read) keeps its outputs; see the node's ports in GET /v1/runs/{id}/nodes/{node}"
            ) from None
        if not port and len(values) != 1:
            raise NotFoundError(f"node {node!r} of run {self.run.id!r} has {len(values)} outputs; name one")
        value = values[port] if port else next(iter(values.values()))
        if is_skip(value):
            raise NotFoundError(
                f"node {node!r} of run {self.run.id!r} was skipped: it gave no output {port!r}"
            )
        return value

    def binding(self, node: str, port: str, binding: Any) -> Any:
        from engine.workflow.bindings import Const, InputRef, ListBinding, NodeRef

        if isinstance(binding, ListBinding):
            return [self.binding(node, port, item) for item in binding.items]
        if isinstance(binding, Const):
            return binding.value
        if isinstance(binding, NodeRef):
            return self.output(str(binding.node), binding.port)
        assert isinstance(binding, InputRef)
        if binding.name in (self.run.inputs or {}):
            return self.run.inputs[binding.name]
        declared = dict((self.document or {}).get("inputs") or {}).get(binding.name)
        if isinstance(declared, dict) and "default" in declared:
            return declared["default"]
        raise NotFoundError(
            f"input {port!r} of node {node!r} reads workflow input {binding.name!r}, which run {self.run.id!r} "
            "was not given and the workflow declares no default for"
        )


def bounded_value(value: Any, *, run: str, node: str, port: str, direction: str, limit: int) -> NodeValue:
    """`value` as a `NodeValue`: its JSON (data as data; other objects as their `repr`), whole when it fits in
    `limit` bytes, else cut there with `truncated` set."""
    try:
        data = storable(value, f"{direction} {port!r}")
    except JsonLimitError:
        data = sanitized(value)  # NUL characters, non-finite numbers, ...: shown cleaned, as events show them
    compact = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    kind = type(value).__name__
    if len(compact) <= limit:
        text = json.dumps(data, ensure_ascii=False, indent=2)
        return NodeValue(
            run=run, node=node, port=port, direction=direction, kind=kind, bytes=len(compact),
            truncated=False, value=data, text=text, limit=limit,
        )  # fmt: skip
    cut = compact[:limit].decode("utf-8", errors="ignore")  # never half a character
    return NodeValue(
        run=run, node=node, port=port, direction=direction, kind=kind, bytes=len(compact),
        truncated=True, value=None, text=cut, limit=limit,
    )  # fmt: skip

"""Runtime type checks of the values crossing a node's ports, with errors naming node, port and types.

Used by `nodes.testing`; the engine may use the same functions in its task wrapper. `SKIP` values are not
checked (a skipped port carries no value), nor are defaults the node supplied itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typesys
from nodes.errors import NodeInputError, NodeOutputError
from nodes.skip import SKIP
from nodes.spec import NodeSpec, ParamSpec, PortSpec

__all__ = ["check_inputs", "check_outputs", "check_params", "concrete_type"]


def concrete_type(t: typesys.Type) -> typesys.Type:
    """`t` with its type variables replaced by Any: at run time a `T` port accepts whatever was unified."""
    names = typesys.free_vars(t)
    if not names:
        return t
    return typesys.substitute(t, {name: typesys.ANY for name in names})


def _where(spec: NodeSpec, workflow: str | None, node_id: str | None) -> str:
    parts = []
    if workflow:
        parts.append(f"workflow {workflow!r}")
    if node_id:
        parts.append(f"node {node_id!r} ({spec.id})")
    else:
        parts.append(f"node {spec.id}")
    return ", ".join(parts)


def _check(
    ports: Sequence[PortSpec | ParamSpec],
    values: Mapping[str, Any],
    *,
    what: str,
    error: type[NodeInputError] | type[NodeOutputError],
    where: str,
    registry: Any,
    sample_size: int,
) -> None:
    for port in ports:
        if port.name not in values:
            continue
        value = values[port.name]
        if value is SKIP:
            continue
        try:
            typesys.check(value, concrete_type(port.type), sample_size=sample_size, registry=registry)
        except typesys.TypeCheckError as exc:
            # typesys's message already reads "[3].name: expected Int, got str 'x'"; prefix where it happened.
            # The port's declared type is named too when the failing element is nested inside it.
            declared = f" (port type {port.type})" if getattr(exc, "path", "") else ""
            raise error(f"{where}, {what} {port.name!r}: {exc}{declared}") from exc


def check_inputs(
    spec: NodeSpec,
    inputs: Mapping[str, Any],
    *,
    registry: Any = None,
    workflow: str | None = None,
    node_id: str | None = None,
    sample_size: int = 100,
) -> None:
    """Raise `NodeInputError` when an input value does not match its port type, or a port is unknown/missing."""
    where = _where(spec, workflow, node_id)
    known = {p.name for p in spec.inputs}
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise NodeInputError(f"{where} has no input port(s) {unknown}; its inputs are {sorted(known)}")
    missing = [p.name for p in spec.inputs if p.required and p.name not in inputs]
    if missing:
        raise NodeInputError(f"{where}: required input port(s) {missing} have no value; connect or set them")
    _check(
        spec.inputs,
        inputs,
        what="input port",
        error=NodeInputError,
        where=where,
        registry=registry,
        sample_size=sample_size,
    )


def check_params(
    spec: NodeSpec,
    params: Mapping[str, Any],
    *,
    registry: Any = None,
    workflow: str | None = None,
    node_id: str | None = None,
) -> None:
    """Raise `NodeInputError` when a param is unknown, missing or of the wrong type."""
    where = _where(spec, workflow, node_id)
    known = {p.name for p in spec.params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise NodeInputError(f"{where} has no param(s) {unknown}; its params are {sorted(known)}")
    missing = [p.name for p in spec.params if p.required and p.name not in params]
    if missing:
        raise NodeInputError(f'{where}: required param(s) {missing} are not set; set them in "params"')
    _check(
        spec.params,
        params,
        what="param",
        error=NodeInputError,
        where=where,
        registry=registry,
        sample_size=100,
    )


def check_outputs(
    spec: NodeSpec,
    outputs: Mapping[str, Any],
    *,
    registry: Any = None,
    workflow: str | None = None,
    node_id: str | None = None,
    sample_size: int = 100,
) -> None:
    """Raise `NodeOutputError` when an output value does not match its port type."""
    _check(
        spec.outputs,
        outputs,
        what="output port",
        error=NodeOutputError,
        where=_where(spec, workflow, node_id),
        registry=registry,
        sample_size=sample_size,
    )

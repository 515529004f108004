"""Runtime type checks of the values crossing a node's ports, with errors naming node, port and types.

Used by `nodes.testing`. A value of the wrong type raises a `PortTypeError` (the same error the engine's task
wrapper raises at run time) naming the node, its type, the port, the expected and the actual type; the
harness raises its `InputTypeError` / `OutputTypeError` subclasses, which are also the `NodeInputError` /
`NodeOutputError` it raises for missing or unknown ports. `SKIP` values are not checked (a skipped port
carries no value), nor are defaults the node supplied itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typesys
from nodes.errors import Direction, InputTypeError, NodeInputError, OutputTypeError, PortTypeError
from nodes.skip import SKIP
from nodes.spec import NodeSpec, ParamSpec, PortSpec

__all__ = ["check_inputs", "check_outputs", "check_params", "concrete_type", "port_type_error"]


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
    spec: NodeSpec,
    ports: Sequence[PortSpec | ParamSpec],
    values: Mapping[str, Any],
    *,
    direction: Direction,
    workflow: str | None,
    node_id: str | None,
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
            raise port_type_error(
                exc,
                workflow=workflow or "",
                node_id=node_id or spec.id,
                node_type=spec.id,
                port=port.name,
                direction=direction,
                port_type=str(port.type),
            ) from exc


def port_type_error(
    exc: typesys.TypeCheckError,
    *,
    workflow: str,
    node_id: str,
    node_type: str,
    port: str,
    direction: Direction,
    port_type: str,
) -> PortTypeError:
    """The `PortTypeError` (`InputTypeError` or `OutputTypeError`, as the harness raises them) for a failed
    check of a value at a port; typesys's error says where inside the value and what was found."""
    error = OutputTypeError if direction == "output" else InputTypeError
    return error(
        workflow,
        node_id,
        port,
        direction,
        str(exc.expected),
        str(exc.actual),
        exc.path,
        node_type=node_type,
        port_type=port_type,
        detail=exc.detail,
    )


def check_inputs(
    spec: NodeSpec,
    inputs: Mapping[str, Any],
    *,
    registry: Any = None,
    workflow: str | None = None,
    node_id: str | None = None,
    sample_size: int = 100,
) -> None:
    """Raise `NodeInputError` when an input port is unknown or missing, and `InputTypeError` (a
    `PortTypeError` and a `NodeInputError`) when a value does not match its port type."""
    where = _where(spec, workflow, node_id)
    known = {p.name for p in spec.inputs}
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise NodeInputError(f"{where} has no input port(s) {unknown}; its inputs are {sorted(known)}")
    missing = [p.name for p in spec.inputs if p.required and p.name not in inputs]
    if missing:
        raise NodeInputError(f"{where}: required input port(s) {missing} have no value; connect or set them")
    _check(
        spec,
        spec.inputs,
        inputs,
        direction="input",
        workflow=workflow,
        node_id=node_id,
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
    """Raise `NodeInputError` when a param is unknown or missing, `InputTypeError` when it has the wrong
    type."""
    where = _where(spec, workflow, node_id)
    known = {p.name for p in spec.params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise NodeInputError(f"{where} has no param(s) {unknown}; its params are {sorted(known)}")
    missing = [p.name for p in spec.params if p.required and p.name not in params]
    if missing:
        raise NodeInputError(f'{where}: required param(s) {missing} are not set; set them in "params"')
    _check(
        spec,
        spec.params,
        params,
        direction="param",
        workflow=workflow,
        node_id=node_id,
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
    """Raise `OutputTypeError` (a `PortTypeError` and a `NodeOutputError`) when an output value does not
    match its port type."""
    _check(
        spec,
        spec.outputs,
        outputs,
        direction="output",
        workflow=workflow,
        node_id=node_id,
        registry=registry,
        sample_size=sample_size,
    )

"""Map nodes in the type-check pass: compile the sub-workflow and check it fits the map node.

A map node (spec ``control == "map"``, e.g. ``builtin/map@1``) carries its sub-workflow in the ``workflow``
param. It is compiled like any workflow (its problems come back as RW116, with the field path inside the
sub-document); it must have an input ``item`` (and may have ``index``), every other input needs a default,
and it must have an output ``out``, whose type solves the map node's result type ``List[U]``. The list's
element type must fit ``item``: when it does through an implicit coercion (``Int -> Float``, ``T ->
Optional[T]``, a runtime-checked ``Any -> T``...), the coercion is recorded on the map node under
`item_coercion_key` and the engine applies it to every element before the element's run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typesys
from engine.compile.diagnostics import abbreviate, error

if TYPE_CHECKING:  # a type only: the coordinator imports this module, and the graph module pulls in pydantic
    from engine.workflow.graph import GraphNode


def compile_map(state: Any, node: GraphNode) -> tuple[Any, Any]:
    """For a map node: its compiled sub-plan and the type of its ``out`` (else None, None).

    ``state`` is the type-check pass state (``compile_sub``, ``diagnostics``, ``registry``).
    """
    if node.spec is None or node.spec.control != "map" or state.compile_sub is None:
        return None, None
    document = node.params.get("workflow")
    if document is None:
        return None, None  # RW110 from resolve
    plan, diagnostics = state.compile_sub(document)
    for d in diagnostics:
        if d.severity != "error":
            continue
        where = f" {d.location()}" if d.location() else ""
        state.diagnostics.append(
            error(
                "RW116",
                f"sub-workflow of map node {node.id!r}:{where}: {d.code} {d.message}",
                node=node.id,
                field=f"nodes.{node.id}.params.workflow" + (f".{d.field}" if d.field else ""),
                hint=d.hint,
            )
        )
    if plan is None:
        return None, None
    problems = []
    if "item" not in plan.inputs:
        problems.append("it declares no input 'item' (each element of the list is passed as 'item')")
    if "out" not in plan.output_types:
        problems.append("it declares no output 'out' (the value collected for each element)")
    others = [n for n, i in plan.inputs.items() if i.required and n not in ("item", "index")]
    if others:
        problems.append(f"its inputs {others} have no default (only 'item' and 'index' are given)")
    for problem in problems:
        state.diagnostics.append(
            error(
                "RW116",
                f"sub-workflow of map node {node.id!r}: {problem}",
                node=node.id,
                field=f"nodes.{node.id}.params.workflow",
                hint="a map sub-workflow has an input 'item' (and optionally 'index') and an output 'out'",
            )
        )
    if problems:
        return None, None
    return plan, plan.output_types["out"]


def item_coercion_key(list_port: str) -> str:
    """The key of a map node's ``coercions`` under which the coercion of each element of its list port
    ``list_port`` to the sub-workflow's ``item`` type is recorded (never a port or element key)."""
    return f"{list_port}[*]"


def check_map_items(state: Any, node: GraphNode, subplan: Any) -> dict[str, Any]:
    """RW116 when the elements of the map's list do not fit the sub-workflow's ``item`` input.

    Returns the coercions to record on the map node: the implicit one of the elements, if they need one,
    under `item_coercion_key`."""
    assert node.spec is not None and node.spec.inputs
    names = [port.name for port in node.spec.inputs]
    list_port = "items" if "items" in names else names[0]  # as `engine.execution.mapping.map_layout` reads it
    items_type = node.input_types.get(list_port)
    item_input = subplan.inputs["item"].type
    if isinstance(items_type, typesys.ListType) and not typesys.is_assignable(
        items_type.item, item_input, registry=state.registry
    ):
        coercion = typesys.find_coercion(items_type.item, item_input, registry=state.registry)
        if coercion is not None and coercion.kind == "implicit":
            return {item_coercion_key(list_port): coercion}
        if coercion is None or coercion.kind == "explicit":
            state.diagnostics.append(
                error(
                    "RW116",
                    f"map node {node.id!r} feeds elements of type {abbreviate(items_type.item)} to the "
                    f"sub-workflow input 'item' of type {abbreviate(item_input)}",
                    node=node.id,
                    port=list_port,
                    field=f"nodes.{node.id}.params.workflow.inputs.item",
                    hint="make the sub-workflow's 'item' type accept the list's elements",
                )
            )
    return {}

"""How a `map` node (spec `control == "map"`) binds its list to the per-element runs of its sub-plan.

The built-in `builtin/map@1` takes the list on input `items` and a sub-workflow with input `item` (optionally
`index`, the element's position) and output `out`; the map node's output `out` is the list of the elements'
`out` values, in order. Other inputs of the map node are passed to sub-plan inputs of the same name.

When the list's element type reaches `item` only through an implicit coercion (a `List[Int]` mapped by a
sub-workflow whose `item` is `Float`), the compiler records it on the map node (`item_coercion_key`) and
`map_items` applies it to every element, on both executors, before the elements' runs start; an element it
cannot convert fails the map node with a `PortTypeError`.

A durable run hands the executor a `MapResultRecorder`: each top-level map node's assembled outputs are given to
it (on Ray by the task that assembles the list, `collect_recorded`; in-process by the run's thread) before
the node's success is recorded, like the result of every other node (`engine.durable.persist`). Runs without
one do no extra work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.compile.maps import item_coercion_key
from engine.compile.plan import Plan, PlannedNode
from engine.execution.task import coercion_error
from nodes.ids import RunId
from nodes.objectstore import Location


class MapResultRecorder(Protocol):
    """Where a durable run keeps the results of its top-level map nodes (picklable: on Ray it travels to the
    task that assembles the list). See the module docstring."""

    def put(self, run_id: RunId, node_id: str, outputs: Mapping[str, Any]) -> Any:
        """Keep `outputs` (port -> value) of map node `node_id` of run `run_id` durably; raise if it cannot
        (the map node then fails with that error)."""


@dataclass(frozen=True)
class MapLayout:
    """Which ports of a map node and its sub-plan play which role."""

    list_port: str
    item_input: str
    index_input: str | None
    sub_output: str
    out_port: str


def is_map(planned: PlannedNode) -> bool:
    """True for a map node the engine expands itself."""
    return planned.spec is not None and planned.spec.control == "map" and planned.subplan is not None


def map_layout(planned: PlannedNode) -> MapLayout:
    """The roles of the ports of map node `planned` (see the module docstring)."""
    sub = planned.subplan
    if sub is None or planned.spec is None:
        raise ValueError(f"node {planned.id!r} is not a compiled map node (it has no sub-plan)")
    inputs = [p.name for p in planned.spec.inputs]
    list_port = "items" if "items" in inputs else inputs[0]
    required = [name for name, inp in sub.inputs.items() if inp.required and name not in inputs]
    item_input = "item" if "item" in sub.inputs else (required[0] if required else next(iter(sub.inputs)))
    index_input = "index" if "index" in sub.inputs and item_input != "index" else None
    sub_output = "out" if "out" in sub.outputs else next(iter(sub.outputs))
    outputs = [p.name for p in planned.spec.outputs]
    out_port = "out" if "out" in outputs else outputs[0]
    return MapLayout(list_port, item_input, index_input, sub_output, out_port)


def map_items(
    planned: PlannedNode, layout: MapLayout, items: Any, workflow: str, node: str = ""
) -> list[Any]:
    """The elements of map node `planned`'s list as its sub-plan's `item` input receives them: with the
    implicit coercion the compiler recorded applied to each (see the module docstring).

    Raises `PortTypeError` naming `workflow`, the map node (`node`, its id in the run; `planned.id` when
    empty), its list port, the element and the expected and actual type when an element cannot be converted.
    """
    coercion = planned.coercions.get(item_coercion_key(layout.list_port))
    if coercion is None:
        return list(items)
    converted = []
    for index, item in enumerate(items):
        try:
            converted.append(coercion.apply(item))
        except Exception as exc:  # an element the coercion cannot convert is a value of the wrong type
            port_type = planned.input_types.get(layout.list_port)
            raise coercion_error(
                workflow,
                node or planned.id,
                planned.type_id,
                layout.list_port,
                coercion,
                item,
                exc,
                f"[{index}]",
                port_type,
            ) from exc
    return converted


def element_inputs(
    layout: MapLayout, sub: Plan, index: int, item: Any, values: Mapping[str, Any]
) -> dict[str, Any]:
    """The workflow inputs of the sub-plan run for element `index`."""
    inputs = {
        name: value for name, value in values.items() if name != layout.list_port and name in sub.inputs
    }
    inputs[layout.item_input] = item
    if layout.index_input is not None:
        inputs[layout.index_input] = index
    return inputs


def element_prefix(map_id: str, index: int, outer: str = "") -> str:
    """The id prefix of the nodes of element `index` of map node `map_id` (e.g. `squares[3].`)."""
    return f"{outer}{map_id}[{index}]."


def map_persist_args(
    cache_dir: str | Location | None, planned: PlannedNode, top_level: bool, port: str
) -> tuple[str | Location, str, str, str] | None:
    """What `collect` needs to cache a map result: only top-level maps with a cache key are cached."""
    if not (cache_dir and top_level and planned.cache and planned.cache_key):
        return None
    return (cache_dir, planned.cache_key, planned.type_id, port)


def persist_map_result(cache_dir: str | Location, key: str, type_id: str, port: str, value: Any) -> None:
    """Write a map node's collected list to the durable cache (failures only logged: a cache is optional)."""
    from engine.cache.disk import DiskStore

    try:
        DiskStore(cache_dir).put(key, type_id, {port: value})
    except Exception as exc:
        import logging

        logging.getLogger("rayweave.engine").warning("could not cache map result %s: %s", key, exc)

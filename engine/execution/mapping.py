"""How a `map` node (spec `control == "map"`) binds its list to the per-element runs of its sub-plan.

The built-in `builtin/map@1` takes the list on input `items` and a sub-workflow with input `item` (optionally
`index`, the element's position) and output `out`; the map node's output `out` is the list of the elements'
`out` values, in order. Other inputs of the map node are passed to sub-plan inputs of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.compile.plan import Plan, PlannedNode


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
    cache_dir: str | None, planned: PlannedNode, top_level: bool, port: str
) -> tuple[str, str, str, str] | None:
    """What `collect` needs to cache a map result: only top-level maps with a cache key are cached."""
    if not (cache_dir and top_level and planned.cache and planned.cache_key):
        return None
    return (cache_dir, planned.cache_key, planned.type_id, port)


def persist_map_result(cache_dir: str, key: str, type_id: str, port: str, value: Any) -> None:
    """Write a map node's collected list to the durable cache (failures only logged: a cache is optional)."""
    from engine.cache.disk import DiskStore

    try:
        DiskStore(cache_dir).put(key, type_id, {port: value})
    except Exception as exc:
        import logging

        logging.getLogger("rayweave.engine").warning("could not cache map result %s: %s", key, exc)

"""What a node input port or a workflow output is bound to: another node's port, a workflow input, a constant,
or (for a list port) a list of those.

These small frozen values are shared by the compiler's graph and by the compiled `Plan` (which re-exports
them), so both speak the same language and the executor never sees document syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nodes.ids import NodeId


@dataclass(frozen=True)
class NodeRef:
    """A binding to output ``port`` of the plan node ``node`` (``"<member>.<port>"`` for fused groups)."""

    node: NodeId
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclass(frozen=True)
class InputRef:
    """A binding to the workflow input ``name``."""

    name: str

    def __str__(self) -> str:
        return f"$inputs.{self.name}"


@dataclass(frozen=True)
class Const:
    """A constant value bound to a port (JSON-compatible in documents; any value from the builder)."""

    value: Any

    def __str__(self) -> str:
        return f"{{value: {self.value!r}}}"


#: One reference or constant (an element of a `ListBinding`, or a binding of its own).
Single = NodeRef | InputRef | Const


@dataclass(frozen=True)
class ListBinding:
    """A list port bound element by element: ``"in": {"xs": ["a.out", "b", "$inputs.c", {"value": 3}]}``.

    The node receives ``[value of item 0, value of item 1, ...]``; see ADR 005 for skip and failure rules.
    """

    items: tuple[Single, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(str(item) for item in self.items) + "]"


#: What an input port or workflow output is bound to.
Binding = NodeRef | InputRef | Const | ListBinding


def leaves(binding: Binding) -> tuple[Single, ...]:
    """The single bindings inside ``binding``: its items for a `ListBinding`, else itself."""
    return binding.items if isinstance(binding, ListBinding) else (binding,)


def node_refs(binding: Binding) -> tuple[NodeRef, ...]:
    """The node references inside ``binding`` (one for a `NodeRef`, any number for a `ListBinding`)."""
    if isinstance(binding, NodeRef):
        return (binding,)
    if isinstance(binding, ListBinding):
        return tuple(item for item in binding.items if isinstance(item, NodeRef))
    return ()


def map_leaves(binding: Binding, fn: Callable[[Single], Single]) -> Binding:
    """``binding`` with ``fn`` applied to each single binding in it (to itself when it is not a list)."""
    if isinstance(binding, ListBinding):
        return ListBinding(tuple(fn(item) for item in binding.items))
    return fn(binding)


def flatten(inputs: Mapping[str, Binding]) -> tuple[list[tuple[str, Single]], dict[str, int]]:
    """A node's input bindings with each `ListBinding` spread into one entry per item (key `element_key`),
    and the length of each list port: what an executor resolves and passes, one value per entry."""
    flat: list[tuple[str, Single]] = []
    lists: dict[str, int] = {}
    for port, binding in inputs.items():
        if isinstance(binding, ListBinding):
            lists[port] = len(binding.items)
            flat.extend((element_key(port, index), item) for index, item in enumerate(binding.items))
        else:
            flat.append((port, binding))
    return flat, lists


def element_key(port: str, index: int) -> str:
    """The key under which element ``index`` of list port ``port`` travels (task arguments, coercions)."""
    return f"{port}[{index}]"

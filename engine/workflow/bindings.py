"""What a node input port or a workflow output is bound to: another node's port, a workflow input, a constant.

These small frozen values are shared by the compiler's graph and by the compiled `Plan` (which re-exports
them), so both speak the same language and the executor never sees document syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeRef:
    """A binding to output ``port`` of the plan node ``node`` (``"<member>.<port>"`` for fused groups)."""

    node: str
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


#: What an input port or workflow output is bound to.
Binding = NodeRef | InputRef | Const

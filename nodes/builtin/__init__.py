"""The built-in node library: plugin ``builtin``, node ids ``builtin/<name>@1``.

Modules by category: ``math``, ``logic``, ``text``, ``collections``, ``control``, ``convert`` (the
conversion nodes the compiler inserts for explicit coercions), ``data`` (files and SQL on Arrow/DuckDB),
``sql_files`` (SQL scanning files in place), ``table_ops`` (filter, select, group-by, join, describe,
sample) and ``http``.

Nothing is imported until ``definitions()`` is called (``Catalog.builtin()`` calls it), so importing
``nodes`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nodes.definition import NodeDefinition

__all__ = ["MODULES", "definitions"]

MODULES: tuple[str, ...] = (
    "math",
    "logic",
    "text",
    "collections",
    "control",
    "convert",
    "data",
    "sql_files",
    "table_ops",
    "http",
)
"""The modules of the library, in catalog order."""


def definitions() -> list[NodeDefinition]:
    """Every built-in node definition, grouped by module in ``MODULES`` order, each id once."""
    from nodes.definition import NodeDefinition

    found: dict[str, NodeDefinition] = {}
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for value in vars(module).values():
            # A module may import another module's nodes; the id check keeps each one once.
            if isinstance(value, NodeDefinition) and value.spec.id not in found:
                found[value.spec.id] = value
    return list(found.values())

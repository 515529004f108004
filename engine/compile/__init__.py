"""Compile canonical workflow documents into executable plans.

`compile_workflow(doc, catalog)` runs the passes parse -> resolve -> typecheck -> prune -> optimize -> plan
and returns a `Plan`; `validate(doc, catalog)` returns the diagnostics without raising.
"""

from __future__ import annotations

from engine.compile.plan import (
    FUSED_PREFIX,
    FUSED_TYPE_ID,
    Binding,
    Const,
    InputRef,
    NodeRef,
    Plan,
    PlannedInput,
    PlannedNode,
)

__all__ = [
    "FUSED_PREFIX",
    "FUSED_TYPE_ID",
    "Binding",
    "Const",
    "InputRef",
    "NodeRef",
    "Plan",
    "PlannedInput",
    "PlannedNode",
]

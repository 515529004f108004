"""Compile canonical workflow documents into executable plans.

`compile_workflow(doc, catalog)` runs the passes parse -> resolve -> typecheck -> prune -> optimize -> plan
and returns a `Plan`; `validate(doc, catalog)` returns the diagnostics without raising;
`compute_cache_keys(plan, inputs)` gives the cache key of every node before anything runs.
"""

from __future__ import annotations

from engine.compile.cache_keys import compute_cache_keys
from engine.compile.diagnostics import CODES, Diagnostic
from engine.compile.pipeline import compile_workflow, validate
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
    "CODES",
    "FUSED_PREFIX",
    "FUSED_TYPE_ID",
    "Binding",
    "Const",
    "Diagnostic",
    "InputRef",
    "NodeRef",
    "Plan",
    "PlannedInput",
    "PlannedNode",
    "compile_workflow",
    "compute_cache_keys",
    "validate",
]

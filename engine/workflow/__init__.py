"""Workflow documents: the canonical model, loading and saving, the Python builder and the graph view.

The names are re-exported lazily: a Ray worker that runs nodes needs `engine.workflow.bindings` only, not the
builder, the document models and the loader (pydantic, YAML) behind them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.workflow.builder import InputHandle, NodeHandle, PortHandle, Workflow
    from engine.workflow.document import (
        FORMAT,
        Constant,
        InputDoc,
        InputReference,
        ListReference,
        NodeDoc,
        PortReference,
        ResourcesDoc,
        RetryDoc,
        WorkflowDoc,
        workflow_json_schema,
    )
    from engine.workflow.loader import (
        dump_workflow,
        load_workflow,
        load_workflow_file,
        load_workflow_text,
        save_workflow,
    )

_EXPORTS = {
    "InputHandle": "engine.workflow.builder",
    "NodeHandle": "engine.workflow.builder",
    "PortHandle": "engine.workflow.builder",
    "Workflow": "engine.workflow.builder",
    "FORMAT": "engine.workflow.document",
    "Constant": "engine.workflow.document",
    "InputDoc": "engine.workflow.document",
    "InputReference": "engine.workflow.document",
    "ListReference": "engine.workflow.document",
    "NodeDoc": "engine.workflow.document",
    "PortReference": "engine.workflow.document",
    "ResourcesDoc": "engine.workflow.document",
    "RetryDoc": "engine.workflow.document",
    "WorkflowDoc": "engine.workflow.document",
    "workflow_json_schema": "engine.workflow.document",
    "dump_workflow": "engine.workflow.loader",
    "load_workflow": "engine.workflow.loader",
    "load_workflow_file": "engine.workflow.loader",
    "load_workflow_text": "engine.workflow.loader",
    "save_workflow": "engine.workflow.loader",
}

__all__ = [
    "FORMAT",
    "Constant",
    "InputDoc",
    "InputHandle",
    "InputReference",
    "ListReference",
    "NodeDoc",
    "NodeHandle",
    "PortHandle",
    "PortReference",
    "ResourcesDoc",
    "RetryDoc",
    "Workflow",
    "WorkflowDoc",
    "dump_workflow",
    "load_workflow",
    "load_workflow_file",
    "load_workflow_text",
    "save_workflow",
    "workflow_json_schema",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

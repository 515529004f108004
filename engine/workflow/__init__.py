"""Workflow documents: the canonical model, loading and saving, the Python builder and the graph view."""

from __future__ import annotations

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

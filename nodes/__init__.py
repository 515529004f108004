"""The node model and SDK: `@node`, node specs, policies, the `SKIP` sentinel, the run context, the catalog.

Public names (see docs/adr/002-module-contracts.md): `node`, `NodeSpec`, `PortSpec`, `ParamSpec`,
`RetryPolicy`, `Resources`, `NodeDefinition`, `Catalog`, `SKIP`, `context`.
"""

from __future__ import annotations

from nodes import context
from nodes.catalog import Catalog
from nodes.decorator import node
from nodes.definition import NodeDefinition
from nodes.policy import Resources, RetryPolicy
from nodes.skip import SKIP, is_skip
from nodes.spec import NodeSpec, ParamSpec, PortSpec

__all__ = [
    "SKIP",
    "Catalog",
    "NodeDefinition",
    "NodeSpec",
    "ParamSpec",
    "PortSpec",
    "Resources",
    "RetryPolicy",
    "context",
    "is_skip",
    "node",
]

"""Attach to a plan the validators its ports need (see "Validators" in `engine.compile.plan`).

The compiler checks types with the catalog's registry; at run time only the validators of the custom types on
a node's ports matter, so each node carries just those (`TypeRegistry.validators_for`), and nothing when there
are none: a workflow of built-in types ships no registry with its tasks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.compile.plan import Plan, PlannedNode

__all__ = ["with_validators"]


def with_validators(plan: Plan, registry: Any) -> Plan:
    """`plan` whose nodes (fused members included) and workflow inputs carry the validators of their types."""
    if registry is None or not registry.validators():
        return plan
    nodes = tuple(_node(planned, registry) for planned in plan.nodes)
    inputs = registry.validators_for(spec.type for spec in plan.inputs.values())
    return replace(plan, nodes=nodes, validators=inputs)


def _node(planned: PlannedNode, registry: Any) -> PlannedNode:
    members = tuple(_node(member, registry) for member in planned.members)
    types = [*planned.input_types.values(), *planned.output_types.values()]
    return replace(planned, members=members, validators=registry.validators_for(types))

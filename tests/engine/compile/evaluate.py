"""A minimal in-process evaluator of plans, used by the compiler tests to show that optimizing a plan never
changes its results (independent of the engine's executors, which are tested on their own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compile.plan import Const, InputRef, NodeRef, Plan, PlannedNode


def _value(binding: Any, results: Mapping[str, Mapping[str, Any]], inputs: Mapping[str, Any]) -> Any:
    if isinstance(binding, NodeRef):
        return results[binding.node][binding.port]
    if isinstance(binding, InputRef):
        return inputs[binding.name]
    assert isinstance(binding, Const)
    return binding.value


def _run(node: PlannedNode, values: Mapping[str, Any]) -> dict[str, Any]:
    assert node.definition is not None
    args = {p: (node.coercions[p].apply(v) if p in node.coercions else v) for p, v in values.items()}
    return node.definition.invoke(args, node.params)


def evaluate(plan: Plan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``plan`` node by node in this process and return its outputs."""
    given = dict(inputs)
    for name, spec in plan.inputs.items():
        if name not in given and not spec.required:
            given[name] = spec.default
    results: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        if not node.members:
            results[node.id] = _run(node, {p: _value(b, results, given) for p, b in node.inputs.items()})
            continue
        external = {key: _value(b, results, given) for key, b in node.inputs.items()}
        local: dict[str, dict[str, Any]] = {}
        member_ids = {m.id for m in node.members}
        for member in node.members:
            values = {}
            for port, binding in member.inputs.items():
                if isinstance(binding, NodeRef) and binding.node in member_ids:
                    values[port] = local[binding.node][binding.port]
                else:
                    values[port] = external[f"{member.id}.{port}"]
            local[member.id] = _run(member, values)
        results[node.id] = {key: local[key.split(".")[0]][key.split(".")[1]] for key in node.outputs}
    return {name: _value(b, results, given) for name, b in plan.outputs.items()}

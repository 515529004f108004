"""Hand-built plans for executor tests, so that execution is tested apart from the compiler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.compile.plan import Binding, Const, InputRef, NodeRef, Plan, PlannedInput, PlannedNode
from nodes import NodeDefinition, RetryPolicy
from typesys import ANY


def pnode(
    node_id: str,
    definition: NodeDefinition,
    inputs: Mapping[str, Binding | Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    cache_key: str | None = None,
    subplan: Plan | None = None,
    workflow: str = "wf",
) -> PlannedNode:
    """A planned node for `definition`; plain values in `inputs` become constants, `"a.b"` strings refs."""
    spec = definition.spec
    bindings: dict[str, Binding] = {}
    for port, value in (inputs or {}).items():
        if isinstance(value, NodeRef | InputRef | Const):
            bindings[port] = value
        elif isinstance(value, str) and value.startswith("$inputs."):
            bindings[port] = InputRef(value.removeprefix("$inputs."))
        elif isinstance(value, str) and "." in value and not value.startswith("'"):
            node, port_name = value.split(".", 1)
            bindings[port] = NodeRef(node, port_name)
        else:
            bindings[port] = Const(value)
    return PlannedNode(
        id=node_id,
        type_id=spec.id,
        definition=definition,
        spec=spec,
        inputs=bindings,
        params=dict(params or {}),
        retry=retry or spec.retry,
        timeout_s=timeout_s if timeout_s is not None else spec.timeout_s,
        ray_options={"name": f"{workflow}/{node_id}:{spec.id}", **spec.resources.to_ray_options()},
        outputs=tuple(p.name for p in spec.outputs),
        input_types={p.name: p.type for p in spec.inputs},
        output_types={p.name: p.type for p in spec.outputs},
        cache=spec.cache,
        deterministic=spec.deterministic,
        cache_key=cache_key,
        subplan=subplan,
    )


def plan(
    nodes: Sequence[PlannedNode],
    outputs: Mapping[str, str],
    inputs: Sequence[str] = (),
    name: str = "wf",
) -> Plan:
    """A plan of `nodes` (already in topological order) with outputs given as `"node.port"` strings."""
    outs: dict[str, Binding] = {}
    for key, ref in outputs.items():
        if ref.startswith("$inputs."):
            outs[key] = InputRef(ref.removeprefix("$inputs."))
        else:
            node, port = ref.split(".", 1)
            outs[key] = NodeRef(node, port)
    return Plan(
        name=name,
        nodes=tuple(nodes),
        outputs=outs,
        inputs={n: PlannedInput(n, ANY) for n in inputs},
    )

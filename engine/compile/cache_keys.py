"""Cache keys known before execution: `compute_cache_keys(plan, inputs)`.

A node's key is the SHA-256 of its type id, code version, canonical params, any coercions on its inputs,
and for each input port the key of the upstream output, the content hash of the workflow input, or the
content hash of the constant bound to it. Because the keys exist before anything runs, a fully cached rerun
needs no Ray worker.

A node gets None when it is not deterministic (then every node downstream of it gets None too: execution
keys those on the actual values) or when caching is off for it (``cache=False``; its deterministic result
still gives its readers keys). A fused group's key combines its members' keys (None if any member has
none); a map node's key also covers the code versions of its sub-plan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from engine.cache.keys import content_hash
from engine.compile.plan import Plan, PlannedNode
from engine.errors import WorkflowInputError
from engine.workflow.bindings import Binding, Const, InputRef, ListBinding, NodeRef


def compute_cache_keys(plan: Plan, inputs: Mapping[str, Any], *, scope: str = "") -> dict[str, str | None]:
    """Node id -> cache key (or None) for every top-level node and fused member of ``plan``.

    ``inputs`` are the workflow input values; declared inputs missing from it take their defaults, and a
    missing required input raises `WorkflowInputError`. A non-empty ``scope`` (e.g. the owner of the run)
    gives every key its own value in that scope, so runs of different scopes never share cached results.
    """
    return _Keyer(_input_hashes(plan, inputs), scope).plan(plan)


def keyed_plan(plan: Plan, inputs: Mapping[str, Any], *, scope: str = "") -> Plan:
    """``plan`` with every node's cache key filled in (`compute_cache_keys`, `Plan.with_cache_keys`).

    Remembered per plan object, input content and scope: a rerun of a compiled plan with the same inputs (what
    a cached rerun is) reuses the keyed plan instead of hashing every node again, which was half the time of a
    fully cached rerun of a thousand nodes (issue 4, W5). Plans are immutable, so sharing one is safe.
    """
    hashes = _input_hashes(plan, inputs)
    memo_key = (tuple(sorted(hashes.items())), scope)
    found = _KEYED.get(plan, memo_key)
    if found is None:
        found = plan.with_cache_keys(_Keyer(hashes, scope).plan(plan))
        _KEYED.put(plan, memo_key, found)
    return found


def _input_hashes(plan: Plan, inputs: Mapping[str, Any]) -> dict[str, str]:
    input_hashes = {}
    for name, spec in plan.inputs.items():
        if name in inputs:
            value = inputs[name]
        elif not spec.required:
            value = spec.default
        else:
            raise WorkflowInputError(
                f"workflow {plan.name!r} needs input {name!r} ({spec.type}); pass it in the inputs"
            )
        input_hashes[name] = content_hash(value)
    return input_hashes


class _KeyedPlans:
    """Keyed plans by plan object and by (input hashes, scope). A plan is held weakly and its entry goes when
    it does (so neither a reused id matches it nor its keyed plans outlive it); beyond the limits the least
    recently used plans and input combinations are dropped."""

    PLANS = 64
    PER_PLAN = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: OrderedDict[int, tuple[weakref.ref[Plan], OrderedDict[Hashable, Plan]]] = OrderedDict()

    def get(self, plan: Plan, key: Hashable) -> Plan | None:
        with self._lock:
            entry = self._plans.get(id(plan))
            if entry is None or entry[0]() is not plan:
                return None
            self._plans.move_to_end(id(plan))
            found = entry[1].get(key)
            if found is not None:
                entry[1].move_to_end(key)
            return found

    def put(self, plan: Plan, key: Hashable, keyed: Plan) -> None:
        with self._lock:
            entry = self._plans.get(id(plan))
            if entry is None or entry[0]() is not plan:
                entry = (weakref.ref(plan, functools.partial(self._gone, id(plan))), OrderedDict())
                self._plans[id(plan)] = entry
            self._plans.move_to_end(id(plan))
            entry[1][key] = keyed
            if len(entry[1]) > self.PER_PLAN:
                entry[1].popitem(last=False)
            while len(self._plans) > self.PLANS:
                self._plans.popitem(last=False)

    def _gone(self, plan_id: int, ref: weakref.ref[Plan]) -> None:
        # Called when the plan is collected, possibly inside `get` or `put` of this thread: no lock (a
        # dictionary pop is atomic), and only the entry of that very plan.
        entry = self._plans.get(plan_id)
        if entry is not None and entry[0] is ref:
            self._plans.pop(plan_id, None)

    def __len__(self) -> int:
        return len(self._plans)


#: The keyed plans of this process (an empty registry: nothing is computed at import).
_KEYED = _KeyedPlans()


class _Keyer:
    def __init__(self, input_hashes: Mapping[str, str], scope: str = "") -> None:
        self.input_hashes = input_hashes
        self.scope = scope
        # (node id, port) -> the identity of that output; None downstream of non-deterministic nodes.
        self.port_keys: dict[tuple[str, str], str | None] = {}
        self.keys: dict[str, str | None] = {}

    def plan(self, plan: Plan) -> dict[str, str | None]:
        for planned in plan.nodes:
            if planned.members:
                self.group(planned)
            else:
                identity = self.identity(planned)
                self.keys[planned.id] = identity if planned.cache else None
                self.publish(planned.id, planned, identity)
        return self.keys

    def group(self, group: PlannedNode) -> None:
        identities = []
        for member in group.members:
            identity = self.identity(member)
            identities.append(identity)
            self.keys[member.id] = identity if member.cache else None
            self.publish(member.id, member, identity)
            for port in member.output_types:
                self.port_keys[(group.id, f"{member.id}.{port}")] = self.port_keys[(member.id, port)]
        complete = all(i is not None for i in identities) and group.cache
        self.keys[group.id] = _digest({"fused": identities}) if complete else None

    def publish(self, node_id: str, planned: PlannedNode, identity: str | None) -> None:
        ports = list(planned.output_types) or list(planned.outputs)
        if planned.spec is not None:
            ports = [p.name for p in planned.spec.outputs]
        for port in ports:
            self.port_keys[(node_id, port)] = None if identity is None else f"{identity}:{port}"

    def identity(self, planned: PlannedNode) -> str | None:
        """The key of ``planned``'s result regardless of its cache switch (None if not reproducible)."""
        spec = planned.spec
        if spec is None or not planned.deterministic:
            return None
        bound: dict[str, str] = {}
        for port, binding in planned.inputs.items():
            key = self.binding_key(binding)
            if key is None:
                return None
            bound[port] = key
        sub = _subplan_digest(planned.subplan) if planned.subplan is not None else ""
        if sub is None:
            return None
        identity: dict[str, Any] = {
            "type": planned.type_id,
            "code": spec.code_version,
            "params": content_hash(dict(planned.params)),
            "inputs": bound,
            "coercions": {p: str(getattr(c, "target", c)) for p, c in sorted(planned.coercions.items())},
            "subplan": sub,
        }
        if self.scope:
            identity["scope"] = self.scope
        return _digest(identity)

    def binding_key(self, binding: Binding) -> str | None:
        if isinstance(binding, ListBinding):
            keys = [self.binding_key(item) for item in binding.items]
            return None if any(k is None for k in keys) else "list:" + _digest(keys)
        if isinstance(binding, NodeRef):
            return self.port_keys.get((binding.node, binding.port))
        if isinstance(binding, InputRef):
            return "input:" + self.input_hashes[binding.name]
        if isinstance(binding, Const):
            return "const:" + content_hash(binding.value)
        return None


def _subplan_digest(plan: Plan) -> str | None:
    """A digest of the node types and code versions of a sub-plan, or None if any node is not deterministic."""
    parts: list[Any] = []
    for planned in plan.nodes:
        for node in planned.members or (planned,):
            if node.spec is None or not node.deterministic:
                return None
            inner = _subplan_digest(node.subplan) if node.subplan is not None else ""
            if inner is None:
                return None
            parts.append([node.id, node.type_id, node.spec.code_version, inner])
    return _digest(parts)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

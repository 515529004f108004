"""Pass 3, infer and check types: solve each node's type variables and check every value flowing into a port.

Nodes are visited in topological order, so every upstream output type is already concrete. For each node:

* its params are checked against their declared types (RW109);
* its type variables are solved with `typesys.unify` from the types wired to it (RW104 on a conflict); a
  variable nothing determines becomes ``Any``;
* every bound port is checked with `typesys.is_assignable`; when that fails `typesys.find_coercion` decides:
  an implicit coercion is recorded on the port (the executor applies it), an explicit one is RW103 naming the
  conversion node - or, when conversions are allowed (compile option or the node's ``"convert": true``), the
  conversion nodes are inserted (RW203 note); no coercion at all is RW103;
* constants are checked with `typesys.check` (RW114);
* a list binding (ADR 005) binds a ``List[T]`` port element by element: each element is checked against
  ``T`` like a single binding (implicit coercions are recorded per element, under `element_key`); binding
  a list to a port that takes no list is RW103;
* a map node's ``workflow`` param is compiled into its sub-plan, whose ``out`` type solves the map's result
  (`engine.compile.maps`).

Workflow input declarations are parsed and their defaults checked first (RW115).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import typesys
from engine.compile.conversions import insert_conversions
from engine.compile.diagnostics import Diagnostic, abbreviate, error
from engine.compile.maps import check_map_items, compile_map
from engine.compile.parse import PassResult
from engine.secrets.refs import is_secret_ref, ref_problem
from engine.workflow.bindings import Binding, Const, InputRef, ListBinding, NodeRef, element_key
from engine.workflow.graph import GraphInput, GraphNode, WorkflowGraph, evolve

if TYPE_CHECKING:
    from nodes import Catalog

#: Compiles a map node's sub-workflow document: returns the plan (None when it failed) and its diagnostics.
SubCompiler = Callable[[Any], "tuple[Any, list[Diagnostic]]"]


@dataclass
class _State:
    """Mutable bookkeeping of one run of the pass (the graphs themselves stay immutable)."""

    graph: WorkflowGraph
    catalog: Catalog
    registry: Any
    allow_all_conversions: bool
    compile_sub: SubCompiler | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    done: dict[str, GraphNode] = field(default_factory=dict)
    signatures: dict[str, _Signature] = field(default_factory=dict)

    def signature(self, spec: Any) -> _Signature:
        """The port types of ``spec``, computed once per node type (a big workflow reuses few types)."""
        found = self.signatures.get(spec.id)
        if found is None or found.spec is not spec:
            found = _Signature(spec)
            self.signatures[spec.id] = found
        return found


class _Signature:
    """Port and param types of one node type, with which of them mention type variables."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.inputs = {p.name: p.type for p in spec.inputs}
        self.outputs = {p.name: p.type for p in spec.outputs}
        self.params = {p.name: p.type for p in spec.params}
        self.generic_inputs = {n: t for n, t in self.inputs.items() if typesys.free_vars(t)}
        self.generic = bool(self.generic_inputs) or any(typesys.free_vars(t) for t in self.outputs.values())

    def solved(self, subst: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Input and output types with ``subst`` applied and unsolved variables made ``Any``."""
        if not self.generic:
            return self.inputs, self.outputs
        inputs = {n: close_type(typesys.substitute(t, subst)) for n, t in self.inputs.items()}
        outputs = {n: close_type(typesys.substitute(t, subst)) for n, t in self.outputs.items()}
        return inputs, outputs


def typecheck(
    graph: WorkflowGraph,
    catalog: Catalog,
    *,
    registry: Any = None,
    insert_conversions: bool = False,
    compile_sub: SubCompiler | None = None,
) -> PassResult:
    """Type the inputs and nodes of ``graph`` (topologically ordered, resolved) and check its edges."""
    registry = registry if registry is not None else typesys.TypeRegistry.default()
    state = _State(graph, catalog, registry, insert_conversions, compile_sub)
    inputs = {name: _type_input(state, spec) for name, spec in graph.inputs.items()}
    state.graph = replace(graph, inputs=inputs)
    for node in graph.nodes.values():
        _type_node(state, node)
    typed = state.graph.replace_nodes(state.done.values())
    return PassResult(typed, tuple(state.diagnostics))


def _type_input(state: _State, spec: GraphInput) -> GraphInput:
    try:
        declared = typesys.parse(spec.type_text, registry=state.registry)
    except ValueError as exc:
        state.diagnostics.append(
            error(
                "RW115",
                f"workflow input {spec.name!r} has an invalid type {abbreviate(spec.type_text)!r}: "
                f"{abbreviate(exc)}",
                field=f"inputs.{spec.name}.type",
                hint="write a type such as 'Int', 'List[String]' or 'Table[x: Float]'",
            )
        )
        return spec
    if spec.has_default:
        try:
            typesys.check(spec.default, declared, registry=state.registry)
        except TypeError as exc:
            state.diagnostics.append(
                error(
                    "RW115",
                    f"the default of workflow input {spec.name!r} is not "
                    f"{abbreviate(typesys.with_article(declared))}: {abbreviate(exc)}",
                    field=f"inputs.{spec.name}.default",
                    hint=f"give a default of type {abbreviate(declared)} or change the type",
                )
            )
    return replace(spec, type=declared)


def _type_node(state: _State, node: GraphNode) -> None:
    spec = node.spec
    if spec is None:
        state.done[node.id] = node  # unresolved: the resolve pass reported it; nothing to type
        return
    signature = state.signature(spec)
    if node.params:
        _check_params(state, node, signature)
    subplan, sub_out = compile_map(state, node)
    actual = {port: _binding_type(state, b) for port, b in node.bindings.items()}
    generic = signature.generic_inputs
    pairs = []
    for port, binding in node.bindings.items():
        declared = generic.get(port)
        if declared is None:
            continue
        source = value_type(binding.value) if isinstance(binding, Const) else actual[port]
        if source is not None:
            pairs.append((source, declared))
    if sub_out is not None and spec.outputs:
        pairs.append((typesys.ListType(sub_out), spec.outputs[0].type))
    subst: dict[str, Any] = {}
    if pairs:
        try:
            subst = typesys.unify(pairs, registry=state.registry)
        except TypeError as exc:
            state.diagnostics.append(
                error(
                    "RW104",
                    f"cannot solve the type variables of {spec.id}: {abbreviate(exc)}",
                    node=node.id,
                    field=f"nodes.{node.id}.in",
                    hint="connect values whose types agree, or convert one of them",
                )
            )
    input_types, output_types = signature.solved(subst)
    node = evolve(node, input_types=input_types, output_types=output_types, subplan=subplan)
    bindings: dict[str, Binding] = dict(node.bindings)
    # A map's elements may reach its sub-workflow's `item` through an implicit coercion, applied per element.
    coercions: dict[str, Any] = check_map_items(state, node, subplan) if subplan is not None else {}
    for port, binding in node.bindings.items():
        expected = input_types.get(port)
        if expected is None:
            continue  # unknown port: reported by resolve
        if isinstance(binding, ListBinding):
            coercions.update(_check_list(state, node, port, binding, expected))
            continue
        if isinstance(binding, Const):
            new_binding, coercion = _check_constant(state, node, port, binding, expected)
        else:
            source = actual.get(port)
            if source is None:
                continue  # the upstream is untyped because of an earlier error
            new_binding, coercion = _check_edge(state, node, port, binding, source, expected)
        bindings[port] = new_binding
        if coercion is not None:
            coercions[port] = coercion
    state.done[node.id] = evolve(node, bindings=bindings, coercions=coercions)


def _binding_type(state: _State, binding: Binding) -> Any:
    if isinstance(binding, ListBinding):
        items = [
            value_type(item.value) if isinstance(item, Const) else _binding_type(state, item)
            for item in binding.items
        ]
        return None if any(t is None for t in items) else typesys.ListType(typesys.union(*items))
    if isinstance(binding, NodeRef):
        upstream = state.done.get(binding.node)
        return None if upstream is None else upstream.output_types.get(binding.port)
    if isinstance(binding, InputRef):
        spec = state.graph.inputs.get(binding.name)
        return None if spec is None else spec.type
    return None


def _check_params(state: _State, node: GraphNode, signature: _Signature) -> None:
    assert node.spec is not None
    for name, value in node.params.items():
        declared = signature.params.get(name)
        if declared is None:
            continue  # RW108 from resolve
        if is_secret_ref(value):
            _check_secret_param(state, node, name, value, declared)
            continue
        try:
            typesys.check(value, declared, registry=state.registry)
        except TypeError as exc:
            state.diagnostics.append(
                error(
                    "RW109",
                    f"param {name!r} of {node.spec.id} must be {abbreviate(typesys.with_article(declared))}: "
                    f"{abbreviate(exc)}",
                    node=node.id,
                    field=f"nodes.{node.id}.params.{name}",
                    hint=f"give a value of type {abbreviate(declared)}",
                )
            )


def _check_secret_param(state: _State, node: GraphNode, name: str, value: Any, declared: Any) -> None:
    """A secret reference (`{"secret": "name"}`) stands for a String: accepted where one is."""
    assert node.spec is not None
    problem = ref_problem(value)
    if problem is None and not typesys.is_assignable(typesys.STRING, declared, registry=state.registry):
        problem = (
            f"a secret reference stands for a String, and param {name!r} of {node.spec.id} is "
            f"{abbreviate(typesys.with_article(declared))}"
        )
    if problem is not None:
        state.diagnostics.append(
            error(
                "RW109",
                f"param {name!r} of {node.spec.id}: {problem}",
                node=node.id,
                field=f"nodes.{node.id}.params.{name}",
                hint='give {"secret": "NAME"} only for String params, with a valid secret name',
            )
        )


def _check_edge(
    state: _State,
    node: GraphNode,
    port: str,
    binding: Binding,
    source: Any,
    expected: Any,
    *,
    list_port: str | None = None,
) -> tuple[Binding, Any]:
    """Check one edge into ``port``; ``list_port`` is set for an element of a list binding (``port`` is then
    the element's key), whose fixes are per element: no conversion nodes are inserted for it."""
    if source == expected:
        return binding, None
    answer = typesys.is_assignable(source, expected, registry=state.registry)
    if answer:
        return binding, None
    coercion = typesys.find_coercion(source, expected, registry=state.registry)
    if coercion is not None and coercion.kind != "explicit":
        return binding, (coercion if coercion.kind == "implicit" else None)
    origin = str(binding)
    if coercion is not None and list_port is None and _conversions_allowed(state, node):
        inserted = insert_conversions(state, node, port, binding, coercion, _type_node)
        if inserted is not None:
            return inserted
    hint = conversion_hint(source, expected, coercion, origin, node.id, getattr(answer, "reason", ""))
    what = f"element {port!r} of input {list_port!r}" if list_port is not None else f"input {port!r}"
    state.diagnostics.append(
        error(
            "RW103",
            f"{what} expects {abbreviate(expected)} but {origin} gives {abbreviate(source)}",
            node=node.id,
            port=list_port or port,
            field=f"nodes.{node.id}.in.{list_port or port}",
            hint=hint,
        )
    )
    return binding, None


def conversion_hint(source: Any, expected: Any, coercion: Any, origin: str, node_id: str, reason: str) -> str:
    """The RW103 hint: whether a conversion from `source` to `expected` exists, which conversion node does it,
    and how to have it inserted; or, when none exists, why the types do not fit and what to connect."""
    source_text, expected_text = abbreviate(source), abbreviate(expected)
    if coercion is not None:
        nodes = coercion.nodes
        if nodes:
            which = f"node type {nodes[0]}" if len(nodes) == 1 else f"node types {' then '.join(nodes)}"
            return (
                f"a conversion exists: {which} converts {source_text} to {expected_text}; insert it between "
                f"{origin} "
                f'and this port, or set "convert": true on node {node_id!r} (or compile with '
                "insert_conversions=True) to have it inserted"
            )
        return (
            f"{source_text} converts to {expected_text} only explicitly and no conversion node does it; "
            f"connect a value of type {expected_text}"
        )
    # The subtype check's reason is written for Python callers (it points at typesys.find_coercion); the hint
    # answers that question itself.
    why = reason.replace("; typesys.find_coercion tells whether a conversion exists", "")
    why = why.removeprefix(f"{source} is not assignable to {expected}: ")
    because = f" ({abbreviate(why)})" if why else ""
    return (
        f"no conversion from {source_text} to {expected_text} exists{because}: no node converts it; connect a "
        f"value of type {expected_text}"
    )


def _list_item(expected: Any) -> Any:
    """The element type a list binding must give for a port of type ``expected`` (None: not a list port)."""
    if expected == typesys.ANY:
        return typesys.ANY
    if isinstance(expected, typesys.ListType):
        return expected.item
    if isinstance(expected, typesys.UnionType):  # e.g. an optional list port, List[T] | Null
        lists = [m.item for m in expected.members if isinstance(m, typesys.ListType)]
        return typesys.union(*lists) if lists else None
    return None


def _check_list(
    state: _State, node: GraphNode, port: str, binding: ListBinding, expected: Any
) -> dict[str, Any]:
    """Check each element of a list binding against the port's element type; the per-element coercions."""
    item_type = _list_item(expected)
    if item_type is None:
        state.diagnostics.append(
            error(
                "RW103",
                f"input {port!r} expects {abbreviate(expected)}, not a list; a list of references binds only a "
                "List port",
                node=node.id,
                port=port,
                field=f"nodes.{node.id}.in.{port}",
                hint="bind one reference or constant to this port, or wire the list to a port of type List[...]",
            )
        )
        return {}
    coercions: dict[str, Any] = {}
    for index, item in enumerate(binding.items):
        where = element_key(port, index)
        if isinstance(item, Const):
            _, coercion = _check_constant(state, node, where, item, item_type, list_port=port)
        else:
            source = _binding_type(state, item)
            if source is None:
                continue  # the upstream is untyped because of an earlier error
            _, coercion = _check_edge(state, node, where, item, source, item_type, list_port=port)
        if coercion is not None:
            coercions[where] = coercion
    return coercions


def _check_constant(
    state: _State, node: GraphNode, port: str, binding: Const, expected: Any, *, list_port: str | None = None
) -> tuple[Binding, Any]:
    source = value_type(binding.value)
    try:
        typesys.check(binding.value, expected, registry=state.registry)
    except TypeError as exc:
        problem = str(exc)
    else:
        if typesys.is_assignable(source, expected, registry=state.registry):
            return binding, None
        # The value passes the runtime check but its own type is narrower (2 for a Float port): convert it
        # the same lossless way an upstream Int would be, so the node sees the type it declared.
        found = typesys.find_coercion(source, expected, registry=state.registry)
        return binding, (found if found is not None and found.kind == "implicit" else None)
    coercion = typesys.find_coercion(source, expected, registry=state.registry)
    if coercion is not None and coercion.kind == "implicit":
        return binding, coercion
    if (
        coercion is not None
        and coercion.kind == "explicit"
        and list_port is None
        and _conversions_allowed(state, node)
    ):
        inserted = insert_conversions(state, node, port, binding, coercion, _type_node)
        if inserted is not None:
            return inserted
    hint = f"give a value of type {abbreviate(expected)}"
    if coercion is not None and coercion.nodes:
        hint += f", or convert it with {', '.join(coercion.nodes)}"
    what = f"element {port!r} of input {list_port!r}" if list_port is not None else f"input {port!r}"
    state.diagnostics.append(
        error(
            "RW114",
            f"constant {binding.value!r:.60} bound to {what} is not "
            f"{abbreviate(typesys.with_article(expected))}: {abbreviate(problem)}",
            node=node.id,
            port=list_port or port,
            field=f"nodes.{node.id}.in.{list_port or port}",
            hint=hint,
        )
    )
    return binding, None


def _conversions_allowed(state: _State, node: GraphNode) -> bool:
    if node.inserted:
        return False  # a conversion node never gets conversions of its own: no chains without end
    if node.options is not None and node.options.convert is not None:
        return node.options.convert
    return state.allow_all_conversions


def close_type(t: Any) -> Any:
    """``t`` with every type variable left unsolved replaced by ``Any``."""
    names = typesys.free_vars(t)
    if not names:
        return t
    return typesys.substitute(t, dict.fromkeys(names, typesys.ANY))


def value_type(value: Any) -> Any:
    """The type of a constant, as precise as its Python value shows (used to solve type variables)."""
    if value is None:
        return typesys.NULL
    if isinstance(value, bool):
        return typesys.BOOL
    if isinstance(value, int):
        return typesys.INT
    if isinstance(value, float):
        return typesys.FLOAT
    if isinstance(value, str):
        return typesys.STRING
    if isinstance(value, bytes):
        return typesys.BYTES
    if isinstance(value, list | tuple):
        items = [value_type(v) for v in value]
        return typesys.ListType(typesys.union(*items) if items else typesys.ANY)
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        values = [value_type(v) for v in value.values()]
        return typesys.DictType(typesys.STRING, typesys.union(*values) if values else typesys.ANY)
    try:
        return typesys.from_annotation(type(value))
    except (TypeError, ValueError):
        return typesys.ANY

"""`workflow_from_dag`: the rayweave workflow a Ray DAG describes.

Each `FunctionNode` (a `@ray.remote` function bound with `.bind(...)`) becomes a node whose type is made from
the function (`raydag/<function name>@1`; parameters without a type annotation are typed `Any`); a DAG node
bound to a parameter becomes an edge, any other value a constant (it must be JSON). An `InputNode` is the
workflow input `input`; `inp[key]` or `inp.key` is the input `key`. The DAG's root is the output `result`
(a `MultiOutputNode`: outputs `result_0`, `result_1`, ...). The options `num_cpus`, `num_gpus` and `memory` become
the node's resources and `max_retries` its retries (rayweave retries exceptions itself, so `retry_exceptions`
is accepted and needs nothing).

Actors (`ClassNode`, `ClassMethodNode`), DAG nodes nested inside lists or dicts, and other options are refused
with `DagConversionError` naming the function and what to do instead.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import WorkflowBuildError
from engine.workflow import Workflow

#: The name of a DAG's single output, and the prefix of a `MultiOutputNode`'s outputs.
RESULT = "result"
#: The input an `InputNode` stands for when it is passed whole.
INPUT = "input"
#: Ray options that carry over, and those accepted because rayweave does what they ask by itself.
_RESOURCES = ("num_cpus", "num_gpus", "memory")
_ACCEPTED = frozenset({"retry_exceptions", "name"})


class DagConversionError(WorkflowBuildError):
    """A Ray DAG uses something rayweave cannot run as a workflow; the message names it and the way out."""


def workflow_from_dag(dag: Any, *, name: str = "ray-dag") -> Workflow:
    """The rayweave `Workflow` of a Ray DAG (see the module docstring)."""
    from ray.dag import MultiOutputNode

    converter = _Converter(Workflow(name))
    if isinstance(dag, MultiOutputNode):
        for index, part in enumerate(dag._bound_args):
            converter.wf.output(f"{RESULT}_{index}", converter.handle(part, f"output {index}"))
    else:
        converter.wf.output(RESULT, converter.handle(dag, "the DAG's root"))
    return converter.wf


class _Converter:
    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.handles: dict[int, Any] = {}
        self.definitions: dict[Callable[..., Any], Any] = {}
        self.names: dict[str, Callable[..., Any]] = {}
        self.count: dict[str, int] = {}

    def handle(self, dag: Any, where: str) -> Any:
        from ray.dag import ClassMethodNode, ClassNode, FunctionNode, InputAttributeNode, InputNode

        if id(dag) in self.handles:
            return self.handles[id(dag)]
        if isinstance(dag, InputNode):
            made = self.wf.input(INPUT, "Any")
        elif isinstance(dag, InputAttributeNode):
            key = dag._key
            if not isinstance(key, str) or not key.isidentifier():
                raise DagConversionError(
                    f"{where} reads the DAG input at {key!r}; rayweave names workflow inputs, so read it by a "
                    "name (inp['name'] or inp.name) and pass that name to workflow.run as a keyword"
                )
            made = self.wf.input(key, "Any")
        elif isinstance(dag, ClassNode | ClassMethodNode):
            raise DagConversionError(
                f"{where} is a Ray actor ({type(dag).__name__}); a rayweave workflow is made of functions: turn the "
                "actor's method into a @ray.remote function, or write a rayweave class node (@node on a class with "
                "setup and __call__) for state kept between calls"
            )
        elif isinstance(dag, FunctionNode):
            made = self._function(dag)
        else:
            raise DagConversionError(
                f"{where} is a {type(dag).__name__}, which rayweave cannot run; a workflow is built from "
                "f.bind(...) of @ray.remote functions, InputNode and MultiOutputNode"
            )
        self.handles[id(dag)] = made
        return made

    def _function(self, dag: Any) -> Any:
        from ray.dag import DAGNode

        function = dag._body
        label = getattr(function, "__qualname__", repr(function))
        try:
            bound = inspect.signature(function).bind(*dag._bound_args, **dag._bound_kwargs)
        except TypeError as exc:
            raise DagConversionError(f"{label}.bind(...) does not match its signature: {exc}") from None
        ports: dict[str, Any] = {}
        params: dict[str, Any] = {}
        keyword_only = {
            n for n, p in bound.signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        for parameter, value in bound.arguments.items():
            where = f"{label}, parameter {parameter!r}"
            if parameter in keyword_only and not isinstance(value, DAGNode):
                params[parameter] = value  # rayweave's configuration: keyword-only parameters are params
                continue
            if isinstance(value, DAGNode):
                ports[parameter] = self.handle(value, where)
                continue
            if _holds_dag(value):
                raise DagConversionError(
                    f"{where} holds a DAG node inside a {type(value).__name__}; rayweave wires DAG nodes to "
                    "parameters directly: bind each one to a parameter of its own"
                )
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise DagConversionError(
                    f"{where} is bound to a {type(value).__name__}, which is not JSON; a workflow stores its "
                    "constants as JSON: pass it as a workflow input (InputNode) or make it inside the function"
                ) from None
            ports[parameter] = value
        node_id = self._node_id(function.__name__)
        definition = self._definition(function, dict(dag._bound_options), label)
        return self.wf.add(node_id, definition, inputs=ports, params=params or None)

    def _node_id(self, base: str) -> str:
        number = self.count.get(base, 0) + 1
        self.count[base] = number
        return base if number == 1 else f"{base}_{number}"

    def _definition(self, function: Callable[..., Any], options: Mapping[str, Any], label: str) -> Any:
        from nodes import node

        known = self.names.get(function.__name__)
        if known is not None and known is not function:
            raise DagConversionError(
                f"two different functions are named {function.__name__!r} ({label} and {known.__qualname__}); "
                "rayweave names node types after functions: rename one"
            )
        self.names[function.__name__] = function
        unknown = sorted(set(options) - {*_RESOURCES, "max_retries", *_ACCEPTED})
        if unknown:
            raise DagConversionError(
                f"{label}.options({', '.join(unknown)}=...) has no rayweave equivalent; supported: "
                f"{', '.join([*_RESOURCES, 'max_retries', *sorted(_ACCEPTED)])}"
            )
        key = function
        if key in self.definitions:
            return self.definitions[key]
        resources = {k: options[k] for k in _RESOURCES if options.get(k) is not None}
        retries = options.get("max_retries")
        definition = node(
            plugin="raydag",
            resources=resources or None,
            retries=int(retries) if isinstance(retries, int) and retries > 0 else None,
        )(_typed(function))
        self.definitions[key] = definition
        return definition


def _holds_dag(value: Any) -> bool:
    from ray.dag import DAGNode

    if isinstance(value, DAGNode):
        return True
    if isinstance(value, list | tuple | set):
        return any(_holds_dag(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_dag(v) for v in value.values())
    return False


def _typed(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` itself when every parameter and the return are annotated; otherwise a wrapper that calls it,
    with `Any` where an annotation is missing (rayweave nodes are typed; Ray functions often are not). The
    wrapper's `__wrapped__` is the function, so its code version is the function's source."""
    signature = inspect.signature(function)
    empty = inspect.Parameter.empty
    if all(p.annotation is not empty for p in signature.parameters.values()) and (
        signature.return_annotation is not empty
    ):
        return function
    parameters = [
        p.replace(annotation=Any if p.annotation is empty else p.annotation)
        for p in signature.parameters.values()
    ]
    returns = Any if signature.return_annotation is empty else signature.return_annotation

    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    call.__signature__ = signature.replace(parameters=parameters, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {**{p.name: p.annotation for p in parameters}, "return": returns}
    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(call, attribute, getattr(function, attribute, None))
    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call

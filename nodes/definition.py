"""`NodeDefinition`: a node type's spec together with the code that runs it (`invoke`).

A definition stays callable like the function it was made from, so a node is still an ordinary function in
unit tests and notebooks. `invoke` is the one entry point the engine and `nodes.testing` use: it takes inputs
and params by name, runs the node whatever its kind (plain, generator, async, class) and returns one value per
output port. It does not type-check (the engine and `nodes.testing` do); it is kept cheap because the
engine calls it once per node run.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from nodes import context
from nodes.errors import NodeInputError, NodeOutputError
from nodes.ids import NodeTypeId
from nodes.signature import OutputLayout
from nodes.skip import SKIP
from nodes.spec import NodeSpec

__all__ = ["NodeDefinition"]

_MISSING = object()


def _import_definition(module: str, qualname: str) -> NodeDefinition:
    """Unpickle a definition by reference: import its module and look it up (see NodeDefinition.__reduce__)."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, NodeDefinition):
        raise TypeError(f"{module}.{qualname} is not a node definition any more (got {type(obj).__name__})")
    return obj


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _run_coroutine(coro: Any) -> Any:
    # Imported here: asyncio costs tens of milliseconds to import and most nodes are synchronous.
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running event loop (e.g. an async Ray actor): asyncio.run would fail there, so the
    # coroutine gets its own loop in a helper thread, with the caller's context (the node context) copied.
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, coro).result()


async def _drain_async(agen: AsyncIterator[Any]) -> Any:
    node_ctx = context.current()
    last: Any = _MISSING
    async for value in agen:
        node_ctx.emit_output(value)
        last = value
    return last


def _drain(gen: Iterator[Any]) -> Any:
    node_ctx = context.current()
    last: Any = _MISSING
    for value in gen:
        node_ctx.emit_output(value)
        last = value
    return last


def _rebuild(target: Any, spec: NodeSpec, layout: OutputLayout, example: str) -> NodeDefinition:
    definition = NodeDefinition(target, spec, layout)
    definition.example = example
    return definition


class NodeDefinition:
    """A node type: `.spec` (a `NodeSpec`) plus the function or class that implements it.

    Calling the definition calls the original function (or constructs the class). For class nodes, the engine
    hosts one instance per worker in a reusable Ray actor: `new_instance()` constructs the class and calls its
    `setup()` once, then every run calls `invoke(..., instance=that_instance)`, which calls `__call__`.
    """

    # Copied from the target by functools.update_wrapper; declared for type checkers.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(self, target: Callable[..., Any], spec: NodeSpec, layout: OutputLayout) -> None:
        self.target = target
        self.spec = spec
        self.layout = layout
        # Precomputed once so that invoke() does no per-call introspection.
        self._is_class = spec.kind == "class"
        self._inputs = tuple((p.name, p.required, p.default) for p in spec.inputs)
        self._params = tuple((p.name, p.required, p.default) for p in spec.params)
        self._param_names = frozenset(p.name for p in spec.params)
        self._label = spec.id
        self.example = ""  # an `Example:` block from the docstring, shown in the generated docs
        functools.update_wrapper(self, target, updated=())

    def __reduce__(self) -> str | tuple[Any, ...]:
        # A definition importable from its module is pickled as a reference (module, name): Ray tasks then
        # ship a few bytes instead of the function's code, and unpickling gives back the very same object,
        # as for plain module-level functions. Others (defined in __main__ or inside a function) go by value.
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", "")
        if (
            module
            and module != "__main__"
            and "<locals>" not in qualname
            and _lookup(module, qualname) is self
        ):
            return (_import_definition, (module, qualname))
        return (_rebuild, (self.target, self.spec, self.layout, self.example))

    def __repr__(self) -> str:
        return f"<NodeDefinition {self.spec.id} v{self.spec.version} ({self.spec.kind})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original function (or construct the class) directly, bypassing ports and checks."""
        return self.target(*args, **kwargs)

    @property
    def id(self) -> NodeTypeId:
        """The node type id, `plugin/name@major` (same as `spec.id`)."""
        return self.spec.id

    def new_instance(self) -> Any:
        """For class nodes: construct the class and call its `setup()` once (the engine does this in an actor)."""
        if not self._is_class:
            raise TypeError(f"node {self._label} is a {self.spec.kind} node, not a class node; call invoke()")
        instance = self.target()
        setup = getattr(instance, "setup", None)
        if setup is not None:
            setup()
        return instance

    def receives_skip(self, inputs: Mapping[str, Any]) -> bool:
        """True when the skip rule applies: an input is `SKIP` and the node does not accept skipped inputs."""
        if self.spec.accepts_skipped:
            return False
        return any(value is SKIP for value in inputs.values())

    def skipped_outputs(self) -> dict[str, Any]:
        """The outputs of a skipped run: `SKIP` on every output port."""
        return dict.fromkeys(self.layout.names, SKIP)

    def _arguments(
        self, inputs: Mapping[str, Any], params: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        matched = 0
        for name, required, default in self._inputs:
            value = inputs.get(name, _MISSING)
            if value is not _MISSING:
                matched += 1
            else:
                if required:
                    raise NodeInputError(
                        f"node {self._label}: required input port {name!r} has no value; connect it or give it "
                        f"a value (inputs given: {sorted(inputs)})"
                    )
                value = default
            args.append(value)
        if len(inputs) > matched:
            known = {name for name, _, _ in self._inputs}
            unknown = sorted(set(inputs) - known)
            raise NodeInputError(
                f"node {self._label} has no input port(s) {unknown}; its inputs are {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        matched = 0
        for name, required, default in self._params:
            value = params.get(name, _MISSING)
            if value is not _MISSING:
                matched += 1
            else:
                if required:
                    raise NodeInputError(
                        f"node {self._label}: required param {name!r} is not set; set it in the node's "
                        f'"params" (params given: {sorted(params)})'
                    )
                value = default
            kwargs[name] = value
        if len(params) > matched:
            unknown = sorted(set(params) - self._param_names)
            raise NodeInputError(
                f"node {self._label} has no param(s) {unknown}; its params are {sorted(self._param_names)}"
            )
        return args, kwargs

    def invoke(
        self, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, instance: Any = None
    ) -> dict[str, Any]:
        """Run the node once and return one entry per output port.

        Generators: every yielded value goes to `context.current().emit_output` and the last one is the
        result. Async nodes run on a fresh event loop. Class nodes call `instance` (a fresh `new_instance()`
        when none is given). No type checks here: the engine and `nodes.testing` check.
        """
        args, kwargs = self._arguments(inputs, params or {})
        kind = self.spec.kind
        if kind == "function":
            result = self.target(*args, **kwargs)
        elif self._is_class:
            target = instance if instance is not None else self.new_instance()
            result = self._finish(target(*args, **kwargs))
        else:
            result = self._finish(self.target(*args, **kwargs))
        return self.layout.split(result, self._label)

    def _finish(self, result: Any) -> Any:
        # Generators, coroutines and async generators all end up as one final value.
        if inspect.isgenerator(result):
            result = _drain(result)
        elif inspect.iscoroutine(result):
            result = _run_coroutine(result)
        elif inspect.isasyncgen(result):
            result = _run_coroutine(_drain_async(result))
        else:
            return result
        if result is _MISSING:
            raise NodeOutputError(
                f"node {self._label} is a generator that yielded nothing; yield at least one value (the last "
                f"one is the node's result)"
            )
        return result

"""Turn a Python signature into ports and params, and describe how a return value splits into output ports.

Input ports come from positional parameters, params from keyword-only ones, output ports from the return
annotation: a single value is the port `out`; a TypedDict, NamedTuple, dataclass or pydantic model gives one
port per field. Every problem is a `NodeDefinitionError` naming the function, the parameter and the fix.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import typesys
from nodes.docstrings import ParsedDoc
from nodes.errors import NodeDefinitionError, NodeOutputError
from nodes.skip import SKIP
from nodes.spec import NodeKind, ParamSpec, PortSpec

__all__ = ["OutputLayout", "Signature", "analyze"]

SplitMode = Literal["none", "single", "mapping", "attrs"]

_ITERATOR_ORIGINS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


@dataclass(frozen=True, slots=True)
class OutputLayout:
    """How a node's return value becomes its output ports (`split`)."""

    mode: SplitMode
    names: tuple[str, ...]
    optional: frozenset[str] = frozenset()

    def split(self, result: Any, node_label: str) -> dict[str, Any]:
        """One entry per output port from the value the node returned; `SKIP` skips every port."""
        if self.mode == "single":
            return {"out": result}
        if result is SKIP:
            return dict.fromkeys(self.names, SKIP)
        if self.mode == "none":
            return {}
        if self.mode == "mapping" or isinstance(result, Mapping):
            if not isinstance(result, Mapping):
                raise NodeOutputError(
                    f"node {node_label} returned {type(result).__name__}; its return annotation declares the "
                    f"output ports {list(self.names)}, so return a dict with those keys"
                )
            out: dict[str, Any] = {}
            for name in self.names:
                if name in result:
                    out[name] = result[name]
                elif name in self.optional:
                    out[name] = None
                else:
                    raise NodeOutputError(
                        f"node {node_label} returned no value for output port {name!r}; "
                        f"return a dict with the keys {list(self.names)}"
                    )
            return out
        try:
            return {name: getattr(result, name) for name in self.names}
        except AttributeError as exc:
            raise NodeOutputError(
                f"node {node_label} returned {type(result).__name__}, which lacks {exc.name!r}; return the "
                f"annotated type (fields {list(self.names)})"
            ) from None


@dataclass(frozen=True, slots=True)
class Signature:
    """The result of analyzing a node callable: its ports, params, output layout and kind."""

    inputs: tuple[PortSpec, ...]
    outputs: tuple[PortSpec, ...]
    params: tuple[ParamSpec, ...]
    layout: OutputLayout
    kind: NodeKind


def _label(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _hints(func: Callable[..., Any], label: str, *, extras: bool = True) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=extras)
    except Exception as exc:  # NameError for unknown names, TypeError for bad expressions
        raise NodeDefinitionError(
            f"node {label}: cannot resolve its type annotations ({type(exc).__name__}: {exc}); every name used "
            f"in an annotation must be importable from the module that defines the node"
        ) from exc


def _to_type(annotation: Any, where: str, registry: Any) -> typesys.Type:
    try:
        return typesys.from_annotation(annotation, registry=registry)
    except (TypeError, ValueError) as exc:
        # typesys's message names the annotation and lists the supported kinds; add where it was found.
        raise NodeDefinitionError(f"{where}: {exc}") from exc


def _is_optional(t: typesys.Type) -> bool:
    null = typesys.NULL
    if t == null:
        return True
    return isinstance(t, typesys.UnionType) and null in t.members


def _is_pydantic_model(annotation: Any) -> bool:
    # If pydantic was never imported, the annotation cannot be a pydantic model: avoids importing it here.
    pydantic = sys.modules.get("pydantic")
    return (
        pydantic is not None and isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
    )


def _unwrap_iterator(annotation: Any, label: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in _ITERATOR_ORIGINS:
        args = typing.get_args(annotation)
        if args:
            return args[0]
    raise NodeDefinitionError(
        f"node {label} is a generator; annotate its return as Iterator[T] (or AsyncIterator[T] for an async "
        f"generator), where T is the type of each yielded value, got {annotation!r}"
    )


def _record_fields(annotation: Any, label: str) -> tuple[SplitMode, list[tuple[str, Any, bool, str]]] | None:
    """(mode, [(field name, annotation, optional?, description)]) for annotations split into several ports."""
    if typing.is_typeddict(annotation):
        hints = _hints(annotation, label)
        required_keys = getattr(annotation, "__required_keys__", frozenset(hints))
        items = []
        for name, hint in hints.items():
            # __required_keys__ misses NotRequired[...] written as a string (postponed annotations on 3.11),
            # so the wrappers are read here as well.
            origin = typing.get_origin(hint)
            optional = name not in required_keys
            if origin is typing.NotRequired:
                optional, hint = True, typing.get_args(hint)[0]
            elif origin is typing.Required:
                optional, hint = False, typing.get_args(hint)[0]
            items.append((name, hint, optional, ""))
        return "mapping", items
    if isinstance(annotation, type) and issubclass(annotation, tuple) and hasattr(annotation, "_fields"):
        hints = _hints(annotation, label)
        return "attrs", [(name, hints.get(name, Any), False, "") for name in annotation._fields]
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = _hints(annotation, label)
        return "attrs", [(f.name, hints.get(f.name, Any), False, "") for f in dataclasses.fields(annotation)]
    if _is_pydantic_model(annotation):
        hints = _hints(annotation, label)
        model_fields = annotation.model_fields
        return "attrs", [
            (name, hints.get(name, Any), False, info.description or "") for name, info in model_fields.items()
        ]
    return None


def _outputs(
    annotation: Any, label: str, doc: ParsedDoc, registry: Any
) -> tuple[tuple[PortSpec, ...], OutputLayout]:
    if annotation is None or annotation is type(None):
        return (), OutputLayout("none", ())
    split = _record_fields(annotation, label)
    if split is None:
        t = _to_type(annotation, f"node {label}, return annotation", registry)
        text = doc.returns.get("out") or doc.returns_text or " ".join(doc.returns.values())
        return (PortSpec("out", t, True, None, text),), OutputLayout("single", ("out",))
    mode, items = split
    if not items:
        raise NodeDefinitionError(
            f"node {label}: its return annotation {annotation!r} has no fields, so the node would have no output "
            f"ports; add fields, or annotate `-> None` for a node without outputs"
        )
    ports = []
    optional = set()
    for name, hint, is_opt, description in items:
        t = _to_type(hint, f"node {label}, output field {name!r}", registry)
        if is_opt:
            t = typesys.optional(t)
            optional.add(name)
        ports.append(PortSpec(name, t, True, None, doc.returns.get(name, description)))
    return tuple(ports), OutputLayout(mode, tuple(p.name for p in ports), frozenset(optional))


def kind_of(func: Callable[..., Any]) -> NodeKind:
    """How a node callable is run: function, generator, async, async_generator."""
    if inspect.isasyncgenfunction(func):
        return "async_generator"
    if inspect.iscoroutinefunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "generator"
    return "function"


def analyze(
    func: Callable[..., Any],
    doc: ParsedDoc,
    *,
    label: str | None = None,
    skip_self: bool = False,
    registry: Any = None,
) -> Signature:
    """Read ports, params and the output layout from `func`'s signature and annotations."""
    label = label or _label(func)
    kind = kind_of(func)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise NodeDefinitionError(
            f"node {label}: cannot read its signature ({exc}); use a plain def"
        ) from exc
    hints = _hints(func, label)
    inputs: list[PortSpec] = []
    params: list[ParamSpec] = []
    parameters = list(sig.parameters.values())
    if skip_self and parameters:
        parameters = parameters[1:]
    for p in parameters:
        where = f"node {label}, parameter {p.name!r}"
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise NodeDefinitionError(
                f"{where}: *args/**kwargs cannot become ports; declare each input as its own typed parameter"
            )
        if p.name not in hints:
            raise NodeDefinitionError(
                f"{where} has no type annotation; annotate it, e.g. `{p.name}: int`"
                + (" (keyword-only parameters are params)" if p.kind == p.KEYWORD_ONLY else "")
            )
        t = _to_type(hints[p.name], where, registry)
        has_default = p.default is not p.empty
        default = p.default if has_default else None
        required = not has_default and not _is_optional(t)
        description = doc.args.get(p.name, "")
        if p.kind == p.KEYWORD_ONLY:
            params.append(ParamSpec(p.name, t, required, default, description))
        else:
            inputs.append(PortSpec(p.name, t, required, default, description))
    if "return" not in hints:
        raise NodeDefinitionError(
            f"node {label} has no return annotation; annotate it, e.g. `-> int`, a TypedDict/dataclass for "
            f"several output ports, or `-> None` for a node without outputs"
        )
    ret = hints["return"]
    if kind in ("generator", "async_generator"):
        ret = _unwrap_iterator(ret, label)
    outputs, layout = _outputs(ret, label, doc, registry)
    return Signature(tuple(inputs), outputs, tuple(params), layout, kind)

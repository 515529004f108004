"""`@node`: turn a typed Python function, or a class with `setup()` and `__call__`, into a `NodeDefinition`.

```python
@node(category="math")
def add(a: float, b: float = 0.0, *, scale: float = 1.0) -> float:
    "Add two numbers and scale the sum."
    return (a + b) * scale
```

Positional parameters are input ports (a default makes one optional), keyword-only parameters are params,
and the return annotation gives the output ports. Everything is checked here, at decoration time.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

from nodes.codeversion import code_version
from nodes.definition import NodeDefinition
from nodes.docstrings import parse_docstring
from nodes.errors import NodeDefinitionError, PolicyError
from nodes.policy import Resources, RetryPolicy
from nodes.signature import analyze
from nodes.spec import NodeKind, NodeSpec

__all__ = ["node"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:[-+][0-9A-Za-z.+-]+)?\Z")
_CONTROL = (None, "map")


def _check_options(label: str, name: str, plugin: str, version: str, control: str | None) -> None:
    if not _NAME.match(name):
        raise NodeDefinitionError(
            f"node {label}: name {name!r} is not valid; use letters, digits, '_', '-' or '.', starting with a "
            f"letter or '_'"
        )
    if not _NAME.match(plugin):
        raise NodeDefinitionError(
            f"node {label}: plugin {plugin!r} is not a valid plugin name; use e.g. 'myplugin'"
        )
    if not _VERSION.match(version):
        raise NodeDefinitionError(
            f"node {label}: version {version!r} is not a semantic version; use MAJOR.MINOR.PATCH, e.g. '1.0.0'"
        )
    if control not in _CONTROL:
        raise NodeDefinitionError(f"node {label}: control must be None or 'map', got {control!r}")


def _build(
    target: Any,
    *,
    name: str | None,
    plugin: str,
    version: str,
    retries: RetryPolicy | int | Mapping[str, Any] | None,
    timeout_s: float | None,
    cache: bool,
    deterministic: bool,
    resources: Resources | Mapping[str, Any] | None,
    category: str | None,
    tags: Iterable[str],
    accepts_skipped: bool,
    cheap: bool,
    control: str | None,
    registry: Any,
    io_bound: bool | None = None,
) -> NodeDefinition:
    label = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    if isinstance(target, NodeDefinition):
        raise NodeDefinitionError(f"node {label} is already a node; apply @node once")
    is_class = isinstance(target, type)
    kind: NodeKind
    if is_class:
        # Looked up along the MRO: `target.__call__` would find type.__call__ (constructing the class).
        call = next((vars(k)["__call__"] for k in target.__mro__[:-1] if "__call__" in vars(k)), None)
        if call is None:
            raise NodeDefinitionError(
                f"class node {label} has no __call__; define `def __call__(self, ...) -> T` (it runs once per "
                f"node run) and optionally `def setup(self) -> None` (runs once per actor)"
            )
        setup = getattr(target, "setup", None)
        if setup is not None and not callable(setup):
            raise NodeDefinitionError(f"class node {label}: `setup` must be a method taking only self")
        doc = parse_docstring(target.__doc__ or call.__doc__)
        sig = analyze(call, doc, label=label, skip_self=True, registry=registry)
        kind = "class"
    elif inspect.isfunction(target):
        doc = parse_docstring(getattr(target, "__doc__", None))
        sig = analyze(target, doc, label=label, registry=registry)
        kind = sig.kind
    else:
        raise NodeDefinitionError(
            f"@node applies to a function (def or async def) or a class with __call__, got {target!r}; wrap "
            f"other callables (partials, callable objects) in a typed def"
        )
    node_name = name if name is not None else target.__name__
    _check_options(label, node_name, plugin, version, control)
    if timeout_s is not None and not timeout_s > 0:
        raise NodeDefinitionError(f"node {label}: timeout_s must be > 0 seconds or None, got {timeout_s!r}")
    if not isinstance(cache, bool):
        raise NodeDefinitionError(f"node {label}: cache must be True or False, got {cache!r}")
    try:
        retry = RetryPolicy.coerce(retries)
        res = Resources.coerce(resources)
    except PolicyError as exc:
        raise NodeDefinitionError(f"node {label}: {exc}") from exc
    if isinstance(tags, str):
        raise NodeDefinitionError(f"node {label}: tags must be a list of strings, e.g. tags=[{tags!r}]")
    waits = _io_bound(label, kind, io_bound, cheap)
    spec = NodeSpec(
        plugin=plugin,
        name=node_name,
        version=version,
        description=doc.description,
        inputs=sig.inputs,
        outputs=sig.outputs,
        params=sig.params,
        retry=retry,
        timeout_s=float(timeout_s) if timeout_s is not None else None,
        cache=cache,
        deterministic=deterministic,
        resources=res,
        category=category,
        tags=tuple(tags),
        code_version=code_version(target, version),
        kind=kind,
        accepts_skipped=accepts_skipped,
        control=control,
        cheap=cheap,
        io_bound=waits,
    )
    definition = NodeDefinition(target, spec, sig.layout)
    definition.example = doc.example
    return definition


def _io_bound(label: str, kind: NodeKind, io_bound: bool | None, cheap: bool) -> bool:
    """Whether the node waits rather than computes: `io_bound` when given, else True for async nodes that
    are not declared `cheap` (cheap nodes are fused into one task with their neighbours, run one by one)."""
    if io_bound is None:
        return kind in ("async", "async_generator") and not cheap
    if not isinstance(io_bound, bool):
        raise NodeDefinitionError(f"node {label}: io_bound must be True, False or None, got {io_bound!r}")
    if io_bound and cheap:
        raise NodeDefinitionError(
            f"node {label}: cheap=True and io_bound=True exclude each other: cheap nodes are fused with their "
            f"neighbours into one task and run one after another, I/O-bound ones wait at once on a pool"
        )
    if io_bound and kind == "class":
        raise NodeDefinitionError(
            f"class node {label}: io_bound applies to function nodes; a class node runs in an actor of its own"
        )
    return io_bound


@overload
def node(name: Callable[..., Any], /) -> NodeDefinition: ...


@overload
def node(
    name: str | None = None,
    *,
    plugin: str = "local",
    version: str = "1.0.0",
    retries: RetryPolicy | int | Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    cache: bool = True,
    deterministic: bool = True,
    resources: Resources | Mapping[str, Any] | None = None,
    category: str | None = None,
    tags: Iterable[str] = (),
    accepts_skipped: bool = False,
    cheap: bool = False,
    control: str | None = None,
    registry: Any = None,
    io_bound: bool | None = None,
) -> Callable[[Any], NodeDefinition]: ...


def node(
    name: str | Callable[..., Any] | None = None,
    *,
    plugin: str = "local",
    version: str = "1.0.0",
    retries: RetryPolicy | int | Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    cache: bool = True,
    deterministic: bool = True,
    resources: Resources | Mapping[str, Any] | None = None,
    category: str | None = None,
    tags: Iterable[str] = (),
    accepts_skipped: bool = False,
    cheap: bool = False,
    control: str | None = None,
    registry: Any = None,
    io_bound: bool | None = None,
) -> NodeDefinition | Callable[[Any], NodeDefinition]:
    """Make a node type from a typed function or class; usable as `@node` or `@node(...)`.

    Options: `name` (default: the function name), `plugin` and `version` (id `plugin/name@major`),
    `retries` (None, an int number of retries, a mapping, or a `RetryPolicy`), `timeout_s`, `cache`,
    `deterministic`, `resources` (a `Resources` or `{"num_cpus": .., "num_gpus": .., "memory": ..,
    "custom": {..}}`), `category`, `tags`, `accepts_skipped` (receive `SKIP` instead of being skipped),
    `cheap` (may be fused with neighbours), `control` (`"map"` for engine-expanded nodes), `registry`
    (the `typesys.TypeRegistry` holding plugin types used in the annotations) and `io_bound` (the node waits
    rather than computes, e.g. on HTTP calls: on Ray it runs on a warm pool of threaded actors holding no
    CPU, many at once; None, the default, means True for `async def` nodes not declared `cheap`, and False
    otherwise).

    A class node has `setup(self)` (run once; e.g. load a model) and `__call__(self, ...)` (run per call);
    the engine hosts it in a reusable Ray actor, so `setup()` runs once per actor, not once per run.
    """
    options: dict[str, Any] = {
        "plugin": plugin,
        "version": version,
        "retries": retries,
        "timeout_s": timeout_s,
        "cache": cache,
        "deterministic": deterministic,
        "resources": resources,
        "category": category,
        "tags": tags,
        "accepts_skipped": accepts_skipped,
        "cheap": cheap,
        "control": control,
        "registry": registry,
        "io_bound": io_bound,
    }
    if name is not None and not isinstance(name, str):
        # Bare `@node` on a function or class.
        return _build(name, name=None, **options)

    def decorate(target: Any) -> NodeDefinition:
        return _build(target, name=name, **options)

    return decorate

"""The description of a node type: `NodeSpec` with its `PortSpec` inputs/outputs and `ParamSpec` params.

Specs are frozen values built by `@node`; the compiler, the catalog, the HTTP API and the doc generator read
them, and `to_json()` gives a stable, JSON-serializable form (types as canonical strings plus their
`typesys.to_json` form and JSON Schema).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nodes.ids import NodeTypeId
from nodes.policy import Resources, RetryPolicy

if TYPE_CHECKING:
    from typesys import Type

__all__ = ["NodeKind", "NodeSpec", "ParamSpec", "PortSpec", "json_default"]

NodeKind = Literal["function", "generator", "async", "async_generator", "class"]


def json_default(value: Any) -> Any:
    """The JSON form of a default value, or None when it has none (e.g. an object of an arbitrary class).

    Defaults are shown in docs and offered to editors; one that cannot be shown is reported as absent rather
    than breaking the spec's JSON.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def _type_json(t: Type) -> dict[str, Any]:
    import typesys  # the spec module stays importable without typesys loaded; specs only exist with it

    return {
        "type": str(t),
        "type_json": typesys.to_json(t),
        "schema": typesys.json_schema(t),
    }


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One input or output port of a node: a wired value of a declared type.

    An input port is `required` unless its parameter has a default (then `default` holds it) or its type is
    optional (then the default is None). Output ports are always `required=True` with no default.
    """

    name: str
    type: Type
    required: bool = True
    default: Any = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form: name, type (canonical string), type_json, schema, required, default, description."""
        data: dict[str, Any] = {"name": self.name, **_type_json(self.type), "required": self.required}
        if not self.required:
            data["default"] = json_default(self.default)
        data["description"] = self.description
        return data


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One param of a node: configuration set in the workflow document (`"params"`), not wired.

    Params come from keyword-only parameters of the node function; same fields as `PortSpec`.
    """

    name: str
    type: Type
    required: bool = True
    default: Any = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form, the same shape as `PortSpec.to_json()`."""
        data: dict[str, Any] = {"name": self.name, **_type_json(self.type), "required": self.required}
        if not self.required:
            data["default"] = json_default(self.default)
        data["description"] = self.description
        return data


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Everything the platform knows about a node type, without running it.

    `id` is `"plugin/name@major"` (the name used in workflow documents); `version` the full semantic version;
    `code_version` a hash of the normalized source plus `version` (it goes into cache keys). `kind` says how
    the node is called; `"class"` nodes are hosted by the engine in a reusable Ray actor (setup() once).
    `control` is None, or `"map"` for nodes the engine expands itself; `cheap` lets the optimizer fuse the
    node with its neighbours into one Ray task. `io_bound` says the node waits (network, sleeps) rather than
    computes: on Ray it runs on a warm pool of threaded actors that hold no CPU, many at once (`async`
    nodes are I/O-bound unless declared otherwise).
    """

    plugin: str
    name: str
    version: str
    description: str = ""
    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float | None = None
    cache: bool = True
    deterministic: bool = True
    resources: Resources = field(default_factory=Resources)
    category: str | None = None
    tags: tuple[str, ...] = ()
    code_version: str = ""
    kind: NodeKind = "function"
    accepts_skipped: bool = False
    control: str | None = None
    cheap: bool = False
    io_bound: bool = False

    @property
    def major(self) -> int:
        """The major number of `version` (the part that goes into the id)."""
        return int(self.version.split(".", 1)[0])

    @property
    def id(self) -> NodeTypeId:
        """The node type id used in workflow documents: `plugin/name@major`."""
        return NodeTypeId(f"{self.plugin}/{self.name}@{self.major}")

    def input(self, name: str) -> PortSpec:
        """The input port called `name` (KeyError naming the ports that exist otherwise)."""
        for port in self.inputs:
            if port.name == name:
                return port
        raise KeyError(f"node {self.id} has no input port {name!r}; its inputs are {self.input_names}")

    def output(self, name: str) -> PortSpec:
        """The output port called `name` (KeyError naming the ports that exist otherwise)."""
        for port in self.outputs:
            if port.name == name:
                return port
        raise KeyError(f"node {self.id} has no output port {name!r}; its outputs are {self.output_names}")

    def param(self, name: str) -> ParamSpec:
        """The param called `name` (KeyError naming the params that exist otherwise)."""
        for param in self.params:
            if param.name == name:
                return param
        names = [p.name for p in self.params]
        raise KeyError(f"node {self.id} has no param {name!r}; its params are {names}")

    @property
    def input_names(self) -> list[str]:
        """Names of the input ports, in declaration order."""
        return [p.name for p in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Names of the output ports, in declaration order."""
        return [p.name for p in self.outputs]

    def to_json(self) -> dict[str, Any]:
        """Stable, JSON-serializable form for the HTTP API, editors and docs (keys in a fixed order)."""
        return {
            "id": self.id,
            "plugin": self.plugin,
            "name": self.name,
            "version": self.version,
            "major": self.major,
            "description": self.description,
            "kind": self.kind,
            "category": self.category,
            "tags": list(self.tags),
            "inputs": [p.to_json() for p in self.inputs],
            "outputs": [p.to_json() for p in self.outputs],
            "params": [p.to_json() for p in self.params],
            "retry": self.retry.to_json(),
            "timeout_s": self.timeout_s,
            "cache": self.cache,
            "deterministic": self.deterministic,
            "resources": self.resources.to_json(),
            "accepts_skipped": self.accepts_skipped,
            "control": self.control,
            "cheap": self.cheap,
            "io_bound": self.io_bound,
            "code_version": self.code_version,
        }

"""Apply insights' edits to a workflow document and store the result as a new version, through validation."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.insights.analyze import Insight

#: Kinds applied only when named: unbinding a port the body never reads lets the node run before the node it was
#: bound to, which changes the order of their side effects (a node may be wired only to run after another:
#: `builtin/fail`'s `value` is documented so).
BY_NAME_ONLY = frozenset({"needless_edge"})


class OptimizeError(ValueError):
    """The edits cannot be applied (unknown insight id, an edit the validator refuses); the message says why."""

    def __init__(self, message: str, diagnostics: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        #: The validator's diagnostics (JSON) when the edited document was refused.
        self.diagnostics = diagnostics or []


@dataclass(frozen=True)
class Applied:
    """The edited document and the insights whose edits it holds."""

    document: dict[str, Any]
    applied: list[Insight]


def edited(
    document: Mapping[str, Any], insights: Sequence[Insight], ids: Sequence[str] | None = None
) -> Applied:
    """`document` with the edits of `insights` (only those in `ids` when given; without `ids`, all but the kinds
    in `BY_NAME_ONLY`) applied; raises `OptimizeError` for an id that is not an applicable insight."""
    editable = {i.id: i for i in insights if i.edit}
    if ids is not None:
        unknown = [i for i in ids if i not in editable]
        if unknown:
            raise OptimizeError(
                f"no applicable insight {unknown}; applicable ones are {sorted(editable) or 'none'}"
            )
        chosen = [editable[i] for i in ids]
    else:
        chosen = [i for i in editable.values() if i.kind not in BY_NAME_ONLY]
    result = copy.deepcopy(dict(document))
    nodes = result.setdefault("nodes", {})
    for insight in chosen:
        for node, fields in (insight.edit or {}).items():
            if node not in nodes:
                raise OptimizeError(f"insight {insight.id!r} edits node {node!r}, which the document lacks")
            for name, value in fields.items():
                if name == "retry" and isinstance(value, Mapping):
                    # Keep the other retry fields; max_attempts 1 makes them moot but they stay readable.
                    nodes[node]["retry"] = {**dict(nodes[node].get("retry") or {}), **dict(value)}
                elif name == "in" and isinstance(value, Mapping):
                    # A patch of the bindings: None unbinds a port, anything else binds it.
                    bindings = dict(nodes[node].get("in") or {})
                    for port, binding in value.items():
                        if binding is None:
                            bindings.pop(port, None)
                        else:
                            bindings[port] = binding
                    nodes[node]["in"] = bindings
                elif name == "cache" and value is True:
                    nodes[node].pop("cache", None)  # the node type's declaration (cacheable) applies again
                else:
                    nodes[node][name] = value
    return Applied(result, chosen)


def message_for(applied: Sequence[Insight]) -> str:
    """The version message of an optimisation: which insights it applies."""
    return "optimize: " + ", ".join(i.id for i in applied)

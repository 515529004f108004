"""Compiler diagnostics: stable codes, severities, and where in the workflow each problem is.

A `Diagnostic` names the node, port and/or field it is about and carries a hint saying what to do. Codes are
stable (tools and CI match on them); `CODES` documents each, and ``docs/reference/diagnostics.md`` is
generated from it (a test keeps the page current).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "note"]

#: The longest text a diagnostic echoes from the document (a type, a value, an error's own message) before
#: `abbreviate` shortens it: a 12 KB type text repeated in a message helps nobody, its start and end locate it.
MAX_ECHO = 200
#: The longest message or hint of any diagnostic (a last guard for names and texts no site abbreviated).
MAX_MESSAGE = 2000


def abbreviate(text: object, limit: int = MAX_ECHO) -> str:
    """`str(text)`, or, when longer than `limit` characters, its start and end around a note saying how many
    characters were left out: ``List[List[...(11,820 more characters)...]]]``."""
    shown = str(text)
    if len(shown) <= limit:
        return shown
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head, 1)
    return f"{shown[:head]}...({len(shown) - head - tail:,} more characters)...{shown[-tail:]}"


@dataclass(frozen=True)
class CodeInfo:
    """What a diagnostic code means: a short title, its severity and a longer explanation."""

    code: str
    title: str
    severity: Severity
    explanation: str


CODES: dict[str, CodeInfo] = {
    info.code: info
    for info in (
        CodeInfo(
            "RW001",
            "invalid syntax",
            "error",
            "The file is not valid JSON or YAML. The diagnostic gives the line and column of the error.",
        ),
        CodeInfo(
            "RW002",
            "not a workflow document",
            "error",
            "The text parses but does not have the shape of a `rayweave.workflow/1` document: a field is "
            "missing, unknown, or of the wrong kind. `field` is the dotted path (`nodes.mean.retry.backoff`).",
        ),
        CodeInfo(
            "RW101",
            "unknown node type",
            "error",
            "No node type with this id is in the catalog. The hint lists close matches and the versions "
            "of the same node that exist.",
        ),
        CodeInfo(
            "RW102",
            "unknown port",
            "error",
            "A node's `in` binds an input port the node type does not have, or a reference names an output "
            "port the referenced node does not have.",
        ),
        CodeInfo(
            "RW103",
            "type mismatch",
            "error",
            "The value arriving at a port is not assignable to the port's type. The hint says whether a "
            "conversion exists: when one does it names the conversion node type that performs it (e.g. "
            '`builtin/parse_number@1`) — set `"convert": true` on the node (or compile with '
            "`insert_conversions=True`) to have it inserted; when none does it says why the types do not fit.",
        ),
        CodeInfo(
            "RW104",
            "unsolvable type variable",
            "error",
            "A node's type variables (e.g. `T` in `first(xs: List[T]) -> T`) cannot be solved from the "
            "types connected to it: two ports demand different types for the same variable.",
        ),
        CodeInfo(
            "RW105",
            "cycle",
            "error",
            "The nodes form a cycle; workflows are acyclic. The message lists the nodes on the cycle.",
        ),
        CodeInfo(
            "RW106",
            "missing required input",
            "error",
            "A required input port of a node (one without a default) is not bound in its `in`.",
        ),
        CodeInfo(
            "RW107",
            "unknown or unreachable output",
            "error",
            "A workflow output refers to a node, port or input that does not exist, an output was "
            "requested that the workflow does not declare, or a run to a node (`targets`) names a node the "
            "workflow does not have.",
        ),
        CodeInfo(
            "RW108",
            "unknown param",
            "error",
            "A node's `params` sets a param its type does not declare. The hint lists the params it has.",
        ),
        CodeInfo(
            "RW109",
            "bad param value",
            "error",
            "A param value does not match the param's declared type.",
        ),
        CodeInfo(
            "RW110",
            "missing required param",
            "error",
            "A param without a default is not set in the node's `params`.",
        ),
        CodeInfo(
            "RW111",
            "unknown node reference",
            "error",
            "A binding in a node's `in` refers to a node id that is not in the workflow.",
        ),
        CodeInfo(
            "RW112",
            "unknown workflow input",
            "error",
            "A binding `$inputs.name` refers to an input the workflow does not declare under `inputs`.",
        ),
        CodeInfo(
            "RW113",
            "ambiguous reference",
            "error",
            "A reference names a node alone (`node`) but the node has several output ports; write "
            "`node.port`.",
        ),
        CodeInfo(
            "RW114",
            "bad constant",
            "error",
            'A constant (`{"value": ...}`) bound to a port does not match the port\'s type.',
        ),
        CodeInfo(
            "RW115",
            "bad workflow input declaration",
            "error",
            "A workflow input's `type` is not a valid type, or its `default` does not match the type.",
        ),
        CodeInfo(
            "RW116",
            "bad map sub-workflow",
            "error",
            "The `workflow` param of a map node is not a valid workflow document with an input `item` and "
            "an output `out`, or the sub-workflow does not compile (its diagnostics follow).",
        ),
        CodeInfo(
            "RW117",
            "bad node option",
            "error",
            "A per-node option (`retry`, `resources`, `timeout_s`) is invalid for this node.",
        ),
        CodeInfo(
            "RW201",
            "unused node",
            "warning",
            "No workflow output depends on this node, so it is never run (the compiler prunes it).",
        ),
        CodeInfo(
            "RW202",
            "no outputs",
            "warning",
            "The workflow declares no outputs, so running it computes nothing.",
        ),
        CodeInfo(
            "RW203",
            "conversion inserted",
            "note",
            "The compiler inserted a conversion node on an edge because conversions were allowed.",
        ),
    )
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a workflow.

    ``node``, ``port`` and ``field`` locate it (any may be None); ``field`` is a dotted document path such as
    ``nodes.mean.in.table``. ``line``/``column`` (1-based) are set when the diagnostic came from the text of a
    file. ``hint`` says what to do about it.
    """

    code: str
    severity: Severity
    message: str
    node: str | None = None
    port: str | None = None
    field: str | None = None
    hint: str | None = None
    line: int | None = None
    column: int | None = None

    def __post_init__(self) -> None:
        # Every construction, also those that echo a name or text no site abbreviated.
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", abbreviate(self.message, MAX_MESSAGE))
        if self.hint is not None and len(self.hint) > MAX_MESSAGE:
            object.__setattr__(self, "hint", abbreviate(self.hint, MAX_MESSAGE))

    @property
    def title(self) -> str:
        """The short title of the code (``"unknown node type"``)."""
        info = CODES.get(self.code)
        return info.title if info else self.code

    def location(self) -> str:
        """``node 'mean' port 'table'`` or the field path: where the problem is, for humans."""
        parts = []
        if self.node is not None:
            parts.append(f"node {self.node!r}")
        if self.port is not None:
            parts.append(f"port {self.port!r}")
        if not parts and self.field:
            parts.append(self.field)
        return " ".join(parts)

    def render(self) -> str:
        """One line of text: ``RW103 error node 'mean' port 'table': message (hint: ...)``."""
        where = self.location()
        prefix = f"{self.code} {self.severity}"
        if self.line is not None:
            prefix = f"{self.line}:{self.column or 1}: {prefix}"
        text = f"{prefix} {where}: {self.message}" if where else f"{prefix}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON form for the HTTP API and ``rayweave validate --format json``."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "node": self.node,
            "port": self.port,
            "field": self.field,
            "hint": self.hint,
            "line": self.line,
            "column": self.column,
        }


def error(
    code: str,
    message: str,
    *,
    node: str | None = None,
    port: str | None = None,
    field: str | None = None,
    hint: str | None = None,
) -> Diagnostic:
    """A diagnostic with the severity its code declares (errors for RW1xx codes)."""
    severity = CODES[code].severity if code in CODES else "error"
    return Diagnostic(code, severity, message, node=node, port=port, field=field, hint=hint)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error (warnings and notes do not stop compilation)."""
    return any(d.severity == "error" for d in diagnostics)


def codes_markdown() -> str:
    """The Markdown reference page of all diagnostic codes (``docs/reference/diagnostics.md``)."""
    lines = [
        "# Workflow diagnostics",
        "",
        "`rayweave validate`, `POST /v1/workflows/validate` and `engine.compile.validate` report problems",
        "with these stable codes. Errors stop compilation; warnings and notes do not.",
        "This page is generated from `engine/compile/diagnostics.py` (`codes_markdown()`).",
        "",
        "| code | severity | title |",
        "|---|---|---|",
    ]
    lines += [f"| {i.code} | {i.severity} | {i.title} |" for i in CODES.values()]
    for info in CODES.values():
        lines += ["", f"## {info.code}: {info.title}", "", info.explanation]
    return "\n".join(lines) + "\n"

"""Input ports a Python node's body never reads, found by static analysis of its source (`inspect` + `ast`).

An edge into such a port carries data nobody uses; it only makes the node wait for its upstream node. The
analysis is conservative: it claims a port unread only when it is sure, and otherwise claims nothing.

A port is *unread* when its parameter name never appears as a loaded name (`ast.Name` in a `Load` context)
anywhere in the body, nested functions, lambdas and comprehensions included (a nested scope's own variable of
the same name counts as a read: unsure, so no claim). Nothing is claimed for the whole node when:

- its source cannot be read (built in C, defined in a REPL, a sandboxed or non-Python node) or does not parse
  to the function the catalog knows (a lambda, a renamed or generated function);
- the function is a wrapper (`__wrapped__`: the decorator may read what the wrapped body does not);
- its signature has `*args` or `**kwargs`;
- the body can reach its parameters without naming them: `locals()`, `vars()`, `eval`, `exec`, `globals()`,
  `dir()`, `sys._getframe`, `inspect.currentframe` / `stack` / `getargvalues`, `super()` (the parent's method
  may read them), `nonlocal` or `global` of a port's name.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Names whose mere use lets a body read its arguments without naming them.
_INTROSPECTION = frozenset(
    {
        "locals",
        "vars",
        "eval",
        "exec",
        "globals",
        "dir",
        "_getframe",
        "currentframe",
        "stack",
        "getargvalues",
        "getouterframes",
        "getinnerframes",
        "f_locals",
        "super",
        "__class__",
    }
)


@dataclass(frozen=True)
class UnreadPort:
    """An input port the node's body never reads; `optional` when it has a default (or an optional type), so
    that a workflow may leave it unbound."""

    name: str
    optional: bool


def unread_inputs(definition: Any) -> list[UnreadPort]:
    """The input ports of `definition` (a `nodes.NodeDefinition`) that its body never reads; empty when none,
    or when the analysis is unsure (see the module docstring)."""
    spec = getattr(definition, "spec", None)
    target = getattr(definition, "target", None)
    if spec is None or target is None or spec.control is not None:
        return []
    function = target.__call__ if inspect.isclass(target) else target
    function = getattr(function, "__func__", function)
    ports = {p.name: not p.required for p in spec.inputs}
    unread = _unread_names(function, set(ports))
    return [UnreadPort(name, ports[name]) for name in sorted(unread)]


def _unread_names(function: Callable[..., Any], names: set[str]) -> set[str]:
    if not names or not inspect.isfunction(function) or hasattr(function, "__wrapped__"):
        return set()
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return set()
    found = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function.__name__
        ),
        None,
    )
    if found is None:
        return set()
    args = found.args
    if args.vararg is not None or args.kwarg is not None:
        return set()
    declared = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    if not names <= declared:
        return set()  # the source is not the function the catalog knows
    read: set[str] = set()
    for statement in found.body:
        for sub in ast.walk(statement):
            if isinstance(sub, ast.Name):
                if sub.id in _INTROSPECTION:
                    return set()
                if isinstance(sub.ctx, ast.Load):
                    read.add(sub.id)
            elif _escapes(sub, names):
                return set()
    return names - read


def _escapes(sub: ast.AST, names: set[str]) -> bool:
    """True when `sub` may reach the arguments without naming them (`frame.f_locals`, `inspect.stack`), or
    makes a port's name mean something else (`nonlocal` / `global`)."""
    if isinstance(sub, ast.Attribute):
        return sub.attr in _INTROSPECTION
    return isinstance(sub, ast.Nonlocal | ast.Global) and bool(names & set(sub.names))

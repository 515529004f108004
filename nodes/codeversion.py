"""The code version of a node: a hash of its normalized source plus its declared version.

Normalizing through `ast` drops comments, formatting, docstrings and decorators, so editing a docstring or the
`@node(...)` options does not invalidate cached results, while editing the code (or bumping `version`) does.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
from typing import Any

__all__ = ["code_version", "normalized_source"]


class _StripDocs(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            # Keep the body non-empty: a function that is only a docstring still needs a statement.
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node.decorator_list = []
        self.generic_visit(node)
        return self._strip(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        node.decorator_list = []
        self.generic_visit(node)
        return self._strip(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        node.decorator_list = []
        self.generic_visit(node)
        return self._strip(node)


def normalized_source(obj: Any) -> str | None:
    """The source of a function or class with comments, docstrings and decorators removed, or None if the
    source is not available (e.g. code typed into a REPL)."""
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    tree = _StripDocs().visit(tree)
    return ast.unparse(tree)


def _code_fingerprint(code: types.CodeType) -> str:
    # Fallback when there is no source: bytecode and constants (nested code objects recursively). Less stable
    # than the source hash (it changes with the Python version) but still changes when the code does.
    parts = [code.co_code.hex(), repr(code.co_names), repr(code.co_varnames)]
    for const in code.co_consts:
        parts.append(_code_fingerprint(const) if isinstance(const, types.CodeType) else repr(const))
    return "|".join(parts)


def code_version(obj: Any, version: str) -> str:
    """Hex digest (16 chars) of the normalized source of `obj` plus the declared `version`."""
    text = normalized_source(obj)
    if text is None:
        if isinstance(obj, type):
            codes = [
                member.__code__
                for _, member in sorted(vars(obj).items())
                if isinstance(member, types.FunctionType)
            ]
            text = obj.__qualname__ + "#" + "#".join(_code_fingerprint(c) for c in codes)
        else:
            code = getattr(obj, "__code__", None)
            text = obj.__qualname__ + "#" + (_code_fingerprint(code) if code is not None else "")
    digest = hashlib.sha256(f"{version}\0{text}".encode()).hexdigest()
    return digest[:16]

"""Code versions: editing code or the declared version changes them; docstrings, comments, formatting and
decorator options do not (so only real edits invalidate cached results)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Any

from nodes import node
from nodes.codeversion import code_version

_counter = itertools.count()


def _load(tmp_path: Path, source: str) -> Any:
    name = f"_cv_mod_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


BASE = '''
from nodes import node

@node(category="math")
def scale(x: float, *, k: float = 2.0) -> float:
    """Scale x by k."""
    return x * k
'''


def _version(tmp_path: Path, source: str) -> str:
    return str(_load(tmp_path, source).scale.spec.code_version)


def test_docstring_comment_format_and_options_do_not_change_the_version(tmp_path: Path) -> None:
    base = _version(tmp_path, BASE)
    reworded = BASE.replace("Scale x by k.", "Multiply x by the factor k (new docs).")
    commented = BASE.replace("return x * k", "# multiply\n    return x*k  # the result")
    options = BASE.replace('@node(category="math")', '@node(category="arith", tags=["x"], retries=3)')
    assert _version(tmp_path, reworded) == base
    assert _version(tmp_path, commented) == base
    assert _version(tmp_path, options) == base


def test_code_and_declared_version_change_it(tmp_path: Path) -> None:
    base = _version(tmp_path, BASE)
    assert _version(tmp_path, BASE.replace("return x * k", "return x * k + 0")) != base
    assert _version(tmp_path, BASE.replace("k: float = 2.0", "k: float = 3.0")) != base
    bumped = BASE.replace('@node(category="math")', '@node(category="math", version="1.0.1")')
    assert _version(tmp_path, bumped) != base


def test_functions_without_source_still_get_a_version_that_follows_the_code() -> None:
    ns1: dict[str, Any] = {}
    ns2: dict[str, Any] = {}
    exec("def f(x: int) -> int:\n    return x + 1", ns1)
    exec("def f(x: int) -> int:\n    return x + 2", ns2)
    assert code_version(ns1["f"], "1.0.0") != code_version(ns2["f"], "1.0.0")
    assert code_version(ns1["f"], "1.0.0") == code_version(ns1["f"], "1.0.0")
    assert len(node(ns1["f"]).spec.code_version) == 16

"""The dependency rule of DESIGN.md: typesys < nodes < engine < serve; cluster imports only Ray.

Every import counts, including lazy imports inside functions, so a layer cannot reach upwards by hiding an
import in a function body.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("typesys", "nodes", "engine", "serve", "cluster")
ALLOWED: dict[str, set[str]] = {
    "typesys": set(),
    "nodes": {"typesys"},
    "cluster": set(),
    "engine": {"nodes", "typesys", "cluster"},
    "serve": {"engine", "nodes", "typesys", "cluster"},
}
FORBIDDEN_THIRD_PARTY = {"typesys": {"ray"}}
#: First-party plugins (`nodes/firstparty/*`) are plugin directories shipped as package data: they load as
#: their own top-level packages (`rayweave_ml`, ...) in their runtime environments, beside an installed
#: rayweave. They keep to `nodes` and `typesys` like any plugin, except for these lazy imports, each listed
#: with its module and why, so a new reach into the engine fails here until it is argued for.
FIRSTPARTY = ROOT / "nodes" / "firstparty"
FIRSTPARTY_EXCEPTIONS = {
    # The ML plugin's detached helpers (the parent-run closer, the placement-group sweeper) are named actors
    # in rayweave's namespace (the closer finds the run coordinator by the name the run's node config gives).
    ("nodes/firstparty/ml/rayweave_ml/tracking.py", "cluster"),
    ("nodes/firstparty/ml/rayweave_ml/sweeper.py", "cluster"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_layer_imports_only_layers_below(package: str) -> None:
    violations = []
    for path in _modules(package):
        imported = _imports(path)
        upward = (imported & set(PACKAGES)) - ALLOWED[package] - {package}
        if path.is_relative_to(FIRSTPARTY):
            upward -= {
                name for module, name in FIRSTPARTY_EXCEPTIONS if module == str(path.relative_to(ROOT))
            }
        banned = imported & FORBIDDEN_THIRD_PARTY.get(package, set())
        if upward or banned:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(upward | banned)}")
    assert not violations, f"{package} breaks the dependency rule:\n" + "\n".join(violations)


def test_every_firstparty_exception_is_still_needed() -> None:
    stale = [(m, n) for m, n in sorted(FIRSTPARTY_EXCEPTIONS) if n not in _imports(ROOT / m)]
    assert not stale, f"exceptions no longer needed (remove them): {stale}"


def test_the_walk_sees_every_package() -> None:
    for package in PACKAGES:
        assert _modules(package), f"no modules found in {package}/: the layering test would prove nothing"


def test_the_walk_catches_a_lazy_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from engine.compile import plan\n    return plan\n")
    assert "engine" in _imports(module)


#: The database libraries: only the store's own package may import them (DESIGN.md "Storage", ADR 011).
DATABASE_LIBRARIES = {"sqlalchemy", "sqlmodel", "alembic"}
STORE_PACKAGE = ROOT / "engine" / "store"


def _database_imports(packages: tuple[str, ...]) -> list[str]:
    violations = []
    for package in packages:
        for path in _modules(package):
            if path.is_relative_to(STORE_PACKAGE):
                continue
            found = _imports(path) & DATABASE_LIBRARIES
            if found:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(found)}")
    return violations


def test_only_the_store_imports_database_libraries() -> None:
    violations = _database_imports(("engine", "serve", "nodes", "cluster", "typesys"))
    assert not violations, (
        "only engine/store may use SQLAlchemy, SQLModel or Alembic; go through the Store protocol (add a store "
        "method that says what it does) or engine.store.backend_errors():\n" + "\n".join(violations)
    )


def test_tests_reach_the_database_only_through_the_sql_test_support() -> None:
    # Tests outside tests/engine/store use the Store protocol; what it cannot do (make a database, rewind rows
    # to what a crash leaves) is a named helper of tests/engine/store/sql_support.py.
    violations = [
        f"{path.relative_to(ROOT)} imports {sorted(found)}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if not path.is_relative_to(ROOT / "tests" / "engine" / "store")
        and (found := _imports(path) & DATABASE_LIBRARIES)
    ]
    assert not violations, (
        "use store methods, or a helper of tests/engine/store/sql_support.py:\n" + "\n".join(violations)
    )


def test_the_database_walk_catches_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "def f():\n    from sqlalchemy.exc import SQLAlchemyError\n    return SQLAlchemyError\n"
    )
    assert _imports(module) & DATABASE_LIBRARIES == {"sqlalchemy"}


# -- no import cycles ------------------------------------------------------------------------------------------
# A cycle between modules, even one closed only by an import inside a function, makes the order modules load in
# matter and is how a lower module ends up depending on a higher one; the graph below counts every import that
# can run (module level, function bodies, try blocks), not those under `if TYPE_CHECKING:`, which never run.


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them but those in the body of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    walk(other)
            else:
                walk(child)

    walk(tree)
    return found


def _import_graph(paths: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a.b import c` is `a.b.c` when that is a module, else
    `a.b`; a package's `__init__` is the package's own node)."""
    modules = {_module_name(p, root): p for p in paths}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str | None] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else known(base))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


@functools.cache
def _package_graph() -> dict[str, set[str]]:
    return _import_graph([path for package in PACKAGES for path in _modules(package)])


def test_no_import_cycles_lazy_imports_included() -> None:
    cycles = _cycles(_package_graph())
    assert not cycles, (
        "import cycles (break each with a backend interface or a lower module both use):\n"
        + "\n".join(" <-> ".join(sorted(cycle)) for cycle in sorted(cycles, key=sorted))
    )


def test_cli_command_modules_do_not_import_each_other() -> None:
    # One backend interface per command group (serve/cli/backends.py): what commands share lives below them.
    graph = _package_graph()
    commands = {name for name in graph if name.startswith("serve.cli.") and name.endswith("_cmd")}
    crossing = sorted(
        f"{name} imports {sorted(graph[name] & commands)}" for name in commands if graph[name] & commands
    )
    assert not crossing, "\n".join(crossing)


def test_the_cycle_walk_sees_a_lazy_cycle_and_skips_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    (package / "b.py").write_text("def g():\n    from pkg import a\n    return a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n"
    )
    (package / "d.py").write_text("from pkg.c import *\n")
    graph = _import_graph(sorted(package.glob("*.py")), root=tmp_path)
    assert _cycles(graph) == {frozenset({"pkg.a", "pkg.b"})}
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"}

"""The dependency rule of DESIGN.md: typesys < nodes < engine < serve; cluster imports only Ray.

Every import counts, including lazy imports inside functions, so a layer cannot reach upwards by hiding an
import in a function body.
"""

from __future__ import annotations

import ast
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
        banned = imported & FORBIDDEN_THIRD_PARTY.get(package, set())
        if upward or banned:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(upward | banned)}")
    assert not violations, f"{package} breaks the dependency rule:\n" + "\n".join(violations)


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

"""Run states, node states and event types are spelled once, in `nodes.states`.

Every other module of the packages uses the enums, so a state cannot be mistyped or forgotten in one place
(the store's CHECK constraints, the API's `enum`s, the client and the command line all follow the enums).
The walk reads every string constant of the package sources (docstrings aside); a line that needs one of
these words for something else (a JSON key of another meaning) says so with a `# not a state` comment.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from nodes.states import EventType, NodeStatus, RunStatus

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("typesys", "nodes", "engine", "serve", "cluster")
#: The one module that spells the values.
HOME = ROOT / "nodes" / "states.py"
#: Migrations are history: each spells the values it constrained then, so a later enum change needs a new one.
MIGRATIONS = ROOT / "engine" / "store" / "migrations" / "versions"
MARKER = "# not a state"
VALUES = frozenset({*RunStatus, *NodeStatus, *EventType})


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def state_literals(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: 'value'` for every string constant of `path` equal to a state or an event type."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in VALUES
            and id(node) not in skip
            and MARKER not in lines[node.lineno - 1]
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    return sorted(found)


def _sources() -> list[Path]:
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in paths if p != HOME and MIGRATIONS not in p.parents]


def test_no_state_or_event_type_is_spelled_outside_its_module() -> None:
    sources = _sources()
    assert len(sources) > 100, "the walk found too few modules to prove anything"
    found = [hit for path in sources for hit in state_literals(path)]
    assert not found, "use nodes.states (RunStatus, NodeStatus, EventType) instead of:\n" + "\n".join(found)


def test_the_walk_catches_a_literal_and_spares_docstrings_and_marked_lines(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        '"""Runs end "succeeded" or not."""\n'
        'DONE = "succeeded"\n'
        'def f(kind):\n    """node.log"""\n    return kind == "node.log"\n'
        'REPORT = {"skipped": 1}  # not a state\n',
        encoding="utf-8",
    )
    assert state_literals(module, tmp_path) == ["probe.py:2: 'succeeded'", "probe.py:5: 'node.log'"]


def test_members_are_their_strings() -> None:
    # The database, the JSON of the API and of events keep the plain strings they always had.
    assert RunStatus.SUCCEEDED == "succeeded" and f"{NodeStatus.CACHED}" == "cached"
    assert json.dumps({"status": RunStatus.FAILED, "type": EventType.NODE_LOG}) == (
        '{"status": "failed", "type": "node.log"}'
    )
    assert "cancelled" in RunStatus.terminal() and "running" in RunStatus.active()


def test_the_sets_of_states_partition_them() -> None:
    assert RunStatus.terminal() | RunStatus.active() == set(RunStatus)
    assert not RunStatus.terminal() & RunStatus.active()
    assert {s for s in RunStatus if s.is_final} == RunStatus.terminal()
    assert {s for s in NodeStatus if s.is_success} == NodeStatus.successes()
    assert {e for e in EventType if e.is_run_final} == EventType.run_final()
    assert {e.run_status for e in EventType.run_final()} == RunStatus.terminal()
    assert EventType.NODE_LOG.run_status is None

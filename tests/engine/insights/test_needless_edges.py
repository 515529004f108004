"""Needless edges: which input ports a node's body never reads (claimed only when sure), and how a run is
replayed without an edge into one."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from engine.insights.apply import edited
from engine.insights.edges import needed, needless_bindings, replay, without_binding
from engine.insights.unread import UnreadPort, unread_inputs
from nodes import node


@node(plugin="t", version="1.0.0")
def ignores(x: int, after: int | None = None, gate: int = 0) -> int:
    """Reads `x` only."""
    return x + 1


@node(plugin="t", version="1.0.0")
def reads_nested(x: int, after: int | None = None) -> list[int]:
    """Reads `after` inside a comprehension."""
    return [x + a for a in [after or 0]]


@node(plugin="t", version="1.0.0")
def introspects(x: int, after: int | None = None) -> int:
    """Reads every argument through locals()."""
    return sum(v for v in locals().values() if isinstance(v, int))


@node(plugin="t", version="1.0.0")
def evaluates(x: int, after: int | None = None) -> int:
    """Could read `after` through eval."""
    return int(eval("x"))


@node(plugin="t", version="1.0.0")
def required_unused(x: int, after: int) -> int:
    """Never reads `after`, which has no default."""
    return x


@node(plugin="t", version="1.0.0")
class Scaler:
    """A class node whose `__call__` ignores `after`."""

    def __call__(self, x: int, after: int | None = None) -> int:
        return x * 2


def test_unread_ports_are_found_with_whether_they_are_optional() -> None:
    assert unread_inputs(ignores) == [UnreadPort("after", True), UnreadPort("gate", True)]
    assert unread_inputs(required_unused) == [UnreadPort("after", False)]
    assert unread_inputs(Scaler) == [UnreadPort("after", True)]


def test_when_unsure_nothing_is_claimed() -> None:
    assert unread_inputs(reads_nested) == []  # read in a nested scope
    assert unread_inputs(introspects) == []  # locals()
    assert unread_inputs(evaluates) == []  # eval
    # Source that cannot be read (compiled at run time) claims nothing either.
    namespace: dict[str, Any] = {}
    exec("def made(x: int, after: int | None = None) -> int:\n    return x\n", namespace)
    assert unread_inputs(node(plugin="t", version="1.0.0")(namespace["made"])) == []
    assert unread_inputs(object()) == []
    assert inspect.getsource(ignores.target).lstrip().startswith("@node")


DOC: dict[str, Any] = {
    "nodes": {
        "a": {"type": "t/ignores@1", "in": {"x": "$inputs.x"}},
        "b": {"type": "t/ignores@1", "in": {"x": "$inputs.x", "after": "a.out"}},
        "c": {"type": "t/required_unused@1", "in": {"x": "b.out", "after": "a.out"}},
    },
    "outputs": {"c": "c.out"},
}


def test_bindings_into_unread_ports_and_their_removal() -> None:
    unread = {"t/ignores@1": unread_inputs(ignores), "t/required_unused@1": unread_inputs(required_unused)}
    found = {(e.node, e.port): e for e in needless_bindings(DOC["nodes"], unread)}
    assert set(found) == {("b", "after"), ("c", "after")}
    assert found[("b", "after")].sources == ["a"] and found[("b", "after")].optional
    assert not found[("c", "after")].optional
    changed = without_binding(DOC, "b", "after")
    assert changed["nodes"]["b"]["in"] == {"x": "$inputs.x"} and DOC["nodes"]["b"]["in"]["after"] == "a.out"
    assert needed(changed, {"a": [], "b": [], "c": ["b", "a"]}) == {"a", "b", "c"}
    assert needed(changed, {"a": [], "b": [], "c": ["b"]}) == {"b", "c"}  # a feeds nothing any more


def test_an_in_patch_unbinds_only_the_named_port() -> None:
    from engine.insights.analyze import Insight

    insight = Insight(
        "needless_edge:b.after", "needless_edge", ["a", "b"], "", {}, {"b": {"in": {"after": None}}}
    )
    assert edited(DOC, [insight]).applied == []  # applied only when named
    result = edited(DOC, [insight], [insight.id]).document
    assert result["nodes"]["b"]["in"] == {"x": "$inputs.x"}
    assert result["nodes"]["c"] == DOC["nodes"]["c"]


@dataclass
class _Timed:
    start: float | None
    end: float | None


@dataclass
class _RunTimes:
    id: str
    duration: float
    nodes: dict[str, _Timed]


def test_a_run_is_replayed_without_the_edge_from_its_recorded_timeline() -> None:
    # a: 0.1-1.1; b waits for a (ready 1.1, dispatched 0.05 later) and takes 0.5; c reads b, 0.2.
    run = _RunTimes("r", 2.0, {"a": _Timed(0.1, 1.1), "b": _Timed(1.15, 1.65), "c": _Timed(1.7, 1.9)})
    before = {"a": [], "b": ["a"], "c": ["b"]}
    after = {"a": [], "b": [], "c": ["b"]}
    kept = replay(run, before, after, {"a", "b", "c"}, {"a", "b", "c"}, "b")
    assert kept is not None
    # Without the edge b starts with the first nodes (0.1 s in): it ends at 0.6 and c at 0.85; a still ends at
    # 1.1, so the run ends 0.8 s sooner and b finishes 1.05 s sooner.
    assert kept.node_saving_s == pytest.approx(1.05) and kept.run_saving_s == pytest.approx(0.8)
    # Were a needed by no output without the edge, it would be dropped: the run ends when c does.
    dropped = replay(run, before, after, {"a", "b", "c"}, {"b", "c"}, "b")
    assert dropped is not None and dropped.run_saving_s == pytest.approx(1.9 - 0.85)
    # A run whose timeline lacks a start claims nothing.
    run.nodes["a"] = _Timed(None, 1.1)
    assert replay(run, before, after, {"a", "b", "c"}, {"a", "b", "c"}, "b") is None


def test_an_edge_below_a_branch_is_never_called_needless() -> None:
    # A skipped branch's SKIP skips the node it reaches, read or not: unbinding would run that node anyway.
    from engine.insights.analyze import _Execution, _needless_edges, _Run

    doc = {
        "nodes": {
            "g": {"type": "t/gate@1", "in": {"value": "$inputs.x"}},
            "a": {"type": "t/ignores@1", "in": {"x": "g.out"}},
            "b": {"type": "t/ignores@1", "in": {"x": "$inputs.x", "after": "a.out"}},
        },
        "outputs": {"a": "a.out", "b": "b.out"},
    }
    edges = {"g": [], "a": ["g"], "b": ["a"]}
    run = _Run("r", 2.0, "succeeded")
    for name, (start, end) in {"g": (0.0, 0.1), "a": (0.1, 1.1), "b": (1.1, 2.0)}.items():
        run.nodes[name] = _Execution(
            "r", name, 1, False, "succeeded", end - start, end - start, start=start, end=end
        )
    unread = {"t/ignores@1": unread_inputs(ignores)}
    found = _needless_edges({"r": run}, doc, edges, unread, frozenset())
    assert [i.id for i in found] == ["needless_edge:b.after"]
    assert found[0].predicted_saving_s == pytest.approx(0.9)  # b overlaps a: the run ends with a, at 1.1 s
    assert _needless_edges({"r": run}, doc, edges, unread, frozenset({"t/gate@1"})) == []

"""Property tests of the optimizer on random graphs: results never change, groups never wait for an
expensive node one of their members would not have waited for, and plans stay topologically ordered."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compile import compile_workflow
from tests.engine.compile.evaluate import evaluate
from tests.engine.compile.nodes_for_tests import catalog as make_catalog
from tests.engine.compile.nodes_for_tests import doc

CATALOG = make_catalog()


@st.composite
def random_dags(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(min_value=1, max_value=25))
    nodes: dict[str, Any] = {}
    for i in range(size):
        cheap = draw(st.booleans())
        sources = [f"n{j}.out" for j in range(i)] + ["$inputs.x"]
        a = draw(st.sampled_from(sources))
        b = draw(st.one_of(st.sampled_from(sources), st.integers(0, 3).map(lambda v: {"value": v})))
        nodes[f"n{i}"] = {"type": "t/add@1" if cheap else "t/slow_add@1", "in": {"a": a, "b": b}}
    outputs = {f"o{i}": f"n{i}.out" for i in range(size) if draw(st.booleans()) or i == size - 1}
    return doc(nodes, outputs, {"x": {"type": "Int", "default": 1}})


def expensive_ancestors(document: dict[str, Any]) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for node_id, node in document["nodes"].items():  # generated in topological order
        result: set[str] = set()
        for ref in node["in"].values():
            if isinstance(ref, str) and not ref.startswith("$"):
                up = ref.split(".")[0]
                result |= found[up]
                if document["nodes"][up]["type"] == "t/slow_add@1":
                    result.add(up)
        found[node_id] = frozenset(result)
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags(), st.integers(-5, 5))
def test_optimizer_invariants(document: dict[str, Any], x: int) -> None:
    plain = compile_workflow(document, CATALOG, optimize=False)
    optimized = compile_workflow(document, CATALOG, optimize=True)
    assert evaluate(optimized, {"x": x}) == evaluate(plain, {"x": x})
    ancestors = expensive_ancestors(document)
    for plan in (plain, optimized):
        seen: set[str] = set()
        for node in plan.nodes:
            assert set(node.upstream()) <= seen
            seen.add(node.id)
    for node in optimized.nodes:
        if node.members:
            assert all(m.type_id == "t/add@1" for m in node.members)
            # Duplicates merged by the optimizer count as the node that replaced them.
            canonical = {
                frozenset(optimized.aliases.get(a, a) for a in ancestors[m.id]) for m in node.members
            }
            assert len(canonical) == 1

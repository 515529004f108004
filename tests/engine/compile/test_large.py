"""A 10,000-node workflow compiles correctly (its speed is measured by bench/compile_bench.py, not here)."""

from __future__ import annotations

from typing import Any

from engine.compile import compile_workflow
from tests.engine.compile.evaluate import evaluate
from tests.engine.compile.nodes_for_tests import doc

WIDTH = 50


def big_workflow(total: int) -> dict[str, Any]:
    """Layers of WIDTH cheap adds fanned out from an expensive node and reduced by a tree of adds."""
    nodes: dict[str, Any] = {}
    previous = "$inputs.n"
    layer = 0
    while len(nodes) + 2 * WIDTH + 1 <= total:
        nodes[f"s{layer}"] = {"type": "t/slow@1", "in": {"x": previous}}
        level = []
        for i in range(WIDTH):
            nodes[f"l{layer}_{i}"] = {"type": "t/add@1", "in": {"a": f"s{layer}.out", "b": {"value": i % 7}}}
            level.append(f"l{layer}_{i}.out")
        step = 0
        while len(level) > 1:
            paired = []
            for j in range(0, len(level) - 1, 2):
                node_id = f"r{layer}_{step}_{j}"
                nodes[node_id] = {"type": "t/add@1", "in": {"a": level[j], "b": level[j + 1]}}
                paired.append(f"{node_id}.out")
            if len(level) % 2:
                paired.append(level[-1])
            level, step = paired, step + 1
        # Each layer multiplies the value by about 100; factor 0 restarts it from the layer number so the
        # numbers stay small, while the last layer's fused reduction still decides the result.
        nodes[f"m{layer}"] = {
            "type": "t/scale@1",
            "in": {"x": level[0]},
            "params": {"factor": 0, "offset": layer},
        }
        previous = f"m{layer}.out"
        layer += 1
    while len(nodes) < total:
        node_id = f"t{len(nodes)}"
        nodes[node_id] = {"type": "t/inc@1", "in": {"x": previous}}
        previous = f"{node_id}.out"
    return doc(nodes, {"result": previous}, {"n": {"type": "Int", "default": 0}})


def test_ten_thousand_nodes_compile_in_order_and_fuse_without_changing_results(catalog: Any) -> None:
    document = big_workflow(10_000)
    assert len(document["nodes"]) == 10_000
    plain = compile_workflow(document, catalog, optimize=False)
    assert len(plain.nodes) == 10_000
    seen: set[str] = set()
    for node in plain.nodes:
        assert set(node.upstream()) <= seen
        seen.add(node.id)
    optimized = compile_workflow(document, catalog, optimize=True)
    slow_nodes = [n for n in optimized.nodes if n.type_id == "t/slow@1"]
    assert len(slow_nodes) == len([k for k in document["nodes"] if k.startswith("s")])
    # Each layer's fan-out and reduction becomes one task between two expensive nodes.
    assert len(optimized.nodes) <= 2 * len(slow_nodes) + 1
    assert evaluate(optimized, {"n": 0}) == evaluate(plain, {"n": 0})

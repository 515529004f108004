"""Compile a generated 10,000-node workflow and print how long it takes (target: under 1 second).

Run: ``.venv/bin/python bench/compile_bench.py [--nodes N] [--repeat R]``. The workflow mixes the shapes real
graphs have: fan-out layers of cheap arithmetic, reductions, generic nodes whose type variables must be
solved, and implicit coercions (Int -> Number). For scale, the same graph is also built as a raw Ray DAG
(``ray.dag``: ``.bind()`` calls, no checking at all; no Ray cluster is started) in the same process.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from engine.compile import compile_workflow
from nodes import Catalog

WIDTH = 100


def generate(n_nodes: int) -> dict[str, Any]:
    """A workflow of ``n_nodes`` built-in nodes in which every node feeds the single output.

    Each layer fans out ``WIDTH`` cheap adds from the previous layer's result, reduces them pairwise with
    adds, and joins in a generic ``first`` and a ``sum`` over a ``range`` (type variables to solve and
    Int -> Number coercions to record); a chain of adds fills up to exactly ``n_nodes``.
    """
    nodes: dict[str, Any] = {}
    previous = "$inputs.seed"
    layer = 0
    per_layer = 2 * WIDTH - 1 + 4
    while len(nodes) + per_layer + 1 <= n_nodes:
        level = []
        for i in range(WIDTH):
            node_id = f"l{layer}_n{i}"
            nodes[node_id] = {"type": "builtin/add@1", "in": {"a": previous, "b": {"value": i}}}
            level.append(f"{node_id}.out")
        step = 0
        while len(level) > 1:
            paired = []
            for j in range(0, len(level) - 1, 2):
                node_id = f"l{layer}_r{step}_{j}"
                nodes[node_id] = {"type": "builtin/add@1", "in": {"a": level[j], "b": level[j + 1]}}
                paired.append(f"{node_id}.out")
            if len(level) % 2:
                paired.append(level[-1])
            level, step = paired, step + 1
        nodes[f"l{layer}_range"] = {"type": "builtin/range@1", "params": {"stop": WIDTH}}
        nodes[f"l{layer}_sum"] = {"type": "builtin/sum@1", "in": {"values": f"l{layer}_range.out"}}
        nodes[f"l{layer}_first"] = {"type": "builtin/first@1", "in": {"items": f"l{layer}_range.out"}}
        nodes[f"l{layer}_join"] = {
            "type": "builtin/add@1",
            "in": {"a": level[0], "b": f"l{layer}_sum.out"},
        }
        previous = f"l{layer}_join.out"
        nodes[f"l{layer}_join2"] = {
            "type": "builtin/add@1",
            "in": {"a": previous, "b": f"l{layer}_first.out"},
        }
        previous = f"l{layer}_join2.out"
        layer += 1
    while len(nodes) < n_nodes:
        node_id = f"tail{len(nodes)}"
        nodes[node_id] = {"type": "builtin/add@1", "in": {"a": previous, "b": {"value": 1}}}
        previous = f"{node_id}.out"
    return {
        "format": "rayweave.workflow/1",
        "name": "bench",
        "inputs": {"seed": {"type": "Int", "default": 0}},
        "nodes": nodes,
        "outputs": {"result": previous},
    }


def ray_dag_seconds(document: dict[str, Any]) -> float:
    """Seconds to build the same graph with ``ray.dag`` binds (the unchecked baseline)."""
    import ray

    @ray.remote
    def op(*args: Any) -> Any:
        return args

    start = time.perf_counter()
    built: dict[str, Any] = {}
    for node_id, node in document["nodes"].items():  # generated in topological order
        args = []
        for ref in node.get("in", {}).values():
            if isinstance(ref, dict):
                args.append(ref["value"])
            elif ref.startswith("$inputs."):
                args.append(0)
            else:
                args.append(built[ref.split(".")[0]])
        built[node_id] = op.bind(*args)
    return time.perf_counter() - start


def main() -> None:
    """Generate, compile a few times, print the best time."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    catalog = Catalog.builtin()
    document = generate(args.nodes)
    baseline = min(ray_dag_seconds(document) for _ in range(args.repeat))
    print(f"build {len(document['nodes'])} nodes as a raw ray.dag (no checks): best {baseline:.3f} s")
    for optimize in (False, True):
        walls, cpus = [], []
        plan = None
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            plan = compile_workflow(document, catalog, optimize=optimize)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        assert plan is not None
        # CPU time is reported too: on a shared machine the wall clock also measures the neighbours.
        print(
            f"compile {len(document['nodes'])} nodes, optimize={optimize}: best {min(walls):.3f} s wall, "
            f"{min(cpus):.3f} s CPU (of {args.repeat}); {len(plan.nodes)} plan nodes; "
            f"{min(walls) / baseline:.1f}x the ray.dag build; target < 1 s: {'met' if min(walls) < 1 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()

"""Pass 5 alone: deduplication of identical sub-graphs and fusion of cheap nodes."""

from __future__ import annotations

from typing import Any

from engine.compile import compile_workflow
from engine.compile.optimize import deduplicate, fusable, fusion_groups, optimize
from engine.compile.parse import parse
from engine.compile.resolve import resolve
from engine.compile.typecheck import typecheck
from engine.workflow.bindings import NodeRef
from tests.engine.compile.nodes_for_tests import doc


def typed(catalog: Any, nodes: dict[str, Any], outputs: dict[str, str]) -> Any:
    parsed = parse(doc(nodes, outputs))
    assert parsed.graph is not None
    resolved = resolve(parsed.graph, catalog)
    assert resolved.graph is not None
    result = typecheck(resolved.graph, catalog)
    assert not [d for d in result.diagnostics if d.severity == "error"], result.diagnostics
    return result.graph


def test_identical_sub_graphs_are_merged(catalog: Any) -> None:
    nodes = {
        "a1": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
        "a2": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
        "b1": {"type": "t/inc@1", "in": {"x": "a1.out"}},
        "b2": {"type": "t/inc@1", "in": {"x": "a2.out"}},
        "c": {"type": "t/add@1", "in": {"a": "b1.out", "b": "b2.out"}},
        "d": {"type": "t/slow@1", "in": {"x": {"value": 2}}},
    }
    graph, merged = deduplicate(typed(catalog, nodes, {"c": "c.out", "b2": "b2.out", "d": "d.out"}))
    assert merged == {"a2": "a1", "b2": "b1"}
    assert set(graph.nodes) == {"a1", "b1", "c", "d"}
    assert graph.nodes["c"].bindings == {"a": NodeRef("b1", "out"), "b": NodeRef("b1", "out")}
    assert graph.outputs["b2"] == NodeRef("b1", "out")


def test_non_deterministic_and_differently_configured_nodes_are_kept(catalog: Any) -> None:
    nodes = {
        "n1": {"type": "t/now@1", "in": {"x": {"value": 1}}},
        "n2": {"type": "t/now@1", "in": {"x": {"value": 1}}},
        "s1": {"type": "t/scale@1", "in": {"x": {"value": 1}}, "params": {"factor": 2}},
        "s2": {"type": "t/scale@1", "in": {"x": {"value": 1}}, "params": {"factor": 3}},
        "r1": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
        "r2": {"type": "t/slow@1", "in": {"x": {"value": 1}}, "retry": {"max_attempts": 2}},
    }
    outputs = {k: f"{k}.out" for k in nodes}
    _, merged = deduplicate(typed(catalog, nodes, outputs))
    assert merged == {}


def test_a_chain_of_cheap_nodes_is_one_group(catalog: Any) -> None:
    nodes = {
        f"n{i}": {"type": "t/inc@1", "in": {"x": f"n{i - 1}.out" if i else {"value": 0}}} for i in range(50)
    }
    groups = fusion_groups(typed(catalog, nodes, {"o": "n49.out"}))
    assert groups == (tuple(f"n{i}" for i in range(50)),)


def test_fan_out_of_a_thousand_cheap_nodes_into_a_sum_is_one_group(catalog: Any) -> None:
    nodes: dict[str, Any] = {"src": {"type": "t/slow@1", "in": {"x": {"value": 1}}}}
    for i in range(1000):
        nodes[f"x{i}"] = {"type": "t/add@1", "in": {"a": "src.out", "b": {"value": i}}}
    level = [f"x{i}" for i in range(1000)]
    step = 0
    while len(level) > 1:  # a balanced tree of adds joins them all
        nxt = []
        for j in range(0, len(level) - 1, 2):
            node_id = f"j{step}_{j}"
            nodes[node_id] = {"type": "t/add@1", "in": {"a": f"{level[j]}.out", "b": f"{level[j + 1]}.out"}}
            nxt.append(node_id)
        if len(level) % 2:
            nxt.append(level[-1])
        level, step = nxt, step + 1
    graph = typed(catalog, nodes, {"o": f"{level[0]}.out"})
    groups = fusion_groups(graph)
    assert len(groups) == 1 and len(groups[0]) == len(nodes) - 1 and "src" not in groups[0]


def test_expensive_nodes_are_never_fused_nor_serialised(catalog: Any) -> None:
    # e0 and e1 are independent expensive nodes. Cheap c0 reads e0 and cheap c1 reads e1's input only; c1
    # must not join a group that waits for e0, or e1 would wait for e0.
    nodes = {
        "e0": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
        "c0": {"type": "t/inc@1", "in": {"x": "e0.out"}},
        "c1": {"type": "t/inc@1", "in": {"x": {"value": 2}}},
        "j": {"type": "t/add@1", "in": {"a": "c0.out", "b": "c1.out"}},
        "e1": {"type": "t/slow@1", "in": {"x": "c1.out"}},
        "k": {"type": "t/add@1", "in": {"a": "j.out", "b": "e1.out"}},
    }
    graph = typed(catalog, nodes, {"o": "k.out"})
    groups = fusion_groups(graph)
    grouped = {n for g in groups for n in g}
    assert "e0" not in grouped and "e1" not in grouped
    assert not any("c1" in g and "c0" in g for g in groups)
    assert ("c0", "j") in groups


def test_group_graph_stays_acyclic(catalog: Any) -> None:
    # c0 -> slow -> c1 with c0 -> c1 directly too: fusing c0 and c1 would make a cycle through `slow`.
    nodes = {
        "c0": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
        "s": {"type": "t/slow@1", "in": {"x": "c0.out"}},
        "c1": {"type": "t/add@1", "in": {"a": "c0.out", "b": "s.out"}},
    }
    assert fusion_groups(typed(catalog, nodes, {"o": "c1.out"})) == ()


def test_what_is_fusable(catalog: Any) -> None:
    nodes = {
        "cheap": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
        "slow": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
        "timed": {"type": "t/timed@1", "in": {"x": {"value": 1}}},
        "timeout_override": {"type": "t/inc@1", "in": {"x": {"value": 1}}, "timeout_s": 3},
        "gpu": {"type": "t/inc@1", "in": {"x": {"value": 1}}, "resources": {"num_gpus": 1}},
        "random": {"type": "t/now@1", "in": {"x": {"value": 1}}},
    }
    graph = typed(catalog, nodes, {k: f"{k}.out" for k in nodes})
    assert {k for k, n in graph.nodes.items() if fusable(n)} == {"cheap"}


def test_optimize_can_be_turned_off(catalog: Any) -> None:
    nodes = {
        "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
        "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
    }
    graph = typed(catalog, nodes, {"o": "b.out"})
    assert optimize(graph, enabled=False).groups == ()
    assert optimize(graph).groups == (("a", "b"),)


def test_maps_merge_only_over_deterministic_sub_workflows(catalog: Any) -> None:
    def sub(node_type: str) -> dict[str, Any]:
        return {
            "format": "rayweave.workflow/1",
            "name": "sub",
            "inputs": {"item": {"type": "Int"}},
            "nodes": {"i": {"type": node_type, "in": {"x": "$inputs.item"}}},
            "outputs": {"out": "i.out"},
        }

    for node_type, expect_merge in (("t/inc@1", True), ("t/now@1", False)):
        mapped = {
            "type": "builtin/map@1",
            "in": {"items": {"value": [1, 2]}},
            "params": {"workflow": sub(node_type)},
        }
        plan = compile_workflow(doc({"m1": mapped, "m2": mapped}, {"a": "m1.out", "b": "m2.out"}), catalog)
        assert (plan.aliases == {"m2": "m1"}) is expect_merge


def _in_env(catalog: Any, plugin: str, type_id: str) -> Any:
    """Test node `type_id` as a cheap node of plugin `plugin`, run in that plugin's runtime environment."""
    from dataclasses import replace

    from nodes.plugins.remote import PluginNodeDefinition

    spec = replace(catalog.get(type_id).spec, plugin=plugin)
    env = {"env_vars": {"RAYWEAVE_PLUGIN": f"{plugin}@1.0.0"}}
    return PluginNodeDefinition(
        spec, module=plugin, attribute=spec.name, runtime_env=env, plugin_ref=f"{plugin}@1.0.0"
    )


def test_cheap_plugin_nodes_fuse_only_within_their_runtime_environment(catalog: Any) -> None:
    from nodes import Catalog

    both = Catalog.builtin()
    both.extend([_in_env(catalog, p, t) for p in ("pa", "pb") for t in ("t/inc@1", "t/add@1")])
    nodes = {
        "a": {"type": "pa/inc@1", "in": {"x": {"value": 1}}},
        "b": {"type": "pa/add@1", "in": {"a": "a.out"}},
        "c": {"type": "pb/inc@1", "in": {"x": "b.out"}},
        "d": {"type": "pb/inc@1", "in": {"x": "c.out"}},
        # Same environment as a and b, read by them and through c: fusing it with them would be a cycle.
        "e": {"type": "pa/add@1", "in": {"a": "a.out", "b": "d.out"}},
    }
    plan = compile_workflow(doc(nodes, {"o": "e.out"}), both)
    assert plan.node_ids() == ("fused:a", "fused:c", "e")
    for group, plugin, members in (("fused:a", "pa", ["a", "b"]), ("fused:c", "pb", ["c", "d"])):
        fused = plan.node(group)
        assert [m.id for m in fused.members] == members
        # The fused task runs in its members' environment: a plugin's nodes import only there.
        assert fused.ray_options["runtime_env"] == {"env_vars": {"RAYWEAVE_PLUGIN": f"{plugin}@1.0.0"}}
    assert plan.node("e").ray_options["runtime_env"]["env_vars"]["RAYWEAVE_PLUGIN"] == "pa@1.0.0"

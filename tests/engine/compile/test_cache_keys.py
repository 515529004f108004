"""Cache keys known before execution."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from engine.compile import compile_workflow, compute_cache_keys
from engine.errors import WorkflowInputError
from tests.engine.compile.nodes_for_tests import doc


def keys(
    catalog: Any, nodes: dict[str, Any], inputs: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    d = doc(nodes, {k: f"{k}.out" for k in nodes}, {"n": {"type": "Int", "default": 1}})
    return compute_cache_keys(compile_workflow(d, catalog, optimize=kw.get("optimize", False)), inputs or {})


BASE = {
    "a": {"type": "t/slow@1", "in": {"x": "$inputs.n"}},
    "b": {"type": "t/scale@1", "in": {"x": "a.out"}, "params": {"factor": 2}},
}


def base_plan(catalog: Any) -> Any:
    """A fresh compile of BASE, with its input n defaulting to 1."""
    return compile_workflow(
        doc(BASE, {k: f"{k}.out" for k in BASE}, {"n": {"type": "Int", "default": 1}}),
        catalog,
        optimize=False,
    )


def test_keys_are_stable_sha256(catalog: Any) -> None:
    first, second = keys(catalog, BASE, {"n": 5}), keys(catalog, BASE, {"n": 5})
    assert first == second
    assert all(isinstance(k, str) and len(k) == 64 for k in first.values())


def test_a_scope_gives_every_key_its_own_value(catalog: Any) -> None:
    plan = base_plan(catalog)
    plain = compute_cache_keys(plan, {"n": 5})
    assert compute_cache_keys(plan, {"n": 5}, scope="") == plain
    alice = compute_cache_keys(plan, {"n": 5}, scope="owner:alice")
    bob = compute_cache_keys(plan, {"n": 5}, scope="owner:bob")
    assert alice == compute_cache_keys(plan, {"n": 5}, scope="owner:alice")
    for node in BASE:
        assert len({plain[node], alice[node], bob[node]}) == 3


def test_keys_change_with_inputs_params_and_upstream(catalog: Any) -> None:
    base = keys(catalog, BASE, {"n": 5})
    other_input = keys(catalog, BASE, {"n": 6})
    assert other_input["a"] != base["a"] and other_input["b"] != base["b"]
    other_param = keys(catalog, {**BASE, "b": {**BASE["b"], "params": {"factor": 3}}}, {"n": 5})
    assert other_param["a"] == base["a"] and other_param["b"] != base["b"]
    const = keys(catalog, {**BASE, "a": {"type": "t/slow@1", "in": {"x": {"value": 5}}}})
    assert const["a"] != base["a"]


def test_defaults_fill_missing_inputs(catalog: Any) -> None:
    assert keys(catalog, BASE, {}) == keys(catalog, BASE, {"n": 1})


def test_non_deterministic_nodes_and_their_dependents_have_no_key(catalog: Any) -> None:
    nodes = {
        "r": {"type": "t/now@1", "in": {"x": "$inputs.n"}},
        "h": {"type": "t/half@1", "in": {"x": "r.out"}},
        "s": {"type": "t/slow@1", "in": {"x": "$inputs.n"}},
    }
    found = keys(catalog, nodes)
    assert found["r"] is None and found["h"] is None and found["s"] is not None


def test_cache_false_has_no_key_but_its_readers_do(catalog: Any) -> None:
    nodes = {**BASE, "a": {**BASE["a"], "cache": False}}
    found = keys(catalog, nodes)
    assert found["a"] is None and found["b"] is not None


def test_fused_groups_and_members_have_keys(catalog: Any) -> None:
    nodes = {
        "a": {"type": "t/inc@1", "in": {"x": "$inputs.n"}},
        "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
        "c": {"type": "t/slow@1", "in": {"x": "b.out"}},
    }
    fused = keys(catalog, nodes, optimize=True)
    plain = keys(catalog, nodes, optimize=False)
    assert fused["fused:a"] is not None
    for node_id in ("a", "b", "c"):
        assert fused[node_id] == plain[node_id]  # keys do not depend on fusion


def test_missing_required_input_is_an_error(catalog: Any) -> None:
    d = doc(BASE, {"b": "b.out"}, {"n": {"type": "Int"}})
    plan = compile_workflow(d, catalog)
    with pytest.raises(WorkflowInputError, match="needs input 'n'"):
        compute_cache_keys(plan, {})


def test_a_keyed_plan_is_reused_for_the_same_plan_inputs_and_scope(catalog: Any) -> None:
    from engine.compile.cache_keys import keyed_plan

    plan = base_plan(catalog)
    first = keyed_plan(plan, {"n": 5})
    assert {p.id: p.cache_key for p in first.nodes} == compute_cache_keys(plan, {"n": 5})
    assert keyed_plan(plan, {"n": 5}) is first  # a rerun hashes nothing again
    assert keyed_plan(plan, {}) is keyed_plan(plan, {"n": 1})  # the default is the same input
    for inputs, scope in (({"n": 6}, ""), ({"n": 5}, "owner:alice")):
        other = keyed_plan(plan, inputs, scope=scope)
        assert other is not first
        assert {p.id: p.cache_key for p in other.nodes} == compute_cache_keys(plan, inputs, scope=scope)
    # Another plan object (a recompile, or a plan of another workflow reusing a freed id) starts afresh.
    again = base_plan(catalog)
    assert keyed_plan(again, {"n": 5}) is not first
    # A plan that is gone takes its keyed plans with it.
    from engine.compile.cache_keys import _KEYED

    held = len(_KEYED)
    del plan, first, other, again
    gc.collect()
    assert len(_KEYED) == held - 2
    with pytest.raises(WorkflowInputError):
        keyed_plan(compile_workflow(doc(BASE, {"b": "b.out"}, {"n": {"type": "Int"}}), catalog), {})

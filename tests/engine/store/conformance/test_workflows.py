"""Workflow storage: immutable versions, optimistic concurrency, history, any version, diff, delete."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.store import NotFoundError, Store, VersionConflictError
from engine.store.canonical import content_hash


def mean_of_csv() -> dict[str, Any]:
    """The DESIGN.md example document."""
    return {
        "format": "rayweave.workflow/1",
        "name": "mean-of-csv",
        "inputs": {"path": {"type": "String"}},
        "nodes": {
            "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
            "mean": {
                "type": "builtin/column_mean@1",
                "in": {"table": "load.table"},
                "params": {"column": "x"},
            },
        },
        "outputs": {"mean": "mean.value"},
    }


def test_create_gives_version_1_with_the_document_and_its_hash(store: Store) -> None:
    v1 = store.workflows.create(mean_of_csv(), author="ada", message="first")
    assert v1.version == 1
    assert v1.document == mean_of_csv()
    assert v1.content_hash == content_hash(mean_of_csv())
    wf = store.workflows.get(v1.workflow_id)
    assert (wf.name, wf.latest_version) == ("mean-of-csv", 1)
    assert store.workflows.latest(v1.workflow_id).author == "ada"


def test_hash_ignores_key_order_but_not_content() -> None:
    doc = mean_of_csv()
    reordered = copy.deepcopy(dict(reversed(list(doc.items()))))
    assert content_hash(reordered) == content_hash(doc)
    reordered["nodes"]["mean"]["params"]["column"] = "y"
    assert content_hash(doc) != content_hash(reordered)


def test_save_creates_a_new_version_and_keeps_the_old_one_unchanged(store: Store) -> None:
    v1 = store.workflows.create(mean_of_csv())
    changed = mean_of_csv()
    changed["nodes"]["mean"]["params"]["column"] = "y"
    v2 = store.workflows.save(v1.workflow_id, changed, expected_version=1, message="use y")
    assert v2.version == 2
    assert store.workflows.latest(v1.workflow_id).document == changed
    assert store.workflows.get_version(v1.workflow_id, 1).document == mean_of_csv()
    assert [v.version for v in store.workflows.history(v1.workflow_id)] == [2, 1]
    assert store.workflows.get(v1.workflow_id).latest_version == 2


def test_the_caller_changing_its_dict_afterwards_does_not_change_the_stored_version(store: Store) -> None:
    doc = mean_of_csv()
    v1 = store.workflows.create(doc)
    doc["nodes"].clear()
    assert store.workflows.get_version(v1.workflow_id, 1).document == mean_of_csv()


def test_save_on_a_stale_version_is_rejected_and_names_the_latest(store: Store) -> None:
    v1 = store.workflows.create(mean_of_csv())
    store.workflows.save(v1.workflow_id, mean_of_csv(), expected_version=1)
    with pytest.raises(VersionConflictError) as info:
        store.workflows.save(v1.workflow_id, mean_of_csv(), expected_version=1)
    assert info.value.actual == 2
    assert v1.workflow_id in str(info.value)
    assert [v.version for v in store.workflows.history(v1.workflow_id)] == [2, 1]


def test_unknown_workflow_and_version_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        store.workflows.get("nope")
    v1 = store.workflows.create(mean_of_csv())
    with pytest.raises(NotFoundError, match="no version 7"):
        store.workflows.get_version(v1.workflow_id, 7)
    with pytest.raises(NotFoundError):
        store.workflows.save("nope", mean_of_csv(), expected_version=1)


def test_delete_hides_the_workflow_but_keeps_its_versions_for_runs(store: Store) -> None:
    v1 = store.workflows.create(mean_of_csv())
    other = store.workflows.create(mean_of_csv(), name="other")
    store.workflows.delete(v1.workflow_id)
    with pytest.raises(NotFoundError):
        store.workflows.get(v1.workflow_id)
    with pytest.raises(NotFoundError):
        store.workflows.save(v1.workflow_id, mean_of_csv(), expected_version=1)
    assert [w.id for w in store.workflows.list()] == [other.workflow_id]
    assert store.workflows.get_version(v1.workflow_id, 1).document == mean_of_csv()


def test_list_filters_by_name_and_owner(store: Store) -> None:
    a = store.workflows.create(mean_of_csv(), owner="ada")
    store.workflows.create(mean_of_csv(), name="b", owner="bob")
    assert [w.id for w in store.workflows.list(owner="ada")] == [a.workflow_id]
    assert {w.owner for w in store.workflows.list(name="mean-of-csv")} == {"ada"}
    assert len(store.workflows.list(limit=1)) == 1


def test_diff_between_stored_versions(store: Store) -> None:
    v1 = store.workflows.create(mean_of_csv())
    doc = copy.deepcopy(mean_of_csv())
    doc["nodes"]["mean"]["params"]["column"] = "y"
    doc["nodes"]["round"] = {"type": "builtin/round@1", "in": {"value": "mean.value"}}
    doc["outputs"] = {"mean": "round.out"}
    store.workflows.save(v1.workflow_id, doc, expected_version=1)
    diff = store.workflows.diff(v1.workflow_id, 1, 2)
    assert diff.nodes_added == ("round",)
    assert [(c.node, c.fields) for c in diff.nodes_changed] == [("mean", ("params",))]
    assert [str(e) for e in diff.edges_added] == ["mean.value -> round.value"]
    assert diff.outputs_changed == ("mean",)
    assert store.workflows.diff(v1.workflow_id, 2, 2).empty


def test_concurrent_saves_on_the_same_version_let_exactly_one_win(store: Store) -> None:
    import threading

    v1 = store.workflows.create(mean_of_csv())
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def save(column: str) -> None:
        doc = mean_of_csv()
        doc["nodes"]["mean"]["params"]["column"] = column
        barrier.wait()
        try:
            store.workflows.save(v1.workflow_id, doc, expected_version=1)
            outcomes.append("saved")
        except VersionConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(c,)) for c in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "conflict", "saved"]
    assert [v.version for v in store.workflows.history(v1.workflow_id)] == [2, 1]

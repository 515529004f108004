"""The Python builder produces exactly the canonical document."""

from __future__ import annotations

import json

import pytest

from engine.errors import WorkflowBuildError
from engine.workflow import Workflow
from nodes import Catalog, RetryPolicy, node
from tests.engine.workflow.test_document import DESIGN_EXAMPLE


def test_builder_produces_the_design_example_exactly() -> None:
    wf = Workflow("mean-of-csv")
    path = wf.input("path", "String")
    load = wf.add("load", "builtin/read_csv@1", path=path)
    mean = wf.add(
        "mean",
        "builtin/column_mean@1",
        table=load.table,
        params={"column": "x"},
        retry={"max_attempts": 3, "backoff": "exponential", "initial_s": 0.5},
        resources={"num_cpus": 1},
    )
    wf.output("mean", mean.value)
    assert json.dumps(wf.to_doc().to_data()) == json.dumps(DESIGN_EXAMPLE)
    assert json.loads(wf.to_json()) == DESIGN_EXAMPLE


def test_port_handle_forms_and_constants() -> None:
    wf = Workflow("forms")
    n = wf.input("n", "Int", default=3, description="how many")
    a = wf.add("a", "t/split@1", x=n)
    b = wf.add("b", "t/add@1", a=a["low"], b=a.port("high"))
    c = wf.add("c", "t/inc@1", x=b)  # the node alone: its single output
    d = wf.add("d", "t/collect@1", a=7, b=[1, 2], inputs={"c": None})
    wf.output("c", c.out)
    wf.output("d", d)
    wf.output("n", n)
    data = wf.to_data()
    assert data["inputs"] == {"n": {"type": "Int", "default": 3, "description": "how many"}}
    assert data["nodes"]["b"]["in"] == {"a": "a.low", "b": "a.high"}
    assert data["nodes"]["c"]["in"] == {"x": "b"}
    assert data["nodes"]["d"]["in"] == {"a": {"value": 7}, "b": {"value": [1, 2]}, "c": {"value": None}}
    assert data["outputs"] == {"c": "c.out", "d": "d", "n": "$inputs.n"}


def test_policy_objects_become_their_json() -> None:
    wf = Workflow("p")
    wf.add("a", "t/inc@1", x=1, retry=RetryPolicy(max_attempts=2), timeout_s=3, cache=False, convert=True)
    node_data = wf.to_data()["nodes"]["a"]
    assert node_data["retry"]["max_attempts"] == 2
    assert node_data["timeout_s"] == 3 and node_data["cache"] is False and node_data["convert"] is True


def test_local_definitions_are_remembered() -> None:
    @node(plugin="mine")
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    wf = Workflow("local")
    d = wf.add("d", double, x=2)
    wf.output("out", d.out)
    assert wf.definitions == {"mine/double@1": double}
    assert wf.to_data()["nodes"]["d"]["type"] == "mine/double@1"
    with pytest.raises(AttributeError, match="no output port 'nope'"):
        _ = d.nope


def test_types_from_annotations() -> None:
    wf = Workflow("types")
    wf.input("xs", list[int])
    assert wf.to_data()["inputs"]["xs"]["type"] == "List[Int]"


def test_catalog_checks_port_names_as_you_write() -> None:
    wf = Workflow("cat", catalog=Catalog.builtin())
    load = wf.add("load", "builtin/read_csv@1", path="x.csv")
    with pytest.raises(WorkflowBuildError, match="no output port 'tabel'"):
        load.port("tabel")
    with pytest.raises(WorkflowBuildError, match="unknown node type"):
        wf.add("bad", "builtin/read_cvs@1")


@pytest.mark.parametrize("bad_id", ["a.b", "1a", "", "with space"])
def test_ids_must_be_identifiers(bad_id: str) -> None:
    with pytest.raises(WorkflowBuildError, match="identifier"):
        Workflow("w").add(bad_id, "t/inc@1")


def test_duplicates_and_foreign_handles_are_errors() -> None:
    wf, other = Workflow("w"), Workflow("other")
    a = wf.add("a", "t/inc@1", x=1)
    with pytest.raises(WorkflowBuildError, match="used twice"):
        wf.add("a", "t/inc@1", x=1)
    with pytest.raises(WorkflowBuildError, match="handles only bind within"):
        other.add("b", "t/inc@1", x=a.out)
    wf.input("i", "Int")
    with pytest.raises(WorkflowBuildError, match="declared twice"):
        wf.input("i", "Int")
    wf.output("o", a.out)
    with pytest.raises(WorkflowBuildError, match="declared twice"):
        wf.output("o", a.out)


def test_invalid_options_are_build_errors_naming_the_field() -> None:
    wf = Workflow("opts")
    wf.add("a", "t/inc@1", x=1, timeout_s=-1)
    with pytest.raises(WorkflowBuildError, match=r"nodes\.a\.timeout_s"):
        wf.to_doc()

"""Ray DAGs as durable rayweave runs (`engine.raydag`): the migration guide's example runs as written with one
changed line, inputs and options carry over, a workflow id runs once, and what cannot carry over is refused."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from ray.dag import InputNode, MultiOutputNode

from cluster.settings import Settings
from engine.raydag import workflow
from engine.raydag.convert import DagConversionError, workflow_from_dag
from tests.engine.raydag.dags import Counter, combine, load, square_all, total

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "migrating-from-ray-workflows.md"


@pytest.fixture(autouse=True)
def installation(tmp_path: Path) -> None:
    workflow.init(Settings(home=tmp_path / "home"), executor="local")


def _block(heading: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"### {re.escape(heading)}[^\n]*\n+```python\n(.*?)```", text, flags=re.DOTALL)
    assert found, f"the guide has no python block under '### {heading}'"
    return found.group(1)


def test_the_guide_after_example_runs_and_changes_one_line() -> None:
    before, after = _block("Before"), _block("After")
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-from ray import workflow", "+from engine.raydag import workflow"]
    namespace: dict[str, object] = {"__name__": "migration_guide_after"}
    exec(compile(after, f"{GUIDE.name} (after)", "exec"), namespace)
    assert namespace["result"] == 40
    assert workflow.get_status("sum-of-squares") == "succeeded"
    assert workflow.get_output("sum-of-squares") == 40


def test_a_dag_runs_durably_once_per_workflow_id() -> None:
    with InputNode() as inp:
        squares = square_all.bind(load.bind(inp))
        dag = combine.bind(total.bind(squares, start=10), total.bind(squares))
    assert workflow.run(dag, 4, workflow_id="sums") == 70
    first = workflow.run_async(dag, 4, workflow_id="sums").result()
    assert first.outputs == {"result": 70}
    runner = workflow._SESSION.get()
    runs = runner.store.runs.list().items
    assert len(runs) == 1  # the second call found the first run
    assert sorted(a.node_id for a in runner.store.node_runs.list(runs[0].id)) == [
        "combine",
        "load",
        "square_all",
        "total",
        "total_2",
    ]
    document = workflow_from_dag(dag).to_doc()
    assert document.nodes["total"].params == {"start": 10}


def test_named_inputs_multiple_outputs_and_options() -> None:
    with InputNode() as inp:
        numbers = load.options(num_cpus=0.5, max_retries=2).bind(inp.n)
        dag = MultiOutputNode([total.bind(numbers), square_all.bind(numbers)])
    assert workflow.run(dag, n=3) == [6, [1, 4, 9]]
    node = workflow_from_dag(dag).to_doc().nodes["load"]
    assert node.type == "raydag/load@1"


def test_what_cannot_carry_over_is_refused_with_the_way_out() -> None:
    counter = Counter.bind()
    with pytest.raises(DagConversionError, match=r"Ray actor \(ClassMethodNode\).*@ray\.remote function"):
        workflow_from_dag(total.bind(counter.add.bind(1)))
    with pytest.raises(DagConversionError, match=r"parameter 'xs' holds a DAG node inside a list"):
        workflow_from_dag(total.bind([load.bind(2)]))
    with pytest.raises(DagConversionError, match=r"parameter 'n' is bound to a object, which is not JSON"):
        workflow_from_dag(load.bind(object()))
    with pytest.raises(DagConversionError, match=r"options\(scheduling_strategy=\.\.\.\) has no rayweave"):
        workflow_from_dag(load.options(scheduling_strategy="SPREAD").bind(1))

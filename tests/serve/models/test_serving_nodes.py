"""The ML plugin's serving nodes, in the plugin's runtime environment, against the model served by this
package's fixture: `ml/predict_served@1` through a Serve handle, `ml/predict_oip@1` over HTTP against both of
our Open Inference Protocol endpoints (the replicas' fast path and the API's /v2 routes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from serve.models.sample import iris_rows
from tests.serve.models.conftest import Served

ML_PLUGIN = Path(__file__).resolve().parents[3] / "nodes" / "firstparty" / "ml"


@pytest.fixture(scope="module")
def ml_nodes(ray_session: Any) -> dict[str, Any]:
    from nodes.plugins.testing import load_plugin

    return load_plugin(ML_PLUGIN)


def _table() -> pa.Table:
    return pa.Table.from_pylist(iris_rows(150)[::50])


def test_predict_served_calls_the_deployment_through_a_handle(
    served: Served, ml_nodes: dict[str, Any]
) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_served@1"]
    table = run_plugin_node(node, inputs={"table": _table()}, params={"model": "iris", "prefix": "pred_"})[
        "table"
    ]
    assert table.column_names[-1] == "pred_predict"
    assert table.column("pred_predict").to_pylist() == [0, 1, 2]
    assert table.num_columns == 5


def test_predict_served_names_what_is_wrong(served: Served, ml_nodes: dict[str, Any]) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_served@1"]
    with pytest.raises(Exception, match="no model 'nope' is served") as missing:
        run_plugin_node(node, inputs={"table": _table()}, params={"model": "nope"}, node_id="score")
    assert "ml/predict_served@1 (node 'score')" in str(missing.value)
    wrong = _table().rename_columns(["a", "sepal width (cm)", "petal length (cm)", "petal width (cm)"])
    with pytest.raises(Exception, match="sepal length \\(cm\\)' is missing"):
        run_plugin_node(node, inputs={"table": wrong}, params={"model": "iris"})


@pytest.mark.parametrize("where", ["fast", "api"])
def test_predict_oip_calls_our_endpoints(served: Served, ml_nodes: dict[str, Any], where: str) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_oip@1"]
    url = served.endpoint if where == "fast" else served.api.url
    params = {"url": url, "model": "iris", "api_key": served.api.admin_key, "prefix": "pred_"}
    table = run_plugin_node(node, inputs={"table": _table()}, params=params)["table"]
    assert table.column("pred_predict").to_pylist() == [0, 1, 2]
    with pytest.raises(Exception, match="answered HTTP 401"):
        run_plugin_node(node, inputs={"table": _table()}, params={**params, "api_key": ""})
    with pytest.raises(Exception, match="answered HTTP 404"):
        run_plugin_node(node, inputs={"table": _table()}, params={**params, "model": "nope"})

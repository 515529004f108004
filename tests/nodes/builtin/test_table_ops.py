"""filter, select, group_by, join, describe and sample on small Arrow tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from nodes.builtin import table_ops as ops
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError, SqlQueryError
from nodes.testing import run_node


@pytest.fixture
def sales() -> pa.Table:
    return pa.table(
        {
            "region": ["n", "s", "n", "e", "s"],
            "amount": [10.0, 20.0, 30.0, 40.0, None],
            "units": [1, 2, 3, 4, 5],
        }
    )


def test_filter_with_a_sql_condition(sales: pa.Table) -> None:
    out = run_node(ops.filter_rows, {"table": sales}, {"where": "amount > 15 AND region <> 'e'"})["table"]
    assert out.to_pylist() == [
        {"region": "s", "amount": 20.0, "units": 2},
        {"region": "n", "amount": 30.0, "units": 3},
    ]


def test_filter_bad_condition_names_the_problem(sales: pa.Table) -> None:
    with pytest.raises(SqlQueryError, match=r"nope"):
        run_node(ops.filter_rows, {"table": sales}, {"where": "nope > 1"})


def test_select_and_rename(sales: pa.Table) -> None:
    out = run_node(ops.select, {"table": sales}, {"columns": ["units", "region"], "rename": {"units": "n"}})
    assert out["table"].column_names == ["n", "region"]
    with pytest.raises(MissingKeyError, match=r"\['price'\], not columns of input port 'table'"):
        run_node(ops.select, {"table": sales}, {"columns": ["price"]})


def test_group_by_aggregates_with_keys_first_in_first_seen_order(sales: pa.Table) -> None:
    out = run_node(
        ops.group_by,
        {"table": sales},
        {"by": ["region"], "aggregations": {"amount": ["sum", "count"], "units": ["max"]}},
    )["table"]
    assert out.column_names == ["region", "amount_sum", "amount_count", "units_max"]
    assert out.to_pylist() == [
        {"region": "n", "amount_sum": 40.0, "amount_count": 2, "units_max": 3},
        {"region": "s", "amount_sum": 20.0, "amount_count": 1, "units_max": 5},
        {"region": "e", "amount_sum": 40.0, "amount_count": 1, "units_max": 4},
    ]


def test_group_by_errors(sales: pa.Table) -> None:
    with pytest.raises(ParamValueError, match=r"'median' of 'amount'"):
        run_node(ops.group_by, {"table": sales}, {"by": ["region"], "aggregations": {"amount": ["median"]}})
    with pytest.raises(MissingKeyError, match=r"param 'by'"):
        run_node(ops.group_by, {"table": sales}, {"by": ["nope"], "aggregations": {}})
    with pytest.raises(ParamValueError, match=r"'by' is empty"):
        run_node(ops.group_by, {"table": sales}, {"by": [], "aggregations": {}})
    with pytest.raises(InputValueError, match=r"cannot aggregate"):
        run_node(ops.group_by, {"table": sales}, {"by": ["units"], "aggregations": {"region": ["mean"]}})


def test_join_kinds() -> None:
    left = pa.table({"id": [1, 2, 3], "x": ["a", "b", "c"]})
    right = pa.table({"key": [2, 3, 4], "x": ["B", "C", "D"]})
    inner = run_node(ops.join, {"left": left, "right": right}, {"on": ["id"], "right_on": ["key"]})["table"]
    assert sorted(inner.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 2, "x": "b", "x_right": "B"},
        {"id": 3, "x": "c", "x_right": "C"},
    ]
    lj = run_node(
        ops.join, {"left": left, "right": right}, {"on": ["id"], "right_on": ["key"], "how": "left"}
    )
    assert lj["table"].num_rows == 3
    anti = run_node(
        ops.join, {"left": left, "right": right}, {"on": ["id"], "right_on": ["key"], "how": "anti"}
    )
    assert anti["table"].to_pylist() == [{"id": 1, "x": "a"}]


def test_join_errors() -> None:
    left = pa.table({"id": [1]})
    with pytest.raises(ParamValueError, match=r"'how' is 'cross'"):
        run_node(ops.join, {"left": left, "right": left}, {"on": ["id"], "how": "cross"})
    with pytest.raises(MissingKeyError, match=r"input port 'right'"):
        run_node(ops.join, {"left": left, "right": pa.table({"k": [1]})}, {"on": ["id"]})
    with pytest.raises(ParamValueError, match=r"has 1 keys but 'right_on' has 2"):
        run_node(ops.join, {"left": left, "right": left}, {"on": ["id"], "right_on": ["id", "id"]})


def test_describe(sales: pa.Table) -> None:
    out = run_node(ops.describe, {"table": sales})["table"]
    rows = {r["column"]: r for r in out.to_pylist()}
    assert rows["amount"]["count"] == 4 and rows["amount"]["null_count"] == 1
    assert rows["amount"]["mean"] == 25.0 and rows["amount"]["min"] == 10.0 and rows["amount"]["max"] == 40.0
    assert rows["region"]["type"] == "string" and rows["region"]["mean"] is None
    assert rows["units"]["stddev"] == pytest.approx(1.5811388, rel=1e-6)


def test_sample_is_reproducible_and_keeps_row_order(sales: pa.Table) -> None:
    a = run_node(ops.sample, {"table": sales}, {"n": 3, "seed": 7})["table"]
    b = run_node(ops.sample, {"table": sales}, {"n": 3, "seed": 7})["table"]
    assert a.equals(b) and a.num_rows == 3
    units = a.column("units").to_pylist()
    assert units == sorted(units)
    assert run_node(ops.sample, {"table": sales}, {"fraction": 0.4})["table"].num_rows == 2
    with_replacement = run_node(ops.sample, {"table": sales}, {"n": 20, "replace": True})["table"]
    assert with_replacement.num_rows == 20


def test_sample_errors(sales: pa.Table) -> None:
    with pytest.raises(ParamValueError, match=r"exactly one of"):
        run_node(ops.sample, {"table": sales})
    with pytest.raises(ParamValueError, match=r"'n' is 9 but the table has 5 rows"):
        run_node(ops.sample, {"table": sales}, {"n": 9})
    with pytest.raises(ParamValueError, match=r"'fraction' is 1.5"):
        run_node(ops.sample, {"table": sales}, {"fraction": 1.5})
    empty = sales.slice(0, 0)
    with pytest.raises(ParamValueError, match=r"0 rows"):
        run_node(ops.sample, {"table": empty}, {"n": 1, "replace": True})

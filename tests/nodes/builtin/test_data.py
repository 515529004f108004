"""The file and SQL nodes on small generated CSV and Parquet files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nodes.builtin import data
from nodes.builtin.errors import (
    DataFileError,
    InputValueError,
    MissingKeyError,
    ParamValueError,
    SqlQueryError,
)
from nodes.testing import run_node


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "points.csv"
    path.write_text("x,y,name\n1,2.5,a\n2,3.5,b\n3,,c\n")
    return path


@pytest.fixture
def table() -> pa.Table:
    return pa.table({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]})


def test_read_csv_infers_types_and_nulls(csv_path: Path) -> None:
    t = run_node(data.read_csv, {"path": str(csv_path)})["table"]
    assert t.column_names == ["x", "y", "name"]
    assert t.schema.field("x").type == pa.int64()
    assert t.column("y").to_pylist() == [2.5, 3.5, None]


def test_read_csv_options(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("1;a\n2;b\n")
    t = run_node(data.read_csv, {"path": str(path)}, {"delimiter": ";", "header": False})["table"]
    assert t.to_pylist() == [{"f0": 1, "f1": "a"}, {"f0": 2, "f1": "b"}]


def test_read_csv_selects_columns(csv_path: Path) -> None:
    t = run_node(data.read_csv, {"path": str(csv_path)}, {"columns": ["name", "x"]})["table"]
    assert set(t.column_names) == {"name", "x"}


def test_read_csv_unknown_column_names_the_param(csv_path: Path) -> None:
    with pytest.raises(MissingKeyError, match=r"param 'columns'.*'nope'"):
        run_node(data.read_csv, {"path": str(csv_path)}, {"columns": ["nope"]})


def test_read_csv_of_a_directory_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read"):
        run_node(data.read_csv, {"path": str(tmp_path)})


def test_write_parquet_rejects_an_unknown_compression_without_touching_the_file(
    tmp_path: Path, table: pa.Table
) -> None:
    target = tmp_path / "keep.parquet"
    run_node(data.write_parquet, {"table": table, "path": str(target)})
    with pytest.raises(ParamValueError, match="'compression' is 'zip'"):
        run_node(data.write_parquet, {"table": table, "path": str(target)}, {"compression": "zip"})
    assert pq.read_table(target).equals(table)


def test_read_csv_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataFileError, match=r"input port 'path': no file .*nope\.csv"):
        run_node(data.read_csv, {"path": str(missing)})


def test_read_csv_malformed_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2,3\n")
    with pytest.raises(DataFileError, match=r"cannot read .* as CSV"):
        run_node(data.read_csv, {"path": str(path)})


def test_write_then_read_parquet_round_trip(tmp_path: Path, table: pa.Table) -> None:
    target = tmp_path / "sub" / "t.parquet"
    written = run_node(data.write_parquet, {"table": table, "path": str(target)})
    assert written["path"] == str(target) and target.exists()
    back = run_node(data.read_parquet, {"path": str(target)})["table"]
    assert back.equals(table)
    only_v = run_node(data.read_parquet, {"path": str(target)}, {"columns": ["v"]})["table"]
    assert only_v.column_names == ["v"]
    with pytest.raises(MissingKeyError, match=r"'columns' names \['w'\].*\['k', 'v'\]"):
        run_node(data.read_parquet, {"path": str(target)}, {"columns": ["w"]})


def test_read_parquet_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"no file"):
        run_node(data.read_parquet, {"path": str(tmp_path / "none.parquet")})
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("hello")
    with pytest.raises(DataFileError, match=r"as Parquet"):
        run_node(data.read_parquet, {"path": str(not_parquet)})


def test_file_nodes_declare_their_side_effects() -> None:
    # Reading depends on the file's content, not just its path; writing must happen on every run.
    assert data.read_csv.spec.deterministic is False
    assert data.read_parquet.spec.deterministic is False
    assert data.write_parquet.spec.cache is False


def test_sql_over_two_bound_tables(table: pa.Table) -> None:
    names = pa.table({"k": ["a", "b"], "label": ["Alpha", "Beta"]})
    out = run_node(
        data.sql,
        {"a": table, "b": names},
        {"query": "SELECT b.label, sum(a.v) AS total FROM a JOIN b USING (k) GROUP BY b.label ORDER BY 1"},
    )["table"]
    assert out.to_pylist() == [{"label": "Alpha", "total": 4}, {"label": "Beta", "total": 2}]


def test_sql_reads_the_arrow_table_in_place() -> None:
    # A large table is queried without copying it into DuckDB: the query sees the same values.
    big = pa.table({"x": pa.array(range(200_000), type=pa.int64())})
    out = run_node(data.sql, {"a": big}, {"query": "SELECT count(*) AS n, max(x) AS m FROM a"})["table"]
    assert out.to_pylist() == [{"n": 200_000, "m": 199_999}]


def test_sql_unwired_table_names_the_ports(table: pa.Table) -> None:
    with pytest.raises(SqlQueryError, match=r"can use the tables \['a'\]; wire the table"):
        run_node(data.sql, {"a": table}, {"query": "SELECT * FROM b"})


def test_sql_syntax_error_is_reported(table: pa.Table) -> None:
    with pytest.raises(SqlQueryError, match=r"param 'query': query failed: Parser Error"):
        run_node(data.sql, {"a": table}, {"query": "SELEC * FROM a"})


def test_sql_cannot_touch_the_file_system(tmp_path: Path, table: pa.Table) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("s\n42\n")
    with pytest.raises(SqlQueryError, match=r"disabled"):
        run_node(data.sql, {"a": table}, {"query": f"SELECT * FROM read_csv('{secret}')"})
    with pytest.raises(SqlQueryError):
        run_node(data.sql, {"a": table}, {"query": f"COPY a TO '{tmp_path / 'out.csv'}'"})
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(SqlQueryError, match="locked"):
        run_node(data.sql, {"a": table}, {"query": "SET python_enable_replacements = true"})


def test_the_duckdb_temp_directory_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # DuckDB always allows its temp directory (./.tmp by default), even with external access off; each
    # query gets its own instead, so queries cannot leave files there for each other.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    with pytest.raises(SqlQueryError, match=r"disabled"):
        run_node(data.sql, {"a": pa.table({"x": [1]})}, {"query": "COPY a TO '.tmp/x.csv'"})
    assert not list((tmp_path / ".tmp").iterdir())


def test_column_mean_from_the_design_example(csv_path: Path) -> None:
    t = run_node(data.read_csv, {"path": str(csv_path)})["table"]
    assert run_node(data.column_mean, {"table": t}, {"column": "x"})["value"] == 2.0
    assert run_node(data.column_mean, {"table": t}, {"column": "y"})["value"] == 3.0  # nulls ignored


def test_column_mean_errors(table: pa.Table) -> None:
    with pytest.raises(MissingKeyError, match=r"'z' is not a column .*\['k', 'v'\]"):
        run_node(data.column_mean, {"table": table}, {"column": "z"})
    with pytest.raises(InputValueError, match=r"not a number"):
        run_node(data.column_mean, {"table": table}, {"column": "k"})
    empty = pa.table({"x": pa.array([None, None], type=pa.float64())})
    with pytest.raises(InputValueError, match=r"no non-null values"):
        run_node(data.column_mean, {"table": empty}, {"column": "x"})


def test_parquet_written_by_the_node_is_a_normal_parquet_file(tmp_path: Path, table: pa.Table) -> None:
    target = tmp_path / "plain.parquet"
    run_node(data.write_parquet, {"table": table, "path": str(target)}, {"compression": "snappy"})
    assert pq.read_metadata(target).num_rows == 4

"""The sql_files node: Parquet and CSV files scanned directly by DuckDB, and nothing else; never stale."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import engine
from cluster.settings import Settings
from engine.workflow import Workflow
from nodes.builtin import data, sql_files
from nodes.builtin.errors import DataFileError, InputValueError, SqlQueryError
from nodes.states import NodeStatus
from nodes.testing import run_node


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    # Ten row groups of 100 rows, so a filter on id can skip most of them.
    path = tmp_path / "orders.parquet"
    ids = list(range(1000))
    table = pa.table({"id": ids, "k": [f"k{i % 3}" for i in ids], "amount": [float(i) for i in ids]})
    pq.write_table(table, path, row_group_size=100)
    return path


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("k,name,age\nk0,Ann,31\nk1,Bob,\nk2,Cid,45\n")
    return path


def _sql(query: str, files: dict[str, str], tables: dict[str, pa.Table] | None = None) -> pa.Table:
    table: pa.Table = run_node(sql_files.sql_files, {**(tables or {}), "files": files}, {"query": query})[
        "table"
    ]
    return table


def test_the_ports_are_a_required_dict_of_strings_and_four_optional_tables() -> None:
    spec = sql_files.sql_files.spec
    assert spec.id == "builtin/sql_files@1" and spec.category == "data"
    assert set(spec.tags) == {"table", "sql", "duckdb", "io"}
    files, *tables = spec.inputs
    assert files.name == "files" and str(files.type) == "Dict[String, String]" and files.required
    assert [(p.name, p.required) for p in tables] == [(n, False) for n in "abcd"]


def test_the_node_is_declared_non_deterministic_and_sql_is_not() -> None:
    # The result depends on the files' contents, not only on their paths (the bound values), so the
    # engine must run it every time; sql, over tables only, stays cacheable. Neither has a files port.
    assert sql_files.sql_files.spec.deterministic is False
    assert data.sql.spec.deterministic is True
    assert "files" not in data.sql.spec.input_names


def test_a_file_rewritten_under_the_same_path_is_never_served_stale(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "x.parquet"
    wf = Workflow("rewritten")
    scanned = wf.add(
        "scan", sql_files.sql_files, files={"t": str(path)}, params={"query": "SELECT x FROM t WHERE x > 0"}
    )
    wf.output("mean", wf.add("mean", data.column_mean, table=scanned.table, params={"column": "x"}))

    # The file lives in the test's own folder, which this installation lets nodes read.
    settings = Settings(home=settings.home, data_roots=[tmp_path])

    def run(values: list[int]) -> engine.RunResult:
        pq.write_table(pa.table({"x": values}), path)
        return engine.run(wf, None, settings=settings, executor="local")

    assert run([1, 2, 3]).outputs == {"mean": 2.0}
    again = run([10, 20, -5])  # same path, same bound values, new content
    assert again.outputs == {"mean": 15.0}
    assert again.nodes["scan"].status is NodeStatus.SUCCEEDED
    assert again.nodes["mean"].status is NodeStatus.SUCCEEDED
    # Unchanged content: the scan still runs, and the node after it is found in the cache by content.
    same = run([10, 20, -5])
    assert same.outputs == {"mean": 15.0}
    assert same.nodes["scan"].status is NodeStatus.SUCCEEDED
    assert same.nodes["mean"].status is NodeStatus.CACHED


def test_files_reads_parquet_with_projection_and_filter(orders: Path) -> None:
    out = _sql("SELECT id, amount FROM o WHERE id >= 995 ORDER BY id", {"o": str(orders)})
    assert out.column_names == ["id", "amount"]
    assert out.column("id").to_pylist() == [995, 996, 997, 998, 999]


def test_the_scan_gets_the_projection_and_filter_pushed_down(orders: Path) -> None:
    # The view is inlined into the query plan: DuckDB's Parquet scan itself reads only the projected
    # columns and evaluates the filter (skipping row groups by their statistics).
    files = sql_files.check_files({"o": str(orders)}, ())
    with tempfile.TemporaryDirectory() as scratch:
        con = sql_files._connect(scratch, files)
        try:
            plan = con.sql("EXPLAIN SELECT amount FROM o WHERE id > 990").fetchall()[0][1]
        finally:
            con.close()
    lines = [line.strip("│╭╮╰╯─ ") for line in plan.splitlines()]
    assert "Function: PARQUET_SCAN" in lines
    assert "Projections: amount" in lines and "Filters: id > 990" in lines


def test_files_reads_csv_tsv_and_gzip(tmp_path: Path, people: Path) -> None:
    tsv = tmp_path / "people.tsv"
    tsv.write_text(people.read_text().replace(",", "\t"))
    gz = tmp_path / "people.csv.gz"
    gz.write_bytes(gzip.compress(people.read_bytes()))
    for path in (people, tsv, gz):
        out = _sql("SELECT name, age FROM p WHERE age > 40 OR age IS NULL ORDER BY name", {"p": str(path)})
        assert out.to_pylist() == [{"name": "Bob", "age": None}, {"name": "Cid", "age": 45}], path.name


def test_files_and_wired_tables_in_one_query(orders: Path, people: Path) -> None:
    bonus = pa.table({"k": ["k0", "k1"], "bonus": [1.0, 2.0]})
    out = _sql(
        "SELECT p.name, count(*) AS n, max(o.amount) + max(a.bonus) AS top FROM o JOIN p USING (k) "
        "JOIN a USING (k) WHERE o.id < 10 GROUP BY p.name ORDER BY p.name",
        {"o": str(orders), "p": str(people)},
        {"a": bonus},
    )
    assert out.to_pylist() == [{"name": "Ann", "n": 4, "top": 10.0}, {"name": "Bob", "n": 3, "top": 9.0}]


def test_a_key_may_use_the_name_of_an_unwired_port(orders: Path) -> None:
    assert _sql("SELECT count(*) AS n FROM a", {"a": str(orders)}).to_pylist() == [{"n": 1000}]


def test_an_unknown_relation_lists_the_files_too(orders: Path) -> None:
    with pytest.raises(
        SqlQueryError,
        match=r"builtin/sql_files@1: .*can use the tables \['a', 'o'\]; add the file to input port 'files'",
    ):
        _sql("SELECT * FROM x", {"o": str(orders)}, {"a": pa.table({"x": [1]})})


def test_no_files_is_refused() -> None:
    with pytest.raises(InputValueError, match=r"builtin/sql_files@1: input port 'files' is empty; .*sql@1"):
        _sql("SELECT 1", {}, {"a": pa.table({"x": [1]})})


@pytest.mark.parametrize("name", ["1x", "my-orders", "x y", "", "o;DROP", "ö"])
def test_a_key_that_is_not_an_identifier_is_refused(orders: Path, name: str) -> None:
    with pytest.raises(
        InputValueError, match=rf"builtin/sql_files@1: input port 'files': key {name!r} is not a valid"
    ):
        _sql("SELECT 1", {name: str(orders)})


@pytest.mark.parametrize("name", ["a", "A"])
def test_a_key_naming_a_wired_port_is_refused(orders: Path, name: str) -> None:
    with pytest.raises(InputValueError, match=rf"'files': key {name!r} names the same relation as the wired"):
        _sql("SELECT 1", {name: str(orders)}, {"a": pa.table({"x": [1]})})


def test_keys_differing_only_in_case_are_refused(orders: Path) -> None:
    with pytest.raises(InputValueError, match=r"key 'O' names the same relation as the key 'o'; rename"):
        _sql("SELECT 1", {"o": str(orders), "O": str(orders)})


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "none.parquet"
    with pytest.raises(DataFileError, match=r"'files': key 'o': no file .*none.parquet'; check the path"):
        _sql("SELECT 1", {"o": str(missing)})
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    with pytest.raises(DataFileError, match=r"no file"):
        _sql("SELECT 1", {"o": str(folder)})  # a directory is not a file either


def test_an_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(InputValueError, match=r"key 'o': .*x.json' is not a Parquet or CSV file; use a path"):
        _sql("SELECT 1", {"o": str(path)})


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    with pytest.raises(DataFileError, match=r"key 'o': cannot read .* as Parquet"):
        _sql("SELECT 1", {"o": str(path)})


def test_only_the_given_files_are_readable(tmp_path: Path, orders: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("s\n42\n")
    files = {"o": str(orders)}
    for query in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM read_parquet('{tmp_path}/*.parquet')",
        f"SELECT * FROM glob('{tmp_path}/*')",
    ):
        with pytest.raises(SqlQueryError, match=r"disabled"):
            _sql(query, files)


@pytest.mark.parametrize(
    "query",
    [
        "COPY o TO '{tmp}/out.csv'",
        "COPY (SELECT 1 AS id) TO '{orders}' (FORMAT parquet, USE_TMP_FILE false)",
        "SELECT 1; COPY (SELECT 1 AS id) TO '{orders}' (FORMAT parquet, USE_TMP_FILE false)",
        "ATTACH '{tmp}/x.db' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET allowed_paths = ['/etc/passwd']",
        "SET enable_external_access = true",
    ],
)
def test_writes_and_other_statements_are_refused(tmp_path: Path, orders: Path, query: str) -> None:
    before = orders.read_bytes()
    with pytest.raises(SqlQueryError, match=r"builtin/sql_files@1: param 'query' must be exactly one SELECT"):
        _sql(query.format(tmp=tmp_path, orders=orders), {"o": str(orders)})
    assert orders.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.parquet"]

"""Tables on Arrow and DuckDB: read and write files, run SQL, and the ``column_mean`` of the design example.

Tables travel between nodes as ``pyarrow.Table``. DuckDB reads them in place through the Arrow C stream
interface (``register``), so binding an input table to a query copies nothing.

File readers are declared non-deterministic: their result depends on the file's content, not only on the
path, so the engine re-reads the file and keys downstream caches on the table's content instead. The same
holds for ``sql_files`` (a query scanning files in place), which lives in `nodes.builtin.sql_files`.

In a run, every path is checked against the run's data roots and opened safely (`nodes.builtin.paths`);
called directly, outside a run, a node reads and writes wherever its process may.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pyarrow as pa

from nodes import context, node
from nodes.builtin.errors import (
    BuiltinNodeError,
    DataFileError,
    InputValueError,
    MissingKeyError,
    ParamValueError,
    SqlQueryError,
)
from nodes.builtin.paths import fd_path, open_file, open_tree, writing

if TYPE_CHECKING:
    import duckdb


class TableOut(TypedDict):
    """A single output port ``table`` (so workflows reference ``node.table``, as in the design example)."""

    table: pa.Table


class PathOut(TypedDict):
    """A single output port ``path``: the file that was written."""

    path: str


class ValueOut(TypedDict):
    """A single output port ``value`` holding a number."""

    value: float


@node(plugin="builtin", version="1.0.0", category="data", tags=("table", "io", "csv"), deterministic=False)
def read_csv(
    path: str, *, delimiter: str = ",", header: bool = True, columns: list[str] | None = None
) -> TableOut:
    """Read a CSV file into a table, inferring column types.

    Declared non-deterministic: the file can change under the same path, so the engine re-reads it and keys
    downstream caches on the table's content.

    Args:
        path: the CSV file, on the file system of the worker that runs the node, below one of the
            installation's data roots (``RAYWEAVE_DATA_ROOTS``, default ``{home}/data``); use an absolute
            path (a relative one resolves against that worker's working directory). A path outside the data
            roots (also through ``..`` or a symlink) is refused, and a missing or unreadable file fails the
            node.
        delimiter: the field separator, a single character (default ``","``; e.g. ``";"`` or ``"\\t"``).
        header: whether the first line names the columns (default true); without one they are named
            ``f0``, ``f1``, ... and the first line is data.
        columns: keep only these columns, in file order (default null or an empty list: all); a name the
            file does not have fails the node.

    Returns:
        table: the file's rows, with column types inferred from the values (integers, floats, booleans,
            timestamps, else strings); an empty cell is null in numeric columns and ``""`` in text columns.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "mean-of-csv",
          "inputs": {"path": {"type": "String"}},
          "nodes": {
            "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
            "mean": {"type": "builtin/column_mean@1", "in": {"table": "load.table"}, "params": {"column": "x"}}
          },
          "outputs": {"mean": "mean.value"}
        }
        ```
    """
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(autogenerate_column_names=not header)
    parse = pacsv.ParseOptions(delimiter=delimiter)
    convert = pacsv.ConvertOptions(include_columns=columns) if columns else None
    with open_file(context.current().policy, path, "builtin/read_csv@1: input port 'path'") as fd:
        try:
            table = pacsv.read_csv(
                fd_path(fd), read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowKeyError as exc:
            # Raised for names in include_columns that the header does not have.
            raise MissingKeyError(
                f"builtin/read_csv@1: param 'columns': {exc}; use columns of the file"
            ) from exc
        except (pa.ArrowInvalid, OSError) as exc:
            reason = str(exc).replace(fd_path(fd), path)
            raise DataFileError(f"builtin/read_csv@1: cannot read {path!r} as CSV: {reason}") from exc
    return {"table": table}


@node(
    plugin="builtin", version="1.0.0", category="data", tags=("table", "io", "parquet"), deterministic=False
)
def read_parquet(path: str, *, columns: list[str] | None = None) -> TableOut:
    """Read a Parquet file (or a directory of Parquet files) into a table.

    Declared non-deterministic, like ``read_csv``: the engine re-reads the file on every run.

    Args:
        path: the Parquet file, or a directory whose Parquet files are read as one table, on the file
            system of the worker that runs the node, below one of the installation's data roots
            (``RAYWEAVE_DATA_ROOTS``; use an absolute path). A path outside the data roots (also through
            ``..`` or a symlink, or a symlink inside the directory) is refused; a missing path or a file
            that is not Parquet fails the node.
        columns: keep only these columns (default null or an empty list: all); the others are not read at
            all. A name the file does not have fails the node, listing the file's columns.

    Returns:
        table: the file's rows, with the column types stored in the file.
    """
    import pyarrow.parquet as pq

    with open_tree(context.current().policy, path, "builtin/read_parquet@1: input port 'path'") as tree:
        try:
            if columns:
                # Arrow reports unknown columns as a dataset-internal error; check them against the schema.
                names = pq.ParquetDataset(tree.source, filesystem=tree.filesystem).schema.names
                missing = [c for c in columns if c not in names]
                if missing:
                    raise MissingKeyError(
                        f"builtin/read_parquet@1: param 'columns' names {missing}, not columns of {path!r} "
                        f"(columns: {names}); use existing columns"
                    )
            table = pq.read_table(tree.source, columns=columns, filesystem=tree.filesystem)
        except (pa.ArrowInvalid, OSError) as exc:
            reason = str(exc).replace(tree.source, path) if tree.source else str(exc)
            raise DataFileError(f"builtin/read_parquet@1: cannot read {path!r} as Parquet: {reason}") from exc
    return {"table": table}


_COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")


@node(plugin="builtin", version="1.0.0", category="data", tags=("table", "io", "parquet"), cache=False)
def write_parquet(table: pa.Table, path: str, *, compression: str = "zstd") -> PathOut:
    """Write a table to a Parquet file (creating parent directories) and output its path.

    Never cached: writing the file is the point, so every run writes it.

    Args:
        table: the table to write, all its rows and columns.
        path: the target file, on the file system of the worker that runs the node, below one of the
            installation's data roots (``RAYWEAVE_DATA_ROOTS``; use an absolute path); a path outside them
            is refused. Missing parent directories are created; an existing file is replaced once the new
            one is complete (a failed write leaves it as it was).
        compression: ``zstd`` (default), ``snappy``, ``gzip``, ``lz4``, ``brotli`` or ``none``, in any letter
            case; any other value fails the node before the file is touched.

    Returns:
        path: the path written (the input path, normalized: no doubled or trailing slashes), for nodes
            that read the file back.
    """
    import pyarrow.parquet as pq

    if compression.lower() not in _COMPRESSIONS:
        # Checked before opening the file: a failed write would already have truncated it.
        raise ParamValueError(
            f"builtin/write_parquet@1: param 'compression' is {compression!r}; use one of "
            f"{', '.join(_COMPRESSIONS)}"
        )
    try:
        with writing(context.current().policy, path, "builtin/write_parquet@1: input port 'path'") as handle:
            pq.write_table(table, handle, compression=compression)
    except BuiltinNodeError:
        raise  # already says what went wrong (a refused path, a file that cannot be created)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"builtin/write_parquet@1: cannot write {path!r}: {exc}") from exc
    return {"path": str(Path(path))}


SCRATCH_PREFIX = "rayweave-sql-"
"""Prefix of the private DuckDB temp directory each query gets (see `base_config`)."""


def base_config(scratch: str) -> dict[str, Any]:
    """The DuckDB settings every node query runs with, its temp directory ``scratch`` (private to the call).

    No implicit lookup of Python variables: a query sees only the relations the node binds. DuckDB always
    lets a connection use its temp directory (to spill large sorts and joins), even with external access
    off; a private one per call, removed afterwards, keeps that from becoming a place queries can leave
    files for each other (the default is ``./.tmp``).
    """
    return {"python_enable_replacements": False, "temp_directory": scratch}


def query_tables(
    node: str,
    con: duckdb.DuckDBPyConnection,
    query: str,
    tables: dict[str, pa.Table],
    *,
    param: str = "query",
    relations: Collection[str] = (),
    hint: str = "wire the table you need to one of the node's input ports",
) -> pa.Table:
    """Register ``tables`` on ``con`` as views and run ``query`` on it, returning Arrow.

    ``relations`` are further names ``con`` already binds (listed when the query names an unknown one,
    with ``hint`` saying what to do). DuckDB errors become `SqlQueryError` naming ``builtin/<node>@1`` and
    ``param``.
    """
    import duckdb

    for name, table in tables.items():
        con.register(name, table)
    try:
        relation = con.sql(query)
        if relation is None:
            # DuckDB before 2.0 returns no relation for statements without a result (CREATE, SET, ...).
            raise SqlQueryError(
                f"builtin/{node}@1: param {param!r} is not a query with a result; write one SELECT"
            )
        return relation.to_arrow_table()
    except duckdb.CatalogException as exc:
        names = sorted([*tables, *relations])
        raise SqlQueryError(
            f"builtin/{node}@1: {exc}. Param {param!r} can use the tables {names}; {hint}"
        ) from exc
    except duckdb.Error as exc:
        raise SqlQueryError(f"builtin/{node}@1: param {param!r}: query failed: {exc}") from exc


def run_query(node: str, query: str, tables: dict[str, pa.Table], *, param: str = "query") -> pa.Table:
    """Run ``query`` on a fresh in-memory DuckDB with ``tables`` registered as views, returning Arrow.

    Shared by ``sql`` and ``filter``; ``node`` and ``param`` name the caller in error messages.
    """
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch:
        # No file system or network access: a query sees exactly the tables wired into the node, whoever
        # wrote the workflow. The configuration is locked so the query cannot SET its way back out.
        config = {**base_config(scratch), "enable_external_access": False, "lock_configuration": True}
        con = duckdb.connect(config=config)
        try:
            return query_tables(node, con, query, tables, param=param)
        finally:
            con.close()


@node(plugin="builtin", version="1.0.0", category="data", tags=("table", "sql", "duckdb"))
def sql(
    a: pa.Table | None = None,
    b: pa.Table | None = None,
    c: pa.Table | None = None,
    d: pa.Table | None = None,
    *,
    query: str,
) -> TableOut:
    """Run a DuckDB SQL ``query`` over the input tables, which it sees as relations ``a``, ``b``, ``c``, ``d``.

    Wire up to four tables; unwired ports are absent from the query's scope. Tables are bound zero-copy
    through Arrow. The query has no file system or network access: read files with ``read_csv`` or
    ``read_parquet`` and wire the tables in, or query large Parquet and CSV files in place with
    ``sql_files``.

    Args:
        a: the table the query calls ``a`` (optional; when unwired, ``a`` does not exist in the query).
        b: the table the query calls ``b`` (optional; when unwired, ``b`` does not exist in the query).
        c: the table the query calls ``c`` (optional; when unwired, ``c`` does not exist in the query).
        d: the table the query calls ``d`` (optional; when unwired, ``d`` does not exist in the query).
        query: one DuckDB ``SELECT`` statement (required). A syntax error, an unknown table or column, or a
            statement without a result (``CREATE``, ``SET``, ...) fails the node with DuckDB's message.

    Returns:
        table: the query's result, with the column names and types DuckDB gives it.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "totals-per-customer",
          "inputs": {"orders": {"type": "String"}, "customers": {"type": "String"}},
          "nodes": {
            "orders": {"type": "builtin/read_parquet@1", "in": {"path": "$inputs.orders"}},
            "customers": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.customers"}},
            "totals": {"type": "builtin/sql@1", "in": {"a": "orders.table", "b": "customers.table"},
                       "params": {"query": "SELECT b.name, sum(a.amount) AS total FROM a JOIN b USING (id) GROUP BY 1"}}
          },
          "outputs": {"totals": "totals.table"}
        }
        ```
    """
    tables = {name: t for name, t in (("a", a), ("b", b), ("c", c), ("d", d)) if t is not None}
    return {"table": run_query("sql", query, tables)}


@node(plugin="builtin", version="1.0.0", category="data", tags=("table", "number"))
def column_mean(table: pa.Table, *, column: str) -> ValueOut:
    """Mean of a numeric column, ignoring nulls; fails when the column is missing, not numeric or all null.

    Args:
        table: the table that holds ``column``.
        column: the name of the column to average (required); it must exist and hold integers, floats or
            decimals, with at least one non-null value.

    Returns:
        value: the arithmetic mean of the column's non-null values, as a Float.
    """
    import pyarrow.compute as pc

    if column not in table.column_names:
        raise MissingKeyError(
            f"builtin/column_mean@1: param 'column' {column!r} is not a column of input port 'table' "
            f"(columns: {table.column_names}); use one of these"
        )
    col = table.column(column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)):
        raise InputValueError(
            f"builtin/column_mean@1: column {column!r} has type {col.type}, not a number; "
            "convert it first (e.g. with sql: CAST(x AS DOUBLE))"
        )
    result: Any = pc.mean(col).as_py()
    if result is None:
        raise InputValueError(
            f"builtin/column_mean@1: column {column!r} has no non-null values, its mean is undefined"
        )
    return {"value": float(result)}

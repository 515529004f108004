"""Row and column operations on Arrow tables: filter, select, group-by aggregate, join, describe, sample.

Each returns a new ``pyarrow.Table`` on the port ``table``; Arrow shares the unchanged column buffers,
so selecting or sampling does not copy the data it keeps. Results are deterministic (single-threaded
Arrow kernels where row order could otherwise vary), because the engine caches them by their inputs.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pyarrow as pa

from nodes import node
from nodes.builtin.data import TableOut, run_query
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError


def _require_columns(node: str, param: str, table: pa.Table, columns: list[str], port: str = "table") -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise MissingKeyError(
            f"builtin/{node}@1: param {param!r} names {missing}, not columns of input port {port!r} "
            f"(columns: {table.column_names}); use existing columns"
        )


@node("filter", plugin="builtin", version="1.0.0", category="data", tags=("table", "duckdb"))
def filter_rows(table: pa.Table, *, where: str) -> TableOut:
    """Keep the rows for which the SQL boolean expression ``where`` holds, e.g. ``"x > 2 AND name <> 'a'"``.

    The expression is evaluated by DuckDB over the table (bound zero-copy), without file or network access.

    Args:
        table: the rows to filter; its columns are what ``where`` can name.
        where: a DuckDB boolean expression over the table's columns (required), as written after ``WHERE``;
            quote text with single quotes and odd column names with double quotes. Rows where it is null
            (e.g. a comparison with a null cell) are dropped. An invalid expression or an unknown column
            fails the node with DuckDB's message.

    Returns:
        table: the rows that satisfy ``where``, with all columns, in their original order; possibly empty.
    """
    return {"table": run_query("filter", f"SELECT * FROM t WHERE {where}", {"t": table}, param="where")}


@node(plugin="builtin", version="1.0.0", category="data", tags=("table",))
def select(table: pa.Table, *, columns: list[str], rename: dict[str, str] | None = None) -> TableOut:
    """Keep the listed ``columns`` in that order, optionally renaming some.

    Args:
        table: the input table; its other columns are dropped.
        columns: the columns to keep, in output order (required); a name the table does not have fails the
            node, listing the table's columns.
        rename: old name -> new name, for any of the kept columns (default null: keep the names); renaming a
            column that is not kept fails the node.

    Returns:
        table: the selected columns (sharing the input's buffers, nothing is copied), all rows.
    """
    _require_columns("select", "columns", table, columns)
    out = table.select(columns)
    if rename:
        _require_columns("select", "rename", out, list(rename))
        out = out.rename_columns([rename.get(c, c) for c in out.column_names])
    return {"table": out}


_AGGREGATIONS = (
    "count",
    "count_distinct",
    "sum",
    "mean",
    "min",
    "max",
    "stddev",
    "variance",
    "first",
    "last",
)


@node(plugin="builtin", version="1.0.0", category="data", tags=("table",))
def group_by(table: pa.Table, *, by: list[str], aggregations: dict[str, list[str]]) -> TableOut:
    """Group rows by the ``by`` columns and aggregate: ``{"x": ["mean", "max"]}`` yields ``x_mean``, ``x_max``.

    The key columns come first; groups appear in the order their keys first occur.

    Args:
        table: the input table to group.
        by: the key columns (required, at least one); rows with equal values in all of them form one group,
            and null keys form a group of their own.
        aggregations: column -> list of functions among count, count_distinct, sum, mean, min, max,
            stddev, variance, first, last (required; ``{}`` outputs just the distinct keys). The result column
            is named ``<column>_<function>``. All functions skip nulls: ``count`` counts non-null values,
            ``first``/``last`` take the first/last non-null one, and ``stddev``/``variance`` are the population
            statistics (divided by n, not n - 1). A function that does not suit the column's type (``sum`` of
            strings) fails the node.

    Returns:
        table: one row per group: the key columns, then one column per requested aggregation, in the order
            given (null where a group has only nulls in that column).

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "sales-per-region",
          "inputs": {"path": {"type": "String"}},
          "nodes": {
            "sales": {"type": "builtin/read_parquet@1", "in": {"path": "$inputs.path"}},
            "per_region": {"type": "builtin/group_by@1", "in": {"table": "sales.table"},
                           "params": {"by": ["region"], "aggregations": {"amount": ["sum", "mean"]}}}
          },
          "outputs": {"per_region": "per_region.table"}
        }
        ```
    """
    if not by:
        raise ParamValueError("builtin/group_by@1: param 'by' is empty; name at least one key column")
    _require_columns("group_by", "by", table, by)
    _require_columns("group_by", "aggregations", table, list(aggregations))
    specs: list[tuple[str, str]] = []
    for column, funcs in aggregations.items():
        for func in funcs:
            if func not in _AGGREGATIONS:
                raise ParamValueError(
                    f"builtin/group_by@1: param 'aggregations' asks for {func!r} of {column!r}; "
                    f"use one of {', '.join(_AGGREGATIONS)}"
                )
            specs.append((column, func))
    try:
        # use_threads=False keeps groups in first-occurrence order, so results are reproducible.
        result = table.group_by(by, use_threads=False).aggregate(specs)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputValueError(f"builtin/group_by@1: cannot aggregate {specs}: {exc}") from exc
    keys_first = by + [c for c in result.column_names if c not in by]
    return {"table": result.select(keys_first)}


# Read-only: module state must not be mutable.
_JOIN_TYPES = MappingProxyType(
    {
        "inner": "inner",
        "left": "left outer",
        "right": "right outer",
        "outer": "full outer",
        "semi": "left semi",
        "anti": "left anti",
    }
)


@node(plugin="builtin", version="1.0.0", category="data", tags=("table",))
def join(
    left: pa.Table,
    right: pa.Table,
    *,
    on: list[str],
    right_on: list[str] | None = None,
    how: str = "inner",
    right_suffix: str = "_right",
) -> TableOut:
    """Join two tables on key columns.

    Args:
        left: the left table; its key columns are named by ``on``.
        right: the right table; its key columns are named by ``right_on``, or by ``on`` when that is null.
        on: the key columns of the left table (and of the right one unless ``right_on`` is given)
            (required); rows match when all keys are equal, and a null key never matches.
        right_on: the right table's key columns, in the same order and number as ``on``, when their names
            differ (default null: the names in ``on``); they do not appear in the output.
        how: ``inner`` (default: matching rows only), ``left``, ``right``, ``outer`` (also unmatched rows of
            that side / both sides, with nulls for the other side), ``semi`` (left rows with a match) or ``anti``
            (left rows without one); any other value fails the node.
        right_suffix: appended to right-side non-key columns whose names also occur on the left
            (default ``"_right"``).

    Returns:
        table: the joined rows: the key columns once, the left table's other columns and the right table's
            other columns (only the left table's columns for ``semi`` and ``anti``). Row order is not
            guaranteed; sort afterwards if it matters.
    """
    if how not in _JOIN_TYPES:
        raise ParamValueError(f"builtin/join@1: param 'how' is {how!r}; use one of {', '.join(_JOIN_TYPES)}")
    rkeys = right_on or on
    if len(rkeys) != len(on):
        raise ParamValueError(
            f"builtin/join@1: param 'on' has {len(on)} keys but 'right_on' has {len(rkeys)}; give as many"
        )
    _require_columns("join", "on", left, on, port="left")
    _require_columns("join", "right_on" if right_on else "on", right, rkeys, port="right")
    try:
        out = left.join(
            right,
            keys=on,
            right_keys=rkeys,
            join_type=_JOIN_TYPES[how],
            right_suffix=right_suffix,
            use_threads=False,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InputValueError(f"builtin/join@1: cannot join on {on} = {rkeys}: {exc}") from exc
    return {"table": out}


def _numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


@node(plugin="builtin", version="1.0.0", category="data", tags=("table",))
def describe(table: pa.Table) -> TableOut:
    """Summary statistics of a table, one row per column.

    Args:
        table: the table to describe; every column gets a row, whatever its type.

    Returns:
        table: one row per input column, in column order, with the columns ``column`` (name), ``type``
            (Arrow type name), ``count`` (non-null values), ``null_count``, and for numeric columns ``min``,
            ``max``, ``mean`` and ``stddev`` (sample standard deviation, divided by n - 1), as Floats; these four
            are null for other columns and for all-null ones, and ``stddev`` also with fewer than two values.
    """
    import pyarrow.compute as pc

    rows: dict[str, list[Any]] = {
        k: [] for k in ("column", "type", "count", "null_count", "min", "max", "mean", "stddev")
    }
    for name in table.column_names:
        col = table.column(name)
        rows["column"].append(name)
        rows["type"].append(str(col.type))
        rows["count"].append(len(col) - col.null_count)
        rows["null_count"].append(col.null_count)
        stats: dict[str, Any] = dict.fromkeys(("min", "max", "mean", "stddev"))
        if _numeric(col.type) and len(col) > col.null_count:
            minmax = pc.min_max(col).as_py()
            stats = {
                "min": minmax["min"],
                "max": minmax["max"],
                "mean": pc.mean(col).as_py(),
                "stddev": pc.stddev(col, ddof=1).as_py() if len(col) - col.null_count > 1 else None,
            }
        for key, value in stats.items():
            rows[key].append(None if value is None else float(value))
    schema = pa.schema(
        [
            ("column", pa.string()),
            ("type", pa.string()),
            ("count", pa.int64()),
            ("null_count", pa.int64()),
            ("min", pa.float64()),
            ("max", pa.float64()),
            ("mean", pa.float64()),
            ("stddev", pa.float64()),
        ]
    )
    return {"table": pa.table(rows, schema=schema)}


@node(plugin="builtin", version="1.0.0", category="data", tags=("table",))
def sample(
    table: pa.Table,
    *,
    n: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    replace: bool = False,
) -> TableOut:
    """A random sample of rows: exactly ``n`` rows, or a ``fraction`` of them (give one of the two).

    The sample is reproducible for a given ``seed`` and keeps the original row order (unless ``replace``,
    sampling with replacement, is set).

    Args:
        table: the table to sample.
        n: the number of rows to draw (default null); at most the row count unless ``replace`` is set.
            Give exactly one of ``n`` and ``fraction``; both or neither fails the node.
        fraction: the share of rows to draw, in [0, 1] (default null); the row count times ``fraction`` is
            rounded to the nearest integer (ties to even).
        seed: the random seed (default 0); the same seed, table and parameters give the same sample.
        replace: sample with replacement (default false); rows may then repeat, come in random order, and
            ``n`` may exceed the row count (of a non-empty table).

    Returns:
        table: the sampled rows, with all columns.
    """
    import numpy as np

    if (n is None) == (fraction is None):
        raise ParamValueError("builtin/sample@1: give exactly one of params 'n' and 'fraction'")
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ParamValueError(f"builtin/sample@1: param 'fraction' is {fraction}; use a value in [0, 1]")
        n = round(table.num_rows * fraction)
    assert n is not None  # one of the two is set, checked above
    if n < 0 or (n > table.num_rows and (not replace or table.num_rows == 0)):
        raise ParamValueError(
            f"builtin/sample@1: param 'n' is {n} but the table has {table.num_rows} rows; "
            "use 0 <= n <= rows, or set replace=true"
        )
    rng = np.random.default_rng(seed)
    idx = rng.choice(table.num_rows, size=n, replace=replace)
    if not replace:
        idx = np.sort(idx)
    return {"table": table.take(pa.array(idx, type=pa.int64()))}

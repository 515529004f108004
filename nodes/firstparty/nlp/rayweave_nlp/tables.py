"""Table helpers shared by the NLP nodes: the text column in, new columns out, with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pyarrow as pa

from rayweave_nlp.errors import MissingColumnError, NlpInputError, NlpParamError


class TableOut(TypedDict):
    """A single output port ``table``: the input table with the node's new columns appended."""

    table: pa.Table


def require_column(node: str, table: pa.Table, column: str, *, param: str, port: str = "table") -> None:
    """Fail unless `table` has `column` (named by `param`), listing the columns it has."""
    if column not in table.column_names:
        raise MissingColumnError(
            f"{node}: param {param!r} names column {column!r}, which input port {port!r} does not have "
            f"(columns: {table.column_names}); set {param!r} to one of them"
        )


def text_values(node: str, table: pa.Table, column: str, *, param: str = "column") -> list[str | None]:
    """The cells of the text column `column` as Python strings (None for nulls)."""
    require_column(node, table, column, param=param)
    data = table.column(column)
    if not (
        pa.types.is_string(data.type) or pa.types.is_large_string(data.type) or pa.types.is_null(data.type)
    ):
        raise NlpInputError(
            f"{node}: column {column!r} of input port 'table' holds {data.type}, not text; point param "
            f"{param!r} at a string column (or cast it first)"
        )
    values: list[str | None] = data.to_pylist()
    return values


def require_free(node: str, table: pa.Table, names: Sequence[str], *, param: str) -> None:
    """Fail when `table` already has a column of `names` (the node's output columns, named by `param`)."""
    clashes = [name for name in names if name in table.column_names]
    if clashes:
        raise NlpParamError(
            f"{node}: output column(s) {clashes} already exist in input port 'table'; choose other names with "
            f"param {param!r} (or drop those columns first)"
        )


def append_columns(node: str, table: pa.Table, columns: dict[str, pa.Array], *, param: str) -> pa.Table:
    """`table` with `columns` appended; a name the table already has fails, naming the param to change."""
    require_free(node, table, list(columns), param=param)
    out = table
    for name, values in columns.items():
        out = out.append_column(name, values)
    return out


def check_names(node: str, names: Sequence[str], param: str) -> None:
    """Fail on an empty output column name."""
    if any(not name for name in names):
        raise NlpParamError(f"{node}: param {param!r} must not be empty; give the new column a name")

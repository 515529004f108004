"""The entity table in, the features joined out: checks of the `entities` input and the join back by row.

Feature values are attached to the caller's own table, row by row, in its order: Feast may reorder rows, and
some offline stores drop the entity rows for which no feature value is in range (the file store does, past a
view's TTL); here every entity row stays, with nulls where Feast found nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rayweave_feast.errors import EntityTableError, FeastStoreError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ROW_ID", "attach_features", "check_clashes", "check_join_keys", "check_timestamp", "entity_frame"]

#: The column carrying each entity row's position through Feast, so results can be put back in order.
ROW_ID = "__rayweave_row__"
#: The name Feast gives the event timestamp column of an entity DataFrame.
EVENT_TIMESTAMP = "event_timestamp"


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) or "none"


def check_timestamp(entities: pa.Table, column: str, node: str) -> None:
    """The event timestamp column exists, holds timestamps (or dates) and no nulls."""
    import pyarrow as pa

    where = f"{node}: input port 'entities'"
    if column not in entities.column_names:
        raise EntityTableError(
            f"{where} has no event timestamp column {column!r} (columns: {_listing(entities.column_names)}); "
            f"add the time as of which each row's features are wanted, or name the column with param "
            f"'timestamp_column'"
        )
    kind = entities.schema.field(column).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise EntityTableError(
            f"{where}: column {column!r} is {kind}, not a timestamp; convert it (e.g. with "
            f"builtin/sql@1: CAST({column} AS TIMESTAMP)); times without a time zone are taken as UTC"
        )
    if entities.column(column).null_count:
        raise EntityTableError(f"{where}: column {column!r} has null timestamps; drop or fill those rows")


def check_join_keys(entities: pa.Table, views: Mapping[str, Any], node: str) -> None:
    """Every join key of the (regular) feature views is a column of `entities`, without nulls."""
    where = f"{node}: input port 'entities'"
    for view in views.values():
        for key in getattr(view, "join_keys", ()):
            if key not in entities.column_names:
                raise EntityTableError(
                    f"{where} has no column {key!r}, the join key of feature view {view.name!r} (columns: "
                    f"{_listing(entities.column_names)}); add it, or rename the column holding the entity ids"
                )
            if entities.column(key).null_count:
                raise EntityTableError(
                    f"{where}: join key column {key!r} has nulls; drop those rows or fill in the entity ids"
                )


def check_clashes(entities: pa.Table, columns: Sequence[str], node: str) -> None:
    """No feature column would take the name of a column the entity table already has."""
    taken = [c for c in columns if c in entities.column_names]
    if taken:
        raise EntityTableError(
            f"{node}: input port 'entities' already has column(s) {', '.join(taken)}, which the features would "
            f"be named; rename them, or set param 'full_feature_names' to name features 'view__feature'"
        )


def entity_frame(entities: pa.Table, timestamp_column: str | None) -> pd.DataFrame:
    """The entity table as the DataFrame Feast takes, with the row ids and `event_timestamp` as the time."""
    import pyarrow as pa

    table = entities
    if timestamp_column is not None and timestamp_column != EVENT_TIMESTAMP:
        if EVENT_TIMESTAMP in table.column_names:
            table = table.drop_columns([EVENT_TIMESTAMP])
        index = table.column_names.index(timestamp_column)
        table = table.rename_columns(
            [EVENT_TIMESTAMP if i == index else n for i, n in enumerate(table.column_names)]
        )
    if timestamp_column is not None and pa.types.is_date(table.schema.field(EVENT_TIMESTAMP).type):
        index = table.column_names.index(EVENT_TIMESTAMP)
        table = table.set_column(index, EVENT_TIMESTAMP, table.column(index).cast(pa.timestamp("us")))
    table = table.append_column(ROW_ID, pa.array(range(table.num_rows), pa.int64()))
    return table.to_pandas()


def attach_features(
    entities: pa.Table, result: pa.Table, columns: Sequence[str], given: Sequence[str], node: str
) -> pa.Table:
    """`entities` with the feature columns of Feast's `result` appended, matched by row id, in its order.

    `columns` are the expected feature column names (in the order asked for); `given` the columns that went
    into Feast. Rows Feast returned nothing for get nulls.
    """
    import numpy as np
    import pyarrow as pa

    names = list(columns)
    if not all(name in result.column_names for name in names):  # a naming Feast chose (e.g. versioned views)
        names = [c for c in result.column_names if c not in given and c != ROW_ID]
    if ROW_ID not in result.column_names:
        raise FeastStoreError(
            f"{node}: Feast's result lost the row ids of the entity table; please report this"
        )
    rows = result.column(ROW_ID).to_numpy(zero_copy_only=False).astype(np.int64)
    positions = np.full(entities.num_rows, -1, dtype=np.int64)
    positions[rows] = np.arange(len(rows), dtype=np.int64)
    indices = pa.array(positions, mask=positions < 0)
    out = entities
    for name in names:
        out = out.append_column(name, result.column(name).take(indices))
    return out

"""The Feast nodes: historical (point-in-time-correct) features, online features, materialization.

Each node opens the repository given on its `repo` input (`rayweave_feast.repo.open_store`), checks what it is
asked for against the registry and the entity table, then calls Feast's Python SDK. Feature values come back
appended to the caller's entity table, in its row order (`rayweave_feast.tables`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

import pyarrow as pa

from nodes import node
from rayweave_feast.errors import FeastNodeError, FeastParamError, FeastStoreError
from rayweave_feast.repo import check_sources, open_store, parse_refs, resolve_views
from rayweave_feast.tables import (
    ROW_ID,
    attach_features,
    check_clashes,
    check_join_keys,
    check_timestamp,
    entity_frame,
)

HISTORICAL = "feast/historical_features@1"
ONLINE = "feast/online_features@1"
MATERIALIZE = "feast/materialize@1"


class TableOut(TypedDict):
    """A single output port ``table``: the entity table with one column per feature appended."""

    table: pa.Table


class MaterializeOut(TypedDict):
    """What `materialize` loaded: the repository (to wire into `online_features`), the views, the end time."""

    repo: str
    views: list[str]
    end: str


def _feast_failed(node: str, what: str, exc: Exception) -> FeastStoreError:
    return FeastStoreError(f"{node}: Feast failed to {what}: {type(exc).__name__}: {exc}")


@node(
    plugin="feast",
    version="1.0.0",
    category="features",
    tags=("table", "features", "feast", "ml"),
    cache=False,
    deterministic=False,
)
def historical_features(
    entities: pa.Table,
    repo: str,
    *,
    features: list[str],
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
) -> TableOut:
    """Join feature values to entity rows as of each row's event timestamp (point-in-time correct).

    For every row, each feature takes its latest value whose timestamp is at or before the row's timestamp
    and within the feature view's TTL; a value from after the row's time is never used, so a training set
    built this way does not leak the future. Rows with no value in range get nulls. Not cached: the offline
    store can change under the same repository.

    Args:
        entities: one row per example: the join-key columns of the feature views (e.g. ``driver_id``), the
            event timestamp column, and any other columns (labels), which are passed through unchanged.
        repo: the Feast repository: a directory holding ``feature_store.yaml``, below one of the
            installation's data roots (``RAYWEAVE_DATA_ROOTS``), as are the local files it names (a file
            registry, a SQLite online store, the file sources read).
        features: the features to join, as ``feature_view:feature`` (e.g. ``driver_stats:conv_rate``).
        full_feature_names: name the feature columns ``feature_view__feature`` instead of ``feature``
            (needed when two views have a feature of the same name).
        timestamp_column: the column of ``entities`` holding each row's event time (a timestamp or a date;
            times without a time zone are taken as UTC).

    Returns:
        table: ``entities``, all rows in their order, with one column per feature appended, in the order of
            ``features``.
    """
    refs = parse_refs(features, HISTORICAL)
    check_timestamp(entities, timestamp_column, HISTORICAL)
    store = open_store(repo, HISTORICAL)
    views = resolve_views(store, refs, HISTORICAL)
    check_sources(store, views.values(), HISTORICAL)
    check_join_keys(entities, views, HISTORICAL)
    columns = [ref.column(full_feature_names) for ref in refs]
    check_clashes(entities, columns, HISTORICAL)
    frame = entity_frame(entities, timestamp_column)
    try:
        job = store.get_historical_features(
            entity_df=frame, features=[ref.text for ref in refs], full_feature_names=full_feature_names
        )
        result = job.to_arrow()
    except FeastNodeError:
        raise
    except Exception as exc:  # Feast and its offline stores raise many kinds
        raise _feast_failed(HISTORICAL, "read historical features", exc) from exc
    return {"table": attach_features(entities, result, columns, list(frame.columns), HISTORICAL)}


@node(
    plugin="feast",
    version="1.0.0",
    category="features",
    tags=("table", "features", "feast", "ml", "serving"),
    cache=False,
    deterministic=False,
)
def online_features(
    entities: pa.Table, repo: str, *, features: list[str], full_feature_names: bool = False
) -> TableOut:
    """Look up the latest feature values of entity rows in the online store (for serving and scoring).

    The online store holds what was last materialized into it (`feast/materialize@1`); an entity it has no
    value for gets nulls. Not cached: the online store changes.

    Args:
        entities: one row per lookup, with the join-key columns of the feature views (e.g. ``driver_id``);
            other columns are passed through unchanged.
        repo: the Feast repository: a directory holding ``feature_store.yaml``, below one of the
            installation's data roots; a local (SQLite) online store must lie below them too. Wire it from
            `feast/materialize@1`'s ``repo`` output to look up after a materialization.
        features: the features to look up, as ``feature_view:feature``.
        full_feature_names: name the feature columns ``feature_view__feature`` instead of ``feature``.

    Returns:
        table: ``entities``, rows in their order, with one column per feature appended, in the order of
            ``features``.
    """
    refs = parse_refs(features, ONLINE)
    store = open_store(repo, ONLINE)
    views = resolve_views(store, refs, ONLINE)
    check_join_keys(entities, views, ONLINE)
    columns = [ref.column(full_feature_names) for ref in refs]
    check_clashes(entities, columns, ONLINE)
    keyed = all(hasattr(view, "join_keys") for view in views.values())  # on-demand views may need more
    given = sorted({k for v in views.values() for k in v.join_keys}) if keyed else entities.column_names
    rows = {name: entities.column(name).to_pylist() for name in given}
    try:
        response = store.get_online_features(
            features=[ref.text for ref in refs], entity_rows=rows, full_feature_names=full_feature_names
        )
        result = response.to_arrow()
    except FeastNodeError:
        raise
    except Exception as exc:
        raise _feast_failed(ONLINE, "read online features", exc) from exc
    if result.num_rows != entities.num_rows:
        raise FeastStoreError(
            f"{ONLINE}: the online store answered {result.num_rows} rows for {entities.num_rows} entity rows"
        )
    result = result.append_column(ROW_ID, pa.array(range(result.num_rows), pa.int64()))  # rows kept order
    return {"table": attach_features(entities, result, columns, given, ONLINE)}


def _timestamp(value: str, port: str, node: str) -> datetime | None:
    """An ISO 8601 input as an aware datetime (UTC when it has no zone); "" is None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise FeastParamError(
            f"{node}: input port {port!r}: {value!r} is not an ISO 8601 time; write e.g. "
            f"'2026-01-31T12:00:00+00:00'"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _views_to_materialize(store: Any, views: list[str] | None, node: str) -> list[Any]:
    known = {view.name: view for view in store.list_feature_views() if view.online}
    if not views:
        return list(known.values())
    unknown = [name for name in views if name not in known]
    if unknown:
        raise FeastParamError(
            f"{node}: param 'views' names {unknown}, not online feature views of project {store.project!r} "
            f"(online feature views: {', '.join(sorted(known)) or 'none'}); use those, or leave 'views' empty "
            f"for all"
        )
    return [known[name] for name in views]


@node(
    plugin="feast",
    version="1.0.0",
    category="features",
    tags=("features", "feast"),
    cache=False,
    deterministic=False,
)
def materialize(
    repo: str, end: str = "", start: str = "", *, views: list[str] | None = None
) -> MaterializeOut:
    """Load feature values from the offline store into the online store, up to `end`.

    Without `start` the load is incremental: each view continues from where its last materialization ended
    (the first time: from `end` minus the view's TTL). With `start`, exactly the values timestamped between
    `start` and `end` are loaded. The online store then holds, per entity, the latest value up to `end`.
    Never cached: loading is the point.

    Args:
        repo: the Feast repository: a directory holding ``feature_store.yaml``, below one of the
            installation's data roots, as are its local files (registry, SQLite online store, file sources).
        end: the time to load up to, ISO 8601 (e.g. ``2026-01-31T12:00:00+00:00``; no zone means UTC);
            empty: now.
        start: the time to load from, ISO 8601; empty: incremental, from each view's last materialization.
        views: the feature views to load (default null or empty: every online feature view).

    Returns:
        repo: the repository, unchanged, for wiring into `feast/online_features@1` (which then runs after).
        views: the names of the feature views loaded.
        end: the end time used, ISO 8601 in UTC.
    """
    end_time = _timestamp(end, "end", MATERIALIZE) or datetime.now(UTC)
    start_time = _timestamp(start, "start", MATERIALIZE)
    if start_time is not None and start_time >= end_time:
        raise FeastParamError(
            f"{MATERIALIZE}: input port 'start' ({start_time.isoformat()}) is not before 'end' "
            f"({end_time.isoformat()}); give a start earlier than the end, or none for an incremental load"
        )
    store = open_store(repo, MATERIALIZE)
    try:
        chosen = _views_to_materialize(store, views, MATERIALIZE)
    except FileNotFoundError as exc:
        raise FeastParamError(
            f"{MATERIALIZE}: input port 'repo': the repository has no registry yet ({exc}); run `feast apply`"
        ) from exc
    if not chosen:
        raise FeastParamError(
            f"{MATERIALIZE}: input port 'repo': project {store.project!r} has no online feature views; "
            f"`feast apply` one with online=True first"
        )
    check_sources(store, chosen, MATERIALIZE)
    names = [view.name for view in chosen]
    try:
        if start_time is None:
            store.materialize_incremental(end_time, feature_views=names)
        else:
            store.materialize(start_time, end_time, feature_views=names)
    except Exception as exc:
        raise _feast_failed(MATERIALIZE, f"materialize {names}", exc) from exc
    return {"repo": repo, "views": names, "end": end_time.astimezone(UTC).isoformat()}

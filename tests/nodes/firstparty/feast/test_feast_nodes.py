"""The Feast nodes in the plugin's runtime environment on Ray, against real local Feast repositories:
point-in-time-correct historical retrieval, online lookup after materialization, and bad input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from nodes.plugins.testing import run_plugin_node
from tests.nodes.firstparty.feast.repos import STATS, TTL, hour, make_repo

pytestmark = pytest.mark.ray

HISTORICAL = "feast/historical_features@1"
ONLINE = "feast/online_features@1"
MATERIALIZE = "feast/materialize@1"
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]


def as_of(driver: int, moment: datetime) -> dict[str, Any]:
    """The reference join: the latest value of `driver` at or before `moment` and within the TTL, else nulls."""
    rows = [
        row
        for row in STATS.to_pylist()
        if row["driver_id"] == driver and moment - TTL <= row["event_timestamp"] <= moment
    ]
    latest = max(rows, key=lambda row: row["event_timestamp"], default=None)
    return {
        "conv_rate": latest["conv_rate"] if latest else None,
        "trips": latest["trips"] if latest else None,
    }


def test_historical_features_join_each_row_as_of_its_own_time(
    feast_nodes: dict[str, Any], repo: Path
) -> None:
    # Rows out of time order, with times between and exactly at value changes, before any value, past the
    # TTL, and for an unknown driver. Times carry no zone (taken as UTC) and sit in a column named "ts".
    asked = [
        (1, 3.5),  # 0.9 exists at hour 4: the future, never joined; 0.5 (hour 2) is the value then
        (1, 1.0),
        (1, 2.0),  # a value timestamped exactly at the row's time counts
        (1, -1.0),  # before any value: null
        (2, 2.0),
        (2, 4.5),  # 0.3 from hour 1 is older than the 3 h TTL: null
        (1, 6.0),
        (3, 2.0),  # unknown driver: null
    ]
    entities = pa.table(
        {
            "driver_id": pa.array([d for d, _ in asked], pa.int64()),
            "ts": pa.array([hour(h).replace(tzinfo=None) for _, h in asked], pa.timestamp("us")),
            "label": pa.array([i % 2 for i in range(len(asked))], pa.int64()),
        }
    )
    result = run_plugin_node(
        feast_nodes[HISTORICAL],
        {"entities": entities, "repo": str(repo)},
        {"features": FEATURES, "timestamp_column": "ts"},
    )
    table = result["table"]
    # The caller's table, every row in its order, with the features appended in the order asked for.
    assert table.column_names == ["driver_id", "ts", "label", "conv_rate", "trips"]
    assert table.select(["driver_id", "ts", "label"]).equals(entities)
    got = table.select(["conv_rate", "trips"]).to_pylist()
    assert got == [as_of(driver, hour(h)) for driver, h in asked]
    assert [row["conv_rate"] for row in got] == [0.5, 0.1, 0.5, None, 0.3, None, 0.9, None]


def test_historical_features_with_full_names_and_the_default_timestamp_column(
    feast_nodes: dict[str, Any], repo: Path
) -> None:
    entities = pa.table(
        {"driver_id": pa.array([2, 1], pa.int64()), "event_timestamp": pa.array([hour(1.5), hour(4)])}
    )
    table = run_plugin_node(
        feast_nodes[HISTORICAL],
        {"entities": entities, "repo": str(repo)},
        {"features": ["driver_stats:trips"], "full_feature_names": True},
    )["table"]
    assert table.column_names == ["driver_id", "event_timestamp", "driver_stats__trips"]
    assert table.column("driver_stats__trips").to_pylist() == [7, 30]


def test_a_date_column_is_taken_as_midnight_utc(feast_nodes: dict[str, Any], repo: Path) -> None:
    days = pa.array([hour(0).date(), hour(24).date()], pa.date32())  # midnight: 0.1 (hour 0); a day on: none
    entities = pa.table({"driver_id": pa.array([1, 1], pa.int64()), "day": days})
    table = run_plugin_node(
        feast_nodes[HISTORICAL],
        {"entities": entities, "repo": str(repo)},
        {"features": ["driver_stats:conv_rate"], "timestamp_column": "day"},
    )["table"]
    assert table.schema.field("day").type == pa.date32()  # the caller's column, unchanged
    assert table.column("conv_rate").to_pylist() == [0.1, None]


def test_online_lookup_reads_what_was_materialized(feast_nodes: dict[str, Any], tmp_path: Path) -> None:
    repo = str(make_repo(tmp_path / "repo"))
    entities = pa.table({"driver_id": pa.array([3, 1, 2], pa.int64()), "request": ["a", "b", "c"]})
    online, materialize = feast_nodes[ONLINE], feast_nodes[MATERIALIZE]

    def lookup(**params: Any) -> list[dict[str, Any]]:
        table = run_plugin_node(
            online, {"entities": entities, "repo": repo}, {"features": FEATURES, **params}
        )
        return list(table["table"].to_pylist())

    assert [row["conv_rate"] for row in lookup()] == [None, None, None]  # nothing materialized yet

    window = run_plugin_node(
        materialize, {"repo": repo, "start": hour(-10).isoformat(), "end": hour(3).isoformat()}
    )
    assert dict(window) == {"repo": repo, "views": ["driver_stats"], "end": "2026-01-01T03:00:00+00:00"}
    # Per driver the latest value up to hour 3; the request column passes through, rows keep their order.
    assert lookup() == [
        {"driver_id": 3, "request": "a", "conv_rate": None, "trips": None},
        {"driver_id": 1, "request": "b", "conv_rate": 0.5, "trips": 20},
        {"driver_id": 2, "request": "c", "conv_rate": 0.3, "trips": 7},
    ]

    # Incremental: from where the last load ended (hour 3) up to hour 5 (no zone: UTC).
    later = run_plugin_node(materialize, {"repo": repo, "end": "2026-01-01T05:00:00"})
    assert later["end"] == "2026-01-01T05:00:00+00:00"
    rows = lookup(full_feature_names=True)
    assert [row["driver_stats__conv_rate"] for row in rows] == [None, 0.9, 0.3]
    assert [row["driver_stats__trips"] for row in rows] == [None, 30, 7]


ENTITIES = pa.table({"driver_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([hour(1)])})


@pytest.mark.parametrize(
    ("node", "inputs", "params", "message"),
    [
        (
            HISTORICAL,
            {},
            {"features": ["driver_stat:conv_rate"]},
            r"feast/historical_features@1: param 'features': 'driver_stat:conv_rate' names feature view "
            r"'driver_stat', which project 'rides' does not have \(feature views: driver_stats\)",
        ),
        (
            ONLINE,
            {},
            {"features": ["driver_stats:speed"]},
            r"param 'features': 'driver_stats:speed' names feature 'speed', which feature view "
            r"'driver_stats' does not have \(features: conv_rate, trips\)",
        ),
        (ONLINE, {}, {"features": ["conv_rate"]}, r"'conv_rate' is not a feature reference; write"),
        (ONLINE, {}, {"features": []}, r"param 'features' is empty"),
        (
            HISTORICAL,
            {"entities": pa.table({"driver": [1], "event_timestamp": pa.array([hour(1)])})},
            {"features": FEATURES},
            r"input port 'entities' has no column 'driver_id', the join key of feature view 'driver_stats' "
            r"\(columns: driver, event_timestamp\)",
        ),
        (
            HISTORICAL,
            {"entities": pa.table({"driver_id": [1]})},
            {"features": FEATURES},
            r"input port 'entities' has no event timestamp column 'event_timestamp' \(columns: driver_id\)",
        ),
        (
            HISTORICAL,
            {"entities": pa.table({"driver_id": [1], "event_timestamp": ["2026-01-01"]})},
            {"features": FEATURES},
            r"column 'event_timestamp' is string, not a timestamp; convert it",
        ),
        (
            HISTORICAL,
            {"entities": ENTITIES.append_column("trips", pa.array([5]))},
            {"features": FEATURES},
            r"'entities' already has column\(s\) trips, which the features would be named",
        ),
        (
            ONLINE,
            {"repo": "/nonexistent/feast-repo"},
            {"features": FEATURES},
            r"input port 'repo': '/nonexistent/feast-repo' is not a Feast repository: it does not exist",
        ),
        (MATERIALIZE, {"end": "yesterday"}, {}, r"input port 'end': 'yesterday' is not an ISO 8601 time"),
        (
            MATERIALIZE,
            {},
            {"views": ["driver_statz"]},
            r"param 'views' names \['driver_statz'\], not online feature views of project 'rides' "
            r"\(online feature views: driver_stats\)",
        ),
    ],
    ids=[
        "unknown-view",
        "unknown-feature",
        "malformed-ref",
        "no-features",
        "missing-join-key",
        "missing-timestamp",
        "string-timestamp",
        "column-clash",
        "no-repo",
        "bad-time",
        "unknown-view-to-load",
    ],
)
def test_bad_input_names_the_node_and_the_field(
    feast_nodes: dict[str, Any],
    repo: Path,
    node: str,
    inputs: dict[str, Any],
    params: dict[str, Any],
    message: str,
) -> None:
    defaults: dict[str, Any] = {"repo": str(repo)}
    if node != MATERIALIZE:
        defaults["entities"] = ENTITIES
    with pytest.raises(Exception, match=message) as caught:
        run_plugin_node(feast_nodes[node], {**defaults, **inputs}, params)
    assert node in str(caught.value)


def test_a_directory_without_feature_store_yaml_is_refused(
    feast_nodes: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(
        Exception, match=r"it has no feature_store.yaml; point 'repo' at the directory holding"
    ):
        run_plugin_node(
            feast_nodes[ONLINE], {"entities": ENTITIES, "repo": str(tmp_path)}, {"features": FEATURES}
        )

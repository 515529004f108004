"""Real local Feast repositories for the Feast plugin's tests: feature_store.yaml (file offline store over a
Parquet file the test writes, SQLite online store) and a registry made with the Feast Python SDK, as
`feast apply` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: The start of the test data's time line; `hour(n)` is n hours after it.
T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: The feature view's TTL: a value older than this at an entity row's time is not joined.
TTL = timedelta(hours=3)


def hour(n: float) -> datetime:
    """`n` hours after T0 (UTC)."""
    return T0 + timedelta(hours=n)


#: The offline data: driver 1's conversion rate and trip count change over time; driver 2 has one value.
STATS = pa.table(
    {
        "driver_id": pa.array([1, 1, 1, 2], pa.int64()),
        "conv_rate": pa.array([0.1, 0.5, 0.9, 0.3], pa.float64()),
        "trips": pa.array([10, 20, 30, 7], pa.int64()),
        "event_timestamp": pa.array([hour(0), hour(2), hour(4), hour(1)], pa.timestamp("us", tz="UTC")),
    }
)

FEATURE_STORE_YAML = """\
project: rides
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def make_repo(root: Path, *, source_path: Path | None = None) -> Path:
    """A Feast repository in `root` (created): feature_store.yaml, the Parquet source, and the registry with
    entity `driver` and feature view `driver_stats` (conv_rate, trips; TTL 3 h), applied with the SDK.

    `source_path`: where the Parquet file goes (default: `data/driver_stats.parquet` inside the repository).
    """
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    source_file = source_path or root / "data" / "driver_stats.parquet"
    source_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(STATS, source_file)
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="driver_stats_source",
        path=str(source_file) if source_path else "data/driver_stats.parquet",
        timestamp_field="event_timestamp",
    )
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=TTL,
        schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)],
        source=source,
        online=True,
    )
    FeatureStore(repo_path=str(root)).apply([driver, source, view])
    return root

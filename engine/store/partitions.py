"""Which tables PostgreSQL partitions, and how their partitions are named (migration 0010, ADR 023).

`events` and `node_runs` are partitioned by hash of the run id on PostgreSQL; SQLite and MariaDB/MySQL keep plain
tables. The partitions are the database's business, not the models': a schema comparison (Alembic's
autogenerate, the schema test) leaves them out with `is_partition`.
"""

from __future__ import annotations

import re

#: The tables partitioned by hash of `run_id` on PostgreSQL.
PARTITIONED_TABLES = ("events", "node_runs")

#: Hash partitions per table (fixed by migration 0010; changing it means copying the tables again).
PARTITIONS = 16

_PARTITION_NAME = re.compile(rf"^(?:{'|'.join(PARTITIONED_TABLES)})_p\d\d$")


def partition_name(table: str, remainder: int) -> str:
    """The name of one hash partition: `events_p00` ... `events_p15`."""
    return f"{table}_p{remainder:02d}"


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of the partitions (not a table of the models)."""
    return name is not None and _PARTITION_NAME.match(name) is not None

"""Column types shared by the store's tables, chosen so every backend behaves the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

#: SQLAlchemy's dialect names of MariaDB and MySQL (one family: the same SQL, the same driver).
MYSQL_DIALECTS = ("mysql", "mariadb")


def is_mysql(dialect: Dialect | str) -> bool:
    """Whether `dialect` (or its name) is MariaDB or MySQL."""
    return (dialect if isinstance(dialect, str) else dialect.name) in MYSQL_DIALECTS


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores `timestamptz`; SQLite, MariaDB and MySQL have no time zones, so values are stored as
    naive UTC (on MariaDB/MySQL as DATETIME(6): microseconds, like the others) and made aware again on the way
    out. Code comparing timestamps therefore never mixes naive and aware values.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """DATETIME(6) on MariaDB/MySQL (their plain DATETIME drops the fraction of a second)."""
        if is_mysql(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware timestamp to UTC (naive UTC on SQLite); reject naive input, which is ambiguous."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone; pass an aware datetime (e.g. in UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" or is_mysql(dialect) else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored timestamp as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON everywhere; JSONB on PostgreSQL so payloads can be indexed and queried later (on MariaDB JSON is
#: LONGTEXT checked by JSON_VALID).
JSONValue = sa.JSON().with_variant(JSONB(), "postgresql")


#: Long text (ciphertexts, document updates, errors): LONGTEXT on MariaDB/MySQL, whose TEXT stops at 64 KiB.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL_DIALECTS)

#: A string of no fixed length (VARCHAR on PostgreSQL): TEXT on MariaDB/MySQL, where VARCHAR needs a length.
UnboundedString = sa.String().with_variant(mysql.TEXT(), *MYSQL_DIALECTS)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only clock the store uses)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random identifier (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def json_default(value: Any) -> Any:
    """`json.dumps` fallback for the few non-JSON values records carry (timestamps)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable")

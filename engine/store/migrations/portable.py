"""Column types the migrations share so that the same migrations build the schema on SQLite, PostgreSQL and
MariaDB/MySQL.

Each is what the migrations always meant on SQLite and PostgreSQL (the DDL there is unchanged), spelled out for
MariaDB/MySQL, whose defaults differ: DATETIME keeps no fraction of a second, VARCHAR needs a length, TEXT holds
at most 64 KiB. Frozen like the migrations themselves: a later change of the models must not change them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

_MYSQL = ("mysql", "mariadb")

#: A timestamp: timestamptz on PostgreSQL, DATETIME(6) (naive UTC, microseconds) on MariaDB/MySQL.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)

#: A string without a length (VARCHAR on PostgreSQL, TEXT on SQLite): TEXT on MariaDB/MySQL.
UNBOUNDED_STRING = sa.String().with_variant(mysql.TEXT(), *_MYSQL)

#: Long text (ciphertexts, document updates): LONGTEXT on MariaDB/MySQL, whose TEXT stops at 64 KiB.
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL)

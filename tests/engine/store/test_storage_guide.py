"""The examples of docs/guides/storage-backends.md work as written: the database it tells to create on MariaDB
is made like the tested ones, and its `rayweave db migrate` command line copies an installation."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.store import open_store
from serve.cli import build_app
from tests.engine.store import sql_support
from tests.engine.store.conformance.populate import populate

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "storage-backends.md"


@pytest.mark.mariadb
def test_the_database_the_guide_creates_is_set_up_like_the_tested_ones(mariadb_url: str) -> None:
    # Every MariaDB test runs on a database made by tests.engine.store.sql_support: the guide's statement must
    # make the same (a migration on yet another database would cost seconds and prove nothing more).
    sql = re.search(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert sql is not None, "the guide lost its SQL block"
    create = next(line for line in sql.group(1).splitlines() if line.startswith("CREATE DATABASE"))
    name = f"rayweave_test_guide_{uuid.uuid4().hex[:8]}"
    query = (
        "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
        "WHERE schema_name = %s"
    )
    with sql_support.mariadb_admin_connection() as conn:
        conn.exec_driver_sql(
            create.split(";")[0].replace("CREATE DATABASE rayweave", f"CREATE DATABASE {name}")
        )
        try:
            made = conn.exec_driver_sql(query, (name,)).one()
            tested = conn.exec_driver_sql(query, (mariadb_url.rsplit("/", 1)[1],)).one()
        finally:
            conn.exec_driver_sql(f"DROP DATABASE `{name}`")
    assert tuple(made) == tuple(tested) == ("utf8mb4", "utf8mb4_nopad_bin")


def test_the_guides_migrate_command_copies_an_installation(sqlite_template: Path, tmp_path: Path) -> None:
    line = next(
        x for x in GUIDE.read_text(encoding="utf-8").splitlines() if x.startswith("rayweave db migrate")
    )
    assert "--to" in line and "--url SOURCE" in line and "--json" in line
    for name in ("a.db", "b.db"):
        shutil.copy(sqlite_template, tmp_path / name)
    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source)
    source.close()
    args = [
        "db",
        "migrate",
        "--to",
        f"sqlite:///{tmp_path / 'b.db'}",
        "--url",
        f"sqlite:///{tmp_path / 'a.db'}",
    ]
    result = CliRunner().invoke(build_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(build_app(), args)
    assert (
        again.exit_code == 0
        and "resumed" in again.output
        and "events: 10 rows, 0 copied, hash ok" in again.output
    )

"""``builtin/sql_files@1``: a DuckDB query over Parquet and CSV files that it scans directly.

Each file becomes a view (``read_parquet`` or ``read_csv_auto``) under its relation name, so DuckDB fuses the
read into the query's scan and pushes projections and filters down into it, instead of the node pipeline
first materializing the whole file as an Arrow table.

Kept apart from ``sql`` because of caching: the result depends on the files' contents, not only on their
paths, so the node is declared non-deterministic like ``read_csv`` and ``read_parquet``. The engine runs it
on every run and keys the nodes after it on the content of its result, so a file rewritten under the same
path is never answered from the cache. ``sql`` itself stays deterministic and cacheable on its tables.

The connection may read exactly these files (``allowed_paths``) and the wired tables, nothing else.
Because DuckDB's allowed paths are writable too, the query must be a single ``SELECT``: ``COPY ... TO`` one
of the files, or any statement after the ``SELECT``, is refused before anything runs.

In a run, each file must lie below the run's data roots; the node opens it safely itself and DuckDB reads
the opened file through its descriptor (`nodes.builtin.paths`), so a path changed after the check cannot
lead elsewhere. Called directly, outside a run, the node reads wherever its process may.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from nodes import context, node
from nodes.access import AccessPolicy
from nodes.builtin.data import SCRATCH_PREFIX, TableOut, base_config, query_tables
from nodes.builtin.errors import DataFileError, InputValueError, SqlQueryError
from nodes.builtin.paths import fd_path, open_file

if TYPE_CHECKING:
    import duckdb

NODE = "builtin/sql_files@1"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# File name ending -> DuckDB reader. Longest endings first, so ``.csv.gz`` wins over ``.gz``.
_READERS: dict[str, str] = {
    ".parquet": "parquet",
    ".csv.gz": "csv",
    ".tsv.gz": "tsv",
    ".csv": "csv",
    ".tsv": "tsv",
}

SUPPORTED = ", ".join(_READERS)
"""The file name endings input port ``files`` accepts, for messages and docs."""


@dataclass(frozen=True)
class DataFile:
    """One entry of input port ``files``, checked: the relation name, the path given, its reader, and what
    DuckDB opens (`source`: the path itself, or the descriptor path of the file the node opened)."""

    name: str
    path: str
    reader: str
    source: str = ""

    @property
    def opens(self) -> str:
        """The path DuckDB reads."""
        return self.source or self.path

    @property
    def compression(self) -> Literal["gzip", "auto"]:
        """DuckDB's ``compression`` for the file (named by the path given: the source has no ending)."""
        return "gzip" if self.path.lower().endswith(".gz") else "auto"


def check_files(files: Mapping[str, str], wired: Collection[str]) -> list[DataFile]:
    """Check input port ``files`` against the wired table ports ``wired`` (names and endings only).

    Raises `InputValueError` for no files at all, a relation name that is not a plain identifier, that
    names a wired port or another key (DuckDB names ignore letter case), or a path with an unsupported
    ending. The files themselves are checked when they are opened (`open_files`).
    """
    if not files:
        raise InputValueError(
            f"{NODE}: input port 'files' is empty; give at least one file (relation name -> path), or use "
            "builtin/sql@1 to query wired tables only"
        )
    taken = {port.lower(): f"the wired input port {port!r}" for port in wired}
    checked = []
    for name, path in files.items():
        where = f"{NODE}: input port 'files': key {name!r}"
        if not _NAME.fullmatch(name):
            raise InputValueError(
                f"{where} is not a valid relation name; use letters, digits and underscores, not starting "
                "with a digit (e.g. 'orders')"
            )
        clash = taken.get(name.lower())
        if clash is not None:
            raise InputValueError(
                f"{where} names the same relation as {clash}; rename the key (names ignore letter case)"
            )
        taken[name.lower()] = f"the key {name!r}"
        reader = next((r for end, r in _READERS.items() if path.lower().endswith(end)), None)
        if reader is None:
            raise InputValueError(
                f"{where}: {path!r} is not a Parquet or CSV file; use a path ending in {SUPPORTED}, or read "
                "the file with another node and wire the table to one of the ports a, b, c, d"
            )
        checked.append(DataFile(name, path, reader))
    return checked


def open_files(stack: contextlib.ExitStack, policy: AccessPolicy, files: list[DataFile]) -> list[DataFile]:
    """Open each file within ``policy`` (closed with ``stack``); returns them with their descriptor paths.

    Raises `AccessDeniedError` for a path outside the data roots and `DataFileError` for a path that is not
    an existing file.
    """
    opened = []
    for f in files:
        fd = stack.enter_context(open_file(policy, f.path, f"{NODE}: input port 'files': key {f.name!r}"))
        opened.append(replace(f, source=fd_path(fd)))
    return opened


def bind_files(con: duckdb.DuckDBPyConnection, files: list[DataFile]) -> None:
    """Create a view per file on ``con``; its ``allowed_paths`` must already list the files."""
    import duckdb

    for f in files:
        try:
            if f.reader == "parquet":
                relation = con.read_parquet(f.opens)
            elif f.reader == "tsv":
                relation = con.read_csv(f.opens, sep="\t", compression=f.compression)
            else:
                relation = con.read_csv(f.opens, compression=f.compression)
            relation.create_view(f.name)
        except duckdb.Error as exc:
            kind = "Parquet" if f.reader == "parquet" else "CSV"
            reason = str(exc).replace(f.opens, f.path)
            raise DataFileError(
                f"{NODE}: input port 'files': key {f.name!r}: cannot read {f.path!r} as {kind}: {reason}; "
                "check the file"
            ) from exc


def require_select(con: duckdb.DuckDBPyConnection, query: str, param: str) -> None:
    """Refuse ``query`` unless it is exactly one ``SELECT`` (the only statements that cannot write)."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise SqlQueryError(f"{NODE}: param {param!r}: query failed: {exc}") from exc
    kinds = [s.type for s in statements]
    if kinds != [duckdb.StatementType.SELECT]:
        raise SqlQueryError(
            f"{NODE}: param {param!r} must be exactly one SELECT statement, since the query can reach "
            f"the files of input port 'files' (got {', '.join(k.name for k in kinds) or 'none'}); drop the "
            "other statements (a PIVOT needs an explicit IN (...) list)"
        )


def _connect(scratch: str, files: list[DataFile]) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB that reads ``files`` (bound as views) and nothing else, settings locked."""
    import duckdb

    con = duckdb.connect(config=base_config(scratch))
    try:
        # DuckDB takes allowed_paths only once the database is running, and before external access is off.
        # Then external access goes off (no other file, no network, no extensions) and the configuration is
        # locked so the query cannot SET its way back out.
        con.execute("SET allowed_paths = ?", [[f.opens for f in files]])
        con.execute("SET enable_external_access = false")
        bind_files(con, files)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


@node(
    plugin="builtin",
    version="1.0.0",
    category="data",
    tags=("table", "sql", "duckdb", "io"),
    deterministic=False,
)
def sql_files(
    files: dict[str, str],
    a: pa.Table | None = None,
    b: pa.Table | None = None,
    c: pa.Table | None = None,
    d: pa.Table | None = None,
    *,
    query: str,
) -> TableOut:
    """Run a DuckDB SQL ``query`` over Parquet and CSV ``files`` scanned in place, and tables ``a`` to ``d``.

    DuckDB reads each file itself, under the relation name its key gives, so only the columns and row groups
    the query needs are read: faster than ``read_parquet`` + ``sql`` for large files. The query can read
    these files and the wired tables, nothing else (no other file, no network, no writes).

    Declared non-deterministic, like ``read_csv`` and ``read_parquet``: a file can change under the same
    path, so the engine runs the node on every run (never from the cache) and keys the nodes after it on the
    content of its result. Use ``sql`` for queries over tables only; that one is cached.

    Args:
        files: relation name -> path of a file the query scans under that name (required, at least one),
            e.g. ``{"orders": "/data/orders.parquet"}``. Paths end in ``.parquet``, ``.csv``, ``.tsv``,
            ``.csv.gz`` or ``.tsv.gz`` (CSV types and dialect are inferred), on the file system of the
            worker that runs the node, below the installation's data roots (``RAYWEAVE_DATA_ROOTS``; use
            absolute paths). Names are identifiers (letters, digits, underscores) other than the wired
            ports' names. A path outside the data roots (also through ``..`` or a symlink) is refused; a
            missing or unreadable file fails the node.
        a: the table the query calls ``a`` (optional; when unwired, ``a`` does not exist in the query,
            and a file key may use the name).
        b: the table the query calls ``b`` (optional; when unwired, ``b`` does not exist in the query).
        c: the table the query calls ``c`` (optional; when unwired, ``c`` does not exist in the query).
        d: the table the query calls ``d`` (optional; when unwired, ``d`` does not exist in the query).
        query: exactly one DuckDB ``SELECT`` statement (required); any other statement, or a second one, is
            refused before anything runs. A syntax error or an unknown table or column fails the node with
            DuckDB's message.

    Returns:
        table: the query's result, with the column names and types DuckDB gives it.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "totals-per-customer-2026",
          "inputs": {"customers": {"type": "String"}},
          "nodes": {
            "customers": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.customers"}},
            "totals": {"type": "builtin/sql_files@1",
                       "in": {"files": {"value": {"orders": "/data/orders.parquet"}}, "a": "customers.table"},
                       "params": {"query": "SELECT a.name, sum(orders.amount) AS total FROM orders JOIN a USING (id) WHERE orders.year = 2026 GROUP BY 1"}}
          },
          "outputs": {"totals": "totals.table"}
        }
        ```
    """
    import tempfile

    tables = {name: t for name, t in (("a", a), ("b", b), ("c", c), ("d", d)) if t is not None}
    checked = check_files(files, tables)
    with contextlib.ExitStack() as stack:
        checked = open_files(stack, context.current().policy, checked)
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX))
        con = _connect(scratch, checked)
        try:
            require_select(con, query, "query")
            table = query_tables(
                "sql_files",
                con,
                query,
                tables,
                relations=[f.name for f in checked],
                hint="add the file to input port 'files' or wire the table to one of the ports a, b, c, d",
            )
        finally:
            con.close()
    return {"table": table}

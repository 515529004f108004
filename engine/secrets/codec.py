"""Values as bytes for encryption at rest: Arrow IPC for tables, pickle for anything else (as stored clear)."""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["decoded", "encoded"]


def _is_table(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"


def encoded(value: Any) -> bytes:
    """A value as bytes: an Arrow IPC file for a `pyarrow.Table`, pickle (protocol 5) for anything else."""
    if _is_table(value):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, value.schema) as writer:
            writer.write_table(value)
        return bytes(sink.getvalue().to_pybytes())
    return pickle.dumps(value, protocol=5)


def decoded(data: bytes, *, table: bool) -> Any:
    """The value `encoded` made `data` from (`table`: it was a table)."""
    if table:
        import pyarrow as pa

        return pa.ipc.open_file(pa.BufferReader(data)).read_all()
    return pickle.loads(data)

"""How values cross the sandbox's wall: inputs go in as a plain pickle (the worker trusts itself); outputs come
out as a pickle read with an allowlist, because unpickling lets the writer name any function to call.

Out of the sandbox come built-in values (numbers, strings, bytes, lists, tuples, dicts, sets), `datetime`,
`decimal`, `uuid` values, numpy arrays and scalars, and Arrow tables, record batches and pandas DataFrames,
which travel as Arrow IPC streams (`dumps_output` replaces them; `loads_output` reads them back). Anything else
is refused with `UnsafeOutputError` naming its class.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from nodes.sandbox.errors import UnsafeOutputError

__all__ = ["arrow_value", "dumps_output", "loads_output"]

#: (module, name) pairs an output pickle may name; every other global is refused.
SAFE_GLOBALS = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
        ("uuid", "SafeUUID"),
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("nodes.sandbox.wire", "arrow_value"),
    }
)
_NUMPY_DTYPES = frozenset({"numpy.dtypes"})


def arrow_value(kind: str, data: bytes) -> Any:
    """Rebuild an Arrow table (`table`), record batch (`batch`) or pandas DataFrame (`pandas`) from an IPC
    stream."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    if kind == "table":
        return table
    if kind == "batch":
        return (
            table.combine_chunks().to_batches()[0]
            if table.num_rows
            else pa.RecordBatch.from_pylist([], table.schema)
        )
    if kind == "pandas":
        return table.to_pandas()
    raise UnsafeOutputError(f"unknown Arrow payload kind {kind!r}")


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class _OutputPickler(pickle.Pickler):
    """Writes Arrow tables, record batches and pandas DataFrames as Arrow IPC streams."""

    def reducer_override(self, obj: Any) -> Any:
        module = type(obj).__module__
        if module.startswith("pyarrow"):
            import pyarrow as pa

            if isinstance(obj, pa.Table):
                return arrow_value, ("table", _ipc(obj))
            if isinstance(obj, pa.RecordBatch):
                return arrow_value, ("batch", _ipc(pa.Table.from_batches([obj])))
        elif module.startswith("pandas"):
            import pandas as pd
            import pyarrow as pa

            if isinstance(obj, pd.DataFrame):
                return arrow_value, ("pandas", _ipc(pa.Table.from_pandas(obj, preserve_index=True)))
        return NotImplemented


def dumps_output(value: Any) -> bytes:
    """Pickle a node's outputs inside the sandbox (Arrow payloads as IPC streams)."""
    buffer = io.BytesIO()
    _OutputPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS or (module in _NUMPY_DTYPES and name.endswith("DType")):
            return super().find_class(module, name)
        raise UnsafeOutputError(
            f"a value of class {module}.{name} may not leave the sandbox (reading it back could run code); "
            "return built-in values (numbers, strings, bytes, lists, dicts, sets), date-times, decimals, UUIDs, "
            "numpy arrays, Arrow tables or pandas DataFrames"
        )


def loads_output(data: bytes) -> Any:
    """Read what `dumps_output` wrote, refusing every class outside the allowlist (`UnsafeOutputError`)."""
    return _SafeUnpickler(io.BytesIO(data)).load()

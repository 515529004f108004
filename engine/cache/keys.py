"""Content hashes of values and cache keys computed at run time (for nodes downstream of non-deterministic ones).

Static cache keys are computed at plan time by `engine.compile.cache_keys`; a node whose inputs come from a
non-deterministic node can only be keyed once those inputs exist, from their content. The hashes here are
stable across processes for the values workflows pass around (JSON-like data, Arrow tables, NumPy arrays).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from typing import Any

_DIGEST_SIZE = 20


def content_hash(value: Any) -> str:
    """A stable hex digest of `value`'s content (Arrow tables and NumPy arrays hashed by their buffers)."""
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    _feed(h, value)
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    # JSON first: it is canonical (sorted keys) where pickle is not for dicts built in another order.
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        text = None
    if text is not None:
        h.update(b"j")
        h.update(text.encode())
        return
    module = type(value).__module__
    if module.startswith("pyarrow") and hasattr(value, "schema") and hasattr(value, "to_batches"):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_table(value)
        h.update(b"a")
        h.update(sink.getvalue().to_pybytes())
        return
    if module == "numpy" and hasattr(value, "tobytes") and hasattr(value, "dtype"):
        h.update(b"n")
        h.update(str(value.dtype).encode())
        h.update(repr(getattr(value, "shape", ())).encode())
        h.update(value.tobytes())
        return
    h.update(b"p")
    h.update(pickle.dumps(value, protocol=5))


def dynamic_cache_key(
    type_id: str, code_version: str, params: Mapping[str, Any], inputs: Mapping[str, Any], scope: str = ""
) -> str:
    """The cache key of a node from its type, code version, params and the content of its input values.

    A non-empty `scope` (e.g. the owner of the run) gives the node a key of its own in that scope, so runs of
    different scopes never share results."""
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    h.update(b"rayweave.dynamic/1\0")
    if scope:
        h.update(b"scope=" + scope.encode() + b"\0")
    h.update(type_id.encode())
    h.update(b"\0")
    h.update(code_version.encode())
    h.update(b"\0")
    h.update(content_hash(dict(params)).encode())
    for port in sorted(inputs):
        h.update(b"\0")
        h.update(port.encode())
        h.update(b"=")
        h.update(content_hash(inputs[port]).encode())
    return "d-" + h.hexdigest()

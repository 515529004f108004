"""Embedding columns as numpy matrices, and top-k cosine similarity (helpers of `rayweave_nlp.embed`)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from rayweave_nlp.errors import NlpInputError
from rayweave_nlp.tables import require_column

# Scores are computed for a block of queries at a time, at most this many floats (64 MB) per block.
_BLOCK_FLOATS = 1 << 24
# Above this many corpus rows per query, candidates are partitioned first instead of fully sorted.
_PARTITION_FROM = 2048


def matrix(node_id: str, table: pa.Table, column: str, *, port: str, param: str) -> tuple[Any, Any]:
    """(vectors, rows): the non-null vectors of an embedding column as a float32 matrix, and their row numbers.

    The column must hold lists of numbers of one length (`nlp/embed@1` writes `fixed_size_list<float>`).
    """
    import numpy as np
    import pyarrow.compute as pc

    require_column(node_id, table, column, param=param, port=port)
    data = table.column(column).combine_chunks()
    kind = data.type
    if not (
        pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
    ) or not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise NlpInputError(
            f"{node_id}: column {column!r} of input port {port!r} holds {kind}, not embeddings (lists of "
            f"numbers); point param {param!r} at the column nlp/embed@1 wrote"
        )
    valid = data.is_valid()
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    kept = data.filter(valid)
    if len(kept) == 0:
        return np.zeros((0, 0), dtype=np.float32), rows
    lengths = pc.list_value_length(kept).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max() or lengths[0] == 0:
        raise NlpInputError(
            f"{node_id}: column {column!r} of input port {port!r} holds vectors of different lengths "
            f"({int(lengths.min())} to {int(lengths.max())}); every embedding must have the same dimension"
        )
    flat = kept.flatten()
    if flat.null_count:
        raise NlpInputError(
            f"{node_id}: column {column!r} of input port {port!r} has null numbers inside its vectors; "
            "embeddings must be complete"
        )
    return flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(kept), int(lengths[0])), rows


def unit_rows(vectors: Any) -> Any:
    """`vectors` with every row scaled to length 1 (zero rows stay zero: their cosine is 0)."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def top_k(queries: Any, corpus: Any, k: int) -> tuple[Any, Any]:
    """(indices, scores), each of shape (len(queries), min(k, len(corpus))): the corpus rows most similar to
    each query by cosine, best first; equal scores in corpus order."""
    import numpy as np

    q, c = unit_rows(queries), unit_rows(corpus)
    keep = min(k, len(c))
    block = max(1, _BLOCK_FLOATS // max(len(c), 1))
    indices, scores = [], []
    for start in range(0, len(q), block):
        sims = q[start : start + block] @ c.T
        if len(c) > _PARTITION_FROM and keep < len(c):
            candidates = np.argpartition(-sims, keep - 1, axis=1)[:, :keep]
            candidates.sort(axis=1)  # corpus order, so that the stable sort below keeps ties in it
        else:
            candidates = np.broadcast_to(np.arange(len(c)), sims.shape)
        picked = np.take_along_axis(sims, candidates, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")[:, :keep]
        indices.append(np.take_along_axis(candidates, order, axis=1))
        scores.append(np.take_along_axis(picked, order, axis=1))
    return np.concatenate(indices), np.concatenate(scores)

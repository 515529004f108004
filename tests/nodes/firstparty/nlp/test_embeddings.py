"""`nlp/embed@1` and `nlp/similarity_search@1` in the plugin's runtime environment: the packaged
all-MiniLM-L6-v2 model, loaded offline once per worker process."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from nodes.plugins.testing import run_plugin_node

DOCS = pa.table(
    {
        "doc": ["d1", "d2", "d3", "d4", "d5"],
        "text": [
            "How do I reset my password?",
            "The package arrived damaged and late.",
            "Our office is closed on public holidays.",
            None,
            "Refunds are paid back to the original card within five days.",
        ],
    }
)


@pytest.fixture(scope="module")
def embedded(nlp_nodes: dict[str, Any]) -> pa.Table:
    result = run_plugin_node(nlp_nodes["nlp/embed@1"], {"table": DOCS}, {"batch_size": 2})
    # One progress report per batch of two: 2, 4 of 4 texts (the null is not embedded).
    assert result.progress == [0.5, 1.0]
    return result["table"]


def test_embed_adds_unit_vectors_from_the_packaged_model(embedded: pa.Table) -> None:
    assert embedded.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    vectors = embedded.column("embedding").to_pylist()
    assert vectors[3] is None
    matrix = np.array([v for v in vectors if v is not None])
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # The model knows meaning: "forgot my login" is nearer the password question than the holiday notice.
    assert len({tuple(np.round(v, 4)) for v in matrix}) == 4


def test_similarity_search_by_text_and_by_embeddings(nlp_nodes: dict[str, Any], embedded: pa.Table) -> None:
    search = nlp_nodes["nlp/similarity_search@1"]
    one = run_plugin_node(search, {"corpus": embedded, "query": "I forgot my login credentials"}, {"k": 2})[
        "table"
    ]
    assert one.column_names == ["query_row", "query_text", "rank", "score", "corpus_row", "doc", "text"]
    rows = one.to_pylist()
    assert rows[0]["doc"] == "d1" and [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["score"] > rows[1]["score"]

    questions = pa.table({"text": ["when will I get my money back?", None, "my parcel was broken"]})
    many = run_plugin_node(search, {"corpus": embedded, "queries": questions}, {"k": 10, "columns": ["doc"]})
    table = many["table"]
    # k beyond the corpus gives every embedded row (4: the null one is never matched); the null query none.
    assert table.num_rows == 2 * 4
    best = {r["query_row"]: r["doc"] for r in table.to_pylist() if r["rank"] == 1}
    assert best == {0: "d5", 2: "d2"}

    # Queries that are embeddings already: the corpus against itself finds every row first.
    itself = run_plugin_node(search, {"corpus": embedded, "queries": embedded}, {"k": 1, "columns": ["doc"]})[
        "table"
    ]
    assert itself.column("doc").to_pylist() == ["d1", "d2", "d3", "d5"]
    assert itself.column("score").to_numpy() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("inputs", "params", "message"),
    [
        ({"query": "x"}, {"k": 0}, r"nlp/similarity_search@1: param 'k' is 0; use a number >= 1"),
        ({"query": "x", "empty": True}, {}, r"input port 'corpus' has no rows"),
        ({}, {}, r"give exactly one of input ports 'queries'.*got neither"),
        (
            {"query": "x"},
            {"embedding_column": "vec"},
            r"param 'embedding_column' names column 'vec', which input port 'corpus'",
        ),
        (
            {"queries": pa.table({"question": ["a"]})},
            {},
            r"input port 'queries' has neither the embedding column 'embedding'.*nor the text column 'text'",
        ),
    ],
)
def test_bad_search_input_names_the_node_and_field(
    nlp_nodes: dict[str, Any],
    embedded: pa.Table,
    inputs: dict[str, Any],
    params: dict[str, Any],
    message: str,
) -> None:
    corpus = embedded.slice(0, 0) if inputs.pop("empty", False) else embedded
    with pytest.raises(Exception, match=message):
        run_plugin_node(nlp_nodes["nlp/similarity_search@1"], {"corpus": corpus, **inputs}, params)


def test_embed_bad_input(nlp_nodes: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"nlp/embed@1: param 'column' names column 'body'"):
        run_plugin_node(nlp_nodes["nlp/embed@1"], {"table": DOCS}, {"column": "body"})
    with pytest.raises(Exception, match=r"nlp/embed@1: param 'batch_size' is 0; use a number >= 1"):
        run_plugin_node(nlp_nodes["nlp/embed@1"], {"table": DOCS}, {"batch_size": 0})


def _load_twice() -> tuple[bool, int]:
    from rayweave_nlp import models

    first = models.sentence_model()
    return first is models.sentence_model(), models.sentence_model.cache_info().misses


def test_the_model_is_loaded_once_per_worker_process(nlp_nodes: dict[str, Any], embedded: pa.Table) -> None:
    import ray

    runtime_env = nlp_nodes["nlp/embed@1"].runtime_env
    same, loads = ray.get(ray.remote(_load_twice).options(runtime_env=runtime_env).remote(), timeout=120)
    assert same and loads == 1

"""`nlp/tokenize@1`, `nlp/tokenize_text@1`, `nlp/sentiment@1`, `nlp/sentiment_text@1` in the plugin's own
runtime environment on the session Ray (VADER and the MiniLM tokenizer come from the installed packages)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from nodes.plugins.testing import run_plugin_node

REVIEWS = pa.table(
    {
        "id": [1, 2, 3, 4],
        "text": [
            "I absolutely love this blender. Works great!",
            "Terrible product; it broke after one day :(",
            None,
            "It is a blender. It's state-of-the-art, costs $49.99.",
        ],
    }
)


def test_tokenize_words_sentences_and_subwords(nlp_nodes: dict[str, Any]) -> None:
    tokenize = nlp_nodes["nlp/tokenize@1"]
    words = run_plugin_node(tokenize, {"table": REVIEWS}, {"lowercase": True})["table"]
    assert words.column_names == ["id", "text", "tokens"]
    assert words.schema.field("tokens").type == pa.list_(pa.string())
    tokens = words.column("tokens").to_pylist()
    assert tokens[0] == ["i", "absolutely", "love", "this", "blender", ".", "works", "great", "!"]
    assert tokens[2] is None  # a null text gives a null list
    assert tokens[3] == [
        "it",
        "is",
        "a",
        "blender",
        ".",
        "it's",
        "state-of-the-art",
        ",",
        "costs",
        "$",
        "49.99",
        ".",
    ]

    sentences = run_plugin_node(tokenize, {"table": REVIEWS}, {"mode": "sentences", "output": "sentences"})[
        "table"
    ]
    assert sentences.column("sentences").to_pylist()[0] == ["I absolutely love this blender.", "Works great!"]

    subwords = run_plugin_node(tokenize, {"table": REVIEWS.slice(0, 1)}, {"mode": "subwords"})["table"]
    # MiniLM's WordPiece vocabulary: lower case, '##' continues a word; no [CLS]/[SEP].
    assert subwords.column("tokens").to_pylist()[0][:4] == ["i", "absolutely", "love", "this"]
    split = run_plugin_node(
        nlp_nodes["nlp/tokenize_text@1"], {"text": "Unbelievably good"}, {"mode": "subwords"}
    )
    assert split.value == ["un", "##bel", "##ie", "##va", "##bly", "good"]
    plain = run_plugin_node(nlp_nodes["nlp/tokenize_text@1"], {"text": "Hi, you!"}, {"punctuation": False})
    assert plain.value == ["Hi", "you"]


def test_sentiment_scores_every_row(nlp_nodes: dict[str, Any]) -> None:
    scored = run_plugin_node(nlp_nodes["nlp/sentiment@1"], {"table": REVIEWS})["table"]
    assert scored.column_names == ["id", "text", "compound", "pos", "neg", "neu"]
    assert all(scored.schema.field(c).type == pa.float64() for c in ("compound", "pos", "neg", "neu"))
    compound = scored.column("compound").to_pylist()
    assert compound[0] > 0.5 and compound[1] < -0.5  # VADER: clearly positive, clearly negative
    assert compound[2] is None  # null text, null scores
    row = scored.slice(0, 1).to_pylist()[0]
    assert row["pos"] + row["neg"] + row["neu"] == pytest.approx(1.0, abs=0.01)

    again = run_plugin_node(nlp_nodes["nlp/sentiment@1"], {"table": scored}, {"prefix": "again_"})["table"]
    assert again.column("again_compound").to_pylist() == compound

    one = run_plugin_node(nlp_nodes["nlp/sentiment_text@1"], {"text": REVIEWS["text"][1].as_py()})
    assert one["compound"] == compound[1] and set(one) == {"compound", "pos", "neg", "neu"}


@pytest.mark.parametrize(
    ("node", "inputs", "params", "message"),
    [
        (
            "nlp/tokenize@1",
            {"table": REVIEWS},
            {"column": "body"},
            r"nlp/tokenize@1: param 'column' names column 'body', which input port 'table' does not have "
            r"\(columns: \['id', 'text'\]\)",
        ),
        (
            "nlp/tokenize@1",
            {"table": REVIEWS},
            {"mode": "chars"},
            r"param 'mode' is 'chars'; use one of words",
        ),
        (
            "nlp/sentiment@1",
            {"table": REVIEWS},
            {"column": "id"},
            r"column 'id' of input port 'table' holds int64",
        ),
        (
            "nlp/sentiment@1",
            {"table": REVIEWS.append_column("neu", pa.array([0.0] * 4))},
            {},
            r"output column\(s\) \['neu'\] already exist in input port 'table'; choose other names with param 'prefix'",
        ),
    ],
)
def test_bad_input_names_the_node_and_field(
    nlp_nodes: dict[str, Any], node: str, inputs: dict[str, Any], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        run_plugin_node(nlp_nodes[node], inputs, params)

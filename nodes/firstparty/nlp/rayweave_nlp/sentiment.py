"""Sentiment with VADER (the lexicon and rules of `vaderSentiment`, shipped inside the package).

VADER scores English text, social-media style included (emoticons, capitals, ``!!``, ``but``): ``compound``
is the normalized sum in [-1, 1] (about >= 0.05 positive, <= -0.05 negative, else neutral, by VADER's own
convention); ``pos``, ``neg`` and ``neu`` are the shares of the text in each class, summing to about 1.
"""

from __future__ import annotations

from typing import TypedDict

import pyarrow as pa

from nodes import node
from rayweave_nlp.tables import TableOut, append_columns, check_names, text_values

SCORES = ("compound", "pos", "neg", "neu")


class Sentiment(TypedDict):
    """The outputs of `nlp/sentiment_text@1`: VADER's four scores."""

    compound: float
    pos: float
    neg: float
    neu: float


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("text", "table", "sentiment"))
def sentiment(table: pa.Table, *, column: str = "text", prefix: str = "") -> TableOut:
    """Score the sentiment of every text of a table's column with VADER: four new float columns.

    Args:
        table: the rows; one of its columns holds the text.
        column: the text column to score (default ``text``); a missing or non-text column fails the node.
        prefix: put before the new columns' names (default empty: ``compound``, ``pos``, ``neg``, ``neu``);
            a name the table already has fails the node, so set e.g. ``"review_"`` to score a second column.

    Returns:
        table: the input table with ``compound`` (in [-1, 1]; >= 0.05 is positive, <= -0.05 negative by
            VADER's convention), ``pos``, ``neg`` and ``neu`` (shares in [0, 1]) appended, as float64; a
            null text gives null scores.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "review-sentiment",
          "inputs": {"reviews": {"type": "Table"}},
          "nodes": {"score": {"type": "nlp/sentiment@1", "in": {"table": "$inputs.reviews"},
                              "params": {"column": "review"}}},
          "outputs": {"table": "score.table"}
        }
        ```
    """
    from rayweave_nlp.models import vader

    node_id = "nlp/sentiment@1"
    names = [f"{prefix}{score}" for score in SCORES]
    check_names(node_id, names, "prefix")
    texts = text_values(node_id, table, column)
    analyzer = vader()
    rows = [None if text is None else analyzer.polarity_scores(text) for text in texts]
    columns = {
        name: pa.array([None if row is None else float(row[score]) for row in rows], type=pa.float64())
        for name, score in zip(names, SCORES, strict=True)
    }
    return {"table": append_columns(node_id, table, columns, param="prefix")}


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("text", "sentiment"))
def sentiment_text(text: str) -> Sentiment:
    """Score the sentiment of one text with VADER.

    Args:
        text: the text to score (English).

    Returns:
        compound: the normalized overall score in [-1, 1] (>= 0.05 positive, <= -0.05 negative).
        pos: the share of the text that is positive, in [0, 1].
        neg: the share that is negative, in [0, 1].
        neu: the share that is neutral, in [0, 1].
    """
    from rayweave_nlp.models import vader

    scores = vader().polarity_scores(text)
    return {"compound": scores["compound"], "pos": scores["pos"], "neg": scores["neg"], "neu": scores["neu"]}

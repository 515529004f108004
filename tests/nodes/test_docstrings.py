"""Docstring parsing: description, Args/Returns items (with continuation lines) and Example blocks."""

from __future__ import annotations

from nodes.docstrings import parse_docstring


def test_google_style_sections() -> None:
    doc = parse_docstring(
        """Join words.

        Longer explanation
        over two lines.

        Args:
            words (list[str]): the words
                to join, in order.
            sep: the separator.

        Returns:
            out: the joined text.

        Example:
            join(["a", "b"], sep="-") == "a-b"
        """
    )
    assert doc.description == "Join words.\n\nLonger explanation\nover two lines."
    assert doc.args == {"words": "the words to join, in order.", "sep": "the separator."}
    assert doc.returns == {"out": "the joined text."}
    assert doc.example == 'join(["a", "b"], sep="-") == "a-b"'


def test_free_text_returns_and_empty_docstrings() -> None:
    doc = parse_docstring("Sum.\n\nReturns:\n    the total of all\n    values.\n")
    assert doc.returns == {} and doc.returns_text == "the total of all values."
    assert parse_docstring(None).description == ""
    assert parse_docstring("   ").args == {}

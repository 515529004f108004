"""Messages name types with the right indefinite article."""

from __future__ import annotations

import pytest

import typesys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Int", "an Int"),
        ("String", "a String"),
        ("Email", "an Email"),
        ("Optional[Int]", "an Optional[Int]"),
        ("Any", "an Any"),
        ("List[Int]", "a List[Int]"),
        ("Url", "a Url"),
        ("Unit", "a Unit"),
    ],
)
def test_with_article(text: str, expected: str) -> None:
    assert typesys.with_article(text) == expected


def test_a_nominal_type_check_names_its_parent_with_articles() -> None:
    email = typesys.NominalType("Email", typesys.STRING)
    with pytest.raises(typesys.TypeCheckError, match=r"\(an Email is a String\)"):
        typesys.check(3, email)

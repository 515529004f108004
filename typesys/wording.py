"""Wording of types in messages: `with_article(t)` gives "an Int", "a String", "an Optional[Int]".

Messages name the expected type of a port or param ("must be an Int"); the article follows the sound of the
type's first letter, with the usual exceptions of words that start with a "you" sound (`Uri`, `Unit`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["with_article"]

#: Beginnings read with a consonant sound although they start with a vowel letter ("a Url", "a Unit").
_CONSONANT_SOUND = ("uni", "use", "usa", "uri", "url", "uu", "eu", "one")


def with_article(t: Any) -> str:
    """`t` (a type or its text) after its indefinite article: "an Int", "a List[Int]", "an Email"."""
    text = str(t)
    lowered = text.lower()
    vowel = lowered[:1] in ("a", "e", "i", "o", "u") and not lowered.startswith(_CONSONANT_SOUND)
    return f"{'an' if vowel else 'a'} {text}"
